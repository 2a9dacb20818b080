"""Training a schema's classifier: pre-training (MSLM, then SCL) -> fine-tuning with NOTA -> calibration.

Each stage is a small function; `train_model` runs them in order and returns an `Artifact`.
Finding a cached model or training one is `tkre.store`; the progress display is `tkre.progress`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch

from fsre_cli import __version__
from fsre_cli.corpus import CorpusSentence, corpus_digest
from fsre_cli.errors import UsageError
from fsre_cli.schema import Example, Schema, Span
from fsre_cli.sidecar import Sidecar
from fsre_cli.tkre.artifact import Artifact, relation_signature
from fsre_cli.tkre.calibration import calibrate_threshold, relation_thresholds
from fsre_cli.tkre.config import SCORING_ROWS, TrainConfig, cache_key, sidecar_hash
from fsre_cli.tkre.data import (Instance, annotated_nota, build_instances, example_pair, explanation_pair,
                                crossfit_folds, nota_weights, relation_negatives, split_heldout,
                                statement_instances)
from fsre_cli.tkre.encoder import adamw, autocast, load_masked_lm, load_tokenizer, resolve_encoder, training_attention
from fsre_cli.tkre.inference import allowed_mask, pair_embeddings, predict_probs
from fsre_cli.tkre.markers import OTHER, SPECIAL, MarkedPair, mark_pair, mark_pairs
from fsre_cli.tkre.model import PairClassifier, collate, length_grouped_batches, pair_reads
from fsre_cli.tkre.packing import Encoded, encode_pairs, style_of, tile_rows
from fsre_cli.tkre.pretrain import PretrainItem, pretrain
from fsre_cli.tkre.silver import SilverPair, corpus_candidates, pick_silver

OnProgress = Callable[[str, int, int], None]  # (stage, steps done, steps in the stage)


@dataclass
class TrainResult:
    artifact: Artifact
    log: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    silver: list[SilverPair] = field(default_factory=list)  # the last self-training round's (`tkre.silver`)


def training_examples(schema: Schema, sidecar: Sidecar | None, config: TrainConfig) -> list[Example]:
    """The examples training reads: the schema's, plus the sidecar's when the config takes them."""
    examples = list(schema.examples)
    if config.use_synthetic and sidecar is not None:
        examples += [e for e in sidecar.examples if e.relation in schema.relations]
    return examples


def example_mentions(schema: Schema, sidecar: Sidecar | None, config: TrainConfig,
                     recognizer) -> dict[str, list[Span]] | None:
    """The recognizer's entity mentions in every sentence training reads (its NOTA pairs), or
    None without NER (see `EntityRecognizer.example_mentions`)."""
    return recognizer.example_mentions([e.text for e in training_examples(schema, sidecar, config)])


def train_model(
    schema: Schema,
    sidecar: Sidecar | None = None,
    config: TrainConfig = TrainConfig(),
    *,
    device: str = "cpu",
    on_progress: OnProgress | None = None,
    mentions: Mapping[str, Sequence[Span]] | None = None,
    corpus: Sequence[CorpusSentence] = (),
) -> TrainResult:
    """Train the schema's classifier. `on_progress(stage, done, total)` reports steps.
    `mentions` (example text -> its typed entity spans) gives real NOTA pairs from the
    example sentences; without it they are guessed from name-like spans. `corpus`: the user's
    unlabelled sentences (`fsre_cli.corpus`), read by an MSLM stage before the examples' own."""
    started = time.time()
    config = config.for_device(device)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    source = resolve_encoder(config.encoder or schema.encoder)
    tokenizer = load_tokenizer(source)
    mlm = load_masked_lm(source).to(device)
    examples = training_examples(schema, sidecar, config)
    if not examples:
        raise UsageError(f"schema {schema.name!r} has no examples to train on; use --method qa4re for zero-shot")

    # a packed pass reads every pair of its sentence at no extra encoder cost: all of them train
    per_example = None if config.packing != "pair" else config.negatives_per_example
    instances = build_instances(examples, schema, seed=config.seed, mentions=mentions,
                                negatives_per_example=per_example)
    crossfitting = config.crossfit >= 2
    if config.crossfit == 1 or config.crossfit < 0:
        raise UsageError(f"cross-fitting needs at least 2 folds, not {config.crossfit}")
    if crossfitting and config.self_train and corpus:
        raise UsageError("cross-fitting and self-training together are not supported: choose one")
    # a reviewed sentence: one with an accepted or relabelled example, or a rejected pair
    reviewed = () if config.heldout_review else ({i.group for i in instances if i.source == "review"}
                                                 | {d.text for d in schema.review})
    # cross-fitting scores every example out of fold instead of holding a slice out
    train_set, heldout = (list(instances), []) if crossfitting else split_heldout(instances, config.heldout,
                                                                                  config.seed, reviewed)
    if config.statements:  # only beside training examples: a held-out sentence's statement would leak it
        kept = {i.group for i in train_set}
        train_set += [i for i in statement_instances(examples, schema) if i.group in kept]
    # they only train (a "not R" pair has no single gold label), and never beside a held-out sentence
    held_groups = {i.group for i in heldout}
    train_set += [i for i in relation_negatives(schema.negatives) + annotated_nota(schema.data, schema, config.seed,
                                                                                   per_example)
                  if i.group not in held_groups]
    log: list[dict] = []
    if config.pretrain:
        log += pretrain_stages(mlm, tokenizer, schema, examples, sidecar if config.use_synthetic else None,
                               config, device, on_progress, corpus)
    held = HeldOut.mark(heldout, schema, tokenizer, config.max_length, config.packing)
    rounds = config.self_train if corpus else 0
    pretrained = copy.deepcopy(mlm.state_dict()) if rounds else None  # every round fine-tunes from here
    crossfit_info = None
    if crossfitting:
        classifier, fine_log, best_epoch, calibration, crossfit_info = cross_fit(
            mlm, tokenizer, schema, instances, train_set, config, device, on_progress, examples)
        threshold, held_f1, heldout_scores, held_detail = calibration
    else:
        classifier = new_classifier(mlm, tokenizer, schema, examples, config, device)
        fine_log, best_epoch = fine_tune(classifier, tokenizer, schema, train_set, held, config, device, on_progress)
        threshold, held_f1, heldout_scores, held_detail = calibrate(classifier, tokenizer, held, config, device,
                                                                    list(schema.relations))
    log += fine_log
    silver: list[SilverPair] = []
    real = Counter(e.relation for e in schema.examples)  # the user's own: synthetic examples do not raise the cap
    if rounds:  # the corpus pairs are the same every round: marked once
        pairs, sentence_of = corpus_candidates(corpus, schema)
        encoded = encode_pairs(pairs, tokenizer, config.max_length, config.packing, sentences=sentence_of)
        allowed = [allowed_mask(schema, p.head_type, p.tail_type) for p in pairs]
    for round_ in range(1, rounds + 1):
        probs = predict_probs(classifier, encoded, allowed, tokenizer.pad_token_id, device,
                              batch_size=tile_rows(config.packing, SCORING_ROWS),
                              precision=config.precision) if pairs else torch.zeros((0, len(schema.relations) + 1))
        silver = pick_silver(pairs, probs, schema, dict(real), threshold, ratio=config.silver_ratio,
                             nota_per_positive=config.negatives_per_example, round_=round_)
        mlm.load_state_dict(pretrained)
        classifier = new_classifier(mlm, tokenizer, schema, examples, config, device)
        fine_log, best_epoch = fine_tune(classifier, tokenizer, schema, train_set + [s.instance() for s in silver],
                                         held, config, device, on_progress, stage=f"self-train {round_}")
        log += [{**entry, "round": round_} for entry in fine_log]
        threshold, held_f1, heldout_scores, held_detail = calibrate(classifier, tokenizer, held, config, device,
                                                                    list(schema.relations))
    classifier.eval()
    digest = corpus_digest(corpus) if corpus else None
    meta = {
        "relations": list(schema.relations),
        "threshold": threshold,
        "heldout": {"instances": crossfit_info["scored"] if crossfit_info else len(heldout), "f1": held_f1,
                    "best_epoch": best_epoch, "scores": heldout_scores, **held_detail,
                    **({"crossfit": crossfit_info} if crossfit_info else {})},
        "train": {"instances": len(train_set), "positives": sum(1 for i in train_set if i.label),
                  "examples": len(examples), "relation_negatives": len(schema.negatives),
                  "negatives_from": "known mentions" if mentions else "name-like spans"},
        "encoder": {"name": source.name, "fingerprint": source.fingerprint},
        "config": config.to_dict(),
        "schema": {"name": schema.name, "hash": schema.content_hash(), "relations": relation_signature(schema)},
        "sidecar": sidecar_hash(sidecar) if config.use_synthetic else "unused",
        "cache_key": cache_key(schema, sidecar, config, source.fingerprint, mentions, digest),
        "fsre_version": __version__,
        "seconds": round(time.time() - started, 1),
    }
    if corpus:
        meta["corpus"] = {"sentences": len(corpus), "digest": digest,
                          "silver": {"positives": sum(1 for x in silver if x.relation), "negatives":
                                     sum(1 for x in silver if x.relation is None)} if rounds else None}
    artifact = Artifact(classifier=classifier, tokenizer=tokenizer, meta=meta, log=log,
                        silver=[x.to_record() for x in silver])
    return TrainResult(artifact, log, time.time() - started, silver)


def _batches(n: int, batch_size: int) -> int:
    return (n + batch_size - 1) // batch_size


def pretrain_items(schema: Schema, examples: list[Example], sidecar: Sidecar | None, tokenizer,
                   max_length: int, packing: str = "pair") -> list[PretrainItem]:
    """Stage 1/2 corpus: examples, synthetic examples and explanations (tied to head and tail),
    marked in the style fine-tuning uses."""
    index = {name: i for i, name in enumerate(schema.relations)}
    style = style_of(packing)
    items = [PretrainItem(mark_pair(example_pair(e), tokenizer, max_length, style), index[e.relation])
             for e in examples]
    for exp in sidecar.explanations if sidecar else []:
        rel = schema.relations.get(exp.relation)
        if rel is None:
            continue
        pair = explanation_pair(exp.text, exp.head, exp.tail, rel.head_types[0], rel.tail_types[0])
        if pair is not None:
            # the explanation's own wording is not a relation span for SCL: relation -1
            items.append(PretrainItem(mark_pair(pair, tokenizer, max_length, style), -1))
        else:
            ids = tokenizer(exp.text, truncation=True, max_length=max_length)["input_ids"]
            cats = [SPECIAL] + [OTHER] * (len(ids) - 2) + [SPECIAL]
            items.append(PretrainItem(MarkedPair(ids, 0, 0, cats), -1))
    return items


def corpus_items(corpus: Sequence[CorpusSentence], schema: Schema, tokenizer, max_length: int, packing: str,
                 seed: int) -> list[PretrainItem]:
    """One marked candidate pair per corpus sentence (drawn with `seed`): MSLM masks the
    tokens between its two mentions with TKRE's 0.8, the mentions 0.5, the rest 0.2."""
    rng = random.Random(f"corpus-pairs/{seed}")
    style = style_of(packing)
    pairs = [rng.choice(pairs) for pairs in (s.candidate_pairs(schema) for s in corpus) if pairs]
    return [PretrainItem(marked, -1) for marked in mark_pairs(pairs, tokenizer, max_length, style)]


def corpus_epochs(items: int, config: TrainConfig) -> int:
    """Whole MSLM epochs over `items` corpus sentences closest to `config.corpus_steps` steps, from
    1 to 10: the time stays bounded for a large corpus, and a small one is still read enough for the
    masked-LM head (fresh on the bundled encoder) to learn something."""
    per_epoch = _batches(items, config.batch_size)
    return max(1, min(10, round(config.corpus_steps / max(1, per_epoch))))


def pretrain_stages(mlm, tokenizer, schema: Schema, examples: list[Example], sidecar: Sidecar | None,
                    config: TrainConfig, device: str, on_progress: OnProgress | None,
                    corpus: Sequence[CorpusSentence] = ()) -> list[dict]:
    """MSLM over the corpus (when given), stage 1 (MSLM) over the examples, then stage 2 (SCL
    with MSLM kept on) unless `config.scl` is off."""
    items = pretrain_items(schema, examples, sidecar, tokenizer, config.max_length, config.packing)
    stages = [("mslm", config.mslm_epochs, False, items)]
    if config.scl:
        stages.append(("scl", config.scl_epochs, True, items))
    if corpus and config.corpus_steps:
        found = corpus_items(corpus, schema, tokenizer, config.max_length, config.packing, config.seed)
        stages.insert(0, ("corpus", corpus_epochs(len(found), config), False, found))
    log: list[dict] = []
    for name, epochs, use_scl, stage_items in stages:
        total = epochs * _batches(len(stage_items), config.batch_size)
        done = [0]

        def step(entry: dict, name=name, total=total, done=done) -> None:
            done[0] += 1
            if on_progress:
                on_progress(name, done[0], total)

        log += pretrain(mlm, tokenizer, stage_items, num_relations=len(schema.relations), epochs=epochs, use_scl=use_scl,
                        batch_size=config.batch_size, lr=config.pretrain_lr, seed=config.seed, device=device,
                        precision=config.precision, on_step=step, stage=name)
    return log


@dataclass
class HeldOut:
    """The held-out slice, marked once: early stopping and calibration both score it."""

    pairs: Encoded
    labels: list[int]  # 0 = NOTA, i = relation i (schema order, from 1)
    allowed: list[list[bool]]

    @classmethod
    def mark(cls, instances: Sequence[Instance], schema: Schema, tokenizer, max_length: int,
             packing: str = "pair") -> "HeldOut":
        labels = label_ids(instances, schema)
        allowed = [allowed_mask(schema, i.pair.head_type, i.pair.tail_type) for i in instances]
        return cls(encode_pairs([i.pair for i in instances], tokenizer, max_length, packing), labels, allowed)

    def probs(self, classifier: PairClassifier, tokenizer, config: TrainConfig, device: str) -> torch.Tensor:
        # at the tile shape extraction scores with by default: the threshold meets the same numbers
        return predict_probs(classifier, self.pairs, self.allowed, tokenizer.pad_token_id, device,
                             batch_size=tile_rows(config.packing, SCORING_ROWS), precision=config.precision)


def label_ids(instances: Sequence[Instance], schema: Schema) -> list[int]:
    index = {name: i + 1 for i, name in enumerate(schema.relations)}
    return [index[i.label] if i.label else 0 for i in instances]


def excluded_ids(instances: Sequence[Instance], schema: Schema) -> list[int]:
    """Per instance, the relation (class id) a schema `negatives:` pair does not hold, else -1."""
    index = {name: i + 1 for i, name in enumerate(schema.relations)}
    return [index[i.not_relation] if i.not_relation in index else -1 for i in instances]


def pair_loss(logits: torch.Tensor, labels: torch.Tensor, excluded: torch.Tensor,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy over NOTA + relations; for a "not R" pair (`excluded` = R, label ignored),
    -log(1 - p(R)) instead: it lowers R alone, since the pair may hold another relation. With
    `weights`, the weighted mean over pairs."""
    logits = logits.float()
    negative = excluded >= 0
    per_pair = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    if bool(negative.any()):
        log_probs = torch.log_softmax(logits[negative], dim=-1)
        p_excluded = log_probs.gather(1, excluded[negative].unsqueeze(1)).squeeze(1).exp()
        per_pair = per_pair.clone()
        per_pair[negative] = -torch.log1p(-p_excluded.clamp(max=1 - 1e-6))
    if weights is not None:
        return (per_pair * weights).sum() / weights.sum().clamp(min=1e-9)
    return per_pair.mean()


def stopping_epochs(config: TrainConfig) -> tuple[int, int]:
    """`min_epochs` and `patience` in epochs of this config. They count epochs of 16 passes a
    step, what they were set for: with fewer passes a step (`packed_batch`) an epoch has
    proportionally more steps, so they count fewer epochs, and early stopping keeps epochs to
    choose from within the step budget (at 8 passes, Re-DocRED's 56-step epochs left 7 in the
    budget, fewer than `min_epochs`, so only the last one could be chosen)."""
    scale = 1.0 if config.packing == "pair" else config.packed_batch / 16
    return max(1, math.ceil(config.min_epochs * scale)), max(1, math.ceil(config.patience * scale))


STATEMENT_SCALE = 5.0  # a relation row's logit range over the statements' spread (statement_rows)


def new_classifier(mlm, tokenizer, schema: Schema, examples: Sequence[Example], config: TrainConfig,
                   device: str) -> PairClassifier:
    """A classifier over the (pre-trained) encoder, its relation rows set from the schema's
    statements when `config.statement_rows`."""
    classifier = PairClassifier(mlm.base_model, len(schema.relations), context=config.pair_context).to(device)
    if config.statement_rows:
        statement_rows(classifier, tokenizer, schema, examples, config, device)
    return classifier


@torch.no_grad()
def statement_rows(classifier: PairClassifier, tokenizer, schema: Schema, examples: Sequence[Example],
                   config: TrainConfig, device: str) -> list[str]:
    """Start each relation's classifier row from what the user wrote about it: its template
    filled with each example's head and tail (`data.statement_instances`), encoded, gives the
    relation a direction (its statements' mean state minus the mean over all statements); the
    row reads that direction, scaled so logits span about `STATEMENT_SCALE` over the
    statements' spread, and NOTA's bias sits at half a statement's own logit. At K = 8 the
    randomly initialised layer otherwise starts from nothing the schema says. Relations without
    a usable statement keep their random row. Returns the relations set."""
    instances = statement_instances(examples, schema)
    if not instances:
        return []
    encoded = encode_pairs([i.pair for i in instances], tokenizer, config.max_length, config.packing)
    states = pair_embeddings(classifier, encoded, tokenizer.pad_token_id, device, config.precision)
    labels = torch.tensor(label_ids(instances, schema))
    centre = states.mean(0)
    spread = (states - centre).norm(dim=-1).mean().clamp(min=1e-6)
    weight, bias = classifier.head.weight, classifier.head.bias
    own, names = [], list(schema.relations)
    for r in labels.unique().tolist():
        direction = states[labels == r].mean(0) - centre
        row = STATEMENT_SCALE * direction / direction.norm().clamp(min=1e-6) / spread
        weight[r] = row.to(weight.device, weight.dtype)
        bias[r] = float(-(row @ centre))
        own.append(float(row @ direction))
    weight[0] = 0.0
    bias[0] = 0.5 * sum(own) / len(own)
    return [names[r - 1] for r in labels.unique().tolist()]


def fine_tune(classifier: PairClassifier, tokenizer, schema: Schema, train_set: Sequence[Instance], held: HeldOut,
              config: TrainConfig, device: str, on_progress: OnProgress | None,
              stage: str = "fine-tune") -> tuple[list[dict], int]:
    """Cross-entropy over NOTA + relations with early stopping on the held-out slice's F1 (then
    its loss); the classifier is left at its best epoch. Returns the epoch log and that epoch."""
    train_pairs = encode_pairs([i.pair for i in train_set], tokenizer, config.max_length, config.packing)
    train_labels = torch.tensor(label_ids(train_set, schema))
    train_excluded = torch.tensor(excluded_ids(train_set, schema))
    weights = None
    if config.packing != "pair" and config.nota_balance:
        weights = torch.tensor(nota_weights(train_set, config.negatives_per_example))
    optimizer = adamw([{"params": classifier.encoder.parameters(), "lr": config.lr},
                       {"params": classifier.head.parameters(), "lr": config.head_lr}], config.lr, device)
    gen = random.Random(config.seed)
    best_state, best_f1, best_loss, best_epoch, stale = None, -1.0, float("inf"), 0, 0
    rows = config.batch_size if config.packing == "pair" else config.packed_batch
    steps_per_epoch = _batches(len(train_pairs.sequences), rows)
    min_epochs, patience = stopping_epochs(config)
    epochs = max(1, min(config.epochs, -(-config.max_steps // max(1, steps_per_epoch))))
    total, done = epochs * steps_per_epoch, 0
    log: list[dict] = []
    for epoch in range(epochs):
        classifier.train()
        losses = []
        with training_attention(classifier.encoder, device):  # eager on a CPU: a faster backward pass
            for idx in length_grouped_batches(train_pairs.lengths, rows, gen):
                batch = collate([train_pairs.sequences[i] for i in idx], tokenizer.pad_token_id)
                read, where = pair_reads(train_pairs, idx)
                with autocast(config.precision, device):
                    logits = classifier(batch["input_ids"].to(device), batch["attention_mask"].to(device),
                                        where["head_index"].to(device), where["tail_index"].to(device),
                                        where["rows"].to(device))
                loss = pair_loss(logits, train_labels[read].to(device), train_excluded[read].to(device),
                                 None if weights is None else weights[read].to(device))
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(classifier.parameters(), 1.0)
                optimizer.step()
                losses.append(loss.item())
                done += 1
                if on_progress:
                    on_progress(stage, done, total)
        entry = {"stage": "fine-tune", "epoch": epoch, "loss": sum(losses) / max(1, len(losses))}
        if held.pairs:
            probs = held.probs(classifier, tokenizer, config, device)
            threshold, f1 = calibrate_threshold(probs, held.labels)
            held_loss = float(torch.nn.functional.nll_loss(probs.clamp(min=1e-9).log(), torch.tensor(held.labels)))
            entry.update({"heldout_f1": f1, "heldout_loss": held_loss, "threshold": threshold})
            if epoch + 1 >= min(min_epochs, epochs) and (f1, -held_loss) > (best_f1, -best_loss):
                best_f1, best_loss, best_epoch, stale = f1, held_loss, epoch, 0
                best_state = copy.deepcopy(classifier.state_dict())
            elif epoch + 1 >= min_epochs:
                stale += 1
        log.append(entry)
        if held.pairs and stale >= patience:
            break
    if best_state is not None:
        classifier.load_state_dict(best_state)
    return log, best_epoch


def calibrate(classifier: PairClassifier, tokenizer, held: HeldOut, config: TrainConfig, device: str,
              relations: Sequence[str] = ()) -> tuple[float, float | None, list[float], dict]:
    """The threshold, the held-out F1 at it, the held-out pairs' best-relation scores (the
    cascade calibrates its band on them at extraction time), and for the other decision rules
    (`TkreScorer`): per-relation thresholds, and every held-out pair's best score with whether
    its best relation is its gold one (`--min-precision` picks its threshold on them). Without a
    held-out slice: 0.5 and nothing else."""
    if not held.pairs:
        return 0.5, None, [], {}
    return calibrate_probs(held.probs(classifier, tokenizer, config, device), held.labels, held.allowed, relations)


def calibrate_probs(probs: torch.Tensor, labels: Sequence[int], allowed: Sequence[Sequence[bool]],
                    relations: Sequence[str] = ()) -> tuple[float, float | None, list[float], dict]:
    """`calibrate` on scores already computed (a held-out slice's, or cross-fitting's out-of-fold ones)."""
    labels = list(labels)
    threshold, f1 = calibrate_threshold(probs, labels)
    # pairs whose types allow no relation are never candidates at extraction time: not kept
    kept = [i for i, mask in enumerate(allowed) if any(mask[1:])]
    scores = sorted(round(float(probs[i, 1:].max()), 5) for i in kept)
    best = probs[:, 1:].argmax(dim=-1)
    scored = [[round(float(probs[i, 1:].max()), 6), int(best[i]) + 1 == labels[i]] for i in kept]
    detail = {"scored": scored, "gold": sum(1 for y in labels if y > 0),
              "relation_thresholds": relation_thresholds(probs, labels, relations) if relations else {}}
    return threshold, f1, scores, detail


def cross_fit(mlm, tokenizer, schema: Schema, instances: Sequence[Instance], train_set: Sequence[Instance],
              config: TrainConfig, device: str, on_progress: OnProgress | None, examples: Sequence[Example] = ()):
    """Fine-tuning by cross-fitting: for each of `config.crossfit` folds of the example sentences
    (`data.crossfit_folds`), a model fine-tuned from the pre-trained encoder on the other folds,
    stopped early on its own fold, scores that fold; the final model is fine-tuned on every
    sentence for the folds' median best epoch count. The threshold is calibrated on the
    out-of-fold scores, so at K = 8 it reads every example's pairs instead of a fifth of them,
    and no example is kept from training. Returns (classifier, log, final epochs - 1,
    calibration as `calibrate` returns it, what the folds did)."""
    folds = crossfit_folds(instances, config.crossfit, config.seed)
    pretrained = copy.deepcopy(mlm.state_dict())
    relations = list(schema.relations)
    log: list[dict] = []
    probs_parts, labels, allowed, best_epochs, sizes = [], [], [], [], []
    for number, groups in enumerate(folds, 1):
        scored = [i for i in instances if i.group in groups]
        if not scored:
            continue
        mlm.load_state_dict(pretrained)
        classifier = new_classifier(mlm, tokenizer, schema, examples, config, device)
        held = HeldOut.mark(scored, schema, tokenizer, config.max_length, config.packing)
        fold_log, best = fine_tune(classifier, tokenizer, schema, [i for i in train_set if i.group not in groups],
                                   held, config, device, on_progress, stage=f"fold {number}/{len(folds)}")
        log += [{**entry, "fold": number} for entry in fold_log]
        probs_parts.append(held.probs(classifier, tokenizer, config, device))
        labels += held.labels
        allowed += held.allowed
        best_epochs.append(best)
        sizes.append(len(scored))
    final_epochs = int(statistics.median(best_epochs)) + 1 if best_epochs else config.epochs
    mlm.load_state_dict(pretrained)
    classifier = new_classifier(mlm, tokenizer, schema, examples, config, device)
    nothing = HeldOut.mark([], schema, tokenizer, config.max_length, config.packing)
    final_log, _ = fine_tune(classifier, tokenizer, schema, train_set, nothing,
                             dataclasses.replace(config, epochs=final_epochs), device, on_progress)
    log += final_log
    if probs_parts:
        calibration = calibrate_probs(torch.cat(probs_parts), labels, allowed, relations)
    else:
        calibration = (0.5, None, [], {})
    info = {"folds": len(folds), "scored": sum(sizes), "fold_instances": sizes, "best_epochs": best_epochs,
            "final_epochs": final_epochs}
    return classifier, log, final_epochs - 1, calibration, info
