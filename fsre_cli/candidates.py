"""Candidate pairs: ordered mention pairs in one sentence whose entity types some relation allows.

Only pairs that at least one relation admits are scored, which keeps scorers
fast and lets QA4RE offer only type-compatible options (`Candidate.relations`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from fsre_cli.documents import Candidate, Mention, Sentence
from fsre_cli.schema import Schema


def overlaps(a: Mention, b: Mention) -> bool:
    """Whether two mentions share at least one character."""
    return a.start < b.end and b.start < a.end


def candidate_pairs(sentence: Sentence, schema: Schema) -> list[Candidate]:
    """Every ordered pair of distinct, non-overlapping mentions whose (head, tail) types some relation allows.

    Pairs come in mention order (head by position, then tail by position), so
    output is deterministic. Both directions are candidates when both are allowed.
    """
    mentions = sorted(sentence.mentions, key=lambda m: (m.start, m.end, m.type))
    pairs: list[Candidate] = []
    for head in mentions:
        for tail in mentions:
            if head is tail or overlaps(head, tail):
                continue
            relations = schema.relations_for(head.type, tail.type)
            if relations:
                pairs.append(Candidate(sentence, head, tail, relations))
    return pairs


def document_candidates(sentences: Iterable[Sentence], schema: Schema) -> list[Candidate]:
    """Candidate pairs of all sentences of a document, in sentence order."""
    return [c for s in sentences for c in candidate_pairs(s, schema)]


@dataclass
class CandidateCounts:
    """How much work entity recognition left for the scorer (for `--verbose` reporting)."""

    documents: int = 0
    sentences: int = 0
    mentions: int = 0
    candidates: int = 0
    by_type: Counter[str] = field(default_factory=Counter)  # mentions per schema type

    def add(self, other: "CandidateCounts") -> "CandidateCounts":
        """Accumulate another document's counts into this one (returns self)."""
        self.documents += other.documents
        self.sentences += other.sentences
        self.mentions += other.mentions
        self.candidates += other.candidates
        self.by_type.update(other.by_type)
        return self

    def describe(self) -> str:
        types = ", ".join(f"{t} {n}" for t, n in sorted(self.by_type.items())) or "none"
        return (
            f"{self.documents} document(s), {self.sentences} sentence(s), "
            f"{self.mentions} mention(s) ({types}), {self.candidates} candidate pair(s)"
        )


def count_candidates(sentences: Iterable[Sentence], schema: Schema) -> CandidateCounts:
    """Counts for one document's sentences (sum documents with `CandidateCounts.add`)."""
    counts = CandidateCounts(documents=1)
    for s in sentences:
        counts.sentences += 1
        counts.mentions += len(s.mentions)
        counts.by_type.update(m.type for m in s.mentions)
        counts.candidates += len(candidate_pairs(s, schema))
    return counts
