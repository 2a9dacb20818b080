"""Where fsre keeps what it can rebuild: trained models, LLM answers, example-sentence mentions.

One root for all of them, so `FSRE_CACHE_DIR` moves (and `rm -r` clears) everything at once.
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
