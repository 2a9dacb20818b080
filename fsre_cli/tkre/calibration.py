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
