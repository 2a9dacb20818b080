"""Median wall time of `fsre --help` (and whether it imports torch) for the working tree and,
optionally, another checkout: the CLI must start fast because it imports no model code.

    python benchmarks/help_time.py [--other /path/to/checkout] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(checkout: Path, runs: int) -> tuple[float, bool]:
    env = {**os.environ, "PYTHONPATH": str(checkout), "NO_COLOR": "1"}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fsre_cli", "--help"], env=env, cwd=checkout, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    probe = subprocess.run([sys.executable, "-c", "import sys; from fsre_cli.cli import app; "
                            "print('torch' in sys.modules)"], env=env, cwd=checkout, capture_output=True, text=True,
                           check=True)
    return statistics.median(times), probe.stdout.strip() == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=Path, help="another checkout to time in the same run (interleaved)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    checkouts = [ROOT] + ([args.other] if args.other else [])
    results = {c: [] for c in checkouts}
    torch_loaded = {}
    for _ in range(args.runs):  # interleaved, so machine noise hits both alike
        for c in checkouts:
            seconds, torch_loaded[c] = measure(c, 1)
            results[c].append(seconds)
    for c in checkouts:
        print(f"{c}: fsre --help median {statistics.median(results[c]):.2f} s over {args.runs} runs; "
              f"imports torch: {torch_loaded[c]}")


if __name__ == "__main__":
    main()
