"""Every format fsre persists, with its version, in one table.

Trained models, the model cache key, LLM answers and the example sentences' mentions each
carry the version of the format they were written in, in one of two ways:

* inside the entry (a model folder's `fsre.json` "format", the LLM cache's SQLite
  `user_version`): whoever reads one calls `is_current`, and an entry of another version is
  ignored and rebuilt with one line saying so, instead of a traceback or a wrong result;
* inside a cache key (the model cache key, the mention cache's file name): an entry of another
  version is never looked up at all, so it is simply rebuilt under its new key.

Bump a version here when a format's meaning changes; nothing else needs to know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Format:
    name: str
    version: int
    what: str  # how the notice names an entry of this format
    readable: tuple[int, ...] = ()  # earlier versions this fsre still reads as they are


FORMATS: dict[str, Format] = {f.name: f for f in (
    # 2: packed passes (`config.packing` "sentence"); a per-pair model is still written as 1, so an
    # earlier fsre reads it, and an earlier fsre refuses a packed one instead of mis-scoring it
    Format("model", 2, "trained model", readable=(1,)),
    # 2: thresholds calibrated on held-out scores, not a 0.05 grid; 3: held-out pairs scored in
    # fixed-shape tiles, as extraction scores them (a threshold set on the scores it will meet);
    # 4: every example's reversed pair is a NOTA negative, besides the sampled in-sentence ones
    Format("model-key", 4, "model cache key"),
    Format("llm-cache", 1, "LLM answer cache"),
    Format("mentions", 1, "cached example-sentence mentions"),
)}

_noticed: set[tuple[str, str]] = set()


def is_current(name: str, found: object, where: str, warn: Callable[[str], None] | None = None) -> bool:
    """True when `found` is the current version of format `name`. Otherwise say once (per
    format and place) that the old entry is ignored, and return False."""
    fmt = FORMATS[name]
    if found == fmt.version or found in fmt.readable:
        return True
    if warn is not None and (name, where) not in _noticed:
        _noticed.add((name, where))
        warn(f"ignoring {fmt.what} {where}: format {found}, this fsre writes {fmt.version}; it will be rebuilt")
    return False
