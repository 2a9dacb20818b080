"""What every relation scorer returns, so the pipeline, the cascade and benchmarks treat them alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from fsre_cli.documents import Candidate


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


class PairScorer(Protocol):
    method: str

    def predict(self, candidates: Sequence[Candidate]) -> list[Prediction]: ...
