"""Relation scorers: one module per method (tkre, prototype, qa4re, cascade), built through one
registry, so `fsre extract`, the benchmarks and Python code get the same scorer:

    from fsre_cli.scorers import build
    scorer = build(schema, sidecar, method="tkre")
    predictions = scorer.predict(candidates)
"""

from fsre_cli.scorers.base import METHODS, REGISTRY, PairScorer, Prediction, ScorerOptions, build, resolve_method

__all__ = ["METHODS", "REGISTRY", "PairScorer", "Prediction", "ScorerOptions", "build", "resolve_method"]
