"""Benchmarks behind `fsre bench`: FewRel episodes and TKRE protocol, CrossRE and Re-DocRED
K-shot micro-F1 (methods and ablations), extraction speed/memory/training time.

Every runner is a plain function returning a JSON-serialisable dict:

    from fsre_cli.bench import run_fewrel, run_crossre, run_redocred, run_speed

The runners are imported on first use, so naming this package imports no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_RUNNERS = {
    "run_fewrel": "fsre_cli.bench.fewrel",
    "run_crossre": "fsre_cli.bench.labeled",
    "run_redocred": "fsre_cli.bench.labeled",
    "run_speed": "fsre_cli.bench.speed",
    "default_data_dir": "fsre_cli.bench.common",
}
__all__ = list(_RUNNERS)


def __getattr__(name: str) -> Any:
    if name in _RUNNERS:
        return getattr(importlib.import_module(_RUNNERS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
