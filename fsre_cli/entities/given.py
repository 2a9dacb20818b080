"""Given entities (JSONL `entities`): validating the user's spans and placing them in sentences.

A given entity is trusted over the sentence splitter: when the splitter cuts
inside a mention (`Col. Ripley`, `Ph.D`), the pieces the mention spans become
one sentence. What no merge can repair (offsets outside the text, empty or
reversed spans, whitespace, a type the schema does not declare) is reported by
`given_entity_problem`, one line per document, so a caller can skip just that
document.
"""

from __future__ import annotations

import json

from fsre_cli.documents import Document, EntitySpan, Mention, Sentence, entity_problem
from fsre_cli.errors import BadEntityError
from fsre_cli.schema import Schema

_SURFACE_CHARS = 40  # longest entity surface quoted in a problem line


def given_entity_problem(doc: Document, schema: Schema) -> str | None:
    """The first given entity of `doc` that cannot be used, as one line naming the document and
    the entity (its index in `entities`, offsets and type); None when every entity is usable
    (or the document has none). Pure: no Stanza, no I/O. The offsets are checked by
    `documents.entity_problem` (as the JSONL reader checks them); this adds the schema's types."""
    for index, span in enumerate(doc.entities or []):
        problem = entity_problem(doc.text, span, index) or _type_problem(doc.text, span, index, schema)
        if problem is not None:
            return f"document {_quote(doc.id)}: {problem}"
    return None


def _type_problem(text: str, span: EntitySpan, index: int, schema: Schema) -> str | None:
    label = span.type
    if isinstance(label, str) and schema.type_for_label(label) is not None:
        return None
    known = ", ".join(sorted(schema.entity_types))
    return (f"entity {index} [{span.start}, {span.end}) {_quote(_shorten(text[span.start:span.end]))} has type "
            f"{_quote(label)}, which the schema does not declare (schema types: {known})")


def given_sentences(doc: Document, schema: Schema, bounds: list[tuple[int, int]]) -> list[Sentence]:
    """Sentences holding the document's given mentions, from the splitter's sentence `bounds`
    ((start, end) offsets, in order, not overlapping).

    Pieces that one mention overlaps are merged into one sentence, so every mention lies in
    exactly one sentence; a mention that overlaps no piece becomes a sentence of its own.
    The entities must have passed `given_entity_problem`; duplicates (same offsets and schema
    type) are kept once."""
    text = doc.text
    mentions: list[Mention] = []
    seen: set[tuple[int, int, str]] = set()
    for span in doc.entities or []:
        schema_type = schema.type_for_label(span.type)
        if schema_type is None:  # pragma: no cover - the recognizer rejects such documents first
            raise BadEntityError(doc.id, given_entity_problem(doc, schema) or f"unknown entity type {span.type!r}")
        if (span.start, span.end, schema_type) in seen:
            continue
        seen.add((span.start, span.end, schema_type))
        mentions.append(Mention(text=text[span.start : span.end], start=span.start, end=span.end,
                                type=schema_type, label=span.type))
    mentions.sort(key=lambda m: (m.start, m.end))

    # sweep pieces and mentions by start: anything that overlaps the current group joins it
    # (pieces never overlap each other, so a piece joins only through a mention reaching into it)
    items: list[tuple[int, int, Mention | None]] = [(s, e, None) for s, e in bounds]
    items += [(m.start, m.end, m) for m in mentions]
    items.sort(key=lambda item: (item[0], item[1]))
    groups: list[tuple[int, int, list[Mention]]] = []
    for start, end, mention in items:
        if groups and start < groups[-1][1]:
            g_start, g_end, g_mentions = groups[-1]
            groups[-1] = (g_start, max(g_end, end), g_mentions)
        else:
            groups.append((start, end, []))
        if mention is not None:
            groups[-1][2].append(mention)
    return [Sentence(doc.id, i, start, end, text[start:end], group_mentions)
            for i, (start, end, group_mentions) in enumerate(groups)]


def _quote(value: object) -> str:
    """Double-quoted, escaped as JSON, so odd ids and types stay on one line."""
    return json.dumps(value if isinstance(value, str) else str(value), ensure_ascii=False)


def _shorten(surface: str) -> str:
    return surface if len(surface) <= _SURFACE_CHARS else surface[: _SURFACE_CHARS - 1] + "…"
