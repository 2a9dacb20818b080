"""How fast, and how usefully, the LLM writes synthetic examples (SCDG) for a schema.

    python benchmarks/synth_speed.py schemas/org-people.yaml [--per-relation 8] [--max-relations N]

Uses OPENAI_BASE_URL when set, else starts the embedded local model (SmolLM2-135M
via llama.cpp) for the run. Always runs with --no-cache semantics (answers are
asked again, never read from the cache) and writes no sidecar. Prints one JSON
object on stdout: seconds per kept and per generated example, fraction kept,
drop reasons.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fsre_cli.console import Log  # noqa: E402
from fsre_cli.errors import FsreError  # noqa: E402
from fsre_cli.llm.client import LLMClient, LLMConfig  # noqa: E402
from fsre_cli.llm.server import start_server  # noqa: E402
from fsre_cli.llm.synth import generate_synthetic  # noqa: E402
from fsre_cli.schema import load_schema  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("schema", type=Path)
    parser.add_argument("--per-relation", type=int, default=8)
    parser.add_argument("--max-relations", type=int, default=None, help="only the first N relations (quicker)")
    parser.add_argument("--concurrency", type=int, default=None)
    args = parser.parse_args(argv)
    log = Log()
    server = None
    try:
        schema = load_schema(args.schema)
        if args.max_relations:
            for name in list(schema.relations)[args.max_relations:]:
                del schema.relations[name]
        start_s = 0.0
        base_url = os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            t0 = time.perf_counter()
            server = start_server()
            start_s = time.perf_counter() - t0
            base_url = server.base_url
            log.info(f"started the local model at {base_url} in {start_s:.1f} s")
        with tempfile.TemporaryDirectory() as tmp:
            config = LLMConfig.from_env(
                base_url=base_url, use_cache=False, cache_path=Path(tmp) / "llm-cache.sqlite3",
                concurrency=args.concurrency,
            )
            with LLMClient(config) as client:
                t0 = time.perf_counter()
                report = generate_synthetic(schema, client, args.per_relation, log=log)
                seconds = time.perf_counter() - t0
                stats = client.stats
                model = client.model
    except FsreError as exc:
        log.error(str(exc))
        return exc.exit_code
    finally:
        if server is not None:
            server.stop()
    kept = sum(report.kept.values())
    generated = sum(report.generated.values())
    result = {
        "schema": str(args.schema),
        "model": model,
        "endpoint": "local llama.cpp (started by the benchmark)" if server is not None else base_url,
        "relations": len(schema.relations),
        "per_relation": args.per_relation,
        "llm_calls": report.calls,
        "http_requests": stats.requests,
        "seconds": round(seconds, 2),
        "server_start_seconds": round(start_s, 2),
        "generated": generated,
        "kept": kept,
        "fraction_kept": round(kept / generated, 4) if generated else 0.0,
        "seconds_per_kept_example": round(seconds / kept, 2) if kept else None,
        "seconds_per_generated_example": round(seconds / generated, 2) if generated else None,
        "seconds_per_llm_call": round(seconds / report.calls, 2) if report.calls else None,
        "kept_per_relation": dict(report.kept),
        "drop_reasons": dict(report.drop_reasons().most_common()),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
