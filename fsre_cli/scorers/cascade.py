"""`cascade`: the encoder scores every pair, and pairs whose score falls in an uncertainty band
around its threshold go to QA4RE, whose answer decides. Near-encoder speed, LLM judgement
where it matters."""

from __future__ import annotations

import bisect
import math
from typing import Any, Sequence

from fsre_cli.documents import Candidate
from fsre_cli.errors import UsageError
from fsre_cli.scorers.base import Prediction, ScorerOptions, needs_examples
from fsre_cli.scorers.qa4re import QA4REScorer


DEFAULT_ROUTE_FRACTION = 0.15


class CascadeScorer:
    """The encoder scores every pair; pairs whose score falls inside the uncertainty band
    go to QA4RE, whose answer decides. Near-encoder speed, LLM judgement where it matters.

    Without an explicit band, the band is calibrated on the encoder's held-out scores so that
    about `route_fraction` of pairs fall inside it (see `calibrated_band`)."""

    method = "cascade"
    decides_by_threshold = False

    def __init__(self, encoder_scorer, qa_scorer: QA4REScorer, band: tuple[float, float] | None = None,
                 route_fraction: float = DEFAULT_ROUTE_FRACTION) -> None:
        self.encoder_scorer = encoder_scorer
        self.qa_scorer = qa_scorer
        threshold = float(getattr(encoder_scorer, "threshold", 0.5))
        heldout = list(getattr(encoder_scorer, "heldout_scores", None) or [])
        if band is not None:
            self.band, self.band_source = (float(band[0]), float(band[1])), "given"
        elif heldout:
            self.band = calibrated_band(heldout, threshold, route_fraction)
            self.band_source = f"calibrated to route about {route_fraction:.0%} of {len(heldout)} held-out pairs"
        else:
            self.band = default_band(threshold)
            self.band_source = "the threshold ± 0.1 (the model has no held-out scores to calibrate on)"
        self.routed = 0
        self.total = 0

    @property
    def flush_pairs(self) -> int:
        """The encoder's: a packed model wants larger flushes."""
        return int(getattr(self.encoder_scorer, "flush_pairs", 2048))

    def run_summary(self) -> dict[str, Any]:
        return {"sent_to_llm": self.routed}

    def predict(self, candidates: Sequence[Candidate]) -> list[Prediction]:
        predictions = self.encoder_scorer.predict(candidates)
        low, high = self.band
        unsure = [i for i, p in enumerate(predictions) if low <= p.best_score <= high]
        self.total += len(candidates)
        self.routed += len(unsure)
        if unsure:
            answers = self.qa_scorer.predict([candidates[i] for i in unsure])
            for i, answer in zip(unsure, answers):
                predictions[i] = answer
        return predictions


def default_band(threshold: float, width: float = 0.1) -> tuple[float, float]:
    """Centred on the encoder's calibrated threshold: the scores where it is least sure.
    Only a fallback: a fixed width routes almost every pair when the scores are bunched
    (21-way softmaxes put most best-relation scores within 0.2 of a low threshold)."""
    return max(0.0, threshold - width), min(1.0, threshold + width)


def calibrated_band(scores: Sequence[float], threshold: float,
                    fraction: float = DEFAULT_ROUTE_FRACTION) -> tuple[float, float]:
    """The band of the `fraction` of held-out scores nearest the threshold in rank, split evenly
    above and below it where the scores allow; it always contains the threshold.

    Ranks rather than a score width, because how bunched the scores are depends on the number of
    relations and on training; ranks make the LLM's share of the work (its cost) predictable."""
    if not 0 < fraction <= 1:
        raise ValueError(f"route fraction must be in (0, 1], not {fraction}")
    ordered = sorted(float(s) for s in scores)
    if not ordered:
        return default_band(threshold)
    n = len(ordered)
    k = max(1, math.ceil(fraction * n))
    below = bisect.bisect_left(ordered, threshold)
    lo = min(max(0, below - k // 2), n - k)
    return min(ordered[lo], threshold), max(ordered[lo + k - 1], threshold)


def build(schema, sidecar, options: ScorerOptions) -> CascadeScorer:
    from fsre_cli.scorers import qa4re, tkre

    needs_examples(schema, "cascade")
    band = options.cascade_band
    if band is not None and not 0 <= band[0] <= band[1] <= 1:
        raise UsageError(f"--cascade-band needs 0 <= LOW <= HIGH <= 1, not {band[0]} {band[1]}")
    if not 0 < options.cascade_route <= 1:
        raise UsageError(f"--cascade-route must be in (0, 1], not {options.cascade_route}")
    qa = qa4re.build(schema, sidecar, options)
    qa.client.list_models()  # an endpoint that cannot answer fails now, not after the encoder trains
    cascade = CascadeScorer(tkre.build(schema, sidecar, options), qa, band=band, route_fraction=options.cascade_route)
    if options.log:
        options.log.info(f"cascade: encoder scores in [{cascade.band[0]:.3f}, {cascade.band[1]:.3f}] go to the LLM "
                         f"({cascade.band_source})")
    return cascade
