"""Candidate pairs: ordered mention pairs in one sentence whose entity types some relation allows.

Only pairs that at least one relation admits are scored, which keeps scorers
fast and lets QA4RE offer only type-compatible options (`Candidate.relations`).
"""

from __future__ import annotations

from typing import Iterable

from fsre_cli.documents import Candidate, Mention, Sentence
from fsre_cli.schema import Schema


def candidate_pairs(sentence: Sentence, schema: Schema) -> list[Candidate]:
    """Every ordered pair of distinct, non-overlapping mentions whose (head, tail) types some relation allows.

    Pairs come in mention order (head by position, then tail by position), so
    output is deterministic. Both directions are candidates when both are allowed.
    """
    mentions = sorted(sentence.mentions, key=lambda m: (m.start, m.end, m.type))
    pairs: list[Candidate] = []
    for head in mentions:
        for tail in mentions:
            if head is tail or head.overlaps(tail):
                continue
            relations = schema.relations_for(head.type, tail.type)
            if relations:
                pairs.append(Candidate(sentence, head, tail, relations))
    return pairs


def document_candidates(sentences: Iterable[Sentence], schema: Schema) -> list[Candidate]:
    """Candidate pairs of all sentences of a document, in sentence order."""
    return [c for s in sentences for c in candidate_pairs(s, schema)]
