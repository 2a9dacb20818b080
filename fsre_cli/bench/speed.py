"""Extraction speed, training time and memory.

* **throughput**: documents with given entities go through the real pipeline
  (`EntityRecognizer(entities="given")` -> `extract_triples` -> `TkreScorer`); the input is
  replicated until it holds at least `min_pairs` candidate pairs. In the same run, interleaved
  with it, the encoder's bare forward pass (`artifact.classifier.encoder(input_ids,
  attention_mask)`) runs over exactly the batches `TkreScorer` makes (the pairs of each
  `predict` call, marked, length-sorted, cut into `batch_size` batches; marking excluded).
  Medians of `repeat` runs; ``ratio = pipeline pairs/s ÷ bare pairs/s`` (target ≥ 0.8).
* **training time**: `train_model` with the default configuration on a 17-relation 8-shot
  schema (CrossRE science, K=8, seed 0).
* **peak memory**: `ru_maxrss` of a separate process that only runs
  ``fsre extract FILE --schema S --model DIR --entities given`` on the replicated input.

    from fsre_cli.bench.speed import run_speed
    result = run_speed("schemas/org-people.yaml", "examples/org-people.jsonl", repeat=3)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from fsre_cli.bench.common import Stopwatch, environment, progress_lines
from fsre_cli.console import NULL_LOG, Log
from fsre_cli.documents import Candidate, Document
from fsre_cli.errors import UsageError

# Peak RSS of the extraction process itself. /proc's VmHWM belongs to the process image after
# exec; getrusage's ru_maxrss would also count the parent's RSS at fork time (Linux carries the
# pre-exec high-water mark over), which for a benchmark parent holding a model is most of it.
RSS_SNIPPET = (
    "import atexit, resource, sys\n"
    "def _peak():\n"
    "    try:\n"
    "        for line in open('/proc/self/status'):\n"
    "            if line.startswith('VmHWM:'):\n"
    "                return int(line.split()[1]), 'VmHWM'\n"
    "    except OSError:\n"
    "        pass\n"
    "    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    return (rss // 1024 if sys.platform == 'darwin' else rss), 'ru_maxrss'\n"
    "atexit.register(lambda: sys.stderr.write('FSRE_MAXRSS_KIB %d %s\\n' % _peak()))\n"
    "sys.argv = ['fsre'] + sys.argv[1:]\n"
    "from fsre_cli.cli import main\n"
    "main()\n"
)


class RecordingScorer:
    """Wraps a scorer and keeps the candidate lists of each `predict` call (the scorer's batches)."""

    def __init__(self, scorer) -> None:
        self.scorer = scorer
        self.method = scorer.method
        self.calls: list[list[Candidate]] = []

    def predict(self, candidates):
        self.calls.append(list(candidates))
        return self.scorer.predict(candidates)


def read_input(path: str | Path) -> list[Document]:
    """The documents of a JSONL/text input, exactly as `fsre extract` reads them."""
    from fsre_cli.inputs import InputReport, read_documents

    report = InputReport()
    docs = list(read_documents([str(path)], report))
    if report.skipped:
        raise UsageError(f"{path}: {report.skipped[0][1]}")
    if not docs or any(d.entities is None for d in docs):
        raise UsageError(f"{path}: the speed benchmark needs JSONL documents with `entities`")
    return docs


def replicate(docs: Sequence[Document], copies: int) -> list[Document]:
    """`copies` copies of the documents with distinct ids."""
    return [dataclasses.replace(d, id=f"{d.id}#{i}") for i in range(copies) for d in docs]


def run_pipeline(docs: Sequence[Document], schema, scorer, recognizer) -> tuple[float, Any]:
    """Seconds for the whole pipeline over `docs` (sentences, candidates, scoring, triples)."""
    from fsre_cli.pipeline import ExtractStats, extract_triples

    stats = ExtractStats()
    start = time.perf_counter()
    for _doc, _triples in extract_triples(recognizer.process(iter(docs)), schema, scorer, stats=stats):
        pass
    return time.perf_counter() - start, stats


def bare_batches(scorer, calls: Sequence[Sequence[Candidate]], packing: str | None = None) -> list[dict[str, torch.Tensor]]:
    """The collated batches `TkreScorer.predict` runs for these calls (marking done here, untimed);
    with `packing`, the batches that packing would make for the same candidates."""
    from fsre_cli.tkre.inference import tiles
    from fsre_cli.scorers.tkre import mark_candidates
    from fsre_cli.tkre.model import collate
    from fsre_cli.tkre.packing import tile_rows

    packing = packing or scorer.packing
    pad = scorer.artifact.tokenizer.pad_token_id
    batches = []
    for cands in calls:
        marked = mark_candidates(cands, scorer.artifact.tokenizer, scorer.max_length, packing)
        for idx, width in tiles(marked.lengths, tile_rows(packing, scorer.batch_size)):
            batches.append(collate([marked.sequences[i] for i in idx], pad, width))
    return batches


@torch.inference_mode()
def run_bare(encoder, batches: Sequence[dict[str, torch.Tensor]], device: str, precision: str = "fp32") -> float:
    """Seconds for the bare encoder forward pass over the batches (in the scorer's precision);
    `encoder` is a torch module or the int8 one (`tkre.int8.Int8Encoder`)."""
    from fsre_cli.tkre.encoder import autocast

    if isinstance(encoder, torch.nn.Module):
        encoder.eval()
    start = time.perf_counter()
    for b in batches:
        with autocast(precision, device):
            encoder(input_ids=b["input_ids"].to(device), attention_mask=b["attention_mask"].to(device))
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure_throughput(schema, scorer, docs: Sequence[Document], *, repeat: int, min_pairs: int,
                       device: str, log: Log = NULL_LOG) -> dict[str, Any]:
    """Pipeline vs bare-encoder pairs/s, interleaved, medians of `repeat` runs."""
    from fsre_cli.entities import EntityRecognizer

    recognizer = EntityRecognizer(schema, entities="given")
    probe = RecordingScorer(scorer)
    _, stats = run_pipeline(docs, schema, probe, recognizer)  # also loads the sentence splitter
    if stats.candidates == 0:
        raise UsageError("the input has no candidate pairs for this schema")
    copies = max(1, math.ceil(min_pairs / stats.candidates))
    work = replicate(docs, copies)
    recorder = RecordingScorer(scorer)
    warm_s, stats = run_pipeline(work, schema, recorder, recognizer)  # warm-up, and the scorer's batches
    batches = bare_batches(scorer, recorder.calls)
    encoder = scorer.artifact.classifier.encoder
    precision = getattr(scorer, "precision", "fp32")
    run_bare(encoder, batches[:2], device, precision)
    log.info(f"speed: {len(work)} documents, {stats.sentences} sentences, {stats.candidates} candidate pairs, "
             f"{len(batches)} encoder batches; {repeat} interleaved runs ...")
    pipe_s, bare_s = [], []
    for i in range(repeat):
        p, s = run_pipeline(work, schema, scorer, recognizer)
        b = run_bare(encoder, batches, device, precision)
        pipe_s.append(p)
        bare_s.append(b)
        log.info(f"  run {i + 1}: pipeline {s.candidates / p:.1f} pairs/s, bare encoder {s.candidates / b:.1f} pairs/s")
    p_med, b_med = statistics.median(pipe_s), statistics.median(bare_s)
    pairs = stats.candidates
    return {
        "documents": len(work), "copies": copies, "sentences": stats.sentences, "mentions": stats.mentions,
        "candidate_pairs": pairs, "triples": stats.triples, "batches": len(batches),
        "batch_size": scorer.batch_size, "repeat": repeat, "precision": precision,
        "pipeline_seconds": [round(x, 3) for x in pipe_s], "bare_seconds": [round(x, 3) for x in bare_s],
        "pipeline_pairs_per_second": round(pairs / p_med, 1),
        "pipeline_sentences_per_second": round(stats.sentences / p_med, 1),
        "bare_encoder_pairs_per_second": round(pairs / b_med, 1),
        "ratio": round(b_med / p_med, 3),
        "target_ratio": 0.8,
    }


def measure_rss(schema_path: Path, docs: Sequence[Document], model_dir: Path, *, batch_size: int,
                log: Log = NULL_LOG) -> dict[str, Any]:
    """Peak RSS of a process that runs only `fsre extract` with the given model and entities."""
    with tempfile.TemporaryDirectory(prefix="fsre-bench-") as tmp:
        inp = Path(tmp) / "input.jsonl"
        with inp.open("w", encoding="utf-8") as fh:
            for d in docs:
                ents = [{"start": e.start, "end": e.end, "type": e.type} for e in d.entities or []]
                fh.write(json.dumps({"id": d.id, "text": d.text, "entities": ents}) + "\n")
        cmd = [sys.executable, "-c", RSS_SNIPPET, "extract", str(inp), "--schema", str(schema_path),
               "--model", str(model_dir), "--method", "tkre", "--entities", "given", "--device", "cpu",
               "--batch-size", str(batch_size), "-q"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        seconds = time.perf_counter() - start
    kib, source = None, None
    for line in proc.stderr.splitlines():
        if line.startswith("FSRE_MAXRSS_KIB "):
            kib, source = int(line.split()[1]), line.split()[2]
    if proc.returncode != 0 or kib is None:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        log.warn(f"peak-memory run failed (exit {proc.returncode}): {tail}")
        return {"error": f"exit {proc.returncode}: {tail}"}
    return {"peak_rss_mib": round(kib / 1024, 1), "measured_by": source, "documents": len(docs), "process_seconds": round(seconds, 2),
            "command": "fsre extract INPUT --schema SCHEMA --model DIR --method tkre --entities given"}


def measure_train_time(*, data: str | Path | None, encoder: str | None, device: str, quick: bool, seed: int = 0,
                       precision: str = "auto", packing: str | None = None, log: Log = NULL_LOG) -> dict[str, Any]:
    """Training time for CrossRE science, K=8 (17 relations) with the default configuration."""
    from fsre_cli.bench.common import data_file
    from fsre_cli.bench.fewrel import train_config
    from fsre_cli.bench.datasets import CROSSRE_DESCRIPTIONS, CROSSRE_TEMPLATES, kshot_schema, load_crossre
    from fsre_cli.tkre.train import train_model

    path = data_file(data, "crossre", "science-train.json")
    schema = kshot_schema(load_crossre(path), 8, seed, CROSSRE_DESCRIPTIONS, templates=CROSSRE_TEMPLATES,
                          name="crossre-science-8shot")
    config = train_config(encoder, seed, quick, precision=precision,
                          **({"packing": packing} if packing else {})).for_device(device)
    log.info(f"speed: training on {schema.name} ({len(schema.relations)} relations, {len(schema.examples)} "
             f"examples, {config.precision}, packing {config.packing}){' [quick]' if quick else ''} ...")
    result = train_model(schema, None, config, device=device, on_progress=progress_lines(log))
    return {"schema": schema.name, "relations": len(schema.relations), "examples": len(schema.examples),
            "precision": config.precision, "packing": config.packing, "seconds": round(result.seconds, 1),
            "config": config.to_dict(), "threads": torch.get_num_threads(),
            "train_instances": result.artifact.meta["train"]["instances"],
            "heldout_f1": result.artifact.meta["heldout"]["f1"]}


REPO_ROOT = Path(__file__).resolve().parents[2]


def repo_path(path: str | Path) -> Path:
    """`path` as given when it exists, else relative to the repository (the defaults work from anywhere)."""
    path = Path(path)
    if path.exists() or path.is_absolute() or not (REPO_ROOT / path).exists():
        return path
    return REPO_ROOT / path


def _throughput_and_memory(schema_path: Path, schema, sidecar, docs, *, model, encoder, seed: int, quick: bool,
                           precision: str, device: str, batch_size: int, repeat: int, min_pairs: int, rss: bool,
                           sw: Stopwatch, log: Log) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The schema's model (given, cached or trained), its throughput, and peak extraction memory."""
    from fsre_cli.bench.fewrel import train_config
    from fsre_cli.scorers import build
    from fsre_cli.tkre.artifact import save_artifact
    from fsre_cli.tkre.store import ensure_model

    memory = None
    with tempfile.TemporaryDirectory(prefix="fsre-bench-model-") as tmp:
        with sw("model"):
            config = train_config(encoder, seed, quick, use_synthetic=True, precision=precision)
            artifact, where = ensure_model(schema, sidecar, config, model_dir=str(model) if model else None,
                                           device=device, log=log)
        model_dir = Path(where)
        if not (model_dir / "fsre.json").exists():
            model_dir = save_artifact(artifact, Path(tmp) / "model")
        scorer = build(schema, sidecar, method="tkre", artifact=artifact, device=device, batch_size=batch_size)
        with sw("throughput"):
            measured = measure_throughput(schema, scorer, docs, repeat=repeat, min_pairs=min_pairs, device=device,
                                          log=log)
        if rss:
            with sw("memory"):
                memory = measure_rss(schema_path, replicate(docs, measured["copies"]), model_dir,
                                     batch_size=batch_size, log=log)
    return measured, memory


def run_speed(
    schema_path: str | Path = "schemas/org-people.yaml",
    input_path: str | Path = "examples/org-people.jsonl",
    *,
    seed: int = 0,
    repeat: int = 5,
    min_pairs: int = 3000,
    model: str | Path | None = None,
    encoder: str | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    quick: bool = False,
    train_time: bool = True,
    rss: bool = True,
    data: str | Path | None = None,
    precisions: Sequence[str] = ("auto",),
    packings: Sequence[str | None] = (None,),
    throughput: bool = True,
    log: Log = NULL_LOG,
) -> dict[str, Any]:
    """Throughput (pipeline vs bare encoder), training time and peak extraction memory, as a dict.
    The model for throughput trains in the first of `precisions`; training is timed in each
    (precision, packing). `throughput=False` times training only."""
    from fsre_cli.schema import load_schema
    from fsre_cli.sidecar import read_sidecar

    if repeat < 1:
        raise UsageError("--repeat must be at least 1")
    started, sw = time.perf_counter(), Stopwatch()
    schema_path, input_path = repo_path(schema_path), repo_path(input_path)
    schema = load_schema(schema_path)
    sidecar = read_sidecar(schema.sidecar_path, schema) if schema.sidecar_path else None
    docs = read_input(input_path)
    measured, memory = None, None
    if throughput:
        measured, memory = _throughput_and_memory(schema_path, schema, sidecar, docs, model=model, encoder=encoder,
                                                  seed=seed, quick=quick, precision=precisions[0], device=device,
                                                  batch_size=batch_size, repeat=repeat, min_pairs=min_pairs, rss=rss,
                                                  sw=sw, log=log)
    training = []
    if train_time:
        with sw("train"):
            training = [measure_train_time(data=data, encoder=encoder, device=device, quick=quick, seed=seed,
                                           precision=precision, packing=packing, log=log)
                        for precision in precisions for packing in packings]
    return {
        "benchmark": "speed",
        "schema": str(schema_path),
        "seed": seed,
        "input": str(input_path),
        "model": str(model) if model else "trained/cached for the schema",
        "throughput": measured,
        "memory": memory,
        "training": training,
        "timing": {**sw.rounded(), "total": round(time.perf_counter() - started, 2)},
        "environment": environment(device),
    }
