"""Schema-constrained synthetic examples (SCDG) and explanations (EDKG), written to the sidecar.

An LLM, especially the 135M default, writes plenty of unusable text. Nothing it
writes is trusted: every generated example goes through `filter_generation`
(mentions must occur verbatim, types must fit the relation, no duplicates...),
and the report says how many were kept and why the others were dropped.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Sequence

from fsre_cli.console import NULL_LOG, Log
from fsre_cli.errors import FsreError, UsageError
from fsre_cli.llm.client import ChatRequest, LLMClient, LLMOutputError, parse_json
from fsre_cli.llm.prompts import explain_messages, prompt_hash, synth_messages, synth_schema
from fsre_cli.spans import overlaps
from fsre_cli.schema import Example, Relation, Schema, Span
from fsre_cli.sidecar import (
    Explanation, beside_path, count_records, example_record, explanation_record, read_sidecar, write_sidecar,
)

# Drop reasons, as shown to the user.
UNPARSEABLE = "answer had no JSON"
MALFORMED = "malformed item"
EMPTY_MENTION = "empty head or tail"
TOO_SHORT = "text too short"
TOO_LONG = "text too long"
NOT_SENTENCE = "not a sentence"
MENTION_TOO_LONG = "mention too long"
SAME_ENTITY = "head equals tail"
HEAD_MISSING = "head not in text"
TAIL_MISSING = "tail not in text"
OVERLAP = "head and tail overlap"
HEAD_TYPE = "head type not allowed"
TAIL_TYPE = "tail type not allowed"
COPY = "copy of a real example"  # same words, nearly (Jaccard >= NEAR_COPY), or one with more added
DUPLICATE = "duplicate"
REJECTED = "rejected by verifier"
SURPLUS = "more than requested"
EMPTY = "empty answer"
NO_ENTITY = "mentions neither entity"

MIN_CHARS, MAX_CHARS, MIN_WORDS = 12, 400, 4
MAX_MENTION_WORDS = 10
NEAR_COPY = 0.75
_JUNK_EDGES = " \t\n,;\"'`[]{}"
TOKENS_PER_EXAMPLE = 80  # generous for one JSON item of a one-sentence example
MAX_ASK = 4  # examples asked per call: short answers, more seeds, more variety
MAX_CALLS = 4  # calls per relation per round

Verifier = Callable[[Example], bool]


@dataclass
class SynthReport:
    """What a synth run produced: sidecar records and per-relation kept/dropped counts."""

    records: list[dict[str, Any]] = field(default_factory=list)
    generated: Counter = field(default_factory=Counter)  # relation -> candidate examples read
    kept: Counter = field(default_factory=Counter)  # relation -> examples kept
    dropped: dict[str, Counter] = field(default_factory=dict)  # relation -> reason -> count
    explanations_kept: int = 0
    explanations_dropped: Counter = field(default_factory=Counter)
    calls: int = 0  # LLM calls, cached or not
    cached_calls: int = 0
    seconds: float = 0.0
    output: Path | None = None  # the file written
    kept_existing: Path | None = None  # the sidecar left as it was because this run would have shrunk it

    @property
    def examples(self) -> list[Example]:
        return [
            Example(r["relation"], r["text"], Span.from_record(r["head"]), Span.from_record(r["tail"]), "synthetic")
            for r in self.records
            if r["kind"] == "example"
        ]

    def drop_reasons(self) -> Counter:
        total: Counter = Counter()
        for reasons in self.dropped.values():
            total.update(reasons)
        return total

    def merge(self, other: "SynthReport") -> "SynthReport":
        self.records += other.records
        self.generated.update(other.generated)
        self.kept.update(other.kept)
        for rel, reasons in other.dropped.items():
            self.dropped.setdefault(rel, Counter()).update(reasons)
        self.explanations_kept += other.explanations_kept
        self.explanations_dropped.update(other.explanations_dropped)
        self.calls += other.calls
        self.cached_calls += other.cached_calls
        self.seconds += other.seconds
        return self


# --------------------------------------------------------------------------- filtering
def normalise(text: str) -> str:
    """Case, punctuation and spacing removed: what makes two sentences 'the same' for dedup."""
    return " ".join(re.findall(r"\w+", text.lower()))


def clean_text(text: str) -> str:
    """Strip what a model leaves around a sentence (quotes, commas, brackets from broken JSON)."""
    return " ".join(text.split()).strip(_JUNK_EDGES)


def _words(text: str) -> set[str]:
    return set(normalise(text).split())


def near_copy(words: set[str], others: Sequence[set[str]], threshold: float = NEAR_COPY) -> bool:
    """Whether a sentence shares nearly all its words with one of `others` (a lightly edited copy)."""
    return any(len(words & o) / max(1, len(words | o)) >= threshold for o in others)


def occurrences(text: str, mention: str) -> list[tuple[int, int]]:
    """Verbatim occurrences of `mention` that are whole words (not "Ann" inside "Annual")."""
    pattern = re.compile(r"(?<!\w)" + re.escape(mention) + r"(?!\w)")
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def place_mentions(text: str, head: str, tail: str) -> tuple[tuple[int, int] | None, tuple[int, int] | None, str | None]:
    """Offsets of head and tail: the first occurrence of each, moving on only to avoid an overlap.
    Returns (head, tail, None) or (.., .., drop reason)."""
    heads, tails = occurrences(text, head), occurrences(text, tail)
    if not heads:
        return None, None, HEAD_MISSING
    if not tails:
        return None, None, TAIL_MISSING
    for h in heads:
        for t in tails:
            if not overlaps(*h, *t):
                return h, t, None
    return None, None, OVERLAP


def resolve_type(given: Any, allowed: Sequence[str], schema: Schema) -> str | None:
    """The schema type a generated type names, if the relation allows it. A missing type is
    fine when the relation allows only one; NER-style labels (PER, GPE) map through the schema."""
    if given is None or (isinstance(given, str) and not given.strip()):
        return allowed[0] if len(allowed) == 1 else None
    if not isinstance(given, str):
        return None
    given = given.strip()
    if given in allowed:
        return given
    for t in allowed:
        if t.upper() == given.upper():
            return t
    mapped = schema.type_for_label(given)
    return mapped if mapped in allowed else None


def filter_generation(
    relation: Relation | str,
    candidates: Iterable[Any],
    schema: Schema,
    seen: set[str],
) -> tuple[list[Example], Counter]:
    """Keep the generated examples that are usable training data for `relation`.

    A candidate is a dict {text, head, tail, head_type?, tail_type?} as the LLM wrote
    it. `seen` holds the normalised texts accepted so far (this run and earlier ones)
    and is updated; copies of the schema's real examples are always rejected.
    """
    rel = schema.relations[relation] if isinstance(relation, str) else relation
    real = {normalise(ex.text) for ex in schema.examples}
    real_words = [_words(ex.text) for ex in schema.examples]
    kept: list[Example] = []
    dropped: Counter = Counter()
    for cand in candidates:
        if not isinstance(cand, dict) or not all(isinstance(cand.get(k), str) for k in ("text", "head", "tail")):
            dropped[MALFORMED] += 1
            continue
        text = clean_text(cand["text"])
        head, tail = cand["head"].strip(), cand["tail"].strip()
        if len(text) < MIN_CHARS or len(text.split()) < MIN_WORDS:
            dropped[TOO_SHORT] += 1
            continue
        if len(text) > MAX_CHARS:
            dropped[TOO_LONG] += 1
            continue
        if text[-1] not in ".!?\"')" or not any(c.islower() for c in text):
            dropped[NOT_SENTENCE] += 1
            continue
        if not head or not tail:
            dropped[EMPTY_MENTION] += 1
            continue
        if len(head.split()) > MAX_MENTION_WORDS or len(tail.split()) > MAX_MENTION_WORDS:
            dropped[MENTION_TOO_LONG] += 1
            continue
        if head.lower() == tail.lower():
            dropped[SAME_ENTITY] += 1
            continue
        h, t, reason = place_mentions(text, head, tail)
        if reason is not None:
            dropped[reason] += 1
            continue
        head_type = resolve_type(cand.get("head_type"), rel.head_types, schema)
        if head_type is None:
            dropped[HEAD_TYPE] += 1
            continue
        tail_type = resolve_type(cand.get("tail_type"), rel.tail_types, schema)
        if tail_type is None:
            dropped[TAIL_TYPE] += 1
            continue
        key = normalise(text)
        if key in real or any(r in key for r in real) or near_copy(set(key.split()), real_words):
            dropped[COPY] += 1
            continue
        if key in seen:
            dropped[DUPLICATE] += 1
            continue
        seen.add(key)
        assert h is not None and t is not None
        kept.append(
            Example(rel.name, text, Span(h[0], h[1], head_type, head), Span(t[0], t[1], tail_type, tail), "synthetic")
        )
    return kept, dropped


def generation_items(text: str) -> list[Any] | None:
    """The candidate examples in an answer; salvages complete items from a truncated answer.
    None when there is nothing JSON-like at all."""
    try:
        data = parse_json(text)
    except LLMOutputError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("examples"), list):
        return data["examples"]
    if isinstance(data, list):
        return data
    # one bare item, or an answer cut off by max_tokens: every complete {...} that looks like an example
    items: list[Any] = []
    decoder = json.JSONDecoder()
    i = text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict) and "text" in obj:
            items.append(obj)
            i = text.find("{", end)
        else:
            i = text.find("{", i + 1)
    return items or None


# --------------------------------------------------------------------------- SCDG
def generate_synthetic(
    schema: Schema,
    client: LLMClient,
    per_relation: int = 8,
    *,
    max_rounds: int = 3,
    verify: Verifier | None = None,
    existing: Sequence[Example] = (),
    temperature: float = 0.8,
    log: Log = NULL_LOG,
) -> SynthReport:
    """Ask the LLM for `per_relation` new examples of each relation, filtered.

    Up to `max_rounds` rounds: each asks only for the relations still short of
    `per_relation` (a few seeded calls each), tells the model which sentences it
    already has, and uses new seeds, so that rounds neither repeat nor hit the
    same cache entries. Calls run concurrently (the client bounds it). `verify(example) -> bool` can
    reject kept examples (e.g. a classifier's check). `existing` synthetic examples
    (an appended sidecar) count as seen.
    """
    if per_relation < 1:
        raise UsageError("--per-relation must be at least 1")
    start = time.perf_counter()
    report = SynthReport()
    model = client.model
    seen = {normalise(ex.text) for ex in existing}
    kept: dict[str, list[Example]] = {name: [] for name in schema.relations}
    prior: dict[str, list[str]] = {name: [ex.text for ex in existing if ex.relation == name] for name in schema.relations}
    for name in schema.relations:
        report.dropped[name] = Counter()
    for round_no in range(max_rounds):
        todo = [rel for rel in schema.relations.values() if len(kept[rel.name]) < per_relation]
        if not todo:
            break
        # Several seeds of one prompt per relation, kept adjacent: a local llama.cpp server
        # re-uses the evaluated prompt prefix, which is most of the cost on a CPU.
        requests: list[ChatRequest] = []
        owners: list[Relation] = []
        for rel in todo:
            need = per_relation - len(kept[rel.name])
            ask = min(need + (2 if round_no else 0), MAX_ASK)
            calls = min(MAX_CALLS, -(-need // 2))
            avoid = prior[rel.name] + [ex.text for ex in kept[rel.name]]
            messages = synth_messages(rel, ask, avoid=avoid)
            for j in range(calls):
                requests.append(
                    ChatRequest(
                        messages=messages,
                        temperature=temperature,
                        max_tokens=TOKENS_PER_EXAMPLE * ask + 64,
                        json_schema=synth_schema(rel, ask),
                        seed=round_no * 1000 + j,
                    )
                )
                owners.append(rel)
        log.debug(f"synth round {round_no + 1}: {len(requests)} request(s) for {len(todo)} relation(s)")
        with log.progress(f"synthetic examples, round {round_no + 1}", total=len(requests)) as task:
            results = client.chat_many(requests, progress=task.advance)
        for rel, req, res in zip(owners, requests, results):
            report.calls += 1
            report.cached_calls += int(res.cached)
            dropped = report.dropped[rel.name]
            items = generation_items(res.text)
            if items is None:
                dropped[UNPARSEABLE] += 1
                log.debug(f"{rel.name}: no JSON in answer: {res.text[:200]!r}")
                continue
            report.generated[rel.name] += len(items)
            new, reasons = filter_generation(rel, items, schema, seen)
            dropped.update(reasons)
            phash = prompt_hash(req.messages)
            for ex in new:
                if len(kept[rel.name]) >= per_relation:
                    dropped[SURPLUS] += 1
                    continue
                if verify is not None and not verify(ex):
                    dropped[REJECTED] += 1
                    continue
                kept[rel.name].append(ex)
                report.records.append(example_record(ex, model=model, prompt_hash=phash))
    for name, exs in kept.items():
        report.kept[name] = len(exs)
    # records grouped by relation, in schema order, for a readable sidecar
    order = {name: i for i, name in enumerate(schema.relations)}
    report.records.sort(key=lambda r: order[r["relation"]])
    report.seconds = time.perf_counter() - start
    return report


# --------------------------------------------------------------------------- EDKG
def clean_explanation(text: str) -> str:
    """One paragraph, without a trailing half sentence left by max_tokens."""
    text = " ".join(text.split())
    if text and text[-1] not in ".!?\"')" and re.search(r"[.!?]", text):
        text = text[: max(text.rfind(c) for c in ".!?") + 1]
    return text


def check_explanation(text: str, ex: Example) -> str | None:
    """A drop reason, or None to keep: the answer must be non-empty and talk about the pair."""
    if not text.strip():
        return EMPTY
    low = text.lower()
    if ex.head.text.lower() not in low and ex.tail.text.lower() not in low:
        return NO_ENTITY
    if len(text.split()) < MIN_WORDS:
        return TOO_SHORT
    return None


def generate_explanations(
    schema: Schema,
    client: LLMClient,
    *,
    skip: Collection[tuple[str, str]] = (),
    max_tokens: int = 120,
    log: Log = NULL_LOG,
) -> SynthReport:
    """For each real example, ask why its head has the relation with its tail (EDKG).

    `skip` holds (relation, example text) pairs already explained (appending to a sidecar).
    """
    start = time.perf_counter()
    report = SynthReport()
    pairs = [(rel, ex) for rel in schema.relations.values() for ex in rel.examples if (rel.name, ex.text) not in skip]
    if not pairs:
        return report
    model = client.model
    requests = [ChatRequest(messages=explain_messages(rel, ex), max_tokens=max_tokens) for rel, ex in pairs]
    with log.progress("explanations", total=len(requests)) as task:
        results = client.chat_many(requests, progress=task.advance)
    for (rel, ex), req, res in zip(pairs, requests, results):
        report.calls += 1
        report.cached_calls += int(res.cached)
        text = clean_explanation(res.text)
        reason = check_explanation(text, ex)
        if reason is not None:
            report.explanations_dropped[reason] += 1
            continue
        report.explanations_kept += 1
        exp = Explanation(rel.name, text, ex.head.text, ex.tail.text, ex.text)
        report.records.append(explanation_record(exp, model=model, prompt_hash=prompt_hash(req.messages)))
    report.seconds = time.perf_counter() - start
    return report


# --------------------------------------------------------------------------- both, to the sidecar
def run_synth(
    schema: Schema,
    client: LLMClient,
    *,
    per_relation: int = 8,
    explanations: bool = True,
    output: Path | None = None,
    append: bool = False,
    replace: bool = False,
    verify: Verifier | None = None,
    max_rounds: int = 3,
    log: Log = NULL_LOG,
) -> SynthReport:
    """Generate, filter and write the sidecar (`schema.sidecar_path` unless `output`).

    A reviewed sidecar is never shrunk unless asked:

    - nothing usable came back: FsreError (exit 1), nothing is written;
    - `append`: the new records are added after the existing ones (nothing already
      there is generated again);
    - otherwise the new records replace the sidecar only when there are at least as
      many as it holds, or with `replace`; else the sidecar is kept and the new
      records go to `NAME.synth.new.jsonl` beside it (`report.output`, with
      `report.kept_existing` set), for the user to compare.

    Every write is atomic (see `write_sidecar`).
    """
    path = output or schema.sidecar_path
    if path is None:
        raise UsageError("the schema has no file path; give --output")
    old_records: list[dict[str, Any]] = []
    existing: list[Example] = []
    explained: set[tuple[str, str]] = set()
    if append and path.exists():
        side = read_sidecar(path, schema)
        old_records, existing = side.records, side.examples
        explained = {(e.relation, e.example_text) for e in side.explanations}
    report = generate_synthetic(
        schema, client, per_relation, max_rounds=max_rounds, verify=verify, existing=existing, log=log
    )
    if explanations:
        report.merge(generate_explanations(schema, client, skip=explained, log=log))
    if not report.records:
        raise FsreError(_nothing_usable(report, path))
    if append:
        write_sidecar(path, old_records + report.records)
        report.output = path
        return report
    held = count_records(path)
    if len(report.records) < held and not replace:
        new_path = beside_path(path)
        write_sidecar(new_path, report.records)
        report.output, report.kept_existing = new_path, path
        log.warn(
            f"{path} holds {held} record(s) and this run produced {len(report.records)}: kept it as it is and "
            f"wrote the new ones to {new_path}; use --append to add them or --replace to overwrite"
        )
        return report
    write_sidecar(path, report.records)
    report.output = path
    return report


def _nothing_usable(report: SynthReport, path: Path) -> str:
    """One line: how many answers there were, why each was unusable, and that the sidecar is untouched."""
    reasons = report.drop_reasons() + report.explanations_dropped
    why = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common(4)) or "no answers"
    state = f"{path} was left unchanged" if path.exists() else f"{path} was not written"
    cached = f", {report.cached_calls} from the cache (--no-cache asks again)" if report.cached_calls else ""
    return (
        f"nothing usable came back from the LLM ({report.calls} call(s){cached}; "
        f"{sum(report.generated.values())} candidate example(s), all dropped: {why}); {state}. "
        "Try a larger model (--llm-model or FSRE_LLM_MODEL)."
    )
