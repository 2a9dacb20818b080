"""Scoring marked pairs with a trained classifier: the one forward pass training's calibration
and extraction share, so a threshold is applied to exactly the scores it was set on."""

from __future__ import annotations

from typing import Sequence

import torch

from fsre_cli.schema import Schema
from fsre_cli.tkre.encoder import autocast
from fsre_cli.tkre.markers import MarkedPair
from fsre_cli.tkre.model import PairClassifier, collate


def allowed_mask(schema: Schema, head_type: str, tail_type: str) -> list[bool]:
    """[NOTA, relation 1, ...]: which labels a pair of these types may take."""
    allowed = set(schema.relations_for(head_type, tail_type))
    return [True] + [name in allowed for name in schema.relations]


@torch.inference_mode()
def predict_probs(
    classifier: PairClassifier, pairs: Sequence[MarkedPair], allowed: Sequence[Sequence[bool]], pad_id: int,
    device: str = "cpu", batch_size: int = 64, precision: str = "fp32",
) -> torch.Tensor:
    """Softmax over NOTA + the relations each pair's types allow (others get probability 0).
    Pairs are sorted by length so batches carry little padding. A model trained in bf16 is
    calibrated in bf16, so it is best scored in it too (`TkreScorer` does where it can)."""
    classifier.eval()
    out = torch.zeros((len(pairs), len(allowed[0]) if allowed else 1))
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i].input_ids))
    mask_all = torch.tensor([list(a) for a in allowed], dtype=torch.bool)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = collate([pairs[i] for i in idx], pad_id)
        with autocast(precision, device):
            logits = classifier(*(batch[k].to(device) for k in ("input_ids", "attention_mask", "head_index", "tail_index")))
        logits = logits.float().cpu().masked_fill(~mask_all[idx], float("-inf"))
        out[idx] = torch.softmax(logits, dim=-1)
    return out
