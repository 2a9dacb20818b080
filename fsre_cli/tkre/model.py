"""The pair encoder and classifier: [head-marker state; tail-marker state] -> relation or NOTA."""

from __future__ import annotations

import random
from typing import Sequence

import torch
from torch import nn

from fsre_cli.tkre.markers import MarkedPair


def collate(pairs: Sequence[MarkedPair], pad_id: int, width: int | None = None) -> dict[str, torch.Tensor]:
    """Pad a batch (to `width` tokens when given); categories are padded as SPECIAL (never
    masked, never pooled)."""
    width = max(width or 0, max(len(p.input_ids) for p in pairs))
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    cats = torch.zeros((len(pairs), width), dtype=torch.long)
    for i, p in enumerate(pairs):
        n = len(p.input_ids)
        ids[i, :n] = torch.tensor(p.input_ids)
        mask[i, :n] = 1
        cats[i, :n] = torch.tensor(p.categories)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "categories": cats,
        "head_index": torch.tensor([p.head_index for p in pairs]),
        "tail_index": torch.tensor([p.tail_index for p in pairs]),
    }


def pair_reads(encoded, sequence_ids: Sequence[int], pad_to: int | None = None
               ) -> tuple[list[int], dict[str, torch.Tensor]]:
    """The pairs read off a batch of `encoded`'s sequences (each sequence counted once, at its
    first row): their ids, and the rows and marker indices `PairClassifier.forward` reads. With
    `pad_to`, the reads are padded (repeating the last) to a multiple of it, so the classifier's
    own matrix product runs at fixed shapes too; the ids list only the real pairs."""
    pairs, rows, heads, tails = [], [], [], []
    seen: set[int] = set()
    for row, seq in enumerate(sequence_ids):
        if seq in seen:
            continue
        seen.add(seq)
        for pair in encoded.reads_of[seq]:
            _seq, head, tail = encoded.reads[pair]
            pairs.append(pair)
            rows.append(row)
            heads.append(head)
            tails.append(tail)
    if pad_to and pairs and len(pairs) % pad_to:
        extra = pad_to - len(pairs) % pad_to
        rows, heads, tails = rows + rows[-1:] * extra, heads + heads[-1:] * extra, tails + tails[-1:] * extra
    return pairs, {"rows": torch.tensor(rows, dtype=torch.long), "head_index": torch.tensor(heads, dtype=torch.long),
                   "tail_index": torch.tensor(tails, dtype=torch.long)}


def length_grouped_batches(lengths: Sequence[int], batch_size: int, rng: random.Random,
                           window: int = 8) -> list[list[int]]:
    """Shuffled batches of similar length: shuffle, sort within windows of `window` batches,
    cut, shuffle the batches. Much less padding than plain shuffling, still random."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * window
    batches = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def pair_states(hidden: torch.Tensor, head_index: torch.Tensor, tail_index: torch.Tensor,
                rows: torch.Tensor | None = None) -> torch.Tensor:
    """[head-marker state; tail-marker state] per pair; pair i is read from row `rows[i]` of the
    batch (row i when not given: one pair per sequence)."""
    if rows is None:
        rows = torch.arange(hidden.size(0), device=hidden.device)
    return torch.cat([hidden[rows, head_index], hidden[rows, tail_index]], dim=-1)


CONTEXT_BLOCK = 64  # pairs per block of the context pooling's matrix products (fixed shapes)


def pair_context(hidden: torch.Tensor, attention_mask: torch.Tensor, heads: torch.Tensor, tails: torch.Tensor,
                 rows: torch.Tensor) -> torch.Tensor:
    """Localized context pooling (ATLOP), from the states themselves: a pair's context is its
    sentence's token states weighted by how much both its head and its tail marker attend to
    each token (the product of two scaled dot-product attentions). One packed pass then still
    gives every pair its own view of the words around *its* entities. `heads`/`tails` are the
    pairs' marker states, `rows` their sequences. Each pair is computed over its own sequence
    alone (batched products, in blocks of `CONTEXT_BLOCK` pairs), so its numbers never depend on
    the other sequences of the batch or on where its sequence sits."""
    dim = hidden.size(-1)
    valid = attention_mask.bool()
    scale = dim ** -0.5
    out = []
    for start in range(0, heads.size(0), CONTEXT_BLOCK):
        r = rows[start : start + CONTEXT_BLOCK]
        own = hidden[r]  # [pairs, length, dim]: each pair's own sequence
        mask = ~valid[r]
        h = heads[start : start + CONTEXT_BLOCK].unsqueeze(-1)
        t = tails[start : start + CONTEXT_BLOCK].unsqueeze(-1)
        a_h = torch.softmax((torch.bmm(own, h).squeeze(-1) * scale).masked_fill(mask, float("-inf")), dim=-1)
        a_t = torch.softmax((torch.bmm(own, t).squeeze(-1) * scale).masked_fill(mask, float("-inf")), dim=-1)
        weights = a_h * a_t
        weights = weights / weights.sum(-1, keepdim=True).clamp(min=1e-9)
        out.append(torch.bmm(weights.unsqueeze(1).to(own.dtype), own).squeeze(1))
    return torch.cat(out) if out else hidden.new_zeros((0, dim))


class PairClassifier(nn.Module):
    """Encoder + linear layer over the two opening-marker states (and, with `context`, the
    pair's pooled context, `pair_context`). Label 0 is NOTA."""

    def __init__(self, encoder: nn.Module, num_relations: int, dropout: float = 0.1, context: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.context = context
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear((3 if context else 2) * hidden, num_relations + 1)

    def embed(self, input_ids, attention_mask, head_index, tail_index, rows=None) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.states(hidden, attention_mask, head_index, tail_index, rows)

    def states(self, hidden, attention_mask, head_index, tail_index, rows=None) -> torch.Tensor:
        """What the classifier reads for each pair, from the encoder's states."""
        states = pair_states(hidden, head_index, tail_index, rows)
        if not self.context:
            return states
        if rows is None:
            rows = torch.arange(hidden.size(0), device=hidden.device)
        dim = hidden.size(-1)
        context = pair_context(hidden, attention_mask, states[:, :dim], states[:, dim:], rows)
        return torch.cat([states, context], dim=-1)

    def forward(self, input_ids, attention_mask, head_index, tail_index, rows=None) -> torch.Tensor:
        """Logits per pair; with `rows`, several pairs are read off one sequence (packed passes)."""
        return self.head(self.dropout(self.embed(input_ids, attention_mask, head_index, tail_index, rows)))


class SpanContrastiveHead(nn.Module):
    """SCL: a learned anchor per relation, pulled towards the pooled relation span of its
    examples and away from a pooled non-entity, non-relation span of the same sentence."""

    def __init__(self, hidden: int, num_relations: int, proj_dim: int = 128, temperature: float = 0.1) -> None:
        super().__init__()
        self.anchors = nn.Parameter(torch.randn(num_relations, hidden) * 0.02)
        self.project = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, proj_dim))
        self.temperature = temperature

    def forward(
        self, hidden: torch.Tensor, positive_mask: torch.Tensor, negative_mask: torch.Tensor, relation: torch.Tensor
    ) -> torch.Tensor:
        """Mean loss over rows that have a relation, a positive span and a negative span."""
        usable = (relation >= 0) & (positive_mask.sum(1) > 0) & (negative_mask.sum(1) > 0)
        if not usable.any():
            return hidden.new_zeros(())
        hidden, positive_mask, negative_mask = hidden[usable], positive_mask[usable], negative_mask[usable]
        anchor = nn.functional.normalize(self.project(self.anchors[relation[usable]]), dim=-1)
        pos = nn.functional.normalize(self.project(_mean_pool(hidden, positive_mask)), dim=-1)
        neg = nn.functional.normalize(self.project(_mean_pool(hidden, negative_mask)), dim=-1)
        logits = torch.stack([(anchor * pos).sum(-1), (anchor * neg).sum(-1)], dim=-1) / self.temperature
        target = torch.zeros(logits.size(0), dtype=torch.long, device=logits.device)
        return nn.functional.cross_entropy(logits, target)


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
