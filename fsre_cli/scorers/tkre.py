"""`tkre`: the fine-tuned TKRE classifier (the default method). A pair's labels are restricted
to the relations its types allow; the decision is the model's calibrated threshold."""

from __future__ import annotations

from typing import Any, Sequence

from fsre_cli.documents import Candidate, Sentence
from fsre_cli.scorers.base import Prediction, ScorerOptions, needs_examples
from fsre_cli.tkre.artifact import Artifact
from fsre_cli.tkre.config import SCORING_ROWS
from fsre_cli.tkre.encoder import native_bf16
from fsre_cli.tkre.inference import predict_probs
from fsre_cli.tkre.markers import PairSpec
from fsre_cli.tkre.packing import FLUSH_PAIRS, Encoded, encode_pairs, tile_rows


class TkreScorer:
    """The fine-tuned classifier; a pair's labels are restricted to what its types allow."""

    method = "tkre"
    decides_by_threshold = True

    def __init__(self, artifact: Artifact, *, threshold: float | None = None, device: str = "cpu",
                 batch_size: int = SCORING_ROWS, max_length: int | None = None, decision: str = "threshold",
                 min_precision: float | None = None, quantize: str = "none", log: Any = None) -> None:
        """`decision`: "threshold" (the calibrated one, or `threshold`), "nota" (the best relation
        when its probability beats NOTA's), "relation" (per-relation held-out thresholds where a
        relation had enough held-out pairs, else the global one). `min_precision`: the threshold
        at which the held-out triples reach that precision (overrides the calibrated one).
        `quantize`: "int8" runs the encoder through ONNX Runtime in int8 (`tkre.int8`), exported
        once beside the model; "none" runs it in torch, in the precision it was trained in."""
        self.artifact = artifact
        self.relations = artifact.relations
        self.decision = decision
        self.threshold = artifact.threshold if threshold is None else threshold
        held = artifact.meta.get("heldout", {})
        self.relation_thresholds: dict[str, float] = dict(held.get("relation_thresholds") or {})
        if min_precision is not None:
            self.threshold = self._precision_threshold(held, min_precision, log)
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length or int(artifact.meta["config"].get("max_length", 128))
        self.packing = artifact.meta["config"].get("packing", "pair")  # scored as it was trained
        # scored in the precision it was calibrated in, where this device has it natively
        trained_in = artifact.meta["config"].get("precision", "fp32")
        self.precision = trained_in if trained_in == "fp32" or native_bf16(device) else "fp32"
        self.quantize = quantize
        self.encode = None
        if quantize == "int8":
            from fsre_cli.tkre.int8 import cpu_only, load_for

            cpu_only(device)
            self.encode = load_for(artifact, log)
            self.precision = "fp32"  # the head reads int8 states in fp32

    def _precision_threshold(self, held: dict, min_precision: float, log: Any) -> float:
        from fsre_cli.errors import UsageError
        from fsre_cli.tkre.calibration import precision_threshold

        scored = held.get("scored")
        if not scored:
            raise UsageError("--min-precision needs the held-out pairs' scores, which this model does not record "
                             "(trained without a held-out slice, or by an older fsre: train it again)")
        found = precision_threshold([(s, bool(c)) for s, c in scored], int(held.get("gold") or 0), min_precision)
        if found is None:
            top = max(scored, key=lambda x: x[0])[0]
            if log:
                log.warn(f"no threshold reaches precision {min_precision:g} on the {len(scored)} held-out pairs; "
                         f"using the highest held-out score ({top:.3g}), so few triples come out")
            return top
        return found

    @property
    def tile_rows(self) -> int:
        """Sequences per encoder batch (see `tkre.packing.tile_rows`)."""
        return tile_rows(self.packing, self.batch_size)

    @property
    def flush_pairs(self) -> int:
        """Candidate pairs the pipeline gathers per `predict` call."""
        return FLUSH_PAIRS[self.packing]

    @property
    def heldout_scores(self) -> list[float]:
        """Best-relation scores of the held-out pairs at training time (the cascade calibrates on them)."""
        return list(self.artifact.meta.get("heldout", {}).get("scores") or [])

    def mark(self, candidates: Sequence[Candidate]) -> Encoded:
        """The encoder inputs; in packed mode a sentence's candidates must come in one call."""
        return mark_candidates(candidates, self.artifact.tokenizer, self.max_length, self.packing)

    def predict(self, candidates: Sequence[Candidate]) -> list[Prediction]:
        if not candidates:
            return []
        allowed = [[True] + [r in c.relations for r in self.relations] for c in candidates]
        probs = predict_probs(self.artifact.classifier, self.mark(candidates), allowed,
                              self.artifact.tokenizer.pad_token_id, self.device, self.tile_rows, self.precision,
                              encode=self.encode)
        out = []
        for row in probs:
            score, idx = row[1:].max(dim=-1)
            best = self.relations[int(idx)]
            score, nota = float(score), float(row[0])
            out.append(Prediction(best if self.keeps(best, score, nota) else None, score, best, score, nota))
        return out

    def keeps(self, relation: str, score: float, nota: float, decision: str | None = None) -> bool:
        """The decision rule (this scorer's, or `decision`): does the pair's best relation become a triple?"""
        decision = decision or self.decision
        if decision == "nota":
            return score > nota
        if decision == "relation":
            return score >= self.relation_thresholds.get(relation, self.threshold)
        return score >= self.threshold

    def run_summary(self) -> dict[str, Any]:
        return {}


def mark_candidates(candidates: Sequence[Candidate], tokenizer, max_length: int, packing: str) -> Encoded:
    """Candidate pairs as encoder inputs in `packing`, each sentence known by its place in its document."""
    return encode_pairs([PairSpec.of_candidate(c) for c in candidates], tokenizer, max_length, packing,
                        [(c.sentence.doc_id, c.sentence.index, c.sentence.start) for c in candidates])


def load_or_train(schema, sidecar, options: ScorerOptions) -> Artifact:
    """The model `options` name: an injected artifact, a model folder, the cached one, or one trained now."""
    from fsre_cli.tkre.config import TrainConfig
    from fsre_cli.tkre.store import ensure_model
    from fsre_cli.tkre.train import example_mentions

    if options.artifact is not None:
        return options.artifact
    config = options.train or TrainConfig(encoder=options.encoder, precision=options.precision,
                                          packing=options.packing or TrainConfig.packing)
    mentions = options.mentions
    if mentions is None and options.recognizer is not None and options.model is None:
        mentions = example_mentions(schema, sidecar, config, options.recognizer)
    artifact, where = ensure_model(schema, sidecar, config, model_dir=options.model, device=options.device,
                                   mentions=mentions, save=options.save_model, log=options.log)
    trained_as = artifact.meta["config"].get("packing", "pair")
    if options.packing and options.packing != trained_as and options.log:
        options.log.warn(f"--packing {options.packing}: the model {where} was trained with packing {trained_as}, "
                         "and is scored that way")
    if options.log:
        options.log.debug(f"model: {where}")
    return artifact


def build(schema, sidecar, options: ScorerOptions) -> TkreScorer:
    needs_examples(schema, "tkre")
    return TkreScorer(load_or_train(schema, sidecar, options), device=options.device, batch_size=options.batch_size,
                      decision=options.decision, min_precision=options.min_precision, quantize=options.quantize,
                      log=options.log)


def example_verifier(scorer: TkreScorer):
    """`verify(example) -> bool` for synthetic data: reject an example when the classifier
    confidently assigns its pair a *different* relation (NOTA or low confidence is no
    contradiction: the point of synthetic data is to teach what the classifier lacks)."""

    def verify(ex) -> bool:
        sentence = Sentence("synthetic", 0, 0, len(ex.text), ex.text)
        pred = scorer.predict([Candidate(sentence, ex.head, ex.tail, tuple(scorer.relations))])[0]
        return pred.relation is None or pred.relation == ex.relation

    return verify
