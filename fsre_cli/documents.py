"""The records that flow between stages: documents, sentences, mentions, candidate pairs, triples.

Every offset is a character offset into the *original* document text, so that
``doc.text[m.start:m.end] == m.text`` holds for every mention at every stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fsre_cli.spans import Span


# A user-given entity (JSONL `entities`) and a recognized mention are both a `Span` (fsre_cli.spans);
# the two names say which role a span plays where it is used.
EntitySpan = Span
Mention = Span


def entity_problem(text: str, span: EntitySpan | tuple[int, int], index: int) -> str | None:
    """Why a given entity span cannot be used with `text`, or None; the checks that need no
    schema. The reason reads "entity INDEX [START, END) ...", to follow "document ID: "."""
    start, end = (span.start, span.end) if isinstance(span, EntitySpan) else span
    where = f"entity {index} [{start}, {end})"
    if type(start) is not int or type(end) is not int:
        return f"{where}: start and end must be integers"
    if start < 0:
        return f"{where} starts before the text (offsets count from 0)"
    if end < start:
        return f"{where} ends before it starts"
    if end == start:
        return f"{where} is empty"
    if end > len(text):
        return f"{where} ends after the text (length {len(text)})"
    if not text[start:end].strip():
        return f"{where} covers only whitespace"
    return None


@dataclass
class Document:
    id: str
    text: str
    entities: list[EntitySpan] | None = None  # None: find entities with Stanza
    offset: int = 0  # where `text` starts in the whole document (large files arrive in chunks)
    final: bool = True  # no chunk of this document follows (False while a file or stream may go on)


@dataclass
class Sentence:
    doc_id: str
    index: int
    start: int
    end: int
    text: str  # == document text[start:end]
    mentions: list[Mention] = field(default_factory=list)


@dataclass(frozen=True)
class Candidate:
    """An ordered (head, tail) pair in one sentence and the relations its types allow."""

    sentence: Sentence
    head: Mention
    tail: Mention
    relations: tuple[str, ...]


@dataclass
class Triple:
    doc: str
    sentence: int
    relation: str
    head: Mention
    tail: Mention
    score: float
    method: str
    evidence: str

    def to_record(self) -> dict[str, Any]:
        """The JSONL output record of DESIGN.md §1."""
        return {
            "doc": self.doc,
            "sentence": self.sentence,
            "relation": self.relation,
            "head": self.head.output_record(),
            "tail": self.tail.output_record(),
            "score": round(float(self.score), 4),
            "method": self.method,
            "evidence": self.evidence,
        }
