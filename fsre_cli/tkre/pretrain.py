"""Two-stage knowledge-guided pre-training (TKRE §3): MSLM, then SCL with MSLM kept on."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from fsre_cli.tkre.markers import ENTITY, OTHER, RELATION, SPECIAL, MarkedPair
from fsre_cli.tkre.model import SpanContrastiveHead, collate, length_grouped_batches

# masking probability per token category: relation span 0.8, entities 0.5, other 0.2, special never
MASK_PROBS = {SPECIAL: 0.0, OTHER: 0.2, ENTITY: 0.5, RELATION: 0.8}


@dataclass
class PretrainItem:
    pair: MarkedPair
    relation: int  # index into the schema's relations; -1 for text without a relation (SCL skips it)


def mslm_mask(
    input_ids: torch.Tensor,
    categories: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator,
    probs: dict[int, float] = MASK_PROBS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Span-dependent masking. Chosen tokens become [MASK] 80%, a random token 10%,
    themselves 10% (as in BERT); labels are -100 elsewhere."""
    p = torch.zeros(categories.shape, dtype=torch.float)
    for cat, prob in probs.items():
        p[categories == cat] = prob
    chosen = torch.bernoulli(p, generator=generator).bool()
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    masked = input_ids.clone()
    roll = torch.rand(input_ids.shape, generator=generator)
    masked[chosen & (roll < 0.8)] = mask_id
    random_tokens = torch.randint(vocab_size, input_ids.shape, generator=generator)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    masked[swap] = random_tokens[swap]
    return masked, labels


def lm_head(mlm_model: torch.nn.Module) -> torch.nn.Module | None:
    """The prediction head of a masked-LM model (BERT: `cls`, RoBERTa-likes: `lm_head`)."""
    for name in ("cls", "lm_head"):
        head = getattr(mlm_model, name, None)
        if isinstance(head, torch.nn.Module):
            return head
    return None


def masked_lm_loss(mlm_model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder states and the MLM loss, with the vocabulary projection computed on the masked
    positions only: on a CPU the full B x L x vocab logits cost more than the encoder itself."""
    head = lm_head(mlm_model)
    if head is None:  # an unfamiliar architecture: let the model do it all
        out = mlm_model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, output_hidden_states=True)
        return out.hidden_states[-1], out.loss
    hidden = mlm_model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    chosen = labels != -100
    if not bool(chosen.any()):
        return hidden, hidden.new_zeros(())
    logits = head(hidden[chosen])
    return hidden, torch.nn.functional.cross_entropy(logits.float(), labels[chosen])


def negative_span_mask(categories: torch.Tensor, positive: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per row, a contiguous run of OTHER tokens (not entity, not relation span) as long as
    the relation span where possible: contextually plausible but not relational."""
    out = torch.zeros_like(categories)
    for row in range(categories.size(0)):
        other = (categories[row] == OTHER).nonzero().flatten().tolist()
        if not other:
            continue
        runs: list[list[int]] = [[other[0]]]
        for i in other[1:]:
            if i == runs[-1][-1] + 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        run = runs[int(torch.randint(len(runs), (1,), generator=generator))]
        length = max(1, min(len(run), int(positive[row].sum())))
        start = int(torch.randint(len(run) - length + 1, (1,), generator=generator))
        out[row, run[start : start + length]] = 1
    return out


def pretrain(
    mlm_model: torch.nn.Module,
    tokenizer,
    items: Sequence[PretrainItem],
    *,
    num_relations: int,
    epochs: int,
    use_scl: bool,
    batch_size: int = 16,
    lr: float = 2e-5,
    seed: int = 0,
    device: str = "cpu",
    precision: str = "fp32",
    on_step: Callable[[dict], None] | None = None,
    stage: str | None = None,
) -> list[dict]:
    """One pre-training stage. Loss = 1.0*MSLM (+ 1.0*SCL when `use_scl`). Returns the log.
    `precision` bf16 runs the forward pass under autocast (see `encoder.autocast`)."""
    from fsre_cli.tkre.encoder import adamw, autocast, training_attention

    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    scl = SpanContrastiveHead(mlm_model.config.hidden_size, max(1, num_relations)).to(device) if use_scl else None
    params = list(mlm_model.parameters()) + (list(scl.parameters()) if scl else [])
    optimizer = adamw(params, lr, device)
    mlm_model.train()
    log: list[dict] = []
    lengths = [len(it.pair.input_ids) for it in items]
    with training_attention(mlm_model, device):  # eager on a CPU: a faster backward pass
        for epoch in range(epochs):
            for idx in length_grouped_batches(lengths, batch_size, rng):
                batch_items = [items[i] for i in idx]
                batch = collate([it.pair for it in batch_items], tokenizer.pad_token_id)
                masked, labels = mslm_mask(
                    batch["input_ids"], batch["categories"], mask_id=tokenizer.mask_token_id,
                    vocab_size=mlm_model.config.vocab_size, generator=generator,
                )
                with autocast(precision, device):
                    hidden, mslm_loss = masked_lm_loss(mlm_model, masked.to(device), batch["attention_mask"].to(device),
                                                       labels.to(device))
                    loss = mslm_loss
                    entry = {"stage": stage or ("scl" if use_scl else "mslm"), "epoch": epoch, "mslm": mslm_loss.item()}
                    if scl is not None:
                        positive = (batch["categories"] == RELATION).long()
                        negative = negative_span_mask(batch["categories"], positive, generator)
                        relation = torch.tensor([it.relation for it in batch_items])
                        scl_loss = scl(hidden, positive.to(device), negative.to(device), relation.to(device))
                        loss = loss + scl_loss
                        entry["scl"] = scl_loss.item()
                optimizer.zero_grad()
                if loss.requires_grad:
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    optimizer.step()
                log.append(entry)
                if on_step:
                    on_step(entry)
    mlm_model.eval()
    return log
