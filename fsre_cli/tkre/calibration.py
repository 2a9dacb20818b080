"""The NOTA decision: where a pair's best relation score becomes a triple."""

from __future__ import annotations

from typing import Sequence

import torch

from fsre_cli.evaluation import best_cut


def calibrate_threshold(probs: torch.Tensor, labels: Sequence[int]) -> tuple[float, float]:
    """The score threshold that maximises micro-F1 (NOTA excluded) on held-out pairs, and that F1.

    The candidates are the held-out pairs' own best-relation scores, not a fixed grid: a few-shot
    classifier trained against many NOTA pairs puts most relation scores far below 0.05, where a
    grid of 0.05 steps cannot reach (it then predicted almost nothing). The threshold sits halfway
    between the lowest score it admits and the next lower one; ties go to the higher threshold
    (fewer, surer triples). Without any correct prediction it stays at 0.5."""
    if probs.numel() == 0 or probs.shape[1] < 2:
        return 0.5, 0.0
    rel_probs, rel_pred = probs[:, 1:].max(dim=-1)
    gold = torch.tensor(list(labels))
    n_gold = int((gold > 0).sum())
    if n_gold == 0:
        return 0.5, 0.0
    order = torch.argsort(rel_probs, descending=True, stable=True)
    scores = rel_probs[order].tolist()
    correct = ((rel_pred + 1 == gold) & (gold > 0))[order].tolist()
    best_f1, best_k = best_cut(scores, correct, n_gold)
    if best_k < 0:
        return 0.5, 0.0
    lower = scores[best_k + 1] if best_k + 1 < len(scores) else min(0.0, scores[best_k])
    return (scores[best_k] + lower) / 2, best_f1


def precision_threshold(scored: Sequence[tuple[float, bool]], n_gold: int, min_precision: float) -> float | None:
    """The lowest score threshold whose triples reach `min_precision` on held-out pairs
    (`scored`: each pair's best-relation score and whether that relation is its gold one), so
    recall is as high as that precision allows. None when no threshold reaches it."""
    ranked = sorted(scored, key=lambda x: -x[0])
    best: float | None = None
    hits = 0
    for i, (score, correct) in enumerate(ranked):
        hits += bool(correct)
        nxt = ranked[i + 1][0] if i + 1 < len(ranked) else None
        if nxt is not None and nxt == score:
            continue  # a threshold cannot split tied scores
        if hits / (i + 1) >= min_precision and hits:
            best = (score + (nxt if nxt is not None else min(0.0, score))) / 2
    return best


def relation_thresholds(probs: torch.Tensor, labels: Sequence[int], relations: Sequence[str],
                        min_positives: int = 3) -> dict[str, float]:
    """Per relation, the threshold that maximises its own F1 on the held-out pairs whose best
    relation it is, where it has at least `min_positives` held-out gold pairs (others use the
    global threshold)."""
    if probs.numel() == 0 or probs.shape[1] < 2:
        return {}
    rel_probs, rel_pred = probs[:, 1:].max(dim=-1)
    gold = torch.tensor(list(labels))
    out: dict[str, float] = {}
    for r, name in enumerate(relations):
        n_gold = int((gold == r + 1).sum())
        if n_gold < min_positives:
            continue
        rows = (rel_pred == r).nonzero().flatten()
        if rows.numel() == 0:
            continue
        scores = rel_probs[rows]
        order = torch.argsort(scores, descending=True, stable=True)
        ranked = scores[order].tolist()
        correct = (gold[rows] == r + 1)[order].tolist()
        _, k = best_cut(ranked, correct, n_gold)
        if k >= 0:
            lower = ranked[k + 1] if k + 1 < len(ranked) else min(0.0, ranked[k])
            out[name] = (ranked[k] + lower) / 2
    return out
