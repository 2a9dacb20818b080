"""`fsre bench ...`: thin commands over the runners in fsre_cli.bench.

Each command prints a table on stderr and the JSON result on stdout (`--out FILE.json` also
saves it). Data default to `$FSRE_DATA`, else ``../shared/data`` beside the repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fsre_cli.bench.common import (data_file, parse_ints, parse_names, parse_settings, parse_train_variants, pct,
                                   write_result)
from fsre_cli.cli.common import command
from fsre_cli.cli.options import BatchOpt, DeviceOpt, EncoderOpt, PrecisionOpt, QuietOpt
from fsre_cli.console import Log
from fsre_cli.errors import UsageError
from fsre_cli.tkre.encoder import check_precision, set_threads

bench_app = typer.Typer(
    help="Reproducible benchmark runs (FewRel, CrossRE, Re-DocRED, speed): a table on stderr, JSON on stdout.",
    no_args_is_help=True,
)

DATA_HELP = "Data file or folder (default: under $FSRE_DATA, else ../shared/data beside the repository)."
SEEDS_HELP = "Comma-separated seeds; figures are mean ± std over them."


def _device(device: str) -> str:
    from fsre_cli.tkre.encoder import pick_device

    return pick_device(device)


def _emit(result: dict[str, Any], out: Optional[Path]) -> None:
    text = write_result(result, out)
    typer.echo(text)


def _table(title: str, columns: list[str], rows: list[list[str]], log: Log) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", min_width=len(title) + 2)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console = log.console
    if not console.is_terminal:
        console.width = max(console.width, 160)  # a log file: no need to wrap at 80 columns
    console.print(table)


def _ok(summary: dict[str, Any], key: str) -> str:
    return pct(summary[key]) if key in summary else "—"


# Options the bench commands share, declared once.
KOpt = Annotated[str, typer.Option("--k", help="Examples per relation (comma-separated).")]
MethodsOpt = Annotated[str, typer.Option("--methods", help="prototype, tkre, qa4re, cascade (comma-separated).")]
AblationsOpt = Annotated[bool, typer.Option("--ablations", help="Also run TKRE's ablation ladder (prototype, "
                                            "fine-tune, +MSLM, +SCL, +synthetic, full).")]
SeedsOpt = Annotated[str, typer.Option("--seeds", help=SEEDS_HELP)]
QuickOpt = Annotated[bool, typer.Option("--quick", help="Train with 1+1 pre-training and 3 fine-tuning epochs (CI).")]
SynthOpt = Annotated[int, typer.Option("--synth-per-relation", help="Synthetic examples asked per relation.")]
CacheModelsOpt = Annotated[bool, typer.Option("--cache-models", help="Save trained models in the model cache (about "
                                              "90 MB each with the default encoder) and reuse them: a killed run "
                                              "resumes.")]
CascadeRouteOpt = Annotated[float, typer.Option("--cascade-route", help="Share of pairs the cascade's calibrated "
                                                "band sends to the LLM (as `fsre extract --cascade-route`).")]
NoLocalLLMOpt = Annotated[bool, typer.Option("--no-local-llm", help="Never start the embedded LLM server; without "
                                             "OPENAI_BASE_URL the LLM rows are skipped.")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="Torch threads (default $FSRE_THREADS, else "
                                                   "min(4, cores)).")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Also write the JSON result here.")]
TkreVariantsOpt = Annotated[Optional[str], typer.Option("--tkre-variants", help="Extra tkre rows, `;`-separated, each "
                                                     "a set of training knobs (`statements=true;heldout=0`), or the benchmark's own: `corpus=N` (pre-train on N "
                                                     "unlabelled sentences of the dataset), `review=N` (retrain after a gold-label "
                                                     "reviewer decided the first N triples `fsre review` would show; with `review_below=true`, "
                                                     "pairs below the threshold too).")]
TypesOpt = Annotated[str, typer.Option("--types", help="Where each relation's head and tail types come from: "
                                       "examples (its K examples: all a K-shot user knows) or split (the whole "
                                       "train split: the earlier, optimistic protocol).")]
ExampleEntitiesOpt = Annotated[bool, typer.Option("--example-entities/--no-example-entities",
                                                  help="Each K-shot example lists its sentence's other gold "
                                                  "entities (a schema's `entities:`), or carries head and tail only.")]

@bench_app.command("fewrel")
@command
def fewrel(
    data: Annotated[Optional[Path], typer.Option("--data", help=DATA_HELP + " Default: fewrel/val_wiki.json.")] = None,
    episodes: Annotated[int, typer.Option("--episodes", help="Episodes per setting and seed.")] = 1000,
    settings: Annotated[str, typer.Option("--settings", help="N-way K-shot settings, e.g. 5-1,10-5.")] = "5-1,5-5,10-1,10-5",
    query: Annotated[int, typer.Option("--query", help="Queries per relation in an episode.")] = 1,
    seeds: SeedsOpt = "0,1,2",
    max_per_relation: Annotated[Optional[int], typer.Option("--max-per-relation",
                                                   help="Use only the first N instances of each relation (quick runs).")] = None,
    tkre_k: Annotated[str, typer.Option("--tkre-k", help="Also run TKRE's K-shot protocol for these K (e.g. 8,16,32): "
                               "train on K examples per relation, classify held-out instances among all relations.")] = "",
    test_per_relation: Annotated[int, typer.Option("--test-per-relation", help="TKRE protocol: test instances per relation.")] = 100,
    quick: Annotated[bool, typer.Option("--quick", help="TKRE protocol: 1+1 pre-training epochs, 3 fine-tuning epochs (CI).")] = False,
    precision: PrecisionOpt = "auto",
    encoder: EncoderOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = 64,
    threads: ThreadsOpt = None,
    out: OutOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Prototype accuracy on FewRel N-way K-shot episodes (every instance embedded once), and
    optionally TKRE's K-shot protocol (`--tkre-k`).

    Example: `fsre bench fewrel --episodes 1000 --settings 5-1,5-5,10-1,10-5 --seeds 0,1,2`

    Example: `fsre bench fewrel --tkre-k 8 --test-per-relation 50 --seeds 0 --quick`
    """
    from fsre_cli.bench.fewrel import run_fewrel

    log = Log(quiet=quiet)
    set_threads(threads)
    path = data_file(data, "fewrel", "val_wiki.json")
    result = run_fewrel(path, settings=parse_settings(settings), episodes=episodes, n_query=query,
                        seeds=parse_ints(seeds, "--seeds") or [0], encoder=encoder, device=_device(device),
                        batch_size=batch_size, max_per_relation=max_per_relation,
                        tkre_k=parse_ints(tkre_k, "--tkre-k"), test_per_relation=test_per_relation, quick=quick,
                        precision=check_precision(precision),
                        log=log)
    rows = [[r["setting"], pct(r["accuracy"]), str(len(r["per_seed"])), str(episodes)] for r in result["settings"]]
    _table(f"FewRel {path.name}: prototype accuracy (%)", ["N-K", "accuracy", "seeds", "episodes"], rows, log)
    if result["tkre"]:
        rows = [[str(r["k"]), pct(r["prototype"]), pct(r["tkre"]), f"{r['train_seconds']['mean']:.0f}"]
                for r in result["tkre"]]
        _table(f"FewRel {result['relations']}-way K-shot classification (%)", ["K", "prototype", "tkre", "train s"],
               rows, log)
    _emit(result, out)


def _labeled_table(result: dict[str, Any], log: Log) -> None:
    rows = []
    for r in result["summary"]:
        speed = r["pairs_per_second"]["mean"] if "pairs_per_second" in r else None
        pps = "—" if speed is None else f"{speed:.1f}" if speed < 10 else f"{speed:.0f}"
        train = f"{r['train_seconds']['mean']:.0f}" if "train_seconds" in r else "—"
        routed = f"{100 * r['routed_fraction']['mean']:.0f}%" if "routed_fraction" in r else "—"
        nota = pct(r["rules"]["nota"]) if "nota" in r.get("rules", {}) else "—"
        rows.append([r["dataset"], str(r["k"]), r["variant"], _ok(r, "f1"), _ok(r, "precision"), _ok(r, "recall"),
                     nota, _ok(r, "best_threshold_f1"), pps, train, routed,
                     "skipped" if r.get("skipped") and not r["seeds"] else str(len(r["seeds"]))])
    _table(f"{result['benchmark']}: micro-F1 without NOTA (%), mean ± std over seeds",
           ["dataset", "K", "method", "F1", "P", "R", "F1 nota", "F1 dev-thr", "pairs/s", "train s", "to LLM", "seeds"],
           rows, log)
    log.info("F1 nota: the same tkre scores decided by --decision nota (best relation above NOTA). F1 dev-thr: F1 "
             "at the threshold best for the test set itself (tuned on the gold it is scored against; calibration's "
             "ceiling, not a result)")
    for note in result["notes"]:
        log.info(f"note: {note}")


def _labeled_options(methods: str, ablations: bool):
    from fsre_cli.scorers import METHODS

    return parse_names(methods, "--methods", METHODS), ablations


def _precisions(value: str) -> list[str]:
    return [check_precision(p.strip()) for p in value.split(",") if p.strip()] or ["auto"]


def _settings(encoder, device, batch_size, quick, synth_per_relation, no_local_llm, cache_models, cascade_route,
              precision, types="examples", example_entities=True):
    from fsre_cli.bench.labeled import RunSettings

    if not 0 < cascade_route <= 1:
        raise UsageError(f"--cascade-route must be in (0, 1], not {cascade_route}")
    if types not in ("examples", "split"):
        raise UsageError(f"--types must be examples or split, not {types!r}")
    return RunSettings(encoder=encoder, device=_device(device), batch_size=batch_size, quick=quick,
                       synth_per_relation=synth_per_relation, allow_local_llm=not no_local_llm,
                       cache_models=cache_models, cascade_route=cascade_route,
                       precision=check_precision(precision), types=types, example_entities=example_entities)


@bench_app.command("crossre")
@command
def crossre(
    data: Annotated[Optional[Path], typer.Option("--data", help=DATA_HELP + " Default: the crossre/ folder.")] = None,
    domains: Annotated[str, typer.Option("--domains", help="CrossRE domains.")] = "ai,literature,music,news,politics,science",
    k: KOpt = "8,16,32",
    methods: MethodsOpt = "prototype,tkre",
    ablations: AblationsOpt = False,
    seeds: SeedsOpt = "0,1,2",
    max_sentences: Annotated[Optional[int], typer.Option("--max-sentences", help="Score at most N dev sentences per domain "
                                                "(a seeded subsample, the same for every seed and method).")] = None,
    sample_seed: Annotated[int, typer.Option("--sample-seed", help="Seed of the --max-sentences subsample.")] = 0,
    quick: QuickOpt = False,
    synth_per_relation: SynthOpt = 8,
    cache_models: CacheModelsOpt = False,
    cascade_route: CascadeRouteOpt = 0.15,
    precision: PrecisionOpt = "auto",
    tkre_variants: TkreVariantsOpt = None,
    types: TypesOpt = "examples",
    example_entities: ExampleEntitiesOpt = True,
    no_local_llm: NoLocalLLMOpt = False,
    encoder: EncoderOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = 64,
    threads: ThreadsOpt = None,
    out: OutOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """CrossRE: K-shot schema from each domain's train split, micro-F1 (NOTA excluded) on its dev
    split with gold entities, every other entity pair a NOTA candidate; pairs/s per method.

    Example: `fsre bench crossre --domains ai --k 8 --methods prototype,tkre --seeds 0`

    Example: `fsre bench crossre --domains news --k 8,16 --ablations --max-sentences 100`
    """
    from fsre_cli.bench.labeled import CROSSRE_DOMAINS, run_crossre

    log = Log(quiet=quiet)
    set_threads(threads)
    method_list, ablate = _labeled_options(methods, ablations)
    settings = _settings(encoder, device, batch_size, quick, synth_per_relation, no_local_llm, cache_models,
                         cascade_route, precision, types, example_entities)
    result = run_crossre(parse_names(domains, "--domains", CROSSRE_DOMAINS), data=data,
                         ks=parse_ints(k, "--k") or [8], methods=method_list, ablations=ablate,
                         seeds=parse_ints(seeds, "--seeds") or [0], max_sentences=max_sentences,
                         sample_seed=sample_seed, settings=settings, log=log,
                         tkre_variants=parse_train_variants(tkre_variants))
    _labeled_table(result, log)
    _emit(result, out)


@bench_app.command("redocred")
@command
def redocred(
    data: Annotated[Optional[Path], typer.Option("--data", help=DATA_HELP + " Default: redocred/dev_revised.json.")] = None,
    pid2name: Annotated[Optional[Path], typer.Option("--pid2name", help="Property names (default: fewrel/pid2name.json "
                                            "next to the redocred folder).")] = None,
    k: KOpt = "8,16,32",
    methods: MethodsOpt = "prototype,tkre",
    ablations: AblationsOpt = False,
    seeds: SeedsOpt = "0,1,2",
    max_sentences: Annotated[Optional[int], typer.Option("--max-sentences", help="Score at most N test sentences "
                                                "(a seeded subsample, the same for every seed and method).")] = None,
    split_seed: Annotated[int, typer.Option("--split-seed", help="Seed of the document split (train half / test half) "
                                   "and of the --max-sentences subsample.")] = 0,
    quick: QuickOpt = False,
    synth_per_relation: SynthOpt = 8,
    cache_models: CacheModelsOpt = False,
    cascade_route: CascadeRouteOpt = 0.15,
    precision: PrecisionOpt = "auto",
    tkre_variants: TkreVariantsOpt = None,
    types: TypesOpt = "examples",
    example_entities: ExampleEntitiesOpt = True,
    no_local_llm: NoLocalLLMOpt = False,
    encoder: EncoderOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = 64,
    threads: ThreadsOpt = None,
    out: OutOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Re-DocRED at sentence level with gold mentions, top-20 relations: K-shot schema from half
    of the documents, micro-F1 (NOTA excluded) on the sentences of the other half.

    Example: `fsre bench redocred --k 8 --methods prototype --seeds 0,1,2 --max-sentences 500`
    """
    from fsre_cli.bench.labeled import run_redocred

    log = Log(quiet=quiet)
    set_threads(threads)
    method_list, ablate = _labeled_options(methods, ablations)
    settings = _settings(encoder, device, batch_size, quick, synth_per_relation, no_local_llm, cache_models,
                         cascade_route, precision, types, example_entities)
    result = run_redocred(data=data, pid2name=pid2name, ks=parse_ints(k, "--k") or [8], methods=method_list,
                          ablations=ablate, seeds=parse_ints(seeds, "--seeds") or [0], max_sentences=max_sentences,
                          split_seed=split_seed, settings=settings, log=log,
                          tkre_variants=parse_train_variants(tkre_variants))
    _labeled_table(result, log)
    _emit(result, out)


@bench_app.command("shipped")
@command
def shipped(
    schema: Annotated[Path, typer.Option("--schema", help="The schema, as shipped.")] = Path("schemas/org-people.yaml"),
    data: Annotated[Optional[Path], typer.Option("--data", help=DATA_HELP + " Default: redocred/dev_revised.json.")] = None,
    max_sentences: Annotated[Optional[int], typer.Option("--max-sentences", help="Score at most N sentences "
                                                         "(a seeded subsample).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="A trained model folder (default: the cached model "
                                                 "`fsre extract` uses, trained now if there is none).")] = None,
    decision: Annotated[str, typer.Option("--decision", help="tkre's decision rule: threshold, nota or relation.")] = "threshold",
    top: Annotated[int, typer.Option("--top", min=0, help="Also list the N best-scored pairs, right or wrong, in "
                                     "the JSON.")] = 0,
    precision: PrecisionOpt = "auto",
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = 64,
    threads: ThreadsOpt = None,
    out: OutOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """A shipped schema on real text: org-people over Re-DocRED's dev sentences with gold PER/ORG/LOC
    entities, scored on the relations with a Wikidata property, a gold triple counting only in its
    evidence sentences (precision, recall, precision at recall 0.5, how often triples scored 0.9
    are right, ECE).

    Example: `fsre bench shipped --schema schemas/org-people.yaml --out shipped.json`
    """
    from fsre_cli.bench.shipped import run_shipped
    from fsre_cli.scorers.base import ScorerOptions

    log = Log(quiet=quiet)
    set_threads(threads)
    ScorerOptions(decision=decision, precision=precision, batch_size=batch_size).validate()
    result = run_shipped(schema, data=data, max_sentences=max_sentences, model=model, device=_device(device),
                         batch_size=batch_size, precision=precision, decision=decision, top=top, log=log)
    def p(x: float) -> str:
        return f"{100 * x:.1f}"

    rows = [[rel, p(v["f1"]), p(v["precision"]), p(v["recall"]), str(v["predicted"]), str(v["gold"])]
            for rel, v in sorted(result["per_relation"].items())]
    rows.append(["micro", p(result["f1"]), p(result["precision"]), p(result["recall"]),
                 str(result["predicted"]), str(result["gold"])])
    _table(f"{result['schema']} on Re-DocRED dev ({result['sentences']} sentences, evidence-scored)",
           ["relation", "F1", "P", "R", "predicted", "gold"], rows, log)
    at = result["emitted_at_0.9"]
    log.info(f"precision at recall 0.5: {result['precision_at_recall_0.5']}; triples scored >= 0.9: "
             f"{at['triples']}, right {at['right']}; ECE {result['reliability']['ece']:.3f}")
    _emit(result, out)


@bench_app.command("speed")
@command
def speed(
    schema: Annotated[Path, typer.Option("--schema", help="Schema YAML file.")] = Path("schemas/org-people.yaml"),
    input_path: Annotated[Path, typer.Option("--input",
                                    help="JSONL documents with `entities` (replicated to --min-pairs).")] = Path("examples/org-people.jsonl"),
    repeat: Annotated[int, typer.Option("--repeat", help="Interleaved runs; medians are reported.")] = 5,
    min_pairs: Annotated[int, typer.Option("--min-pairs", help="Replicate the input until it has this many candidate pairs.")] = 3000,
    model: Annotated[Optional[Path], typer.Option("--model", help="A trained model directory (default: train or reuse "
                                         "the cached model for the schema).")] = None,
    train_time: Annotated[bool, typer.Option("--train-time/--no-train-time",
                                    help="Also time training on a 17-relation 8-shot schema (CrossRE science, K=8).")] = True,
    memory: Annotated[bool, typer.Option("--memory/--no-memory", help="Also measure peak RSS of `fsre extract`.")] = True,
    throughput: Annotated[bool, typer.Option("--throughput/--no-throughput", help="Measure extraction throughput "
                                             "(off: time training only).")] = True,
    quick: Annotated[bool, typer.Option("--quick", help="Train with 1+1 pre-training and 3 fine-tuning epochs.")] = False,
    data: Annotated[Optional[Path], typer.Option("--data", help=DATA_HELP + " Used for the training-time schema.")] = None,
    seeds: Annotated[str, typer.Option("--seeds", help="Training seed (the first one is used: speed is one run).")] = "0",
    precision: Annotated[str, typer.Option("--precision", help="Training precisions to time (comma-separated: auto, "
                                  "fp32, bf16); the first also trains the model timed for throughput.")] = "auto",
    packing: Annotated[Optional[str], typer.Option("--packing", help="Packings to time training in "
                                                   "(comma-separated: pair, sentence; default: the default).")] = None,
    encoder: EncoderOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = 64,
    threads: ThreadsOpt = None,
    out: OutOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Extraction throughput through the real pipeline vs the bare encoder forward pass on the same
    batches (ratio, target ≥ 0.8), training time for a 17-relation 8-shot schema, peak RSS.

    Example: `fsre bench speed --schema schemas/org-people.yaml --input examples/org-people.jsonl --repeat 5`
    """
    from fsre_cli.bench.speed import run_speed

    log = Log(quiet=quiet)
    set_threads(threads)
    seed = (parse_ints(seeds, "--seeds") or [0])[0]
    result = run_speed(schema, input_path, seed=seed, repeat=repeat, min_pairs=min_pairs, model=model, encoder=encoder,
                       device=_device(device), batch_size=batch_size, quick=quick, train_time=train_time,
                       rss=memory, data=data, precisions=_precisions(precision),
                       packings=parse_names(packing, "--packing", ("pair", "head", "sentence")) or [None],
                       throughput=throughput, log=log)
    t = result["throughput"]
    rows = [
        ["pipeline pairs/s", f"{t['pipeline_pairs_per_second']:.1f}"],
        ["pipeline sentences/s", f"{t['pipeline_sentences_per_second']:.1f}"],
        ["bare encoder pairs/s", f"{t['bare_encoder_pairs_per_second']:.1f}"],
        ["ratio (target ≥ 0.8)", f"{t['ratio']:.3f}"],
        ["candidate pairs", str(t["candidate_pairs"])],
    ] if t else []
    if result["memory"] and "peak_rss_mib" in result["memory"]:
        rows.append(["peak RSS of fsre extract (MiB)", f"{result['memory']['peak_rss_mib']:.0f}"])
    for tr in result["training"]:
        rows.append([f"train {tr['relations']} relations, {tr['examples']} examples, {tr['precision']}, "
                     f"{tr['packing']}, {tr['threads']} thread(s) (s)",
                     f"{tr['seconds']:.0f}"])
    if len(result["training"]) > 1:
        first, *rest = result["training"]
        for tr in rest:
            rows.append([f"train time {tr['precision']} {tr['packing']} / {first['precision']} {first['packing']}",
                         f"{tr['seconds'] / first['seconds']:.2f}"])
    _table("fsre speed", ["measure", "value"], rows, log)
    _emit(result, out)


@bench_app.command("modes")
@command
def modes(
    datasets: Annotated[str, typer.Option("--datasets", help="crossre-DOMAIN and/or redocred (comma-separated): "
                                          "held-out sentences with their gold entities.")] = "crossre-ai,redocred",
    modes_: Annotated[str, typer.Option("--modes", help="pair, sentence, pair+int8, sentence+int8 "
                                        "(comma-separated).")] = "pair,sentence,pair+int8,sentence+int8",
    repeat: Annotated[int, typer.Option("--repeat", help="Interleaved rounds; medians are reported.")] = 3,
    max_sentences: Annotated[Optional[int], typer.Option("--max-sentences", help="Score a seeded sample of "
                                                         "this many test sentences.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="The K-shot sample and training seed.")] = 0,
    k: Annotated[int, typer.Option("--k", help="Examples per relation.")] = 8,
    memory: Annotated[bool, typer.Option("--memory/--no-memory", help="Also measure each mode's peak RSS "
                                         "in a process of its own.")] = True,
    data: Annotated[Optional[Path], typer.Option("--data", help=DATA_HELP)] = None,
    quick: QuickOpt = False,
    precision: PrecisionOpt = "auto",
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = 64,
    threads: ThreadsOpt = None,
    out: OutOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Scoring modes on held-out data, interleaved in one run: per-pair and packed passes, torch
    and int8 encoder; pairs/s and sentences/s through the real pipeline, the bare encoder on the
    same batches, int8's agreement with torch, peak RSS. Models come from the model cache (the
    quality benchmarks' `--cache-models`) or are trained once per packing.

    Example: `fsre bench modes --datasets crossre-ai,redocred --repeat 3 --threads 1`
    """
    from fsre_cli.bench.modes import run_modes

    log = Log(quiet=quiet)
    set_threads(threads)
    result = run_modes(parse_names(datasets, "--datasets"), parse_names(modes_, "--modes"), data=data, seed=seed,
                       k=k, max_sentences=max_sentences, repeat=repeat, device=_device(device),
                       batch_size=batch_size, precision=check_precision(precision), rss=memory, quick=quick,
                       log=log)
    for case in result["cases"]:
        rows = []
        for mode, r in case["modes"].items():
            agree = next((v for key, v in r.items() if key.startswith("agreement_with_")), None)
            rows.append([mode, f"{r['pairs_per_second']:.0f}", f"{r['sentences_per_second']:.1f}",
                         f"{r['bare_encoder_pairs_per_second']:.0f}", f"{r['speedup_vs_pair_pipeline'] or 0:.2f}",
                         f"{100 * agree['same_decision']:.1f}%" if agree else "",
                         f"{r['memory']['peak_rss_mib']:.0f}" if "peak_rss_mib" in r.get("memory", {}) else ""])
        _table(f"{case['dataset']}: {case['candidate_pairs']} pairs in {case['sentences']} sentences "
               f"(bare encoder, per-pair batches: {case['reference_bare_encoder_pairs_per_second']:.0f} pairs/s)",
               ["mode", "pairs/s", "sentences/s", "bare encoder pairs/s", "× pair", "same decisions", "peak MiB"],
               rows, log)
    _emit(result, out)
