"""Fully annotated documents as training data: the schema's `data:` files.

A user who has annotated a few documents completely (every entity, every triple) has told fsre
far more than a handful of examples: every pair of those entities that carries no triple is a
real NOTA pair. Each line of a `data:` file is a JSONL input document with `entities` and its
`triples` in the output format (head and tail by `start`/`end`):

    {"id": "d1", "text": "...", "entities": [{"start": 0, "end": 9, "type": "ORG"}, ...],
     "triples": [{"relation": "founded_by", "head": {"start": 0, "end": 9}, "tail": {"start": 24, "end": 34}}]}

Documents are cut into sentences (never inside an entity); candidate pairs, as at extraction,
are the ordered pairs of one sentence. A sentence's triples become examples that list the
sentence's other entities; a sentence with entities and no triple gives NOTA pairs only.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from fsre_cli.spans import Span

if TYPE_CHECKING:
    from fsre_cli.schema import Example, Schema

SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")
# a full stop after these is rarely a sentence end ("Mr. Smith", "Acme Inc. said", "J. Smith")
ABBREVIATION = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|St|Sr|Jr|Inc|Ltd|Co|Corp|No|Gen|Col|Lt|Sgt|Rev|vs|etc|e\.g|i\.e)"
                          r"|\b[A-Z])\.[\"')\]]*\s+$")
MAX_DATA_BYTES = 50 * 1024 * 1024

Report = Callable[[str], None]  # one "FILE:LINE: PATH: reason" problem


@dataclass(frozen=True)
class AnnotatedSentence:
    """One sentence of an annotated document: its entities and its triples between them."""

    text: str
    entities: tuple[Span, ...]
    triples: tuple[tuple[int, int, str], ...]  # (head entity, tail entity, relation)
    where: str  # FILE:LINE, for messages


def sentence_bounds(text: str, entities: list[Span]) -> list[tuple[int, int]]:
    """Sentence spans of `text`, cut at sentence ends that fall outside every entity."""
    cuts = [0]
    for m in SENTENCE_END.finditer(text):
        at = m.end()
        if ABBREVIATION.search(text[max(0, at - 12):at]):
            continue
        if not any(e.start < at <= e.end for e in entities):
            cuts.append(at)
    cuts.append(len(text))
    return [(a, a + len(text[a:b].rstrip())) for a, b in zip(cuts, cuts[1:]) if text[a:b].strip()]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_document(record: Any, where: str, schema: "Schema", report: Report,
                  warn: Report | None = None) -> list[AnnotatedSentence]:
    """The sentences of one annotated document (problems reported, bad parts left out; a triple
    across sentences is only a warning, since fsre never extracts such a pair)."""
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        report(f"{where}: a document needs a `text` string")
        return []
    text = record["text"]
    raw_entities = record.get("entities")
    if not isinstance(raw_entities, list) or not raw_entities:
        report(f"{where}: entities: an annotated document lists its entities (start, end, type)")
        return []
    entities: list[Span] = []
    ok = True
    for i, e in enumerate(raw_entities):
        start, end = (_int(e.get("start")), _int(e.get("end"))) if isinstance(e, dict) else (None, None)
        etype = e.get("type") if isinstance(e, dict) else None
        if start is None or end is None or not 0 <= start < end <= len(text):
            report(f"{where}: entities[{i}]: needs integer start < end within the text (length {len(text)})")
            ok = False
            continue
        schema_type = schema.type_for_label(str(etype)) if etype is not None else None
        if schema_type is None:
            report(f"{where}: entities[{i}]: type {etype!r} is not a schema type or a label the schema maps")
            ok = False
            continue
        entities.append(Span(start, end, schema_type, text[start:end]))
    for i, a in enumerate(entities):
        for b in entities[i + 1:]:
            if a.overlaps(b):
                report(f"{where}: entities {a.text!r} ({a.start}:{a.end}) and {b.text!r} ({b.start}:{b.end}) overlap")
                ok = False
    triples = record.get("triples", [])
    if not isinstance(triples, list):
        report(f"{where}: triples: a list of triples (relation, head, tail)")
        return []
    by_offsets = {(e.start, e.end): i for i, e in enumerate(entities)}
    linked: list[tuple[int, int, str]] = []
    for j, t in enumerate(triples):
        loc = f"{where}: triples[{j}]"
        relation = t.get("relation") if isinstance(t, dict) else None
        if not isinstance(relation, str) or relation not in schema.relations:
            report(f"{loc}: relation {relation!r} is not in the schema")
            ok = False
            continue
        ends = []
        for slot in ("head", "tail"):
            m = t.get(slot)
            offsets = (_int(m.get("start")), _int(m.get("end"))) if isinstance(m, dict) else (None, None)
            if offsets not in by_offsets:
                report(f"{loc}.{slot}: no listed entity at {offsets[0]}:{offsets[1]}")
                break
            ends.append(by_offsets[offsets])
        if len(ends) < 2:
            ok = False
            continue
        h, tl = ends
        if h == tl:
            report(f"{loc}: head and tail are the same entity")
            ok = False
            continue
        rel = schema.relations[relation]
        if entities[h].type not in rel.head_types or entities[tl].type not in rel.tail_types:
            report(f"{loc}: {relation} takes {'/'.join(rel.head_types)} -> {'/'.join(rel.tail_types)}, not "
                   f"{entities[h].type} -> {entities[tl].type}")
            ok = False
            continue
        if (h, tl, relation) not in linked:
            linked.append((h, tl, relation))
    if not ok:
        return []
    out = []
    for start, end in sentence_bounds(text, entities):
        inside = [i for i, e in enumerate(entities) if start <= e.start and e.end <= end]
        if len(inside) < 2:
            continue
        local = {i: k for k, i in enumerate(inside)}
        spans = tuple(Span(e.start - start, e.end - start, e.type, e.text) for e in (entities[i] for i in inside))
        own = tuple((local[h], local[t], r) for h, t, r in linked if h in local and t in local)
        out.append(AnnotatedSentence(text[start:end], spans, own, where))
    crossing = [(h, t, r) for h, t, r in linked
                if not any(s <= entities[h].start and entities[h].end <= e and s <= entities[t].start
                           and entities[t].end <= e for s, e in sentence_bounds(text, entities))]
    for h, t, r in crossing:
        (warn or report)(f"{where}: triple {r} {entities[h].text!r} -> {entities[t].text!r} spans two sentences "
                         "and is left out (fsre only extracts pairs within a sentence)")
    return out


def read_data_file(path: Path, schema: "Schema", report: Report,
                   warn: Report | None = None) -> list[AnnotatedSentence]:
    """Every annotated sentence of a `data:` JSONL file; problems go to `report` as FILE:LINE: reason."""
    try:
        if path.stat().st_size > MAX_DATA_BYTES:
            report(f"{path}: annotated documents larger than {MAX_DATA_BYTES // (1024 * 1024)} MB; use fewer")
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        report(f"{path}: cannot read annotated documents ({exc.__class__.__name__}: {exc})")
        return []
    out: list[AnnotatedSentence] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            report(f"{path}:{n}: invalid JSON ({getattr(exc, 'msg', exc)})")
            continue
        out += read_document(record, f"{path}:{n}", schema, report, warn)
    return out


def examples_of(sentences: list[AnnotatedSentence]) -> list["Example"]:
    """One example per triple, listing the sentence's other entities (so its other pairs are NOTA)."""
    from fsre_cli.schema import Example

    out = []
    for s in sentences:
        for h, t, relation in s.triples:
            others = tuple(e for i, e in enumerate(s.entities) if i not in (h, t))
            out.append(Example(relation, s.text, s.entities[h], s.entities[t], source="data", entities=others))
    return out


def data_hash(sentences: list[AnnotatedSentence]) -> str:
    """What the model learns from the data files, hashed for the schema's content hash."""
    payload = [[s.text, [e.to_record() for e in s.entities], list(s.triples)] for s in sentences]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()
