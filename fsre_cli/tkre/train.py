"""`fsre train`: two-stage pre-training, then fine-tuning with NOTA, into a cached artifact."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch

from fsre_cli import __version__
from fsre_cli.evaluation import best_cut
from fsre_cli.schema import Example, Schema, Span
from fsre_cli.sidecar import Sidecar
from fsre_cli.tkre.artifact import Artifact
from fsre_cli.tkre.data import Instance, build_instances, example_pair, explanation_pair, split_heldout
from fsre_cli.tkre.encoder import autocast, load_masked_lm, load_tokenizer, pick_precision, resolve_encoder
from fsre_cli.tkre.markers import OTHER, SPECIAL, MarkedPair, mark_pair, mark_pairs
from fsre_cli.tkre.model import PairClassifier, collate, length_grouped_batches
from fsre_cli.tkre.pretrain import PretrainItem, pretrain


@dataclass(frozen=True)
class TrainConfig:
    """Every knob that changes the trained model (all of it goes into the cache key)."""

    encoder: str | None = None
    pretrain: bool = True  # stage 1 (MSLM)
    scl: bool = True  # stage 2 (SCL + MSLM)
    mslm_epochs: int = 5
    scl_epochs: int = 5
    pretrain_lr: float = 2e-5
    epochs: int = 30  # fine-tuning, at most (early stopping on the held-out slice)
    patience: int = 8
    min_epochs: int = 8  # a few-shot held-out slice is too small to stop earlier on
    max_steps: int = 360  # fine-tuning step budget: bounds the time on crowded or large schemas
    negatives_per_example: int = 4  # sampled in-sentence NOTA pairs per example (plus one re-typed)
    lr: float = 3e-5
    head_lr: float = 1e-3
    batch_size: int = 16
    max_length: int = 128
    heldout: float = 0.2
    use_synthetic: bool = True
    seed: int = 0
    precision: str = "auto"  # auto, fp32 or bf16 (auto: bf16 where the device has it natively)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def for_device(self, device: str) -> "TrainConfig":
        """This config with `precision` resolved for `device`: the cache key and the model's
        metadata name what training really ran in."""
        return dataclasses.replace(self, precision=pick_precision(self.precision, device))


@dataclass
class TrainResult:
    artifact: Artifact
    log: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def sidecar_hash(sidecar: Sidecar | None) -> str:
    if sidecar is None or sidecar.is_empty():
        return "none"
    data = json.dumps(sidecar.records, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def cache_key(schema: Schema, sidecar: Sidecar | None, config: TrainConfig, encoder_fingerprint: str,
              mentions: Mapping[str, Sequence[Span]] | None = None) -> str:
    """A hash of everything that determines the model: schema, sidecar data, encoder, knobs, and
    the example sentences' known mentions (they decide the NOTA pairs)."""
    knobs = config.to_dict()
    if knobs.get("precision") == "fp32":
        del knobs["precision"]  # fp32 is what models before the knob ran in: their keys stay valid
    payload = {
        "schema": schema.content_hash(),
        "sidecar": sidecar_hash(sidecar) if config.use_synthetic else "unused",
        "encoder": encoder_fingerprint,
        "config": knobs,
        "format": 2,  # 2: thresholds calibrated on held-out scores, not a 0.05 grid
    }
    if mentions:
        payload["mentions"] = mentions_hash(mentions)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def mentions_hash(mentions: Mapping[str, Sequence[Span]]) -> str:
    data = sorted((text, sorted((m.start, m.end, m.type) for m in spans)) for text, spans in mentions.items())
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _mark_all(instances: Sequence[Instance], tokenizer, max_length: int) -> list[MarkedPair]:
    return mark_pairs([i.pair for i in instances], tokenizer, max_length)


def _pretrain_items(
    schema: Schema, examples: list[Example], sidecar: Sidecar | None, tokenizer, max_length: int
) -> list[PretrainItem]:
    """Stage 1/2 corpus: examples, synthetic examples and explanations (tied to head and tail)."""
    index = {name: i for i, name in enumerate(schema.relations)}
    items = [PretrainItem(mark_pair(example_pair(e), tokenizer, max_length), index[e.relation]) for e in examples]
    for exp in sidecar.explanations if sidecar else []:
        rel = schema.relations.get(exp.relation)
        if rel is None:
            continue
        pair = explanation_pair(exp.text, exp.head, exp.tail, rel.head_types[0], rel.tail_types[0])
        if pair is not None:
            # the explanation's own wording is not a relation span for SCL: relation -1
            items.append(PretrainItem(mark_pair(pair, tokenizer, max_length), -1))
        else:
            ids = tokenizer(exp.text, truncation=True, max_length=max_length)["input_ids"]
            cats = [SPECIAL] + [OTHER] * (len(ids) - 2) + [SPECIAL]
            items.append(PretrainItem(MarkedPair(ids, 0, 0, cats), -1))
    return items


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
    on_progress: Callable[[str, int, int], None] | None = None,
    mentions: Mapping[str, Sequence[Span]] | None = None,
) -> TrainResult:
    """Train the schema's classifier. `on_progress(stage, done, total)` reports steps.
    `mentions` (example text -> its typed entity spans) gives real NOTA pairs from the
    example sentences; without it they are guessed from name-like spans."""
    started = time.time()
    config = config.for_device(device)
    _seed_everything(config.seed)
    source = resolve_encoder(config.encoder or schema.encoder)
    tokenizer = load_tokenizer(source)
    mlm = load_masked_lm(source).to(device)
    relations = list(schema.relations)
    examples = training_examples(schema, sidecar, config)
    if not examples:
        from fsre_cli.errors import UsageError

        raise UsageError(f"schema {schema.name!r} has no examples to train on; use --method qa4re for zero-shot")

    log: list[dict] = []
    instances = build_instances(examples, schema, seed=config.seed, mentions=mentions,
                                negatives_per_example=config.negatives_per_example)
    train_set, heldout = split_heldout(instances, config.heldout, config.seed)
    n_batches = lambda n: (n + config.batch_size - 1) // config.batch_size  # noqa: E731

    if config.pretrain:
        items = _pretrain_items(schema, examples, sidecar if config.use_synthetic else None,
                                tokenizer, config.max_length)
        stages = [("mslm", config.mslm_epochs, False)] + ([("scl", config.scl_epochs, True)] if config.scl else [])
        for name, epochs, use_scl in stages:
            total = epochs * n_batches(len(items))
            done = [0]

            def step(entry: dict, name=name, total=total, done=done) -> None:
                done[0] += 1
                if on_progress:
                    on_progress(name, done[0], total)

            log += pretrain(mlm, tokenizer, items, num_relations=len(relations), epochs=epochs, use_scl=use_scl,
                            batch_size=config.batch_size, lr=config.pretrain_lr, seed=config.seed, device=device,
                            precision=config.precision, on_step=step)

    classifier = PairClassifier(mlm.base_model, len(relations)).to(device)
    label_index = {name: i + 1 for i, name in enumerate(relations)}
    train_pairs = _mark_all(train_set, tokenizer, config.max_length)
    train_labels = torch.tensor([label_index[i.label] if i.label else 0 for i in train_set])
    held_pairs = _mark_all(heldout, tokenizer, config.max_length)
    held_labels = [label_index[i.label] if i.label else 0 for i in heldout]
    allowed = [_allowed_mask(schema, i) for i in heldout]

    optimizer = torch.optim.AdamW(
        [
            {"params": classifier.encoder.parameters(), "lr": config.lr},
            {"params": classifier.head.parameters(), "lr": config.head_lr},
        ]
    )
    gen = random.Random(config.seed)
    best_state, best_f1, best_loss, best_epoch, stale = None, -1.0, float("inf"), 0, 0
    steps_per_epoch = n_batches(len(train_pairs))
    epochs = max(1, min(config.epochs, -(-config.max_steps // max(1, steps_per_epoch))))
    total = epochs * steps_per_epoch
    done = 0
    for epoch in range(epochs):
        classifier.train()
        losses = []
        for idx in length_grouped_batches([len(p.input_ids) for p in train_pairs], config.batch_size, gen):
            batch = collate([train_pairs[i] for i in idx], tokenizer.pad_token_id)
            with autocast(config.precision, device):
                logits = classifier(*(batch[k].to(device) for k in ("input_ids", "attention_mask", "head_index", "tail_index")))
            loss = torch.nn.functional.cross_entropy(logits.float(), train_labels[idx].to(device))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(classifier.parameters(), 1.0)
            optimizer.step()
            losses.append(loss.item())
            done += 1
            if on_progress:
                on_progress("fine-tune", done, total)
        entry = {"stage": "fine-tune", "epoch": epoch, "loss": sum(losses) / max(1, len(losses))}
        if held_pairs:
            probs = predict_probs(classifier, held_pairs, allowed, tokenizer.pad_token_id, device,
                                  precision=config.precision)
            threshold, f1 = calibrate_threshold(probs, held_labels)
            held_loss = float(torch.nn.functional.nll_loss(probs.clamp(min=1e-9).log(), torch.tensor(held_labels)))
            entry.update({"heldout_f1": f1, "heldout_loss": held_loss, "threshold": threshold})
            if epoch + 1 >= min(config.min_epochs, epochs) and (f1, -held_loss) > (best_f1, -best_loss):
                best_f1, best_loss, best_epoch, stale = f1, held_loss, epoch, 0
                best_state = copy.deepcopy(classifier.state_dict())
            elif epoch + 1 >= config.min_epochs:
                stale += 1
        log.append(entry)
        if held_pairs and stale >= config.patience:
            break
    if best_state is not None:
        classifier.load_state_dict(best_state)
    threshold = 0.5
    heldout_scores: list[float] = []
    if held_pairs:
        probs = predict_probs(classifier, held_pairs, allowed, tokenizer.pad_token_id, device,
                              precision=config.precision)
        threshold, best_f1 = calibrate_threshold(probs, held_labels)
        # kept so that the cascade can calibrate its uncertainty band on them at extraction time;
        # pairs whose types allow no relation are never candidates at extraction time, so not kept
        heldout_scores = sorted(round(float(row[1:].max()), 5) for row, mask in zip(probs, allowed) if any(mask[1:]))
    classifier.eval()
    meta = {
        "relations": relations,
        "threshold": threshold,
        "heldout": {"instances": len(heldout), "f1": best_f1 if held_pairs else None, "best_epoch": best_epoch,
                    "scores": heldout_scores},
        "train": {"instances": len(train_set), "positives": sum(1 for i in train_set if i.label),
                  "examples": len(examples),
                  "negatives_from": "known mentions" if mentions else "name-like spans"},
        "encoder": {"name": source.name, "fingerprint": source.fingerprint},
        "config": config.to_dict(),
        "schema": {"name": schema.name, "hash": schema.content_hash(), "relations": _relation_signature(schema)},
        "sidecar": sidecar_hash(sidecar) if config.use_synthetic else "unused",
        "cache_key": cache_key(schema, sidecar, config, source.fingerprint, mentions),
        "fsre_version": __version__,
        "seconds": round(time.time() - started, 1),
    }
    artifact = Artifact(classifier=classifier, tokenizer=tokenizer, meta=meta, log=log)
    return TrainResult(artifact, log, time.time() - started)


def _relation_signature(schema: Schema) -> dict:
    return {n: {"head": list(r.head_types), "tail": list(r.tail_types)} for n, r in schema.relations.items()}


def _allowed_mask(schema: Schema, inst: Instance) -> list[bool]:
    allowed = set(schema.relations_for(inst.pair.head_type, inst.pair.tail_type))
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


def ensure_model(
    schema: Schema,
    sidecar: Sidecar | None,
    config: TrainConfig,
    *,
    model_dir: str | None = None,
    device: str = "cpu",
    train_if_missing: bool = True,
    force: bool = False,
    mentions: Mapping[str, Sequence[Span]] | None = None,
    log=None,
) -> tuple[Artifact, str]:
    """The model for this schema: `model_dir` if given, else the cached one for the cache key,
    else a freshly trained one (saved to the cache). Returns it with where it came from.
    `mentions`: the example sentences' entity mentions (see `train_model`)."""
    from pathlib import Path

    from fsre_cli.errors import UsageError
    from fsre_cli.tkre.artifact import cached_model_dir, check_compatible, load_artifact, save_artifact

    if model_dir is not None:
        artifact = load_artifact(Path(model_dir), device)
        for warning in check_compatible(artifact, schema, model_dir):
            if log:
                log.warn(warning)
        return artifact, model_dir
    config = config.for_device(device)
    source = resolve_encoder(config.encoder or schema.encoder)
    key = cache_key(schema, sidecar, config, source.fingerprint, mentions)
    directory = cached_model_dir(key)
    if (directory / "fsre.json").exists() and not force:
        return load_artifact(directory, device), str(directory)
    if not train_if_missing:
        raise UsageError(f"no trained model for schema {schema.name!r}; run: fsre train {schema.path or 'SCHEMA'}")
    result = train_with_progress(schema, sidecar, config, device=device, mentions=mentions, log=log)
    save_artifact(result.artifact, directory)
    return result.artifact, str(directory)


def train_with_progress(schema: Schema, sidecar: Sidecar | None, config: TrainConfig, *, device: str = "cpu",
                        mentions: Mapping[str, Sequence[Span]] | None = None, log=None) -> TrainResult:
    """Train with a progress bar per stage (stderr, terminals only) and a summary line."""
    from contextlib import ExitStack

    if log is None:
        return train_model(schema, sidecar, config, device=device, mentions=mentions)
    log.info(f"training a model for schema {schema.name!r} ({len(schema.relations)} relations, "
             f"{len(schema.examples)} examples{', + synthetic' if sidecar and sidecar.examples and config.use_synthetic else ''}; "
             f"NOTA pairs from {'known entity mentions' if mentions else 'name-like spans'})")
    with ExitStack() as stack:
        bars: dict[str, object] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = stack.enter_context(log.progress(f"  {stage:9}", total=total))
            bars[stage].update(completed=done)

        result = train_model(schema, sidecar, config, device=device, on_progress=on_progress, mentions=mentions)
    held = result.artifact.meta["heldout"]
    f1 = f"{held['f1']:.2f}" if held["f1"] is not None else "n/a"
    log.info(f"trained in {result.seconds:.0f}s ({result.artifact.meta['config']['precision']}); "
             f"threshold {result.artifact.threshold:.3g}, held-out F1 {f1} on {held['instances']} pairs")
    return result
