"""Corrections a person makes to extracted triples, and what training learns from them.

`NAME.review.jsonl` beside a schema holds one decision per line, appended as it is made (so
quitting loses nothing), each naming its pair by the record's document, sentence and offsets
and carrying the sentence with the pair's offsets in it:

    {"kind": "review", "decision": "accept" | "reject" | "relation" | "undo",
     "relation": R, "predicted": P, "score": 0.42, "doc": "notes.txt", "sentence": 3,
     "text": "<the sentence>", "head": {text, type, start, end}, "tail": {...},
     "doc_head": [120, 129], "doc_tail": [145, 155], "time": "2026-12-02T10:00:00Z"}

The last decision for a pair counts (`undo` takes it back). What training learns, through the
schema (`Schema.examples`, `Schema.negatives`; the file is part of the schema's content hash,
so of every model's cache key):

- accept: the pair is an example of the predicted relation (`source: review`);
- reject: the pair does not hold the predicted relation (a negative for it);
- relation: the pair is an example of the chosen relation, and a negative for the predicted one.

`fsre view` pages record accept and reject with buttons and download the same file.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from fsre_cli.spans import Span

DECISIONS = ("accept", "reject", "relation", "undo")
REVIEW_ORDERS = ("uncertain", "score", "document")


@dataclass(frozen=True)
class Decision:
    decision: str
    relation: str  # accept: the predicted relation; reject: the one rejected; relation: the chosen one
    predicted: str
    text: str
    head: Span  # offsets in `text`
    tail: Span
    key: tuple  # (doc, sentence, doc_head, doc_tail): which triple it decides
    record: dict  # as read or written


def review_path(schema_path: Path | None) -> Path | None:
    """`NAME.review.jsonl` beside the schema file."""
    if schema_path is None:
        return None
    return schema_path.with_name(schema_path.name.rsplit(".", 1)[0] + ".review.jsonl")


def pair_key(record: dict) -> tuple:
    return (str(record["doc"]), int(record["sentence"]), tuple(record["doc_head"]), tuple(record["doc_tail"]))


def _span(value: Any, text: str, role: str) -> Span:
    if not isinstance(value, dict):
        raise ValueError(f"{role} must be an object with text, type, start and end")
    start, end, etype, words = value.get("start"), value.get("end"), value.get("type"), value.get("text")
    if not isinstance(start, int) or not isinstance(end, int) or not isinstance(etype, str):
        raise ValueError(f"{role} needs whole-number start and end and a type")
    if text[start:end] != words:
        raise ValueError(f"{role} offsets {start}-{end} do not cover {words!r} in the sentence")
    return Span(start, end, etype, words)


def parse_decision(record: Any, relations: dict | None = None) -> Decision:
    """A decision line, checked: offsets match its sentence, the relations exist and their
    types fit the pair. Raises ValueError with the reason."""
    if not isinstance(record, dict) or record.get("kind") != "review":
        raise ValueError("not a review decision (kind must be 'review')")
    decision = record.get("decision")
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    text = record.get("text")
    if not isinstance(text, str):
        raise ValueError("text must be the sentence")
    head, tail = _span(record.get("head"), text, "head"), _span(record.get("tail"), text, "tail")
    for name in ("relation", "predicted"):
        if not isinstance(record.get(name), str):
            raise ValueError(f"{name} must be a relation name")
    for name in ("doc_head", "doc_tail"):
        value = record.get(name)
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)):
            raise ValueError(f"{name} must be [start, end] in the document")
    if not isinstance(record.get("sentence"), int) or "doc" not in record:
        raise ValueError("doc and sentence must name the triple's sentence")
    if relations is not None and decision != "undo":
        for name in {record["relation"], record["predicted"]}:
            rel = relations.get(name)
            if rel is None:
                raise ValueError(f"relation {name!r} is not in the schema")
            if head.type not in rel.head_types or tail.type not in rel.tail_types:
                raise ValueError(f"{head.type} -> {tail.type} does not fit relation {name!r}")
    return Decision(decision, record["relation"], record["predicted"], text, head, tail, pair_key(record), record)


def read_review(path: Path, relations: dict | None = None, problem: Callable[[str], None] | None = None
                ) -> list[Decision]:
    """Every decision line of `path`; a bad line is reported as `FILE:LINE: reason` through
    `problem` (or raised as ValueError with that text)."""
    out: list[Decision] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(parse_decision(json.loads(line), relations))
        except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
            message = f"{path}:{number}: {exc}"
            if problem is None:
                raise ValueError(message) from None
            problem(message)
    return out


def effective(decisions: Iterable[Decision]) -> dict[tuple, Decision]:
    """The decision that counts for each pair: its last one, none after an undo."""
    out: dict[tuple, Decision] = {}
    for d in decisions:
        if d.decision == "undo":
            out.pop(d.key, None)
        else:
            out[d.key] = d
    return out


def learned(decisions: Iterable[Decision]) -> tuple[list[tuple[str, str, Span, Span]], list[tuple[str, str, Span, Span]]]:
    """(examples, negatives) as (relation, text, head, tail): what training takes from the file."""
    examples, negatives = [], []
    for d in effective(decisions).values():
        if d.decision == "accept":
            examples.append((d.predicted, d.text, d.head, d.tail))
        elif d.decision == "reject":
            negatives.append((d.predicted, d.text, d.head, d.tail))
        else:
            examples.append((d.relation, d.text, d.head, d.tail))
            if d.predicted != d.relation:
                negatives.append((d.predicted, d.text, d.head, d.tail))
    return examples, negatives


def review_hash(decisions: Sequence[Decision]) -> str:
    """What the decisions teach, hashed (an undone or repeated decision changes nothing)."""
    examples, negatives = learned(decisions)

    def rows(items):
        return sorted([r, t, h.start, h.end, h.type, tl.start, tl.end, tl.type] for r, t, h, tl in items)

    data = json.dumps({"examples": rows(examples), "negatives": rows(negatives)}, ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- the review session
def locate_in_sentence(sentence: str, record: dict) -> tuple[Span, Span] | None:
    """The record's head and tail inside its evidence sentence (the occurrences whose distance
    is the record's own), or None when the sentence does not hold them."""
    from fsre_cli.view import _in_evidence

    found = _in_evidence(sentence, record)
    if found is None:
        return None
    hs, he, ts, te = found
    return (Span(hs, he, record["head"]["type"], record["head"]["text"]),
            Span(ts, te, record["tail"]["type"], record["tail"]["text"]))


def decision_record(triple: dict, decision: str, relation: str, now: str | None = None) -> dict | None:
    """The review line for deciding `triple` (an output record), or None when its evidence does
    not hold its head and tail (a window of a very long sentence that cut one off)."""
    sentence = triple.get("evidence", "")
    located = locate_in_sentence(sentence, triple)
    if located is None:
        return None
    head, tail = located
    return {"kind": "review", "decision": decision, "relation": relation, "predicted": triple["relation"],
            "score": triple.get("score"), "doc": str(triple["doc"]), "sentence": triple["sentence"],
            "text": sentence, "head": head.to_record(), "tail": tail.to_record(),
            "doc_head": [triple["head"]["start"], triple["head"]["end"]],
            "doc_tail": [triple["tail"]["start"], triple["tail"]["end"]],
            "time": now or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def triple_key(triple: dict) -> tuple:
    return (str(triple["doc"]), int(triple["sentence"]), (triple["head"]["start"], triple["head"]["end"]),
            (triple["tail"]["start"], triple["tail"]["end"]))


def order_triples(triples: list[dict], order: str, threshold: float | None = None) -> list[dict]:
    """`uncertain`: scores nearest the threshold first (default threshold: the lowest score, the
    decision boundary of a run that emitted triples above it); `score`: highest first;
    `document`: as written."""
    if order not in REVIEW_ORDERS:
        from fsre_cli.errors import UsageError

        raise UsageError(f"--order must be one of {', '.join(REVIEW_ORDERS)}, not {order!r}")
    if order == "document":
        return list(triples)
    scored = [t for t in triples if isinstance(t.get("score"), (int, float))]
    if order == "score":
        return sorted(scored, key=lambda t: -t["score"]) + [t for t in triples if t not in scored]
    if threshold is None:
        threshold = min((t["score"] for t in scored), default=0.5)
    return sorted(scored, key=lambda t: abs(t["score"] - threshold)) + [t for t in triples if t not in scored]


class ReviewLog:
    """The review file, appended one decision at a time and flushed to disk at once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
