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
from fsre_cli.tkre.markers import MarkedPair, PairSpec, mark_pairs


class TkreScorer:
    """The fine-tuned classifier; a pair's labels are restricted to what its types allow."""

    method = "tkre"
    decides_by_threshold = True

    def __init__(self, artifact: Artifact, *, threshold: float | None = None, device: str = "cpu",
                 batch_size: int = SCORING_ROWS, max_length: int | None = None) -> None:
        self.artifact = artifact
        self.relations = artifact.relations
        self.threshold = artifact.threshold if threshold is None else threshold
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length or int(artifact.meta["config"].get("max_length", 128))
        # scored in the precision it was calibrated in, where this device has it natively
        trained_in = artifact.meta["config"].get("precision", "fp32")
        self.precision = trained_in if trained_in == "fp32" or native_bf16(device) else "fp32"

    @property
    def heldout_scores(self) -> list[float]:
        """Best-relation scores of the held-out pairs at training time (the cascade calibrates on them)."""
        return list(self.artifact.meta.get("heldout", {}).get("scores") or [])

    def mark(self, candidates: Sequence[Candidate]) -> list[MarkedPair]:
        return mark_pairs([PairSpec.of_candidate(c) for c in candidates], self.artifact.tokenizer, self.max_length)

    def predict(self, candidates: Sequence[Candidate]) -> list[Prediction]:
        if not candidates:
            return []
        allowed = [[True] + [r in c.relations for r in self.relations] for c in candidates]
        probs = predict_probs(self.artifact.classifier, self.mark(candidates), allowed,
                              self.artifact.tokenizer.pad_token_id, self.device, self.batch_size, self.precision)
        out = []
        for row in probs:
            score, idx = row[1:].max(dim=-1)
            best = self.relations[int(idx)]
            score = float(score)
            out.append(Prediction(best if score >= self.threshold else None, score, best, score))
        return out

    def run_summary(self) -> dict[str, Any]:
        return {}


def load_or_train(schema, sidecar, options: ScorerOptions) -> Artifact:
    """The model `options` name: an injected artifact, a model folder, the cached one, or one trained now."""
    from fsre_cli.tkre.config import TrainConfig
    from fsre_cli.tkre.store import ensure_model
    from fsre_cli.tkre.train import example_mentions

    if options.artifact is not None:
        return options.artifact
    config = options.train or TrainConfig(encoder=options.encoder, precision=options.precision)
    mentions = options.mentions
    if mentions is None and options.recognizer is not None and options.model is None:
        mentions = example_mentions(schema, sidecar, config, options.recognizer)
    artifact, where = ensure_model(schema, sidecar, config, model_dir=options.model, device=options.device,
                                   mentions=mentions, save=options.save_model, log=options.log)
    if options.log:
        options.log.debug(f"model: {where}")
    return artifact


def build(schema, sidecar, options: ScorerOptions) -> TkreScorer:
    needs_examples(schema, "tkre")
    return TkreScorer(load_or_train(schema, sidecar, options), device=options.device, batch_size=options.batch_size)


def example_verifier(scorer: TkreScorer):
    """`verify(example) -> bool` for synthetic data: reject an example when the classifier
    confidently assigns its pair a *different* relation (NOTA or low confidence is no
    contradiction: the point of synthetic data is to teach what the classifier lacks)."""

    def verify(ex) -> bool:
        sentence = Sentence("synthetic", 0, 0, len(ex.text), ex.text)
        pred = scorer.predict([Candidate(sentence, ex.head, ex.tail, tuple(scorer.relations))])[0]
        return pred.relation is None or pred.relation == ex.relation

    return verify
