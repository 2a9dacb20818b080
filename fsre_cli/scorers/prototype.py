"""`prototype`: the training-free baseline. Class means of the examples' pair embeddings from the
bare encoder, cosine similarity, and a NOTA threshold calibrated on the examples."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from fsre_cli.documents import Candidate
from fsre_cli.schema import Schema, Span
from fsre_cli.scorers.base import Prediction, ScorerOptions, needs_examples
from fsre_cli.tkre.calibration import calibrate_threshold
from fsre_cli.tkre.config import SCORING_ROWS
from fsre_cli.tkre.data import build_instances
from fsre_cli.tkre.inference import tiles
from fsre_cli.tkre.markers import PairSpec, mark_pairs
from fsre_cli.tkre.model import collate, pair_states


class PairEmbedder:
    """The bare encoder's [head-marker; tail-marker] states: prototypes need no training."""

    def __init__(self, encoder, tokenizer, *, device: str = "cpu", batch_size: int = SCORING_ROWS,
                 max_length: int = 128) -> None:
        self.encoder = encoder.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length

    @classmethod
    def load(cls, encoder_name: str | None = None, **kw) -> "PairEmbedder":
        from fsre_cli.tkre.encoder import load_masked_lm, load_tokenizer, resolve_encoder

        source = resolve_encoder(encoder_name)
        return cls(load_masked_lm(source).base_model, load_tokenizer(source), **kw)

    @torch.inference_mode()
    def embed(self, pairs: Sequence[PairSpec]) -> torch.Tensor:
        """L2-normalised pair embeddings, computed in fixed-shape `tiles` (a pair's embedding
        does not depend on the pairs embedded beside it)."""
        marked = mark_pairs(list(pairs), self.tokenizer, self.max_length)
        out = torch.zeros((len(marked), 2 * self.encoder.config.hidden_size))
        for idx, width in tiles([len(m.input_ids) for m in marked], self.batch_size):
            batch = collate([marked[i] for i in idx], self.tokenizer.pad_token_id, width)
            hidden = self.encoder(input_ids=batch["input_ids"].to(self.device),
                                  attention_mask=batch["attention_mask"].to(self.device)).last_hidden_state
            out[idx] = pair_states(hidden, batch["head_index"].to(self.device),
                                   batch["tail_index"].to(self.device)).float().cpu()
        return torch.nn.functional.normalize(out, dim=-1)


class PrototypeScorer:
    """Class means of example pair embeddings; cosine similarity; a NOTA threshold calibrated
    leave-one-out on the examples and on negatives drawn from the example sentences."""

    method = "prototype"
    decides_by_threshold = True

    def __init__(self, schema: Schema, embedder: PairEmbedder, *, threshold: float | None = None,
                 examples=None, seed: int = 0, mentions: Mapping[str, Sequence[Span]] | None = None) -> None:
        """`mentions` (example text -> typed spans), when known, gives the calibration real NOTA
        pairs from the example sentences, as `train_model` takes them."""
        self.schema = schema
        self.embedder = embedder
        examples = list(examples if examples is not None else schema.examples)
        instances = build_instances(examples, schema, seed=seed, mentions=mentions)
        vectors = embedder.embed([i.pair for i in instances])
        labels = [i.label for i in instances]
        self.relations = sorted({lab for lab in labels if lab}, key=list(schema.relations).index)
        pos = torch.tensor([lab is not None for lab in labels])
        sums = {r: vectors[[i for i, lab in enumerate(labels) if lab == r]].sum(0) for r in self.relations}
        counts = {r: sum(1 for lab in labels if lab == r) for r in self.relations}
        self.prototypes = torch.stack([torch.nn.functional.normalize(sums[r] / counts[r], dim=0) for r in self.relations])
        self.threshold = threshold if threshold is not None else self._calibrate(vectors, labels, sums, counts, pos)

    def _calibrate(self, vectors, labels, sums, counts, pos) -> float:
        if len(self.relations) == 0 or not bool(pos.any()):
            return 0.5
        probs = torch.zeros((len(labels), len(self.relations) + 1))
        for i, (vec, lab) in enumerate(zip(vectors, labels)):
            protos = []
            for r in self.relations:  # leave the instance itself out of its own prototype
                if r == lab and counts[r] > 1:
                    protos.append(torch.nn.functional.normalize((sums[r] - vec) / (counts[r] - 1), dim=0))
                else:
                    protos.append(self.prototypes[self.relations.index(r)])
            probs[i, 1:] = torch.stack(protos) @ vec
        gold = [0 if lab is None else self.relations.index(lab) + 1 for lab in labels]
        threshold, _ = calibrate_threshold(probs.clamp(min=0), gold)
        return threshold

    def similarities(self, pairs: Sequence[PairSpec]) -> torch.Tensor:
        return self.embedder.embed(pairs) @ self.prototypes.T

    def predict(self, candidates: Sequence[Candidate]) -> list[Prediction]:
        if not candidates:
            return []
        sims = self.similarities([PairSpec.of_candidate(c) for c in candidates])
        out = []
        for c, row in zip(candidates, sims):
            allowed = [j for j, r in enumerate(self.relations) if r in c.relations]
            if not allowed:
                out.append(Prediction(None, 0.0, None, 0.0))
                continue
            j = max(allowed, key=lambda k: float(row[k]))
            score = float(row[j])
            best = self.relations[j]
            out.append(Prediction(best if score >= self.threshold else None, score, best, score))
        return out

    def run_summary(self) -> dict[str, Any]:
        return {}


def build(schema: Schema, sidecar, options: ScorerOptions) -> PrototypeScorer:
    needs_examples(schema, "prototype")
    embedder = options.embedder or PairEmbedder.load(options.encoder or schema.encoder, device=options.device,
                                                     batch_size=options.batch_size)
    examples = schema.examples + (sidecar.examples if sidecar else [])
    mentions = options.mentions
    if mentions is None and options.recognizer is not None:
        mentions = options.recognizer.example_mentions([e.text for e in examples])
    return PrototypeScorer(schema, embedder, examples=examples, mentions=mentions, seed=options.seed)
