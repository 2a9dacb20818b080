"""Schema files: relations, entity types and a few examples, validated with precise messages.

A schema is YAML (see README "Schema format"). Loading it either returns a
`Schema` whose examples are resolved to character spans, or raises
`SchemaError` listing *every* problem as ``FILE:LINE: PATH: reason``.

The loader is bounded against hostile files: at most `MAX_SCHEMA_BYTES`, nesting
at most `MAX_DEPTH` deep, and aliases expanding to at most `MAX_ALIAS_NODES`
nodes in all (a "billion laughs" file of a few hundred bytes would otherwise
expand to gigabytes), checked on YAML's event stream before anything is built.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fsre_cli.spans import Span
from fsre_cli.errors import SchemaError

PLACEHOLDER = re.compile(r"\{(\w*)\}")

MAX_SCHEMA_BYTES = 5 * 1024 * 1024  # the shipped schemas are a few kB
MAX_DEPTH = 64  # a schema nests about 6 deep; deeper input only risks RecursionError
MAX_ALIAS_NODES = 10_000  # nodes that aliases add by repeating their anchor; normal schemas add few or none


# --------------------------------------------------------------------------- raw (pydantic) form
class MentionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=0)
    type: str | None = None


class ExampleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    head: str | MentionSpec
    tail: str | MentionSpec
    entities: list[MentionSpec] | None = None  # the sentence's other entities: their unlabelled pairs are NOTA


class NegativeSpec(BaseModel):
    """A sentence whose head and tail do *not* hold the relation it is listed under."""

    model_config = ConfigDict(extra="forbid")
    text: str
    head: str | MentionSpec
    tail: str | MentionSpec


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class RelationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    head: list[str]
    tail: list[str]
    template: str | None = None
    examples: list[ExampleSpec] = Field(default_factory=list)
    negatives: list[NegativeSpec] = Field(default_factory=list)

    _norm_types = field_validator("head", "tail", mode="before")(_as_list)


class SchemaSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    language: str = "en"
    encoder: str | None = None
    entity_types: dict[str, list[str]]
    relations: dict[str, RelationSpec]
    data: list[str] = Field(default_factory=list)  # fully annotated JSONL documents (paths beside the schema)

    _norm_data = field_validator("data", mode="before")(_as_list)
    _norm_labels = field_validator("entity_types", mode="before")(
        lambda v: {k: _as_list(x) for k, x in v.items()} if isinstance(v, dict) else v
    )


# --------------------------------------------------------------------------- resolved form
@dataclass(frozen=True)
class Example:
    """One labelled sentence: real (from the schema) or synthetic (from the sidecar)."""

    relation: str  # for a negative: the relation its pair does *not* hold
    text: str
    head: Span
    tail: Span
    source: str = "schema"
    # The sentence's other entities, when the schema lists them (None: not listed; NER or a
    # guess then finds the NOTA pairs). Every unlabelled pair among head, tail and these is NOTA.
    entities: tuple[Span, ...] | None = None


@dataclass
class Relation:
    name: str
    description: str
    head_types: tuple[str, ...]
    tail_types: tuple[str, ...]
    template: str | None
    examples: list[Example] = field(default_factory=list)
    negatives: list[Example] = field(default_factory=list)  # pairs that do not hold this relation

    def statement(self, head: str, tail: str) -> str:
        """The QA4RE option text: the template filled with the two mentions."""
        template = self.template or default_template(self)
        return template.replace("{head}", head).replace("{tail}", tail)


def default_template(rel: Relation) -> str:
    """A statement for a relation with no template: its description when it names both
    slots, else the relation name read as words ("founded_by" -> "{head} founded by {tail}")."""
    if rel.description and "{head}" in rel.description and "{tail}" in rel.description:
        return rel.description
    words = rel.name.replace("_", " ").replace("-", " ").strip()
    return "{head} " + words + " {tail}"


@dataclass
class Schema:
    name: str
    language: str
    encoder: str | None
    entity_types: dict[str, tuple[str, ...]]
    relations: dict[str, Relation]
    path: Path | None = None
    description: str = ""
    warnings: list[str] = field(default_factory=list)
    data: list[Any] = field(default_factory=list)  # AnnotatedSentence of the `data:` files
    review: list[Any] = field(default_factory=list)  # review.Decision of NAME.review.jsonl beside the schema

    @property
    def review_learned(self) -> tuple[list[Example], list[Example]]:
        """(examples, negatives) from the review file's decisions (`fsre_cli.review`)."""
        from fsre_cli.review import learned

        examples, negatives = learned(self.review)
        return ([Example(r, text, h, t, "review") for r, text, h, t in examples],
                [Example(r, text, h, t, "review") for r, text, h, t in negatives])

    @property
    def data_examples(self) -> list[Example]:
        """The `data:` files' triples as examples that list their sentences' other entities."""
        from fsre_cli.annotated import examples_of

        return examples_of(self.data)

    @property
    def relation_names(self) -> list[str]:
        return list(self.relations)

    @property
    def examples(self) -> list[Example]:
        """The relations' examples, then those of the `data:` files and of the review file."""
        return ([e for r in self.relations.values() for e in r.examples] + (self.data_examples if self.data else [])
                + (self.review_learned[0] if self.review else []))

    @property
    def negatives(self) -> list[Example]:
        """Every relation's `negatives:` (each `Example.relation` names the relation it does not hold),
        then the review file's rejected pairs."""
        return ([e for r in self.relations.values() for e in r.negatives]
                + (self.review_learned[1] if self.review else []))

    @property
    def review_path(self) -> Path | None:
        """`NAME.review.jsonl` beside the schema file: a person's decisions on extracted triples."""
        from fsre_cli.review import review_path

        return review_path(self.path)

    def nota_advice(self) -> list[str]:
        """Relations whose examples tell training nothing about NOTA: no `negatives:`, and no
        example lists its sentence's other `entities:` (training then guesses them with NER)."""
        from_data = {e.relation for e in self.data_examples} if self.data else set()
        bare = [name for name, r in self.relations.items()
                if r.examples and not r.negatives and not any(e.entities for e in r.examples) and name not in from_data]
        if not bare:
            return []
        return [f"{len(bare)} of {len(self.relations)} relations have no negatives and no example lists its "
                f"sentence's other entities ({', '.join(bare)}): training then guesses the pairs that hold no "
                "relation from NER; add `negatives:` or `entities:` (README, Schema format)"]

    def type_for_label(self, label: str) -> str | None:
        """The schema type an NER label maps to (labels may also be schema type names)."""
        return self._label_map.get(label.upper())

    @functools.cached_property
    def _label_map(self) -> dict[str, str]:
        """Built once: entity recognition looks up every mention's label."""
        mapping: dict[str, str] = {t.upper(): t for t in self.entity_types}
        for schema_type, labels in self.entity_types.items():
            for label in labels:
                mapping[label.upper()] = schema_type
        return mapping

    def relations_for(self, head_type: str, tail_type: str) -> tuple[str, ...]:
        """Relations whose type constraints admit this ordered pair of types."""
        key = (head_type, tail_type)
        if key not in self._relations_by_types:
            self._relations_by_types[key] = tuple(
                r.name for r in self.relations.values() if head_type in r.head_types and tail_type in r.tail_types
            )
        return self._relations_by_types[key]

    @functools.cached_property
    def _relations_by_types(self) -> dict[tuple[str, str], tuple[str, ...]]:
        """Memo for `relations_for`, asked once per candidate pair (relations are fixed after loading)."""
        return {}

    @property
    def sidecar_path(self) -> Path | None:
        """`NAME.synth.jsonl` beside the schema file: synthetic examples and explanations."""
        from fsre_cli.paths import beside_schema

        return beside_schema(self.path, "synth")

    def canonical(self) -> dict[str, Any]:
        """Everything that determines a trained model, in a stable order."""
        return {
            "name": self.name,
            "language": self.language,
            "entity_types": {k: list(v) for k, v in sorted(self.entity_types.items())},
            "relations": {
                name: {
                    "description": r.description,
                    "head": list(r.head_types),
                    "tail": list(r.tail_types),
                    "template": r.template,
                    "examples": [_example_record(e) for e in r.examples],
                    # only when present, so schemas without them keep their hash (and cached models)
                    **({"negatives": [_example_record(e) for e in r.negatives]} if r.negatives else {}),
                }
                for name, r in self.relations.items()
            },
        }

    def content_hash(self) -> str:
        canonical = self.canonical()
        if self.data:  # only when present, so schemas without `data:` keep their hash
            from fsre_cli.annotated import data_hash

            canonical["data"] = data_hash(self.data)
        if self.review:  # likewise
            from fsre_cli.review import review_hash

            canonical["review"] = review_hash(self.review)
        data = json.dumps(canonical, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(data.encode("utf-8")).hexdigest()


def _example_record(e: Example) -> dict[str, Any]:
    record: dict[str, Any] = {"text": e.text, "head": e.head.to_record(), "tail": e.tail.to_record()}
    if e.entities is not None:
        record["entities"] = [m.to_record() for m in e.entities]
    return record


# --------------------------------------------------------------------------- YAML with line numbers
class _LineIndex:
    """Maps a path (tuple of keys/indices) to the YAML line it starts on."""

    def __init__(self, root: yaml.Node | None, problems: list[str], filename: str) -> None:
        self.lines: dict[tuple[Any, ...], int] = {}
        if root is not None:
            self._walk(root, (), problems, filename)

    def _walk(self, node: yaml.Node, path: tuple[Any, ...], problems: list[str], filename: str) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value
                line = key_node.start_mark.line + 1
                if key in seen:
                    where = format_path(path) or "top level"
                    problems.append(
                        f"{filename}:{line}: {where}: duplicate key {key!r} (first defined on line {seen[key]})"
                    )
                seen[key] = line
                self._walk(value_node, path + (key,), problems, filename)
                self.lines[path + (key,)] = line
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, path + (i,), problems, filename)

    def line(self, path: Iterable[Any]) -> int | None:
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def format_path(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


# --------------------------------------------------------------------------- loading
def load_schema(path: str | Path) -> Schema:
    """Read, validate and resolve a schema file; raise SchemaError listing every problem."""
    path = Path(path)
    try:
        with path.open("rb") as fh:  # read at most one byte past the limit (a FIFO or /dev/zero never ends)
            data = fh.read(MAX_SCHEMA_BYTES + 1)
        if len(data) > MAX_SCHEMA_BYTES:
            raise SchemaError([f"{path}: schema file is larger than {MAX_SCHEMA_BYTES // (1024 * 1024)} MB"])
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise SchemaError([f"{path}: no such schema file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError([f"{path}: cannot read schema: {exc}"]) from None
    return parse_schema(text, filename=str(path), path=path)


def check_yaml_bounds(text: str, filename: str = "<schema>") -> None:
    """Raise SchemaError when YAML text nests deeper than MAX_DEPTH or its aliases expand to
    more than MAX_ALIAS_NODES nodes (or refer to their own anchor).

    Runs on the event stream, which PyYAML produces without recursion and without
    expanding aliases, so a hostile file is refused in time and memory linear in its size.
    """
    sizes: dict[str, int] = {}  # anchor -> nodes in its (expanded) subtree; absent while still open
    open_anchors: set[str] = set()
    frames: list[list[Any]] = []  # per open collection: [anchor, nodes so far]
    added = 0  # nodes that aliases add

    def fail(event: yaml.Event, reason: str) -> None:
        raise SchemaError([f"{filename}:{event.start_mark.line + 1}: {reason}"])

    def close(anchor: str | None, size: int) -> None:
        if anchor is not None:
            sizes[anchor] = size
            open_anchors.discard(anchor)
        if frames:
            frames[-1][1] += size

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(frames) >= MAX_DEPTH:
                fail(event, f"nested more than {MAX_DEPTH} levels deep")
            if event.anchor is not None:
                open_anchors.add(event.anchor)
                sizes.pop(event.anchor, None)
            frames.append([event.anchor, 1])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, size = frames.pop()
            close(anchor, size)
        elif isinstance(event, yaml.ScalarEvent):
            close(event.anchor, 1)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor in open_anchors:
                fail(event, f"alias *{event.anchor} refers to its own anchor (a recursive structure)")
            size = sizes.get(event.anchor)
            if size is None:  # the composer reports it as "found undefined alias"
                continue
            added += size
            if added > MAX_ALIAS_NODES:
                fail(event, f"aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?); "
                            "write the repeated parts out")
            if frames:
                frames[-1][1] += size


def parse_schema(text: str, filename: str = "<schema>", path: Path | None = None) -> Schema:
    problems: list[str] = []
    if len(text) > MAX_SCHEMA_BYTES:
        raise SchemaError([f"{filename}: schema is larger than {MAX_SCHEMA_BYTES // (1024 * 1024)} MB"])
    try:
        check_yaml_bounds(text, filename)
        loader = yaml.SafeLoader(text)
        try:  # compose once and build the data from that node tree (not a second parse)
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        reason = getattr(exc, "problem", None) or str(exc)
        raise SchemaError([f"{where}: YAML syntax error: {reason}"]) from None
    index = _LineIndex(root, problems, filename)

    def report(loc: Iterable[Any], reason: str, line_loc: Iterable[Any] | None = None) -> None:
        loc = tuple(loc)
        line = index.line(tuple(line_loc) if line_loc is not None else loc)
        where = f"{filename}:{line}" if line else filename
        dotted = format_path(loc)
        problems.append(f"{where}: {dotted + ': ' if dotted else ''}{reason}")

    if not isinstance(data, dict):
        report((), "a schema must be a mapping with `name`, `entity_types` and `relations`")
        raise SchemaError(problems)
    try:
        spec = SchemaSpec.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            report(_clean_loc(err["loc"]), _pydantic_reason(err))
        raise SchemaError(problems) from None
    if problems:  # duplicate keys
        raise SchemaError(problems)

    warnings: list[str] = []
    schema = _resolve(spec, report, lambda loc, msg: warnings.append(_where(index, filename, loc) + msg))
    if problems:
        raise SchemaError(problems)
    schema.path = path
    schema.warnings = warnings
    if spec.data:
        from fsre_cli.annotated import read_data_file

        base = path.parent if path is not None else Path.cwd()
        for i, name in enumerate(spec.data):
            file = base / name
            if not file.is_file():
                report(("data", i), f"no such file: {file}")
                continue
            schema.data += read_data_file(file, schema, problems.append, schema.warnings.append)
        if problems:
            raise SchemaError(problems)
    review = schema.review_path
    if review is not None and review.is_file():
        from fsre_cli.review import read_review

        schema.review = read_review(review, schema.relations, problems.append)
        if problems:
            raise SchemaError(problems)
    return schema


def _where(index: _LineIndex, filename: str, loc: tuple[Any, ...]) -> str:
    line = index.line(loc)
    return f"{filename}:{line}: {format_path(loc)}: " if line else f"{filename}: {format_path(loc)}: "


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic adds the union member tried ("str", "MentionSpec") to the location
    return tuple(p for p in loc if p not in ("str", "MentionSpec", "list[str]"))


def _pydantic_reason(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    return err["msg"]


def _resolve(spec: SchemaSpec, report, warn) -> Schema:
    if not spec.entity_types:
        report(("entity_types",), "at least one entity type is required")
    if not spec.relations:
        report(("relations",), "at least one relation is required")
    label_owner: dict[str, str] = {}
    for schema_type, labels in spec.entity_types.items():
        if not labels:
            report(("entity_types", schema_type), "list at least one NER label (e.g. the type's own name)")
        for label in labels:
            owner = label_owner.get(label.upper())
            if owner and owner != schema_type:
                report(("entity_types", schema_type), f"NER label {label!r} is already mapped to {owner}")
            label_owner[label.upper()] = schema_type

    known = set(spec.entity_types)
    relations: dict[str, Relation] = {}
    for name, r in spec.relations.items():
        base = ("relations", name)
        if not re.fullmatch(r"[A-Za-z][\w\-:/ ]*", name):
            report(base, "relation names start with a letter")
        for slot in ("head", "tail"):
            types = getattr(r, slot)
            if not types:
                report(base + (slot,), "list at least one entity type")
            for t in types:
                if t not in known:
                    report(base + (slot,), f"unknown entity type {t!r} (schema types: {', '.join(sorted(known))})")
        if r.template is not None:
            unknown = {p for p in PLACEHOLDER.findall(r.template)} - {"head", "tail"}
            if unknown:
                report(base + ("template",), f"unknown placeholder(s) {sorted(unknown)}; use {{head}} and {{tail}}")
            missing = [p for p in ("{head}", "{tail}") if p not in r.template]
            if missing:
                warn(base + ("template",), f"template lacks {' and '.join(missing)}; QA4RE options will not name it")
        if not r.examples and not r.description.strip():
            report(base, "a relation needs examples or at least a description (for zero-shot QA4RE)")
        rel = Relation(name, r.description.strip(), tuple(r.head), tuple(r.tail), r.template)
        seen_texts: set[tuple[str, str, str]] = set()
        for i, ex in enumerate(r.examples):
            loc = base + ("examples", i)
            pair = _resolve_pair(ex, r, loc, "example", report)
            if pair:
                head, tail = pair
                key = (ex.text, head.text, tail.text)
                if key in seen_texts:
                    warn(loc, "duplicate of an earlier example")
                seen_texts.add(key)
                entities = None
                if ex.entities is not None:
                    entities = _resolve_entities(ex.text, ex.entities, (head, tail), list(known), loc, report)
                    if entities is None:
                        continue
                rel.examples.append(Example(name, ex.text, head, tail, entities=entities))
        for i, neg in enumerate(r.negatives):
            loc = base + ("negatives", i)
            pair = _resolve_pair(neg, r, loc, "negative", report)
            if pair:
                head, tail = pair
                if any((e.text, e.head.start, e.head.end, e.tail.start, e.tail.end)
                       == (neg.text, head.start, head.end, tail.start, tail.end) for e in rel.examples):
                    report(loc, "this pair is also an example of the relation")
                    continue
                rel.negatives.append(Example(name, neg.text, head, tail, source="negative"))
        relations[name] = rel
    return Schema(
        name=spec.name,
        language=spec.language,
        encoder=spec.encoder,
        entity_types={k: tuple(v) for k, v in spec.entity_types.items()},
        relations=relations,
        description=spec.description,
    )


def _resolve_pair(spec: "ExampleSpec | NegativeSpec", r: RelationSpec, loc: tuple[Any, ...], what: str,
                  report) -> tuple[Span, Span] | None:
    """An example's or a negative's head and tail, found in its text and not overlapping."""
    if not spec.text.strip():
        report(loc + ("text",), f"{what} text is empty")
        return None
    head = _resolve_mention(spec.text, spec.head, r.head, loc, "head", report)
    tail = _resolve_mention(spec.text, spec.tail, r.tail, loc, "tail", report)
    if not (head and tail):
        return None
    if head.overlaps(tail):
        report(loc, f"head {head.text!r} and tail {tail.text!r} overlap")
        return None
    return head, tail


def _resolve_entities(text: str, specs: list[MentionSpec], labelled: tuple[Span, Span], types: list[str],
                      loc: tuple[Any, ...], report) -> tuple[Span, ...] | None:
    """An example's `entities:`: each typed, found in the text, overlapping neither the
    head, the tail nor another listed entity. None when any is wrong (reported)."""
    out: list[Span] = []
    ok = True
    for j, spec in enumerate(specs):
        eloc = loc + ("entities", j)
        if spec.type is None:
            report(eloc, f"entity {spec.text!r} needs a type (schema types: {', '.join(sorted(types))})")
            ok = False
            continue
        span = _resolve_mention(text, spec, types, eloc, "entity", report)
        if span is None:
            ok = False
            continue
        clash = next((s for s in (*labelled, *out) if s.overlaps(span)), None)
        if clash is not None:
            what = "the head" if clash is labelled[0] else "the tail" if clash is labelled[1] else "another entity"
            report(eloc, f"entity {span.text!r} overlaps {what} ({clash.text!r}); list only the sentence's other entities")
            ok = False
            continue
        out.append(span)
    return tuple(out) if ok else None


def _resolve_mention(
    text: str, ref: str | MentionSpec, allowed: list[str], loc: tuple[Any, ...], slot: str, report
) -> Span | None:
    spec = MentionSpec(text=ref) if isinstance(ref, str) else ref
    own = slot == "entity"  # an `entities:` item: `loc` is the item itself
    mloc = loc if isinstance(ref, str) or own else loc + (slot,)
    report = functools.partial(report, line_loc=loc if own else loc + (slot,))  # point at the head:/tail: line
    if not spec.text.strip():
        report(mloc, f"{slot} is empty")
        return None
    if (spec.start is None) != (spec.end is None):
        report(mloc, f"{slot} needs both start and end (or neither)")
        return None
    if spec.start is not None and spec.end is not None:
        if text[spec.start : spec.end] != spec.text:
            found = text[spec.start : spec.end]
            report(mloc, f"{slot} offsets {spec.start}:{spec.end} select {found!r}, not {spec.text!r}")
            return None
        start, end = spec.start, spec.end
    else:
        count = text.count(spec.text)
        if count == 0:
            report(mloc, f'{slot} "{spec.text}" does not occur in text')
            return None
        if count > 1:
            report(mloc, f'{slot} "{spec.text}" occurs {count} times in text; give {slot}.start and {slot}.end')
            return None
        start = text.index(spec.text)
        end = start + len(spec.text)
    if spec.type is not None:
        if spec.type not in allowed and own:
            report(mloc, f"unknown entity type {spec.type!r} (schema types: {', '.join(sorted(allowed))})")
            return None
        if spec.type not in allowed:
            report(mloc, f"{slot} type {spec.type!r} is not allowed for this relation (allowed: {', '.join(allowed)})")
            return None
        etype = spec.type
    elif len(allowed) == 1:
        etype = allowed[0]
    else:
        report(mloc, f"{slot} type is ambiguous (relation allows {', '.join(allowed)}); give {slot}.type")
        return None
    return Span(start, end, etype, spec.text)
