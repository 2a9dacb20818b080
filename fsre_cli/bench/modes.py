"""Scoring modes compared on held-out data: per-pair or packed passes, torch or int8 encoder.

For each dataset (a CrossRE domain's dev set or the Re-DocRED test half, gold entities given)
the K-shot schema of the quality benchmark is built (same seed, same protocol), and its `tkre`
model is trained (or found in the model cache) once per packing. Then, interleaved in one run,
each mode goes through the real pipeline (`EntityRecognizer(entities="given")` ->
`extract_triples` -> `TkreScorer`), and the bare encoder runs over the very batches that mode
makes; the bare encoder over the per-pair batches (today's reference) runs in every round too.
Medians of `repeat` rounds. Each int8 mode also reports how far its scores and decisions are
from the same model in torch. Peak memory is that of a separate `fsre extract` process.

    from fsre_cli.bench.modes import run_modes
    result = run_modes(["crossre-ai", "redocred"], repeat=3)
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Sequence

from fsre_cli.bench.common import Stopwatch, environment
from fsre_cli.console import NULL_LOG, Log
from fsre_cli.errors import UsageError

MODES = ("pair", "head", "sentence", "pair+int8", "head+int8", "sentence+int8")


def parse_mode(mode: str) -> tuple[str, str]:
    """`sentence+int8` -> (packing, quantize)."""
    packing, _, quantize = mode.partition("+")
    if mode not in MODES:
        raise UsageError(f"--modes: {mode!r} is not one of {', '.join(MODES)}")
    return packing, quantize or "none"


def load_case(dataset: str, *, data: str | Path | None, seed: int, k: int, max_sentences: int | None):
    """(schema, test sentences) of `crossre-DOMAIN` or `redocred`, as the quality benchmark builds them."""
    from fsre_cli.bench.common import data_file, subsample
    from fsre_cli.bench.datasets import (CROSSRE_DESCRIPTIONS, CROSSRE_TEMPLATES, REDOCRED_TEMPLATES, REDOCRED_TOP20,
                                         kshot_schema, load_crossre, load_redocred_sentences, redocred_descriptions)
    from fsre_cli.bench.labeled import CROSSRE_DOMAINS, RunSettings, split_documents

    protocol = RunSettings().protocol()  # the quality benchmarks' default: types from the K examples, entities listed

    if dataset.startswith("crossre-") and dataset[len("crossre-"):] in CROSSRE_DOMAINS:
        domain = dataset[len("crossre-"):]
        folder = data_file(data, "crossre")
        train = load_crossre(folder / f"{domain}-train.json")
        test = subsample(load_crossre(folder / f"{domain}-dev.json"), max_sentences, 0)
        schema = kshot_schema(train, k, seed, CROSSRE_DESCRIPTIONS, templates=CROSSRE_TEMPLATES,
                              name=f"{dataset}-{k}shot-s{seed}", **protocol)
        return schema, test
    if dataset == "redocred":
        path = data_file(data, "redocred", "dev_revised.json")
        pid_path = path.parent.parent / "fewrel" / "pid2name.json"
        sentences = load_redocred_sentences(path, top_relations=20)
        descriptions = (redocred_descriptions(pid_path, REDOCRED_TOP20) if pid_path.exists()
                        else {p: p for p in REDOCRED_TOP20})
        train, test = split_documents(sentences, 0)
        schema = kshot_schema(train, k, seed, descriptions, templates=REDOCRED_TEMPLATES,
                              name=f"redocred-{k}shot-s{seed}", **protocol)
        return schema, subsample(test, max_sentences, 0)
    domains = ", ".join(f"crossre-{d}" for d in CROSSRE_DOMAINS)
    raise UsageError(f"--datasets: {dataset!r} is not redocred or one of {domains}")


def _scores(scorer, candidates) -> list[tuple[str | None, float]]:
    return [(p.relation, p.best_score) for p in scorer.predict(candidates)]


def agreement(reference: Sequence[tuple[str | None, float]], other: Sequence[tuple[str | None, float]]) -> dict[str, Any]:
    """How far `other`'s decisions and best scores are from `reference`'s, pair by pair."""
    diffs = sorted(abs(a[1] - b[1]) for a, b in zip(reference, other))
    same = sum(1 for a, b in zip(reference, other) if a[0] == b[0])
    kept_ref = sum(1 for a in reference if a[0] is not None)
    kept = sum(1 for b in other if b[0] is not None)
    return {"pairs": len(diffs), "same_decision": round(same / max(1, len(diffs)), 4),
            "triples_reference": kept_ref, "triples": kept,
            "score_diff_median": round(statistics.median(diffs), 5) if diffs else None,
            "score_diff_max": round(diffs[-1], 5) if diffs else None}


def measure_case(dataset: str, modes: Sequence[str], *, data, seed: int, k: int, max_sentences: int | None,
                 repeat: int, device: str, batch_size: int, precision: str, rss: bool, log: Log,
                 quick: bool = False) -> dict[str, Any]:
    from fsre_cli.bench.datasets import to_documents
    from fsre_cli.bench.fewrel import train_config
    from fsre_cli.bench.labeled import LLMAccess, RunContext, build_test_set, train_or_load
    from fsre_cli.bench.speed import RecordingScorer, bare_batches, run_bare, run_pipeline
    from fsre_cli.entities import EntityRecognizer
    from fsre_cli.scorers.tkre import TkreScorer

    schema, test_sentences = load_case(dataset, data=data, seed=seed, k=k, max_sentences=max_sentences)
    docs = to_documents(test_sentences)
    candidates = build_test_set(test_sentences, schema).candidates
    ctx = RunContext(None, device, batch_size, quick, 0, log, LLMAccess(log, False), cache_models=True,
                     precision=precision)
    artifacts, scorers = {}, {}
    for mode in modes:
        packing, quantize = parse_mode(mode)
        if packing not in artifacts:
            config = train_config(None, seed, quick, precision=precision, packing=packing)
            artifacts[packing] = train_or_load(schema, None, config, ctx, f"tkre[packing={packing}]")[0]
        scorers[mode] = TkreScorer(artifacts[packing], device=device, batch_size=batch_size, quantize=quantize,
                                   log=log)
    recognizer = EntityRecognizer(schema, entities="given")
    batches, reference_batches = {}, None
    for mode, scorer in scorers.items():  # warm-up, and the batches each mode runs
        recorder = RecordingScorer(scorer)
        _, stats = run_pipeline(docs, schema, recorder, recognizer)
        batches[mode] = bare_batches(scorer, recorder.calls)
        if reference_batches is None:  # the same candidates, one pass per pair (the per-pair encoder work)
            reference_batches = bare_batches(scorer, recorder.calls, packing="pair")
            reference_precision = TkreScorer(scorer.artifact, device=device).precision  # torch's, not int8's
            reference_encoder = scorer.artifact.classifier.encoder
    log.info(f"modes: {dataset}: {len(docs)} sentences, {stats.candidates} candidate pairs; "
             f"{repeat} interleaved rounds of {', '.join(modes)} ...")
    pipe: dict[str, list[float]] = {m: [] for m in modes}
    bare: dict[str, list[float]] = {m: [] for m in modes}
    reference: list[float] = []
    triples: dict[str, int] = {}
    for round_ in range(repeat):
        reference.append(run_bare(reference_encoder, reference_batches, device, reference_precision))
        for mode, scorer in scorers.items():
            seconds, stats = run_pipeline(docs, schema, scorer, recognizer)
            pipe[mode].append(seconds)
            triples[mode] = stats.triples
            bare[mode].append(run_bare(scorer.encode or scorer.artifact.classifier.encoder, batches[mode], device,
                                       scorer.precision))
        log.info(f"  round {round_ + 1}: " + ", ".join(f"{m} {stats.candidates / pipe[m][-1]:.0f} pairs/s"
                                                       for m in modes))
    pairs, sentences = stats.candidates, stats.sentences
    ref_pps = pairs / statistics.median(reference)
    rows = {}
    for mode in modes:
        p_med, b_med = statistics.median(pipe[mode]), statistics.median(bare[mode])
        rows[mode] = {
            "pairs_per_second": round(pairs / p_med, 1), "sentences_per_second": round(sentences / p_med, 1),
            "bare_encoder_pairs_per_second": round(pairs / b_med, 1), "encoder_batches": len(batches[mode]),
            "speedup_vs_pair_pipeline": None, "pipeline_seconds": [round(x, 3) for x in pipe[mode]],
            "triples": triples[mode], "precision": scorers[mode].precision,
        }
    if "pair" in rows:
        for mode in modes:
            rows[mode]["speedup_vs_pair_pipeline"] = round(rows[mode]["pairs_per_second"]
                                                           / rows["pair"]["pairs_per_second"], 2)
    for mode in modes:  # int8 against the same model in torch, pair by pair
        packing, quantize = parse_mode(mode)
        if quantize != "none" and packing in scorers:
            rows[mode]["agreement_with_" + packing] = agreement(_scores(scorers[packing], candidates),
                                                               _scores(scorers[mode], candidates))
    if rss:
        for mode in modes:  # the model folder the cache holds (train_or_load saved or loaded it)
            directory = artifacts[parse_mode(mode)[0]].directory
            rows[mode]["memory"] = measure_memory({"dataset": dataset, "mode": mode, "data": str(data) if data else None,
                                                   "seed": seed, "k": k, "max_sentences": max_sentences,
                                                   "model": str(directory), "batch_size": batch_size}, log)
    return {"dataset": dataset, "schema": schema.name, "relations": len(schema.relations),
            "sentences": sentences, "candidate_pairs": pairs, "pairs_per_sentence": round(pairs / max(1, sentences), 1),
            "reference_bare_encoder_pairs_per_second": round(ref_pps, 1), "modes": rows}


MEMORY_SNIPPET = (
    "import json, sys\n"
    "from fsre_cli.bench.modes import memory_child\n"
    "memory_child(json.loads(sys.argv[1]))\n"
)


def measure_memory(job: dict[str, Any], log: Log) -> dict[str, Any]:
    """Peak RSS (VmHWM) of a fresh process that loads the mode's model and extracts from the
    case's documents, and nothing else of this run."""
    import json
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", MEMORY_SNIPPET, json.dumps(job)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    for line in proc.stdout.splitlines():
        if line.startswith("FSRE_PEAK_KIB "):
            return {"peak_rss_mib": round(int(line.split()[1]) / 1024, 1), "measured_by": "VmHWM"}
    tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
    log.warn(f"peak-memory run for {job['mode']} failed (exit {proc.returncode}): {tail}")
    return {"error": f"exit {proc.returncode}: {tail}"}


def memory_child(job: dict[str, Any]) -> None:
    """The child of `measure_memory`: extract once, print the peak resident set."""
    from fsre_cli.bench.datasets import to_documents
    from fsre_cli.bench.speed import run_pipeline
    from fsre_cli.entities import EntityRecognizer
    from fsre_cli.scorers.tkre import TkreScorer
    from fsre_cli.tkre.artifact import load_artifact
    from fsre_cli.tkre.encoder import set_threads

    set_threads()
    schema, sentences = load_case(job["dataset"], data=job["data"], seed=job["seed"], k=job["k"],
                                  max_sentences=job["max_sentences"])
    _, quantize = parse_mode(job["mode"])
    scorer = TkreScorer(load_artifact(Path(job["model"])), batch_size=job["batch_size"], quantize=quantize)
    run_pipeline(to_documents(sentences), schema, scorer, EntityRecognizer(schema, entities="given"))
    with open("/proc/self/status") as fh:
        peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    print(f"FSRE_PEAK_KIB {peak}")


def run_modes(datasets: Sequence[str] = ("crossre-ai", "redocred"), modes: Sequence[str] = MODES, *,
              data: str | Path | None = None, seed: int = 0, k: int = 8, max_sentences: int | None = None,
              repeat: int = 3, device: str = "cpu", batch_size: int = 64, precision: str = "auto",
              rss: bool = True, quick: bool = False, log: Log = NULL_LOG) -> dict[str, Any]:
    """Every mode on every dataset, as a dict (see the module docstring)."""
    if repeat < 1:
        raise UsageError("--repeat must be at least 1")
    if any(parse_mode(mode)[1] == "int8" for mode in modes):
        from fsre_cli.tkre.int8 import require_onnxruntime

        require_onnxruntime()  # before any model is trained
    started, sw = time.perf_counter(), Stopwatch()
    cases = []
    for dataset in datasets:
        with sw(dataset):
            cases.append(measure_case(dataset, modes, data=data, seed=seed, k=k, max_sentences=max_sentences,
                                      repeat=repeat, device=device, batch_size=batch_size, precision=precision,
                                      rss=rss, log=log, quick=quick))
    return {"benchmark": "modes", "modes": list(modes), "seed": seed, "k": k, "repeat": repeat, "quick": quick,
            "max_sentences": max_sentences, "cases": cases,
            "timing": {**sw.rounded(), "total": round(time.perf_counter() - started, 2)},
            "environment": environment(device)}
