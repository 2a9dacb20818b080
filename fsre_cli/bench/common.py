"""Shared pieces of the benchmark runners: data paths, option parsing, timing, summaries, output.

Every runner returns a plain JSON-serialisable dict (printed on stdout by `fsre bench`); the
human-readable tables go to stderr. Aggregates over seeds are ``{"mean", "std", "n"}`` with the
sample standard deviation (0.0 for one seed).
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence, TypeVar

from fsre_cli.errors import UsageError

T = TypeVar("T")

ENV_DATA = "FSRE_DATA"


def default_data_dir() -> Path:
    """The benchmark data folder: `$FSRE_DATA`, else ``../shared/data`` beside the repository."""
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def data_file(given: str | Path | None, *default: str) -> Path:
    """`given` when set (a file, or a folder for the dataset's files), else the default file under the data dir."""
    path = Path(given).expanduser() if given else default_data_dir().joinpath(*default)
    if not path.exists():
        hint = "" if given else f" (set {ENV_DATA} or pass --data)"
        raise UsageError(f"{path}: no such file or directory{hint}")
    return path


def parse_ints(text: str | None, option: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]; empty text -> []."""
    if not text or not text.strip():
        return []
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{option} expects comma-separated integers, not {text!r}") from None


def parse_names(text: str | None, option: str, allowed: Sequence[str] | None = None) -> list[str]:
    """``"a, b"`` -> ['a', 'b'], each checked against `allowed` when given."""
    names = [x.strip() for x in (text or "").split(",") if x.strip()]
    if allowed is not None:
        bad = [n for n in names if n not in allowed]
        if bad:
            raise UsageError(f"{option}: unknown {', '.join(bad)} (choose from {', '.join(allowed)})")
    return names


def parse_settings(text: str) -> list[tuple[int, int]]:
    """``"5-1,10-5"`` -> [(5, 1), (10, 5)] (N-way K-shot)."""
    out = []
    for item in parse_names(text, "--settings"):
        try:
            n, k = (int(x) for x in item.split("-"))
        except ValueError:
            raise UsageError(f"--settings expects N-K items like 5-1,10-5, not {item!r}") from None
        if n < 2 or k < 1:
            raise UsageError(f"--settings: {item!r} needs N >= 2 and K >= 1")
        out.append((n, k))
    if not out:
        raise UsageError("--settings is empty")
    return out


# variant knobs that are not TrainConfig fields, with their "off" values
BENCH_KNOBS = {"corpus": 0, "review": 0, "review_below": False}


def parse_train_variants(text: str | None) -> list[tuple[str, tuple[tuple[str, Any], ...]]]:
    """``"statements=true;heldout=0,epochs=20"`` -> one extra tkre row per `;` item, each a set of
    TrainConfig overrides (values read as the field's type), named ``tkre[...]``. Two knobs are the
    benchmark's own: ``corpus=N`` pre-trains on N sentences of the dataset's unlabelled corpus
    (see `labeled.run_crossre`), and ``review=N`` retrains after a simulated reviewer decided the
    first N triples `fsre review` would show (`bench.reviewer`); with ``review_below=true`` the
    reviewer is shown pairs below the threshold too (`fsre extract --min-score 0`)."""
    from fsre_cli.tkre.config import TrainConfig

    defaults = {**TrainConfig().to_dict(), **BENCH_KNOBS}
    fields = set(defaults)
    out = []
    for item in (text or "").split(";"):
        item = item.strip()
        if not item:
            continue
        overrides = []
        for part in item.split(","):
            name, sep, value = part.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or name not in fields or name in ("seed", "encoder", "precision"):
                known = ", ".join(sorted(set(fields) - {"seed", "encoder", "precision"}))
                raise UsageError(f"--tkre-variants: {part!r} is not KNOB=VALUE with a training knob ({known})")
            default = defaults[name]
            try:
                if isinstance(default, bool):
                    if value.lower() not in ("true", "false", "1", "0"):
                        raise ValueError(value)
                    parsed: Any = value.lower() in ("true", "1")
                else:
                    parsed = type(default)(value)
            except ValueError:
                raise UsageError(f"--tkre-variants: {name} takes a {type(default).__name__}, not {value!r}") from None
            overrides.append((name, parsed))
        out.append((f"tkre[{item}]", tuple(overrides)))
    return out


def aggregate(values: Sequence[float]) -> dict[str, float | int]:
    """Mean and sample standard deviation over seeds (std 0.0 for a single value)."""
    vals = [float(v) for v in values]
    if not vals:
        return {"mean": 0.0, "std": 0.0, "n": 0}
    return {
        "mean": round(statistics.fmean(vals), 6),
        "std": round(statistics.stdev(vals), 6) if len(vals) > 1 else 0.0,
        "n": len(vals),
    }


def subsample(items: Sequence[T], n: int | None, seed: int) -> list[T]:
    """At most `n` items, drawn reproducibly and kept in their original order."""
    if n is None or n <= 0 or n >= len(items):
        return list(items)
    picks = sorted(random.Random(f"subsample/{seed}").sample(range(len(items)), n))
    return [items[i] for i in picks]


def environment(device: str) -> dict[str, Any]:
    """What the figures depend on besides the options: versions, threads, machine."""
    import torch
    import transformers

    from fsre_cli import __version__

    return {
        "fsre": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": device,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


class Stopwatch:
    """Accumulates seconds per label: ``with sw("embed"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, label: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in self.seconds.items()}


def write_result(result: dict[str, Any], out: Path | None) -> str:
    """The JSON text of a result; also written to `out` when given."""
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    return text


def pct(summary: dict[str, Any]) -> str:
    """``{"mean": 0.8123, "std": 0.0102}`` -> ``'81.23 ± 1.02'``."""
    return f"{100 * summary['mean']:.2f} ± {100 * summary['std']:.2f}"


def progress_lines(log, every: float = 0.25):
    """A `train_model(on_progress=...)` callback logging each stage at 25 %, 50 %, ... (plain lines,
    so that long runs logged to a file show where they are)."""
    marks: dict[str, int] = {}
    started = time.perf_counter()

    def on_progress(stage: str, done: int, total: int) -> None:
        if total <= 0:
            return
        step = int(done / total / every)
        if step > marks.get(stage, 0) or (done == total and marks.get(stage, -1) < int(1 / every)):
            marks[stage] = step
            log.info(f"    {stage}: {done}/{total} steps ({time.perf_counter() - started:.0f}s)")

    return on_progress
