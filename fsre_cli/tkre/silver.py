"""Self-training on the user's corpus: the model's most confident corpus pairs as silver data.

After a training round, every candidate pair of the corpus sentences is scored. Per relation,
the pairs the model assigns to it most confidently (and above its calibrated threshold) become
silver positives, at most `ratio` times that relation's real examples, so silver never
outnumbers what the user gave (the default ratio is 1). The pairs most confidently NOTA become
silver negatives, `nota_per_positive` per silver positive. Silver data only trains: the
held-out slice that early stopping and calibration read stays the user's own examples.

The silver pairs of the last round are written to `NAME.silver.jsonl` beside the schema (one
JSON object per line, with the score that chose it), so a person can read what the model
taught itself. Training does not read that file back: the same schema, corpus and seed choose
the same silver again, and the model is cached under a key that holds all three.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from fsre_cli.corpus import CorpusSentence
from fsre_cli.errors import UsageError
from fsre_cli.schema import Schema
from fsre_cli.tkre.data import Instance
from fsre_cli.tkre.markers import PairSpec


@dataclass(frozen=True)
class SilverPair:
    pair: PairSpec
    relation: str | None  # None: NOTA
    score: float  # p(relation) for a positive, p(NOTA) for a negative
    round: int

    def instance(self) -> Instance:
        return Instance(self.pair, self.relation, f"silver:{self.pair.text}", "silver")

    def to_record(self) -> dict[str, Any]:
        p = self.pair

        def span(start: int, end: int, etype: str) -> dict[str, Any]:
            return {"text": p.text[start:end], "start": start, "end": end, "type": etype}

        return {"kind": "silver", "round": self.round, "relation": self.relation, "score": round(self.score, 6),
                "text": p.text, "head": span(p.head_start, p.head_end, p.head_type),
                "tail": span(p.tail_start, p.tail_end, p.tail_type)}


def corpus_candidates(corpus: Sequence[CorpusSentence], schema: Schema) -> tuple[list[PairSpec], list[int]]:
    """Every candidate pair of the corpus sentences, with the index of its sentence (a packed
    pass never joins two sentences, even ones with the same words)."""
    pairs: list[PairSpec] = []
    sentence_of: list[int] = []
    for i, sentence in enumerate(corpus):
        found = sentence.candidate_pairs(schema)
        pairs += found
        sentence_of += [i] * len(found)
    return pairs, sentence_of


def pick_silver(pairs: Sequence[PairSpec], probs: torch.Tensor, schema: Schema, examples_per_relation: dict[str, int],
                threshold: float, *, ratio: float = 1.0, nota_per_positive: int = 4, round_: int = 1
                ) -> list[SilverPair]:
    """The silver pairs of one round from the corpus pairs' probabilities [NOTA, relations...]:
    per relation the most confident pairs whose best relation it is, at or above `threshold`,
    at most ceil(ratio x its real examples); then the most confident NOTA pairs."""
    relations = list(schema.relations)
    if not len(pairs):
        return []
    rel_probs = probs[:, 1:]
    best_p, best = rel_probs.max(dim=-1)
    silver: list[SilverPair] = []
    taken: set[int] = set()
    for r, name in enumerate(relations):
        cap = math.ceil(ratio * examples_per_relation.get(name, 0))
        if cap <= 0:
            continue
        mine = [i for i in (best == r).nonzero().flatten().tolist() if float(best_p[i]) >= threshold]
        mine.sort(key=lambda i: (-float(best_p[i]), i))
        for i in mine[:cap]:
            silver.append(SilverPair(pairs[i], name, float(best_p[i]), round_))
            taken.add(i)
    n_nota = nota_per_positive * len(silver)
    nota = sorted((i for i in range(len(pairs)) if i not in taken), key=lambda i: (-float(probs[i, 0]), i))
    silver += [SilverPair(pairs[i], None, float(probs[i, 0]), round_) for i in nota[:n_nota]]
    return silver


def silver_path(schema: Schema) -> Path | None:
    """`NAME.silver.jsonl` beside the schema file (None for a schema without a file)."""
    from fsre_cli.paths import beside_schema

    return beside_schema(schema.path, "silver")


def write_silver(path: Path, silver: Sequence[SilverPair]) -> None:
    from fsre_cli.sidecar import write_sidecar

    write_sidecar(path, [s.to_record() for s in silver])


def read_silver(path: Path, schema: Schema | None = None) -> list[SilverPair]:
    """A silver file, checked line by line (`FILE:LINE: reason`): offsets must match the text,
    the relation must be one of the schema's (or null) and its types must fit it."""
    out: list[SilverPair] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if rec.get("kind") != "silver":
                raise ValueError(f"kind must be 'silver', not {rec.get('kind')!r}")
            text, head, tail = rec["text"], rec["head"], rec["tail"]
            for role, span in (("head", head), ("tail", tail)):
                if text[int(span["start"]) : int(span["end"])] != span["text"]:
                    raise ValueError(f"{role} offsets {span['start']}-{span['end']} do not cover {span['text']!r}")
            relation = rec["relation"]
            if schema is not None and relation is not None:
                rel = schema.relations.get(relation)
                if rel is None:
                    raise ValueError(f"relation {relation!r} is not in the schema")
                if head["type"] not in rel.head_types or tail["type"] not in rel.tail_types:
                    raise ValueError(f"{head['type']} -> {tail['type']} does not fit relation {relation!r}")
            pair = PairSpec(text, int(head["start"]), int(head["end"]), str(head["type"]), int(tail["start"]),
                            int(tail["end"]), str(tail["type"]))
            out.append(SilverPair(pair, relation, float(rec["score"]), int(rec["round"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{path}:{lineno}: invalid silver line: {exc}") from None
    return out
