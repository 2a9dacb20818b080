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
    from fsre_cli.paths import beside_schema

    return beside_schema(schema_path, "review")


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
def pair_in_sentence(sentence: str, record: dict) -> tuple[int, int, int, int] | None:
    """A record's head and tail offsets inside its evidence sentence: the occurrences of their
    texts whose distance is the record's own (document offsets), else the first of each; None
    when the sentence does not hold both."""
    head, tail = record["head"], record["tail"]

    def places(text: str) -> list[int]:
        found, i = [], sentence.find(text)
        while i >= 0 and text:
            found.append(i)
            i = sentence.find(text, i + 1)
        return found

    heads, tails = places(head["text"]), places(tail["text"])
    if not heads or not tails:
        return None
    gap = tail["start"] - head["start"]
    h, t = next(((h, t) for h in heads for t in tails if t - h == gap), (heads[0], tails[0]))
    return h, h + len(head["text"]), t, t + len(tail["text"])


def locate_in_sentence(sentence: str, record: dict) -> tuple[Span, Span] | None:
    """`pair_in_sentence` as the head's and tail's spans."""
    found = pair_in_sentence(sentence, record)
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
    unscored = [t for t in triples if not isinstance(t.get("score"), (int, float))]
    if order == "score":
        return sorted(scored, key=lambda t: -t["score"]) + unscored
    if threshold is None:
        threshold = min((t["score"] for t in scored), default=0.5)
    return sorted(scored, key=lambda t: abs(t["score"] - threshold)) + unscored


class ReviewLog:
    """The review file, appended one decision at a time and flushed to disk at once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


# --------------------------------------------------------------------------- promotion into the YAML
def _line_after(node, lines: list[str]) -> int:
    """The line index just after a list item: a block item ends where the next token starts
    (at the start of its line, after indentation), a flow item in the middle of its own line."""
    line, column = node.end_mark.line, node.end_mark.column
    if line >= len(lines):
        return len(lines)
    return line if not lines[line][:column].strip() else line + 1


def _mention_yaml(span: Span, text: str, types: Sequence[str]) -> str:
    """A head or tail as the schema writes it: the plain text when that is unambiguous, else
    with its offset and type."""
    fields = [f"text: {json.dumps(span.text, ensure_ascii=False)}"]
    if text.count(span.text) > 1:
        fields.append(f"start: {span.start}")
    if len(types) > 1:
        fields.append(f"type: {json.dumps(span.type)}")
    return json.dumps(span.text, ensure_ascii=False) if len(fields) == 1 else "{" + ", ".join(fields) + "}"


def _item_yaml(text: str, head: Span, tail: Span, relation) -> str:
    return (f"{{text: {json.dumps(text, ensure_ascii=False)}, head: {_mention_yaml(head, text, relation.head_types)}, "
            f"tail: {_mention_yaml(tail, text, relation.tail_types)}}}")


def promote(schema_path: Path) -> tuple[int, int]:
    """Move the review file's decisions into the schema YAML: examples under each relation's
    `examples:`, rejected pairs under its `negatives:` (added after `examples:` when missing),
    one flow-style line each, the rest of the file (comments included) as it was. The promoted
    decisions leave the review file. Both files are written atomically, and restored if the
    schema no longer loads. Returns (examples, negatives) promoted."""
    import yaml

    from fsre_cli.errors import SchemaError, UsageError
    from fsre_cli.schema import load_schema
    from fsre_cli.sidecar import write_sidecar, write_text_atomic

    schema = load_schema(schema_path)
    path = schema.review_path
    if not schema.review:
        return 0, 0
    examples, negatives = learned(schema.review)
    source = schema_path.read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    root = yaml.compose(source)
    relations = next((v for k, v in root.value if k.value == "relations"), None)
    inserts: list[tuple[int, str]] = []  # (insert before this line index, text)
    for name, rel_node in relations.value:
        rel = schema.relations[name.value]
        mine_ex = [e for e in examples if e[0] == rel.name]
        mine_neg = [n for n in negatives if n[0] == rel.name]
        if not mine_ex and not mine_neg:
            continue
        keys = {k.value: (k, v) for k, v in rel_node.value}
        if "examples" not in keys or not isinstance(keys["examples"][1], yaml.SequenceNode) \
                or keys["examples"][1].flow_style or not keys["examples"][1].value:
            raise UsageError(f"{schema_path}: --promote adds to relation {rel.name!r}'s `examples:` written as a "
                             "block list (`- {...}` lines); it has none, or a flow list")
        key_node, seq = keys["examples"]
        dash = lines[seq.value[0].start_mark.line].rfind("-", 0, seq.value[0].start_mark.column + 1)
        indent = " " * max(dash, 0)
        after_examples = _line_after(seq.value[-1], lines)
        inserts += [(after_examples, f"{indent}- {_item_yaml(t, h, tl, rel)}\n") for _r, t, h, tl in mine_ex]
        if not mine_neg:
            continue
        if "negatives" in keys and isinstance(keys["negatives"][1], yaml.SequenceNode) \
                and not keys["negatives"][1].flow_style and keys["negatives"][1].value:
            neg = keys["negatives"][1]
            after = _line_after(neg.value[-1], lines)
            inserts += [(after, f"{indent}- {_item_yaml(t, h, tl, rel)}\n") for _r, t, h, tl in mine_neg]
        elif "negatives" in keys:
            raise UsageError(f"{schema_path}: --promote adds to relation {rel.name!r}'s `negatives:` written as a "
                             "block list; it is a flow list")
        else:
            key_indent = " " * key_node.start_mark.column
            block = f"{key_indent}negatives:\n" + "".join(f"{indent}- {_item_yaml(t, h, tl, rel)}\n"
                                                        for _r, t, h, tl in mine_neg)
            inserts.append((after_examples, block))
    # from the end, and at one place last-planned first, so that texts planned for one place keep their order
    for _order, (index, text) in sorted(enumerate(inserts), key=lambda item: (item[1][0], item[0]), reverse=True):
        if index > 0 and index <= len(lines) and not lines[index - 1].endswith("\n"):
            lines[index - 1] += "\n"
        lines.insert(index, text)
    old_review = path.read_text(encoding="utf-8")
    write_text_atomic(schema_path, "".join(lines))
    write_sidecar(path, [])  # every decision is now in the schema
    try:
        load_schema(schema_path)
    except SchemaError as exc:
        write_text_atomic(schema_path, source)
        write_text_atomic(path, old_review)
        raise UsageError(f"{schema_path}: promoting the review decisions would break the schema, so nothing "
                         f"changed: {exc.problems[0]}") from None
    path.unlink()
    return len(examples), len(negatives)
