"""The one type for a typed span of text, used at every stage.

A user's given entity, an NER mention, an example's head or tail and a benchmark's gold
mention are all a `Span`: character offsets `[start, end)` into a text (a document, or an
example sentence), a schema entity type, and, once known, the covered `text` and the NER
`label` it came from. The converters are its methods, and `overlaps` is the one overlap test.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


def overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    """Whether two half-open character ranges share a character."""
    return a_start < b_end and b_start < a_end


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    type: str
    text: str = ""  # text[start:end] of whatever the offsets count in ("" for a given entity not yet read)
    label: str = ""  # the NER label a mention was found with ("" when given or from a schema)

    def overlaps(self, other: "Span") -> bool:
        return overlaps(self.start, self.end, other.start, other.end)

    def shifted(self, offset: int) -> "Span":
        """The same span with offsets moved by `offset` (a chunk's mention in document offsets)."""
        return self if offset == 0 else replace(self, start=self.start + offset, end=self.end + offset)

    def to_record(self) -> dict[str, Any]:
        """The sidecar's and the mention cache's JSON shape."""
        return {"text": self.text, "start": self.start, "end": self.end, "type": self.type}

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> "Span":
        return cls(int(r["start"]), int(r["end"]), str(r["type"]), str(r["text"]))

    def output_record(self) -> dict[str, Any]:
        """The head/tail object of an output triple (README, "Output")."""
        return {"text": self.text, "type": self.type, "start": self.start, "end": self.end}
