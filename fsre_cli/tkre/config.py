"""What determines a trained model: the training knobs and the cache key made from them.

Everything that changes the weights or the threshold goes into `cache_key`, so a model found
in the cache is the one training would produce again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Mapping, Sequence

from fsre_cli.formats import FORMATS
from fsre_cli.schema import Schema, Span
from fsre_cli.sidecar import Sidecar


# Rows of every scoring tile (see `tkre.inference.tiles`): held-out calibration and extraction
# score at the same shape by default, so a threshold is set on the very scores it will meet.
SCORING_ROWS = 64
MAX_SCORING_ROWS = 1024  # every tile has exactly this many rows: a larger value only costs memory


def check_batch_size(rows: int) -> int:
    from fsre_cli.errors import UsageError

    if not 1 <= rows <= MAX_SCORING_ROWS:
        raise UsageError(f"--batch-size must be from 1 to {MAX_SCORING_ROWS}, not {rows} (every batch is padded "
                         "to exactly this many pairs)")
    return rows


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
    statements: bool = False  # each example's relation template filled with its head and tail, as a positive
    # each relation's classifier row starts from its encoded template statements (train.statement_rows)
    statement_rows: bool = False
    lr: float = 3e-5
    head_lr: float = 1e-3
    batch_size: int = 16
    max_length: int = 128
    heldout: float = 0.2
    # False: sentences that carry a reviewed decision (`fsre review`) only train, never calibrate, so a
    # review changes the model and not which slice sets the threshold. True puts them in the held-out
    # draw like any example (what fsre did before this default, measured worse: BENCHMARKS.md)
    heldout_review: bool = False
    # k >= 2: cross-fitting instead of a held-out slice. k fold models give every example sentence
    # an out-of-fold score (the threshold and early stopping read those); the final model trains
    # on all of them for the folds' median best epoch count. Costs k more fine-tunings.
    crossfit: int = 0
    use_synthetic: bool = True
    seed: int = 0
    precision: str = "auto"  # auto, fp32 or bf16 (auto: bf16 where the device has it natively)
    packing: str = "head"  # pair: one encoder pass per pair; head: one per head mention; sentence: one per sentence
    # packed modes only (off where they do not apply, see `for_device`):
    nota_balance: bool = False  # a sentence's NOTA pairs weigh what per-pair mode samples (data.nota_weights)
    pair_context: bool = False  # the classifier also reads each pair's pooled context (model.pair_context)
    packed_batch: int = 16  # marked passes per fine-tuning step (a pass holds a head's or a sentence's pairs)
    # MSLM over the user's corpus sentences, when there is a corpus: about this many steps, in whole
    # epochs (at least 1, at most 10), so a small corpus is read several times and a large one once
    corpus_steps: int = 150
    self_train: int = 0  # rounds of self-training on the corpus (tkre.silver)
    silver_ratio: float = 1.0  # silver positives per relation, at most this times its real examples

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def for_device(self, device: str) -> "TrainConfig":
        """This config with `precision` resolved for `device`, and the packed-only knobs off in
        per-pair mode: the cache key and the model's metadata name what training really ran."""
        from fsre_cli.tkre.encoder import pick_precision

        packed_only = {"pair_context": self.pair_context and self.packing == "sentence",
                       "nota_balance": self.nota_balance and self.packing != "pair"}
        return dataclasses.replace(self, precision=pick_precision(self.precision, device), **packed_only)


def sidecar_hash(sidecar: Sidecar | None) -> str:
    if sidecar is None or sidecar.is_empty():
        return "none"
    data = json.dumps(sidecar.records, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def mentions_hash(mentions: Mapping[str, Sequence[Span]]) -> str:
    data = sorted((text, sorted((m.start, m.end, m.type) for m in spans)) for text, spans in mentions.items())
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()


def cache_key(schema: Schema, sidecar: Sidecar | None, config: TrainConfig, encoder_fingerprint: str,
              mentions: Mapping[str, Sequence[Span]] | None = None, corpus: str | None = None) -> str:
    """A hash of everything that determines the model: schema, sidecar data, encoder, knobs,
    the example sentences' known mentions (they decide the NOTA pairs), and the digest of the
    corpus sentences pre-training read (`corpus.corpus_digest`), if any."""
    knobs = config.to_dict()
    if not corpus:
        knobs["self_train"] = 0  # no corpus: these knobs change nothing
        del knobs["corpus_steps"]
    if not knobs["self_train"]:
        del knobs["self_train"], knobs["silver_ratio"]
    if not knobs.get("crossfit"):
        del knobs["crossfit"]  # off, as before the knob: keys stay valid
    if not knobs.get("statements"):
        del knobs["statements"]  # off, as before the knob: keys stay valid
    for knob in ("nota_balance", "pair_context", "statement_rows"):
        if not knobs.get(knob):
            del knobs[knob]  # off, as before the knob: keys stay valid
    if knobs.get("heldout_review", True) or not schema.review:
        # on (as before the knob, so those models keep their keys), or no review to keep out
        del knobs["heldout_review"]
    if knobs.get("packing") == "pair" or knobs.get("packed_batch") == 16:
        del knobs["packed_batch"]  # unused per pair; 16 is what packed models before the knob used
    if knobs.get("packing") == "pair":
        del knobs["packing"]  # the mode models before the knob were trained in: their keys stay valid
    if knobs.get("precision") == "fp32":
        del knobs["precision"]  # fp32 is what models before the knob ran in: their keys stay valid
    payload = {
        "schema": schema.content_hash(),
        "sidecar": sidecar_hash(sidecar) if config.use_synthetic else "unused",
        "encoder": encoder_fingerprint,
        "config": knobs,
        "format": FORMATS["model-key"].version,
    }
    if mentions:
        payload["mentions"] = mentions_hash(mentions)
    if corpus:
        payload["corpus"] = corpus
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
