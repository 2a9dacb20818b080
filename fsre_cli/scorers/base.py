"""What every relation scorer is and returns, and the registry that builds them by method name.

`build(schema, sidecar, method=..., options=...)` is the one way a scorer is made: `fsre extract`,
the benchmarks and Python users all call it, so a benchmark measures what extraction runs.
A new scorer is one module with a `build(schema, sidecar, options) -> PairScorer` function and
one line in `REGISTRY`.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from fsre_cli.documents import Candidate
from fsre_cli.errors import UsageError
from fsre_cli.tkre.config import SCORING_ROWS, check_batch_size

if TYPE_CHECKING:
    from fsre_cli.schema import Schema
    from fsre_cli.sidecar import Sidecar


@dataclass(frozen=True)
class Prediction:
    """The scorer's decision for one candidate pair.

    `relation` is None for NOTA. `best`/`best_score` are the most likely schema
    relation and its score even when the decision is NOTA (the cascade needs it).
    """

    relation: str | None
    score: float
    best: str | None
    best_score: float
    nota_score: float | None = None  # the NOTA class's probability, for scorers that have one


class PairScorer(Protocol):
    """Scores candidate pairs. `decides_by_threshold`: its decision is a threshold on
    `best_score` (so a dev-tuned threshold is a meaningful ceiling for it)."""

    method: str
    decides_by_threshold: bool

    def predict(self, candidates: Sequence[Candidate]) -> list[Prediction]: ...

    def run_summary(self) -> dict[str, Any]:
        """Counts worth a line in the run's summary (e.g. pairs sent to the LLM); {} if none."""
        ...


@dataclass
class ScorerOptions:
    """Everything a scorer factory may use. Each factory reads what its method needs; the
    injected objects (`artifact`, `embedder`, `llm_client`) let a caller that already holds
    one (a benchmark reusing a model across rows) build the same scorer without rebuilding it."""

    model: str | None = None  # a model folder from `fsre train -o`
    train: Any = None  # tkre.config.TrainConfig; default TrainConfig(encoder, precision)
    encoder: str | None = None
    precision: str = "auto"
    packing: str | None = None  # tkre training: pair | head | sentence (None: TrainConfig's default)
    quantize: str = "none"  # tkre scoring: none | int8 (ONNX Runtime, CPU)
    device: str = "auto"
    batch_size: int = SCORING_ROWS
    seed: int = 0  # QA4RE option order, prototype negatives
    decision: str = "threshold"  # tkre: threshold | nota | relation (see TkreScorer)
    min_precision: float | None = None  # tkre: the threshold that reaches this held-out precision
    cascade_band: tuple[float, float] | None = None
    cascade_route: float = 0.15
    llm_model: str | None = None
    use_llm_cache: bool = True
    recognizer: Any = None  # finds the example sentences' mentions (NOTA pairs) when `mentions` is None
    mentions: Any = None  # example text -> typed spans
    save_model: bool = True  # a model trained here goes into the model cache
    artifact: Any = None
    embedder: Any = None
    llm_client: Any = None
    log: Any = None

    def validate(self) -> "ScorerOptions":
        """Usage errors in the options, found before anything is loaded or trained."""
        from fsre_cli.tkre.encoder import check_precision

        check_batch_size(self.batch_size)
        check_precision(self.precision)
        if self.packing is not None:
            from fsre_cli.tkre.packing import check_packing

            check_packing(self.packing)
        if self.quantize not in QUANTIZE:
            raise UsageError(f"--quantize must be one of {', '.join(QUANTIZE)}, not {self.quantize!r}")
        if self.quantize == "int8":  # before any model is trained or loaded
            from fsre_cli.tkre.int8 import cpu_only, require_onnxruntime

            require_onnxruntime()
            self.device = cpu_only(self.device)
        if self.decision not in DECISIONS:
            raise UsageError(f"--decision must be one of {', '.join(DECISIONS)}, not {self.decision!r}")
        if self.min_precision is not None and not 0 < self.min_precision <= 1:
            raise UsageError(f"--min-precision must be above 0 and at most 1, not {self.min_precision}")
        return self


# How tkre turns a pair's probabilities into a decision: its calibrated threshold on the best
# relation's score; the best relation when it beats NOTA (ATLOP's adaptive threshold: no held-out
# threshold at all); or per-relation thresholds where the held-out slice has enough pairs.
DECISIONS = ("threshold", "nota", "relation")
QUANTIZE = ("none", "int8")  # how tkre's encoder runs at extraction time (see tkre.int8)


Factory = Callable[["Schema", "Sidecar | None", ScorerOptions], PairScorer]

# method name -> "module:function". Strings, so that naming the methods (`fsre --help`) imports
# none of them, and torch only loads when a scorer that needs it is built.
REGISTRY: dict[str, str] = {
    "tkre": "fsre_cli.scorers.tkre:build",
    "prototype": "fsre_cli.scorers.prototype:build",
    "qa4re": "fsre_cli.scorers.qa4re:build",
    "cascade": "fsre_cli.scorers.cascade:build",
}
METHODS: tuple[str, ...] = tuple(REGISTRY)


def resolve_method(schema: "Schema", method: str) -> str:
    """`auto` is tkre when the schema has examples, else zero-shot qa4re; anything else must be registered."""
    if method == "auto":
        return "tkre" if schema.examples else "qa4re"
    if method not in REGISTRY:
        raise UsageError(f"--method must be one of {', '.join(REGISTRY)} (or auto), not {method!r}")
    return method


def factory(method: str) -> Factory:
    module, _, name = REGISTRY[method].partition(":")
    return getattr(importlib.import_module(module), name)


def build(schema: "Schema", sidecar: "Sidecar | None" = None, *, method: str = "auto",
          options: ScorerOptions | None = None, **overrides: Any) -> PairScorer:
    """The scorer for `method` (see `REGISTRY`), configured by `options` and keyword overrides:
    `build(schema, method="prototype", device="cpu")`."""
    from fsre_cli.tkre.encoder import pick_device

    # a copy: the caller's options stay as they were, so one options object can build many scorers
    options = dataclasses.replace(options or ScorerOptions(), **overrides).validate()
    method = resolve_method(schema, method)
    options.device = pick_device(options.device)
    return factory(method)(schema, sidecar, options)


def needs_examples(schema: "Schema", method: str) -> None:
    if not schema.examples:
        raise UsageError(f"--method {method} needs examples in the schema; use --method qa4re for zero-shot")
