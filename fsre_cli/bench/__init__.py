"""Benchmarks behind `fsre bench`: FewRel episodes and TKRE protocol, CrossRE and Re-DocRED
K-shot micro-F1 (methods and ablations), extraction speed/memory/training time.

Every runner is a plain function returning a JSON-serialisable dict:

    from fsre_cli.bench import run_fewrel, run_crossre, run_redocred, run_speed
"""

from fsre_cli.bench.common import default_data_dir
from fsre_cli.bench.fewrel import run_fewrel
from fsre_cli.bench.labeled import run_crossre, run_redocred
from fsre_cli.bench.speed import run_speed

__all__ = ["default_data_dir", "run_fewrel", "run_crossre", "run_redocred", "run_speed"]
