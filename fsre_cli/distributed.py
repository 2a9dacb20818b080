"""`fsre extract --engine ray`: the same extraction on Ray Data, across the cores of one machine
or the machines of a cluster.

The driver does everything that must happen once: it reads the schema, resolves the model
(training it if needed, before any worker starts), and cuts the inputs into tasks: a text file
is one task, a JSONL file one task per `lines_per_task` lines (byte ranges, found in one pass).
The model folder travels to the workers through Ray's object store, so they need no shared
disk for it; the inputs are read by the workers from their paths (one machine, or a shared
file system on a cluster). `ray.data` runs the tasks through a pool of actors
(`map_batches` with a class: each actor builds recognizer and scorer once), one CPU each.

Every task's triples come back to the driver, which writes them to `OUTPUT/shards/` (one JSONL
file per task, written atomically) and adds a line to `OUTPUT/manifest.jsonl` for each finished
task, so `--resume` skips exactly the tasks whose shard is complete. A pair's score never
depends on the batch it was scored in (fixed-shape tiles), so the records are those of the
local engine; only a document id repeated across tasks numbers its sentences per task.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from fsre_cli.console import NULL_LOG, Log
from fsre_cli.errors import FsreError, UsageError

LINES_PER_TASK = 500
MANIFEST = "manifest.jsonl"
SHARDS = "shards"
# what a worker needs from the driver's environment (LLM endpoint, threads, cache, Stanza models)
WORKER_ENV = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "FSRE_LLM_MODEL", "FSRE_CACHE_DIR", "FSRE_STANZA_DIR",
              "FSRE_LLM_TIMEOUT", "FSRE_LLM_CONNECT_TIMEOUT", "FSRE_LLM_DEADLINE", "HF_HUB_OFFLINE")


def quiet_ray() -> None:
    """Ray's and Ray Data's progress and INFO lines off stderr (fsre reports progress itself)."""
    import logging

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    for name in ("ray", "ray.data", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.WARNING)


def require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'fsre[ray]'") from None
    return ray


@dataclass
class Task:
    id: int
    path: str
    kind: str  # jsonl | text
    start: int = 0  # byte range of a JSONL slice
    end: int = 0
    first_line: int = 1

    @property
    def key(self) -> str:
        return f"{self.path}\u0000{self.start}\u0000{self.end}"

    @property
    def shard(self) -> str:
        return f"task-{self.id:06d}.jsonl"


@dataclass
class RayResult:
    tasks: int = 0
    done_before: int = 0
    documents: int = 0
    triples: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    startup_seconds: float | None = None  # None: nothing was left to do, Ray was not started

    def summary(self) -> str:
        before = f" ({self.done_before} finished by an earlier run, skipped)" if self.done_before else ""
        start = f" (ray start {self.startup_seconds:.1f}s)" if self.startup_seconds is not None else ""
        return (f"{self.tasks} tasks{before}, {self.documents} documents, {self.triples} triples "
                f"in {self.seconds:.1f}s{start}")


def plan_tasks(sources: Sequence[str], input_format: str = "auto", lines_per_task: int = LINES_PER_TASK,
               skip=None) -> list[Task]:
    """The tasks for these input files, in input order; files that cannot be read are handed to
    `skip(name, reason)` (as the local engine skips them)."""
    from fsre_cli.inputs import file_problem, jsonl_slices, source_format

    tasks: list[Task] = []
    for source in sources:
        problem = file_problem(source)
        if problem:
            if skip:
                skip(source, problem)
            continue
        if source_format(source, input_format) == "jsonl":
            for start, end, first in jsonl_slices(source, lines_per_task):
                tasks.append(Task(len(tasks), source, "jsonl", start, end, first))
        else:
            tasks.append(Task(len(tasks), source, "text"))
    return tasks


def model_files(directory: Path) -> dict[str, bytes]:
    """Every file of a model folder by relative path: what the workers rebuild it from."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


class ExtractActor:
    """One worker: builds the recognizer and scorer once, then extracts task after task."""

    def __init__(self, schema, sidecar, method: str, options: dict[str, Any], files: dict[str, bytes] | None,
                 recognizer: dict[str, Any], input_format: str, min_score: float | None, threads: int) -> None:
        from fsre_cli.entities import EntityRecognizer
        from fsre_cli.scorers import ScorerOptions, build
        from fsre_cli.tkre.encoder import set_threads

        set_threads(threads)
        self.schema, self.input_format, self.min_score = schema, input_format, min_score
        self.recognizer = EntityRecognizer(schema, **recognizer)
        if files is not None:  # the driver's model folder, rebuilt here
            self._model_dir = tempfile.TemporaryDirectory(prefix="fsre-ray-model-")
            for name, data in files.items():
                target = Path(self._model_dir.name) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            options = {**options, "model": self._model_dir.name}
        self.scorer = build(schema, sidecar, method=method,
                            options=ScorerOptions(recognizer=self.recognizer, **options).validate())

    def documents(self, task: dict, report):
        from fsre_cli.inputs import read_documents, read_slice

        if task["kind"] == "jsonl":
            return read_slice(task["path"], task["start"], task["end"], task["first_line"], report)
        return read_documents([task["path"]], report, input_format=self.input_format)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        from fsre_cli.inputs import InputReport
        from fsre_cli.pipeline import ExtractStats, extract_triples, usable

        out: dict[str, list] = {"id": [], "lines": [], "documents": [], "triples": [], "skipped": []}
        for i in range(len(batch["id"])):
            task = {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in batch.items()}
            report, stats = InputReport(), ExtractStats()
            docs = (d for d in self.documents(task, report) if usable(d, self.recognizer, report))
            lines: list[str] = []
            for _doc, triples in extract_triples(self.recognizer.process(docs), self.schema, self.scorer,
                                                 min_score=self.min_score, stats=stats):
                lines += [json.dumps(t.to_record(), ensure_ascii=False) for t in triples]
            out["id"].append(task["id"])
            out["lines"].append("\n".join(lines))
            out["documents"].append(stats.documents)
            out["triples"].append(len(lines))
            out["skipped"].append(json.dumps(report.skipped))
        return out


def read_manifest(output: Path) -> dict[str, dict]:
    """Finished tasks by key, from the manifest; a line cut by a crash ends it."""
    done: dict[str, dict] = {}
    path = output / MANIFEST
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            break
        if (output / SHARDS / entry["shard"]).is_file():
            done[entry["key"]] = entry
    return done


def check_output_dir(output: Path | None, resume: bool) -> None:
    if output is None:
        raise UsageError("--engine ray writes shards: give --output DIR (a new or empty folder, or one to --resume)")
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output}: exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not resume:
        if (output / MANIFEST).exists():
            raise UsageError(f"--output {output} holds an earlier run: add --resume to continue it, or give a new folder")
        raise UsageError(f"--output {output}: not empty and not an fsre run; give a new or empty folder")


def write_shard(output: Path, task: Task, text: str) -> None:
    from fsre_cli.sidecar import write_text_atomic

    (output / SHARDS).mkdir(parents=True, exist_ok=True)
    write_text_atomic(output / SHARDS / task.shard, text + ("\n" if text else ""))


def run_ray(sources: Sequence[str], schema, sidecar, *, method: str, options: dict[str, Any],
            recognizer: dict[str, Any], output: Path, resume: bool = False, workers: int | None = None,
            address: str | None = None, input_format: str = "auto", min_score: float | None = None,
            lines_per_task: int = LINES_PER_TASK, log: Log = NULL_LOG) -> RayResult:
    """Extract on Ray (see the module docstring). `options`: `ScorerOptions` fields (without the
    recognizer); `recognizer`: `EntityRecognizer` keyword arguments."""
    ray = require_ray()
    from fsre_cli.scorers import ScorerOptions, build

    started = time.perf_counter()
    result = RayResult()
    check_output_dir(output, resume)
    output.mkdir(parents=True, exist_ok=True)
    tasks = plan_tasks(sources, input_format, lines_per_task,
                       skip=lambda s, r: (result.skipped.append((s, r)), log.warn(f"skipping {s}: {r}")))
    done = read_manifest(output) if resume else {}
    todo = [t for t in tasks if t.key not in done]
    result.tasks, result.done_before = len(tasks), len(tasks) - len(todo)
    # the model once, here: trained now if the cache has none, then shipped to every worker
    from fsre_cli.entities import EntityRecognizer

    local = ScorerOptions(recognizer=EntityRecognizer(schema, **recognizer), log=log, **options).validate()
    scorer = build(schema, sidecar, method=method, options=local)
    inner = getattr(scorer, "encoder_scorer", scorer)  # the cascade's encoder
    artifact = getattr(inner, "artifact", None)
    folder = getattr(artifact, "directory", None)
    if artifact is not None and folder is None:
        raise FsreError("the model has no folder to ship to the workers; train it with `fsre train -o DIR` and "
                        "pass --model DIR")
    files = model_files(Path(folder)) if folder is not None else None
    if not todo:
        result.seconds = time.perf_counter() - started
        return result
    env = {k: os.environ[k] for k in WORKER_ENV if k in os.environ}
    quiet_ray()
    t0 = time.perf_counter()
    try:
        if address:
            ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False,
                     logging_level="ERROR")
        else:
            # one CPU more than the actors take: Ray Data's own small read tasks need one too,
            # and on a machine with as many CPUs as actors they would otherwise wait for them
            ray.init(num_cpus=(workers or os.cpu_count() or 1) + 1, include_dashboard=False, log_to_driver=False,
                     logging_level="ERROR", runtime_env={"env_vars": env},
                     _system_config={"enable_metrics_collection": False})
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise FsreError(f"cannot reach the Ray cluster at {address or 'a local Ray'}: {str(exc).splitlines()[0]}") \
            from None
    try:
        result.startup_seconds = time.perf_counter() - t0
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        n_workers = workers or max(1, int(ray.cluster_resources().get("CPU", 2)) - (0 if address else 1))
        rows = [{"id": t.id, "path": t.path, "kind": t.kind, "start": t.start, "end": t.end,
                 "first_line": t.first_line} for t in todo]
        options = {k: v for k, v in options.items() if k != "log"}
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            ExtractActor, batch_size=1, num_cpus=1, concurrency=n_workers,
            fn_constructor_kwargs={"schema": schema, "sidecar": sidecar, "method": method, "options": options,
                                   "files": files, "recognizer": recognizer, "input_format": input_format,
                                   "min_score": min_score, "threads": 1})
        by_id = {t.id: t for t in todo}
        manifest = (output / MANIFEST).open("a", encoding="utf-8")
        try:
            with log.progress("extracting (ray)", total=len(todo)) as bar:
                for row in dataset.iter_rows():
                    task = by_id[int(row["id"])]
                    write_shard(output, task, row["lines"])
                    for source, reason in json.loads(row["skipped"]):
                        result.skipped.append((source, reason))
                        log.warn(f"skipping {source}: {reason}")
                    entry = {"key": task.key, "shard": task.shard, "path": task.path, "start": task.start,
                             "end": task.end, "documents": int(row["documents"]), "triples": int(row["triples"])}
                    manifest.write(json.dumps(entry, ensure_ascii=False) + "\n")
                    manifest.flush()
                    result.documents += entry["documents"]
                    result.triples += entry["triples"]
                    bar.advance()
        finally:
            manifest.close()
    finally:
        if not address:
            ray.shutdown()
    result.seconds = time.perf_counter() - started
    return result
