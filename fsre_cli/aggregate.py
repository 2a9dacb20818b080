"""From triples to facts: one record per distinct (relation, head, tail), with where it is stated.

`fsre extract` writes one line per mention pair per sentence, so "Microsoft founded_by Bill
Gates" stated in forty sentences is forty lines. A fact is the relation with its head and tail
*normalised* (`normalise`: Unicode compatibility forms, case, whitespace, surrounding
punctuation and a trailing possessive) and their entity types; `--by document` keeps a fact per
document, `--by corpus` one over all of them.

Streaming: records are read one at a time, and memory holds one entry per distinct fact (its
counts, a few surface forms, and its `max_evidence` best-scored mentions), never the input.
Documents and sentences are counted as the input changes from one to the next for a fact,
which is exact for what fsre writes (each document's triples together, in sentence order; the
Ray engine's shards are each written so) and may count a document twice in a file whose lines
were shuffled.
"""

from __future__ import annotations

import functools
import heapq
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence, TextIO

from fsre_cli.errors import UsageError
from fsre_cli.evaluation import normalize_mention

AGGREGATE_BY = ("document", "corpus")
DEFAULT_MAX_EVIDENCE = 5
SURFACE_FORMS = 8  # distinct spellings kept per entity of a fact (the commonest is shown)

_POSSESSIVE = re.compile(r"(?:'s|'|’s|’)$")


@functools.lru_cache(maxsize=1 << 16)  # spellings repeat across a corpus; bounded, so memory stays flat
def normalise(text: str) -> str:
    """The form two mentions of one entity share: `fsre eval --relaxed`'s (case-folded,
    whitespace collapsed, edge punctuation stripped) after Unicode compatibility forms, with a
    trailing possessive dropped ("Microsoft's" -> "microsoft", " “ACME Corp.” " -> "acme corp")."""
    out = normalize_mention(unicodedata.normalize("NFKC", text))
    without = _POSSESSIVE.sub("", out)
    if without != out:
        out = normalize_mention(without)
    return out or " ".join(text.casefold().split())


@dataclass(slots=True)
class _Side:
    norm: str
    type: str
    forms: dict[str, int] = field(default_factory=dict)

    def add(self, text: str) -> None:
        if text in self.forms or len(self.forms) < SURFACE_FORMS:
            self.forms[text] = self.forms.get(text, 0) + 1

    def record(self) -> dict[str, Any]:
        # the commonest spelling; of equally common ones the first seen
        shown = max(self.forms.items(), key=lambda kv: kv[1])[0] if self.forms else self.norm
        return {"text": shown, "normalised": self.norm, "type": self.type}


@dataclass(slots=True)
class Fact:
    """One distinct fact and the counts of the mentions that state it."""

    relation: str
    head: _Side
    tail: _Side
    doc: str | None = None  # --by document
    mentions: int = 0
    documents: int = 0
    sentences: int = 0
    score_sum: float = 0.0
    max_score: float = -math.inf
    # a min-heap of (score, -order, doc, sentence, head start, head end, tail start, tail end)
    evidence: list[tuple] = field(default_factory=list)
    last_doc: str | None = None
    last_sentence: tuple[str, int] | None = None

    def add(self, record: dict[str, Any], order: int, max_evidence: int) -> None:
        doc, sentence, score = record["doc"], record["sentence"], record["score"]
        self.mentions += 1
        self.score_sum += score
        self.max_score = max(self.max_score, score)
        if doc != self.last_doc:
            self.documents += 1
            self.last_doc = doc
        if (doc, sentence) != self.last_sentence:
            self.sentences += 1
            self.last_sentence = (doc, sentence)
        self.head.add(record["head"]["text"])
        self.tail.add(record["tail"]["text"])
        if max_evidence > 0:
            item = (score, -order, doc, sentence, record["head"]["start"], record["head"]["end"],
                    record["tail"]["start"], record["tail"]["end"])
            if len(self.evidence) < max_evidence:
                heapq.heappush(self.evidence, item)
            elif item[:2] > self.evidence[0][:2]:
                heapq.heapreplace(self.evidence, item)

    @property
    def mean_score(self) -> float:
        return self.score_sum / self.mentions if self.mentions else 0.0

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.doc is not None:
            out["doc"] = self.doc
        out.update({"relation": self.relation, "head": self.head.record(), "tail": self.tail.record(),
                    "mentions": self.mentions, "documents": self.documents, "sentences": self.sentences,
                    "max_score": round(self.max_score, 6), "mean_score": round(self.mean_score, 6),
                    "evidence": [{"doc": doc, "sentence": sentence, "head": [hs, he], "tail": [ts, te], "score": score}
                                 for score, _, doc, sentence, hs, he, ts, te in sorted(self.evidence, reverse=True)]})
        return out


def aggregate_triples(records: Iterable[dict[str, Any]], *, by: str = "corpus",
                      max_evidence: int = DEFAULT_MAX_EVIDENCE, min_score: float | None = None,
                      min_count: int = 1) -> list[Fact]:
    """The facts of `records` (output records of `fsre extract`), most often stated first.
    Triples scored below `min_score` are left out; facts stated fewer than `min_count` times
    too."""
    if by not in AGGREGATE_BY:
        raise UsageError(f"--by must be one of {', '.join(AGGREGATE_BY)}, not {by!r}")
    facts: dict[tuple, Fact] = {}
    for order, record in enumerate(records):
        if min_score is not None and record["score"] < min_score:
            continue
        head, tail = record["head"], record["tail"]
        hn, tn = normalise(head["text"]), normalise(tail["text"])
        doc = record["doc"] if by == "document" else None
        key = (doc, record["relation"], hn, head["type"], tn, tail["type"])
        fact = facts.get(key)
        if fact is None:
            fact = facts[key] = Fact(record["relation"], _Side(hn, head["type"]), _Side(tn, tail["type"]), doc)
        fact.add(record, order, max_evidence)
    kept = [f for f in facts.values() if f.mentions >= min_count]
    kept.sort(key=lambda f: (-f.mentions, -f.max_score, f.relation, f.head.norm, f.tail.norm, f.doc or ""))
    return kept


def _checked(record: Any, where: str, scored: bool = True) -> dict[str, Any]:
    """`record` if it is an output triple (the fields aggregation reads; the score only when
    `scored`, so gold files pass too), else a UsageError."""
    if not isinstance(record, dict):
        raise UsageError(f"{where}: not a triple record (a JSON object)")
    for name in ("doc", "sentence", "relation", "head", "tail") + (("score",) if scored else ()):
        if name not in record:
            raise UsageError(f"{where}: not a triple record: no {name!r}")
    for side in ("head", "tail"):
        span = record[side]
        if not isinstance(span, dict) or not all(k in span for k in ("text", "type", "start", "end")):
            raise UsageError(f"{where}: {side} must be an object with text, type, start and end")
    score = record.get("score")
    if (scored or score is not None) and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise UsageError(f"{where}: score must be a number")
    record["doc"] = str(record["doc"])
    return record


def triple_files(sources: Sequence[str]) -> list[str]:
    """The files to read: each source itself, or a folder's `*.jsonl` (the Ray engine's shards;
    its manifest and `.progress` files are not triples), sorted; `-` is stdin."""
    out: list[str] = []
    for source in sources:
        if source == "-":
            out.append(source)
            continue
        path = Path(source)
        if path.is_dir():
            shards = sorted(p for p in path.rglob("*.jsonl") if p.is_file() and not p.name.startswith("manifest"))
            if not shards:
                raise UsageError(f"{source}: a folder with no .jsonl files of triples")
            out += [str(p) for p in shards]
        elif path.exists():
            out.append(source)
        else:
            raise UsageError(f"{source}: no such file or directory")
    return out


def read_triples(sources: Sequence[str], stdin: TextIO | None = None, scored: bool = True
                 ) -> Iterator[dict[str, Any]]:
    """Output records from files, folders of shards and `-`, one at a time; a line that is not
    a triple stops with `FILE:LINE: reason`. `scored=False` also takes records without a score
    (gold files)."""
    import sys

    for source in triple_files(sources):
        fh = (stdin or sys.stdin) if source == "-" else open(source, encoding="utf-8")
        name = "<stdin>" if source == "-" else source
        try:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UsageError(f"{name}:{number}: not JSON ({exc.msg})") from None
                yield _checked(record, f"{name}:{number}", scored)
        finally:
            if source != "-":
                fh.close()


CSV_COLUMNS = ("doc", "relation", "head", "head_type", "tail", "tail_type", "mentions", "documents", "sentences",
               "max_score", "mean_score", "evidence")


def csv_row(fact: Fact) -> dict[str, Any]:
    """A flat row: the displayed head and tail, counts, scores, and the best evidence as
    `doc#sentence` items joined by spaces."""
    rec = fact.record()
    return {"doc": rec.get("doc", ""), "relation": rec["relation"], "head": rec["head"]["text"],
            "head_type": rec["head"]["type"], "tail": rec["tail"]["text"], "tail_type": rec["tail"]["type"],
            "mentions": rec["mentions"], "documents": rec["documents"], "sentences": rec["sentences"],
            "max_score": rec["max_score"], "mean_score": rec["mean_score"],
            "evidence": " ".join(f"{e['doc']}#{e['sentence']}" for e in rec["evidence"])}
