"""Do the shipped examples give byte-identical output at another revision and in this tree?

A refactor must not change what `fsre extract` writes. For each shipped JSONL example (given
entities, so no Stanza download is needed) and each method, both checkouts extract with
models trained from scratch in caches of their own; the outputs are compared byte for byte,
and so are the model cache keys (a changed key would retrain every user's model).

    python benchmarks/same_output.py --base 84b83a5 [--methods tkre,prototype]

Training the tkre models takes a few minutes per schema and checkout on 2 cores.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = [("org-people", "examples/org-people.jsonl"), ("biomed", "examples/biomed.jsonl")]


def extract(checkout: Path, cache: Path, schema: str, docs: str, method: str, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(checkout), "FSRE_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "fsre_cli", "extract", docs, "--schema", f"schemas/{schema}.yaml",
                    "--entities", "given", "--method", method, "-o", str(out), "-q"],
                   cwd=checkout, env=env, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the revision to compare against (e.g. a commit)")
    parser.add_argument("--methods", default="tkre,prototype")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fsre-same-output-"))
    base = work / "base"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.base],
                   check=True, capture_output=True)
    same = True
    try:
        for schema, docs in EXAMPLES:
            for method in args.methods.split(","):
                outs = []
                for name, checkout in (("base", base), ("tree", ROOT)):
                    out = work / f"{schema}.{method}.{name}.jsonl"
                    extract(checkout, work / f"cache-{name}", schema, docs, method, out)
                    outs.append(out)
                equal = filecmp.cmp(*outs, shallow=False)
                same &= equal
                lines = sum(1 for _ in outs[1].open())
                print(f"{schema:11} {method:9} {lines:3} triples: {'identical' if equal else 'DIFFERENT'}")
        keys = [sorted(p.name for p in (work / f"cache-{n}" / "models").glob("*")) for n in ("base", "tree")]
        print(f"model cache keys: {'identical' if keys[0] == keys[1] else 'DIFFERENT'} ({len(keys[1])} models)")
        same &= keys[0] == keys[1]
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
    print(f"outputs in {work}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
