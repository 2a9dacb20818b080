"""The `fsre` command line. Thin: every command calls library functions in fsre_cli."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from fsre_cli import __version__
from fsre_cli.console import Log
from fsre_cli.errors import FsreError, SchemaError, UsageError

app = typer.Typer(
    name="fsre",
    help="Mine relation triples from documents with a few examples per relation.\n\n"
    "Example: fsre extract notes.txt --schema schemas/org-people.yaml > triples.jsonl",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
schema_app = typer.Typer(help="Validate and inspect schema files.", no_args_is_help=True)
models_app = typer.Typer(help="Manage the Stanza models used for entity recognition.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
app.add_typer(models_app, name="models")

METHODS = ("tkre", "prototype", "qa4re", "cascade")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fsre {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """fsre: few-shot relation extraction (TKRE encoder, QA4RE zero-shot)."""


# --------------------------------------------------------------------------- schema
@schema_app.command("check")
def schema_check(
    files: list[Path] = typer.Argument(..., help="Schema YAML files."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print problems only."),
) -> None:
    """Validate schema files: exit 0 when all are valid, 2 otherwise; every problem is listed
    as FILE:LINE: PATH: reason.

    Example: `fsre schema check schemas/*.yaml`
    """
    from fsre_cli.schema import load_schema

    log = Log(quiet=quiet)
    bad = 0
    for path in files:
        try:
            schema = load_schema(path)
        except SchemaError as exc:
            bad += 1
            for problem in exc.problems:
                log.problem(problem)
            continue
        for warning in schema.warnings:
            log.warn(warning)
        log.info(f"{path}: ok ({len(schema.relations)} relations, {len(schema.examples)} examples)")
    if bad:
        raise typer.Exit(2)


@schema_app.command("show")
def schema_show(file: Path = typer.Argument(..., help="Schema YAML file.")) -> None:
    """Print a schema as a readable table (relations, types, examples, templates).

    Example: `fsre schema show schemas/org-people.yaml`
    """
    from rich.console import Console
    from rich.table import Table

    from fsre_cli.schema import default_template, load_schema

    schema = load_schema(file)
    console = Console(width=None if sys.stdout.isatty() else 200)  # no wrapping when piped
    console.print(f"[bold]{schema.name}[/bold]  {schema.description}")
    types = Table("entity type", "NER labels", title="Entity types", title_justify="left")
    for name, labels in schema.entity_types.items():
        types.add_row(name, ", ".join(labels))
    console.print(types)
    table = Table("relation", "head → tail", "examples", "QA4RE statement", "description",
                  title="Relations", title_justify="left")
    for rel in schema.relations.values():
        table.add_row(rel.name, f"{'|'.join(rel.head_types)} → {'|'.join(rel.tail_types)}",
                      str(len(rel.examples)), rel.template or default_template(rel) + " (default)", rel.description)
    console.print(table)


# --------------------------------------------------------------------------- models
@models_app.command("download")
def models_download(
    lang: str = typer.Option("en", "--lang", help="Language code."),
    stanza_dir: Optional[str] = typer.Option(None, "--stanza-dir", envvar="FSRE_STANZA_DIR",
                                             help="Where to put the models (default: Stanza's own folder)."),
    timeout: float = typer.Option(600.0, "--timeout", help="Give up after this many seconds."),
) -> None:
    """Download the Stanza models entity recognition needs (tokenize, ner), once.

    Example: `fsre models download --lang en`
    """
    from fsre_cli.entities import download_models

    log = Log()
    log.info(f"downloading Stanza models for {lang!r} (timeout {timeout:.0f}s) ...")
    download_models(lang=lang, stanza_dir=stanza_dir, timeout=timeout)
    log.info("done")


@models_app.command("list")
def models_list(
    stanza_dir: Optional[str] = typer.Option(None, "--stanza-dir", envvar="FSRE_STANZA_DIR", help="Stanza model folder."),
) -> None:
    """Show the installed Stanza models and where they are.

    Example: `fsre models list --stanza-dir ~/stanza_resources`
    """
    from rich.console import Console
    from rich.table import Table

    from fsre_cli.entities import list_models

    rows = list_models(stanza_dir=stanza_dir)
    if not rows:
        Log().warn("no Stanza models installed; run: fsre models download --lang en")
        raise typer.Exit(1)
    table = Table(*rows[0].keys())
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console().print(table)


# --------------------------------------------------------------------------- train
PRECISION_HELP = ("Training precision: auto (bf16 where the CPU or GPU computes it natively, about twice as fast; "
                  "else fp32), fp32 or bf16.")


def _train_config(encoder, no_pretrain, no_scl, epochs, mslm_epochs, scl_epochs, seed, no_synthetic, max_length,
                  precision):
    from fsre_cli.tkre.encoder import check_precision
    from fsre_cli.tkre.train import TrainConfig

    return TrainConfig(encoder=encoder, pretrain=not no_pretrain, scl=not no_scl, epochs=epochs,
                       mslm_epochs=mslm_epochs, scl_epochs=scl_epochs, seed=seed,
                       use_synthetic=not no_synthetic, max_length=max_length, precision=check_precision(precision))


def _load_schema_and_sidecar(path: Path, log: Log):
    from fsre_cli.schema import load_schema
    from fsre_cli.sidecar import read_sidecar

    schema = load_schema(path)
    for warning in schema.warnings:
        log.warn(warning)
    sidecar = read_sidecar(schema.sidecar_path, schema) if schema.sidecar_path else None
    if sidecar is not None and not sidecar.is_empty():
        log.info(f"using {schema.sidecar_path}: {len(sidecar.examples)} synthetic examples, "
                 f"{len(sidecar.explanations)} explanations")
    return schema, sidecar


@app.command()
def train(
    schema_path: Path = typer.Argument(..., metavar="SCHEMA", help="Schema YAML file."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the model to this directory."),
    encoder: Optional[str] = typer.Option(None, "--encoder", envvar="FSRE_ENCODER",
                                          help="Hugging Face model id or local path (default: bundled MiniLM)."),
    no_pretrain: bool = typer.Option(False, "--no-pretrain", help="Skip both pre-training stages (ablation)."),
    no_scl: bool = typer.Option(False, "--no-scl", help="Skip stage 2, span-level contrastive learning (ablation)."),
    no_synthetic: bool = typer.Option(False, "--no-synthetic", help="Ignore the sidecar's LLM-written data (ablation)."),
    synth: bool = typer.Option(False, "--synth", help="Generate the sidecar with the LLM first (see `fsre synth`)."),
    epochs: int = typer.Option(30, "--epochs", help="Fine-tuning epochs at most (early stopping)."),
    mslm_epochs: int = typer.Option(5, "--mslm-epochs", help="Stage 1 (MSLM) epochs."),
    scl_epochs: int = typer.Option(5, "--scl-epochs", help="Stage 2 (SCL+MSLM) epochs."),
    max_length: int = typer.Option(128, "--max-length", help="Tokens per marked sentence."),
    seed: int = typer.Option(0, "--seed", help="Random seed (training is deterministic on CPU)."),
    precision: str = typer.Option("auto", "--precision", envvar="FSRE_PRECISION", help=PRECISION_HELP),
    force: bool = typer.Option(False, "--force", help="Retrain even when a cached model exists."),
    entities: str = typer.Option("auto", "--entities", help="auto: NOTA pairs for training come from Stanza's "
                                 "entities in the example sentences when an NER model is installed; given: never "
                                 "run NER, guess name-like spans (what `fsre extract --entities given` uses)."),
    lang: Optional[str] = typer.Option(None, "--lang", help="Language for Stanza (default: the schema's, else en)."),
    stanza_dir: Optional[str] = typer.Option(None, "--stanza-dir", envvar="FSRE_STANZA_DIR", help="Stanza models."),
    ner_model: Optional[str] = typer.Option(None, "--ner-model", envvar="FSRE_NER_MODEL",
                                            help="A Stanza NER model file to use instead of the downloaded one."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda or auto."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Pre-train (MSLM, then SCL) and fine-tune the encoder for a schema; the model is cached
    by a hash of schema, sidecar, encoder, settings and the example sentences' entities, so a
    second run is instant and `fsre extract` finds it.

    Example: `fsre train schemas/org-people.yaml`
    """
    from fsre_cli.paths import mention_cache_dir
    from fsre_cli.tkre.artifact import save_artifact
    from fsre_cli.tkre.encoder import pick_device
    from fsre_cli.tkre.train import ensure_model, example_mentions

    log = Log(quiet=quiet)
    _threads()
    if synth:
        from fsre_cli.cli.llm import synth_main

        code = synth_main(schema_path, log=log)
        if code:
            raise typer.Exit(code)
    if entities not in ("auto", "given"):
        raise UsageError("--entities must be auto or given")
    schema, sidecar = _load_schema_and_sidecar(schema_path, log)
    config = _train_config(encoder, no_pretrain, no_scl, epochs, mslm_epochs, scl_epochs, seed, no_synthetic, max_length,
                           precision)
    from fsre_cli.entities import EntityRecognizer

    recognizer = EntityRecognizer(schema, lang=lang, stanza_dir=stanza_dir, ner_model_path=ner_model,
                                  entities=entities, use_gpu=device == "cuda",
                                  mention_cache=mention_cache_dir())
    mentions = example_mentions(schema, sidecar, config, recognizer)
    artifact, where = ensure_model(schema, sidecar, config, device=pick_device(device), force=force,
                                   mentions=mentions, log=log)
    log.info(f"model: {where}")
    if output is not None:
        save_artifact(artifact, output)
        log.info(f"written to {output}")


# --------------------------------------------------------------------------- extract
@app.command(no_args_is_help=True)
def extract(
    inputs: list[str] = typer.Argument(None, help="Text files, directories, JSONL files, or - for stdin."),
    schema_path: Path = typer.Option(..., "--schema", "-s", help="Schema YAML file."),
    method: str = typer.Option("auto", "--method", "-m",
                               help="tkre (trained encoder), prototype (no training), qa4re (zero-shot LLM), "
                                    "cascade (encoder, LLM where unsure); auto = tkre when examples exist, else qa4re."),
    min_score: Optional[float] = typer.Option(None, "--min-score", help="Emit the best relation of a pair when its "
                                              "score reaches this (default: the method's calibrated decision)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write JSONL here instead of stdout."),
    resume: bool = typer.Option(False, "--resume", help="With --output: skip documents already finished."),
    files_from: Optional[str] = typer.Option(None, "--files-from", help="Read input paths from FILE (- for stdin)."),
    glob: str = typer.Option("*.txt", "--glob", help="Files to take from directories (JSONL files are always taken)."),
    input_format: str = typer.Option("auto", "--format", help="auto, text or jsonl."),
    entities: str = typer.Option("auto", "--entities", help="auto (given spans when a JSONL document has them, else "
                                 "Stanza), given (never load Stanza NER), stanza (ignore given spans)."),
    lang: Optional[str] = typer.Option(None, "--lang", help="Language for Stanza (default: the schema's, else en)."),
    stanza_dir: Optional[str] = typer.Option(None, "--stanza-dir", envvar="FSRE_STANZA_DIR", help="Stanza models."),
    ner_model: Optional[str] = typer.Option(None, "--ner-model", envvar="FSRE_NER_MODEL",
                                            help="A Stanza NER model file to use instead of the downloaded one."),
    model: Optional[str] = typer.Option(None, "--model", help="A trained model directory (from `fsre train -o`)."),
    encoder: Optional[str] = typer.Option(None, "--encoder", envvar="FSRE_ENCODER", help="Encoder id or path."),
    cascade_band: Optional[tuple[float, float]] = typer.Option(None, "--cascade-band",
                                                               help="LOW HIGH: encoder scores sent to the LLM "
                                                               "(default: calibrated, see --cascade-route)."),
    cascade_route: float = typer.Option(0.15, "--cascade-route", envvar="FSRE_CASCADE_ROUTE",
                                        help="Share of pairs the calibrated band sends to the LLM, set on the "
                                        "model's held-out scores (0 < F <= 1)."),
    llm_model: Optional[str] = typer.Option(None, "--llm-model", envvar="FSRE_LLM_MODEL", help="LLM model name."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read LLM answers from the cache."),
    keep_going: bool = typer.Option(False, "--keep-going", help="Exit 0 even when some inputs were skipped "
                                    "(they are always skipped with a warning and summarised)."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda or auto."),
    batch_size: int = typer.Option(64, "--batch-size", help="Pairs per encoder batch."),
    precision: str = typer.Option("auto", "--precision", envvar="FSRE_PRECISION",
                                  help=PRECISION_HELP + " Used when extract trains the model."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors on stderr."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Per-document counts on stderr."),
) -> None:
    """Extract relation triples as JSONL (one object per line, stdout unless --output).

    Examples:

    `fsre extract notes.txt --schema schemas/org-people.yaml > triples.jsonl`

    `find corpus -name '*.txt' | fsre extract --files-from - --schema s.yaml`

    `cat article.txt | fsre extract - --schema s.yaml --min-score 0.6`

    `fsre extract docs.jsonl --schema s.yaml --entities given`
    """
    from fsre_cli.entities import EntityRecognizer
    from fsre_cli.inputs import InputReport, StreamFeed, expand_paths, read_documents
    from fsre_cli.outputs import TripleWriter
    from fsre_cli.pipeline import ExtractStats, extract_triples
    from fsre_cli.paths import mention_cache_dir

    log = Log(quiet=quiet, verbose=verbose)
    _threads()
    if input_format not in ("auto", "text", "jsonl"):
        raise UsageError("--format must be auto, text or jsonl")
    if entities not in ("auto", "given", "stanza"):
        raise UsageError("--entities must be auto, given or stanza")
    sources = expand_paths(inputs or [], glob=glob, files_from=files_from)
    if not sources:
        raise UsageError("no inputs: give files, directories, - for stdin, or --files-from")
    if sources.count("-") + (files_from == "-") > 1:
        raise UsageError("stdin (-) can be used only once")
    schema, sidecar = _load_schema_and_sidecar(schema_path, log)
    recognizer = EntityRecognizer(schema, lang=lang, stanza_dir=stanza_dir, ner_model_path=ner_model,
                                  entities=entities, use_gpu=device == "cuda",
                                  mention_cache=mention_cache_dir())
    text_files = [s for s in sources if s != "-" and not s.endswith((".jsonl", ".ndjson"))]
    if entities == "stanza" or (entities == "auto" and input_format != "jsonl" and text_files):
        recognizer.preload()  # plain text surely needs NER: fail before training, not after
    scorer = build_scorer(schema, sidecar, method=method, model=model, encoder=encoder, device=device,
                          cascade_band=cascade_band, cascade_route=cascade_route, llm_model=llm_model,
                          no_cache=no_cache, batch_size=batch_size, precision=precision, recognizer=recognizer,
                          log=log)
    writer = TripleWriter(output, resume=resume)
    report = InputReport()
    stats = ExtractStats()
    # stdin is read ahead by a thread; when it pauses, the batches held so far are scored
    # and written, so a slow stream (tail -f) gets its triples without waiting for more
    feed = StreamFeed(sys.stdin) if "-" in sources else None
    stream_paused = feed.paused if feed else None
    docs = (d for d in read_documents(sources, report, warn=log.warn, input_format=input_format, stdin=feed)
            if not writer.is_done(d.id))
    sentences = recognizer.process(docs, flush_when=stream_paused)
    flush_when = (lambda: recognizer.holding == 0 and feed.paused()) if feed else None
    try:
        with log.progress("extracting", total=None) as bar:
            for doc, triples in extract_triples(sentences, schema, scorer, min_score=min_score,
                                                stats=stats, flush_when=flush_when):
                writer.write(triples)
                log.debug(f"{doc.id}: {stats.per_document.get(doc.id, 0)} candidate pairs, {len(triples)} triples")
                if doc.final:  # recorded as soon as its last chunk is written: a stream may pause here
                    writer.finish_document(doc.id)
                    bar.advance()
    except KeyboardInterrupt:
        hint = f"; rerun with `-o {output} --resume` to continue" if output else ""
        log.error(f"interrupted after {writer.finished} complete document(s){hint}")
        raise typer.Exit(130)
    finally:
        writer.close()
    routed = getattr(scorer, "routed", None)
    extra = ""
    if routed is not None:
        share = f" ({routed / stats.candidates:.0%})" if stats.candidates else ""
        extra = f", {routed} sent to the LLM{share}"
    log.info(f"{stats.documents} documents, {stats.sentences} sentences, {stats.mentions} mentions, "
             f"{stats.candidates} candidate pairs{extra}, {stats.triples} triples ({scorer.method})")
    if report.skipped:
        log.warn(f"{len(report.skipped)} input(s) skipped: " + "; ".join(f"{s} ({r})" for s, r in report.skipped[:5])
                 + (" ..." if len(report.skipped) > 5 else ""))
        if not keep_going:
            raise typer.Exit(1)


def build_scorer(schema, sidecar, *, method: str, model=None, encoder=None, device: str = "auto",
                 cascade_band=None, cascade_route: float = 0.15, llm_model=None, no_cache=False,
                 batch_size: int = 64, precision: str = "auto", recognizer=None, log: Log | None = None):
    """The scorer for `--method` (library entry point for the CLI and benchmarks). With a
    `recognizer`, a model trained here takes its NOTA pairs from the example sentences' entities."""
    from fsre_cli.tkre.encoder import check_precision, pick_device

    if method == "auto":
        method = "tkre" if schema.examples else "qa4re"
    if method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)} (or auto), not {method!r}")
    if method == "cascade":
        if cascade_band is not None and not 0 <= cascade_band[0] <= cascade_band[1] <= 1:
            raise UsageError(f"--cascade-band needs 0 <= LOW <= HIGH <= 1, not {cascade_band[0]} {cascade_band[1]}")
        if not 0 < cascade_route <= 1:
            raise UsageError(f"--cascade-route must be in (0, 1], not {cascade_route}")
    device = pick_device(device)
    check_precision(precision)  # a bad value is a usage error whatever the method
    if method == "prototype":
        from fsre_cli.scorers.tkre import PairEmbedder, PrototypeScorer

        if not schema.examples:
            raise UsageError("--method prototype needs examples in the schema")
        embedder = PairEmbedder.load(encoder or schema.encoder, device=device, batch_size=batch_size)
        examples = schema.examples + (sidecar.examples if sidecar else [])
        mentions = recognizer.example_mentions([e.text for e in examples]) if recognizer else None
        return PrototypeScorer(schema, embedder, examples=examples, mentions=mentions)
    if method in ("qa4re", "cascade"):
        from fsre_cli.llm.client import LLMClient, LLMConfig
        from fsre_cli.scorers.qa4re import QA4REScorer

        client = LLMClient(LLMConfig.from_env(model=llm_model, use_cache=not no_cache))
        qa = QA4REScorer(schema, client, log=log)
        if method == "qa4re":
            return qa
    from fsre_cli.scorers.tkre import TkreScorer
    from fsre_cli.tkre.train import TrainConfig, ensure_model, example_mentions

    if not schema.examples:
        raise UsageError(f"--method {method} needs examples in the schema; use --method qa4re for zero-shot")
    config = TrainConfig(encoder=encoder, precision=precision)
    mentions = example_mentions(schema, sidecar, config, recognizer) if recognizer and model is None else None
    artifact, where = ensure_model(schema, sidecar, config, model_dir=model, device=device, mentions=mentions, log=log)
    if log:
        log.debug(f"model: {where}")
    tkre = TkreScorer(artifact, device=device, batch_size=batch_size)
    if method == "tkre":
        return tkre
    from fsre_cli.scorers.qa4re import CascadeScorer

    cascade = CascadeScorer(tkre, qa, band=cascade_band, route_fraction=cascade_route)
    if log:
        log.info(f"cascade: encoder scores in [{cascade.band[0]:.3f}, {cascade.band[1]:.3f}] go to the LLM "
                 f"({cascade.band_source})")
    return cascade


def _threads() -> None:
    """One intra-op thread per core is fastest for small encoders; FSRE_THREADS overrides."""
    import torch

    threads = int(os.environ.get("FSRE_THREADS", "0") or 0)
    torch.set_num_threads(threads if threads > 0 else max(1, min(4, os.cpu_count() or 1)))


def _register_optional_commands() -> None:
    from fsre_cli.cli.eval import eval_command
    from fsre_cli.cli.llm import llm_app, synth_command

    app.command("eval")(eval_command)
    app.add_typer(llm_app, name="llm", help="Run the embedded local LLM server.")
    app.command("synth")(synth_command)
    try:
        from fsre_cli.cli.bench import bench_app
    except ImportError:
        return
    app.add_typer(bench_app, name="bench", help="Reproducible benchmark runs on FewRel, CrossRE, Re-DocRED.")


_register_optional_commands()


def main() -> None:
    """Entry point: expected errors become one message and an exit code, never a traceback.
    Usage errors, --help and exit codes are handled by typer itself (standalone mode)."""
    log = Log()
    try:
        app()
    except FsreError as exc:
        for line in str(exc).splitlines() or ["error"]:
            log.problem(line) if isinstance(exc, SchemaError) else log.error(line)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        log.error("interrupted")
        sys.exit(130)
    except BrokenPipeError:  # `fsre extract ... | head`
        sys.stdout = open(os.devnull, "w")
        sys.exit(0)
