"""Where fsre keeps what it can rebuild: trained models, LLM answers, example-sentence mentions;
and where the files a person reviews and commits sit beside a schema (`beside_schema`).

One root for all of the cache, so `FSRE_CACHE_DIR` moves (and `rm -r` clears) everything at once.
Light on purpose: a zero-shot run must not import torch to find its cache.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """$FSRE_CACHE_DIR, else the platform's user cache directory (e.g. ~/.cache/fsre)."""
    env = os.environ if env is None else env
    if env.get("FSRE_CACHE_DIR"):
        return Path(env["FSRE_CACHE_DIR"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("fsre"))


def mention_cache_dir() -> Path:
    """Where `EntityRecognizer` keeps the example sentences' NER mentions (part of every model key)."""
    return cache_root() / "mentions"


def check_cache_root() -> Path:
    """The cache root, created if need be; a one-line UsageError when it cannot hold a cache (a
    file, no permission), said before minutes of training whose model it could not keep."""
    from fsre_cli.errors import UsageError

    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cache folder {root} cannot be created ({exc.strerror or exc}); "
                         "set FSRE_CACHE_DIR to a writable folder") from None
    if not root.is_dir() or not os.access(root, os.W_OK | os.X_OK):
        raise UsageError(f"cache folder {root} is not a writable folder; set FSRE_CACHE_DIR to one")
    return root


def beside_schema(schema_path: str | os.PathLike | None, kind: str) -> Path | None:
    """`NAME.KIND.jsonl` beside the schema file `NAME.yaml` (None for a schema without a file):
    the synthetic (`synth`), review (`review`) and silver (`silver`) files a person reads and
    commits with the schema."""
    if schema_path is None:
        return None
    path = Path(schema_path)
    return path.with_name(f"{path.name.rsplit('.', 1)[0]}.{kind}.jsonl")
