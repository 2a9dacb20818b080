"""Given entities (JSONL `entities`): validating the user's spans and placing them in sentences."""

from __future__ import annotations

from fsre_cli.documents import Document, EntitySpan, Mention, Sentence
from fsre_cli.errors import UsageError
from fsre_cli.schema import Schema


def check_given_spans(doc: Document, schema: Schema) -> None:
    """Validate the user's spans before any Stanza work: range, order, whitespace, type."""
    n = len(doc.text)
    for span in doc.entities or []:
        where = f"document {doc.id!r}: entity {span.start}:{span.end} ({span.type})"
        if not isinstance(span.start, int) or not isinstance(span.end, int):
            raise UsageError(f"{where}: start and end must be integers")
        if span.start < 0 or span.end > n:
            raise UsageError(f"{where} lies outside the text (length {n})")
        if span.start >= span.end:
            raise UsageError(f"{where} is empty or reversed: start must be less than end")
        surface = doc.text[span.start : span.end]
        if not surface.strip():
            raise UsageError(f"{where} covers only whitespace")
        if schema.type_for_label(span.type) is None:
            known = ", ".join(sorted(schema.entity_types))
            raise UsageError(f"{where} {surface!r} has unknown entity type {span.type!r} (schema types: {known})")


def given_sentences(doc: Document, schema: Schema, bounds: list[tuple[int, int]]) -> list[Sentence]:
    """Sentences at `bounds` (start, end offsets from the splitter) holding the document's given mentions."""
    text = doc.text
    sentences = [Sentence(doc.id, i, start, end, text[start:end], []) for i, (start, end) in enumerate(bounds)]
    seen: set[tuple[int, int, str]] = set()
    for span in doc.entities or []:
        schema_type = schema.type_for_label(span.type)
        assert schema_type is not None  # checked by check_given_spans
        if (span.start, span.end, schema_type) in seen:
            continue
        seen.add((span.start, span.end, schema_type))
        home = _sentence_containing(sentences, span)
        if home is None:
            raise UsageError(_crossing_message(doc, span, sentences))
        home.mentions.append(
            Mention(text=text[span.start : span.end], start=span.start, end=span.end, type=schema_type,
                    label=span.type)
        )
    for s in sentences:
        s.mentions.sort(key=lambda m: (m.start, m.end))
    return sentences


def _sentence_containing(sentences: list[Sentence], span: EntitySpan) -> Sentence | None:
    for s in sentences:
        if s.start <= span.start and span.end <= s.end:
            return s
    return None


def _crossing_message(doc: Document, span: EntitySpan, sentences: list[Sentence]) -> str:
    surface = doc.text[span.start : span.end]
    touched = [s.index for s in sentences if s.start < span.end and span.start < s.end]
    where = f"document {doc.id!r}: entity {span.start}:{span.end} ({span.type}) {surface!r}"
    if len(touched) > 1:
        return (f"{where} crosses a sentence boundary (it spans sentences {touched[0]} and {touched[-1]}); "
                "an entity must lie inside one sentence")
    return f"{where} is not inside one sentence (it covers text between sentences)"
