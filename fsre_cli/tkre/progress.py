"""What a person sees while a model trains: a progress bar per stage and a summary line."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Mapping, Sequence

from fsre_cli.schema import Schema, Span
from fsre_cli.sidecar import Sidecar
from fsre_cli.tkre.config import TrainConfig
from fsre_cli.tkre.train import TrainResult, train_model


def train_with_progress(schema: Schema, sidecar: Sidecar | None, config: TrainConfig, *, device: str = "cpu",
                        mentions: Mapping[str, Sequence[Span]] | None = None, corpus: Sequence = (),
                        log=None) -> TrainResult:
    """Train with a progress bar per stage (stderr, terminals only) and a summary line."""
    if log is None:
        return train_model(schema, sidecar, config, device=device, mentions=mentions, corpus=corpus)
    synthetic = ", + synthetic" if sidecar and sidecar.examples and config.use_synthetic else ""
    log.info(f"training a model for schema {schema.name!r} ({len(schema.relations)} relations, "
             f"{len(schema.examples)} examples{synthetic}; "
             f"NOTA pairs from {'known entity mentions' if mentions else 'name-like spans'}"
             f"{f'; {len(corpus)} corpus sentences' if corpus else ''})")
    with ExitStack() as stack:
        bars: dict[str, object] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = stack.enter_context(log.progress(f"  {stage:9}", total=total))
            bars[stage].update(completed=done)

        result = train_model(schema, sidecar, config, device=device, on_progress=on_progress, mentions=mentions,
                             corpus=corpus)
    held = result.artifact.meta["heldout"]
    f1 = f"{held['f1']:.2f}" if held["f1"] is not None else "n/a"
    log.info(f"trained in {result.seconds:.0f}s ({result.artifact.meta['config']['precision']}); "
             f"threshold {result.artifact.threshold:.3g}, held-out F1 {f1} on {held['instances']} pairs")
    return result
