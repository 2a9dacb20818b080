"""Scoring marked pairs with a trained classifier: the one forward pass training's calibration
and extraction share, so a threshold is applied to exactly the scores it was set on."""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch

from fsre_cli.schema import Schema
from fsre_cli.tkre.config import SCORING_ROWS
from fsre_cli.tkre.encoder import autocast
from fsre_cli.tkre.markers import MarkedPair
from fsre_cli.tkre.model import PairClassifier, collate, pair_reads
from fsre_cli.tkre.packing import Encoded


def allowed_mask(schema: Schema, head_type: str, tail_type: str) -> list[bool]:
    """[NOTA, relation 1, ...]: which labels a pair of these types may take."""
    allowed = set(schema.relations_for(head_type, tail_type))
    return [True] + [name in allowed for name in schema.relations]


TILE_TOKENS = 16  # padded lengths are multiples of this


def tiles(lengths: Sequence[int], rows: int, step: int = TILE_TOKENS) -> Iterator[tuple[list[int], int]]:
    """Batches for scoring: exactly `rows` indices each (a length bucket's last batch repeats its
    final index), with the padded length the batch runs at (`lengths` rounded up to `step`).

    Why fixed shapes: a matrix product's rounding depends on the shape it runs at, so a pair
    scored beside other pairs, or padded to another pair's length, gets a slightly different
    score. Near a threshold that flips a decision with the company a document keeps. At a fixed
    [rows x length] shape every row's numbers depend on its own tokens only, so a document's
    triples are the same alone, in any batch, and in any run."""
    buckets: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        buckets.setdefault(-(-n // step) * step, []).append(i)
    for width in sorted(buckets):
        idx = buckets[width]
        for start in range(0, len(idx), rows):
            chunk = idx[start : start + rows]
            yield chunk + [chunk[-1]] * (rows - len(chunk)), width


def pair_state_tiles(
    classifier: PairClassifier, encoded: Encoded, pad_id: int, device: str, batch_size: int, precision: str,
    encode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None, head_rows: int,
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Per fixed-shape tile (`tiles`): the pairs read off it and what the classifier reads for
    them (`PairClassifier.states`, padded to a multiple of `head_rows` rows)."""
    for idx, width in tiles(encoded.lengths, batch_size):
        batch = collate([encoded.sequences[i] for i in idx], pad_id, width)
        read, where = pair_reads(encoded, idx, pad_to=head_rows)
        if not read:
            continue
        with autocast(precision, device):
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            if encode is None:
                hidden = classifier.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            else:
                hidden = encode(batch["input_ids"], batch["attention_mask"]).to(device)
            states = classifier.states(hidden, mask, where["head_index"].to(device), where["tail_index"].to(device),
                                       where["rows"].to(device))
        yield read, states


@torch.inference_mode()
def pair_embeddings(classifier: PairClassifier, pairs: Encoded, pad_id: int, device: str = "cpu",
                    precision: str = "fp32") -> torch.Tensor:
    """What the classifier's linear layer reads for each pair, as fp32 rows in the pairs' order."""
    classifier.eval()
    out = torch.zeros((len(pairs), classifier.head.in_features))
    for read, states in pair_state_tiles(classifier, pairs, pad_id, device, SCORING_ROWS, precision, None,
                                         SCORING_ROWS):
        out[read] = states[: len(read)].float().cpu()
    return out


@torch.inference_mode()
def predict_probs(
    classifier: PairClassifier, pairs: Encoded | Sequence[MarkedPair], allowed: Sequence[Sequence[bool]],
    pad_id: int, device: str = "cpu", batch_size: int = SCORING_ROWS, precision: str = "fp32",
    encode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None, head_rows: int = SCORING_ROWS,
) -> torch.Tensor:
    """Softmax over NOTA + the relations each pair's types allow (others get probability 0),
    scored in fixed-shape `tiles` of `batch_size` sequences (the classifier in blocks of
    `head_rows` pairs), so a pair's probabilities do not depend on the other pairs (in a packed
    pass, on its own pass only). A model trained in bf16 is calibrated in bf16, so it is best
    scored in it too (`TkreScorer` does where it can).
    `encode(input_ids, attention_mask) -> hidden states` replaces the classifier's own encoder
    (the int8 one of `tkre.int8`)."""
    encoded = pairs if isinstance(pairs, Encoded) else Encoded.per_pair(pairs)
    classifier.eval()
    out = torch.zeros((len(encoded), len(allowed[0]) if allowed else 1))
    mask_all = torch.tensor([list(a) for a in allowed], dtype=torch.bool)
    for read, states in pair_state_tiles(classifier, encoded, pad_id, device, batch_size, precision, encode,
                                         head_rows):
        with autocast(precision, device):
            # the classifier runs on blocks of exactly `head_rows` pairs: fixed shapes here too
            logits = torch.cat([classifier.head(states[i : i + head_rows])
                                for i in range(0, states.size(0), head_rows)])
        logits = logits[: len(read)].float().cpu().masked_fill(~mask_all[read], float("-inf"))
        out[read] = torch.softmax(logits, dim=-1)
    return out
