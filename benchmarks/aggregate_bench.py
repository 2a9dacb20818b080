"""Throughput and peak memory of `fsre aggregate` on generated triples.

    python benchmarks/aggregate_bench.py --triples 1000000 --facts 50000 --repeat 3

Writes `--triples` output records (seeded; `--facts` distinct facts, documents of 20 triples
each, spellings varied by case and possessives so normalisation has work to do) to a temporary
file, then runs `fsre aggregate FILE -o OUT` in a fresh process `--repeat` times. Reports the
median wall time, triples per second, and the process's peak RSS (VmHWM), alongside the peak
of `python -c "import fsre_cli.cli"` (the interpreter and imports alone).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEAK = ("import atexit, sys\n"
        "def _peak():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            return int(line.split()[1])\n"
        "atexit.register(lambda: sys.stderr.write('PEAK_KIB %d\\n' % _peak()))\n")


def write_triples(path: Path, n: int, facts: int, seed: int) -> None:
    rng = random.Random(seed)
    spellings = ("{}", "{}'s", "{}".upper(), " {} ")
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            f = rng.randrange(facts)
            head = rng.choice(spellings).format(f"Company {f}")
            tail = f"Person {f % 997}"
            record = {"doc": f"doc{i // 20}", "sentence": (i % 20) // 2, "relation": f"rel{f % 17}",
                      "head": {"text": head, "type": "ORG", "start": 0, "end": len(head)},
                      "tail": {"text": tail, "type": "PERSON", "start": 40, "end": 40 + len(tail)},
                      "score": round(rng.random(), 4), "method": "tkre", "evidence": "A sentence of the corpus."}
            fh.write(json.dumps(record) + "\n")


def run(code: str, args: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "NO_COLOR": "1"})
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    peak = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_KIB"))
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triples", type=int, default=1_000_000)
    parser.add_argument("--facts", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fsre-aggregate-") as tmp:
        triples = Path(tmp) / "triples.jsonl"
        write_triples(triples, args.triples, args.facts, args.seed)
        cli = PEAK + "sys.argv = ['fsre'] + sys.argv[1:]\nfrom fsre_cli.cli import main\nmain()\n"
        runs = [run(cli, ["aggregate", str(triples), "-o", str(Path(tmp) / "facts.jsonl"), "-q"])
                for _ in range(args.repeat)]
        facts = sum(1 for _ in open(Path(tmp) / "facts.jsonl", encoding="utf-8"))
        _, baseline = run(PEAK + "import fsre_cli.cli\n", [])
        seconds = statistics.median(s for s, _ in runs)
        result = {"triples": args.triples, "distinct_facts": facts, "input_mib": round(triples.stat().st_size / 2**20, 1),
                  "seconds_median": round(seconds, 2), "triples_per_second": round(args.triples / seconds),
                  "peak_rss_mib": round(max(p for _, p in runs) / 1024, 1),
                  "peak_rss_mib_imports_only": round(baseline / 1024, 1), "repeat": args.repeat}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
