"""The local engine against `--engine ray` with 1 and 2 workers, on the same generated documents.

    python benchmarks/ray_bench.py --docs 300,1500 --repeat 1

Each run is a fresh `fsre extract` process over generated JSONL documents with given entities
(6 candidate pairs each), all scoring with one quick model trained first (`fsre train -o`, not
timed). Engines are interleaved at each size; medians over `--repeat`. Per engine: the wall time of
the whole command (start-up included), documents/s and pairs/s over it, a line fitted through the
sizes (fixed seconds + documents/s after start-up), Ray's own start-up (`ray start` in the run's
summary), and the crossover: the number of documents from which Ray finishes first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_docs(path: Path, n: int) -> None:
    with path.open("w") as fh:
        for i in range(n):
            text = f"Person{i} Smith works for Company{i}, which was founded in City{i} by Person{i} Jones."
            spans = [(f"Person{i} Smith", "PERSON"), (f"Company{i}", "ORG"), (f"City{i}", "PLACE")]
            ents = [{"start": text.index(w), "end": text.index(w) + len(w), "type": t} for w, t in spans]
            fh.write(json.dumps({"id": f"d{i}", "text": text, "entities": ents}) + "\n")


def fsre(*args: str, env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "fsre_cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env})
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    return seconds, proc.stderr


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares wall = fixed + n x per_doc over (n, wall) points."""
    n_mean = statistics.mean(n for n, _ in points)
    w_mean = statistics.mean(w for _, w in points)
    per_doc = (sum((n - n_mean) * (w - w_mean) for n, w in points)
               / max(1e-9, sum((n - n_mean) ** 2 for n, _ in points)))
    return w_mean - per_doc * n_mean, per_doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", default="300,1500", help="document counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--task-lines", type=int, default=250)
    args = parser.parse_args()
    sizes = [int(x) for x in args.docs.split(",")]
    engines = {"local": [], "ray-1": ["--engine", "ray", "--workers", "1"], "ray-2": ["--engine", "ray", "--workers", "2"]}
    with tempfile.TemporaryDirectory(prefix="fsre-ray-bench-") as tmp:
        tmp_path = Path(tmp)
        env = {"FSRE_CACHE_DIR": str(tmp_path / "cache"), "FSRE_THREADS": "1", "NO_COLOR": "1"}
        schema = "schemas/org-people.yaml"
        model = tmp_path / "model"
        fsre("train", schema, "--entities", "given", "--no-pretrain", "--epochs", "1", "-o", str(model), env=env)
        walls: dict[tuple[str, int], list[float]] = {}
        starts: dict[tuple[str, int], list[float]] = {}
        for size in sizes:
            docs = tmp_path / f"docs-{size}.jsonl"
            write_docs(docs, size)
            for round_ in range(args.repeat):
                for name, flags in engines.items():  # interleaved
                    out = tmp_path / f"{name}-{size}-{round_}"
                    extra = ["--task-lines", str(args.task_lines)] if flags else []
                    seconds, err = fsre("extract", str(docs), "--schema", schema, "--model", str(model), "--entities",
                                        "given", *flags, *extra, "-o", str(out if flags else out.with_suffix(".jsonl")),
                                        env=env)
                    walls.setdefault((name, size), []).append(seconds)
                    found = re.search(r"ray start ([\d.]+)s", err)
                    if found:
                        starts.setdefault((name, size), []).append(float(found.group(1)))
        result: dict = {"sizes": sizes, "pairs_per_document": 6, "repeat": args.repeat, "task_lines": args.task_lines,
                        "threads_per_worker": 1, "engines": {}}
        lines = {}
        for name in engines:
            points = [(size, statistics.median(walls[(name, size)])) for size in sizes]
            fixed, per_doc = fit(points)
            lines[name] = (fixed, per_doc)
            result["engines"][name] = {
                "wall_seconds": {str(n): round(w, 2) for n, w in points},
                "documents_per_second": {str(n): round(n / w, 1) for n, w in points},
                "pairs_per_second": {str(n): round(6 * n / w, 1) for n, w in points},
                "fixed_seconds": round(fixed, 2), "documents_per_second_after_start": round(1 / per_doc, 1),
                **({"ray_start_seconds": round(statistics.median(sum((starts.get((name, n), []) for n in sizes), [])), 2)}
                   if name != "local" else {})}
        for name in ("ray-1", "ray-2"):
            (f_l, p_l), (f_r, p_r) = lines["local"], lines[name]
            result["engines"][name]["crossover_documents"] = (round((f_r - f_l) / (p_l - p_r)) if p_l > p_r else None)
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
