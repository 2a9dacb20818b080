"""Schema validation: the shipped schemas pass, and each kind of mistake gets a precise message."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsre_cli.errors import SchemaError
from fsre_cli.schema import Span, load_schema, parse_schema

ROOT = Path(__file__).resolve().parents[1]

BASE = """\
name: t
entity_types:
  PERSON: [PERSON]
  ORG: [ORG]
  PLACE: [GPE, LOC]
relations:
  founded_by:
    description: the organization was founded by the person
    head: ORG
    tail: PERSON
    template: "{head} was founded by {tail}"
    examples:
      - text: Microsoft was founded by Bill Gates in 1975.
        head: Microsoft
        tail: Bill Gates
"""


@pytest.mark.parametrize("path", sorted((ROOT / "schemas").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_schemas_are_valid(path: Path) -> None:
    schema = load_schema(path)
    assert schema.warnings == []
    assert all(len(r.examples) >= 3 for r in schema.relations.values())
    for ex in schema.examples:
        assert ex.text[ex.head.start : ex.head.end] == ex.head.text
        assert ex.text[ex.tail.start : ex.tail.end] == ex.tail.text


def test_examples_resolve_to_typed_spans() -> None:
    schema = parse_schema(BASE)
    ex = schema.relations["founded_by"].examples[0]
    assert (ex.head.start, ex.head.end, ex.head.type) == (0, 9, "ORG")
    assert ex.tail.text == "Bill Gates" and ex.tail.type == "PERSON"
    assert schema.relations_for("ORG", "PERSON") == ("founded_by",)
    assert schema.relations_for("PERSON", "ORG") == ()
    assert schema.type_for_label("GPE") == "PLACE" and schema.type_for_label("DATE") is None


def test_explicit_offsets_and_type_disambiguate() -> None:
    text = BASE.replace("        head: Microsoft\n", "        head: {text: Microsoft, start: 0, end: 9, type: ORG}\n")
    assert parse_schema(text).examples[0].head.start == 0


INVALID = [
    ("yaml syntax", "name: [t\n", "t.yaml:2:1: YAML syntax error"),
    ("duplicate relation", BASE + "  founded_by:\n    head: ORG\n    tail: PERSON\n    description: again\n",
     "t.yaml:16: relations: duplicate key 'founded_by' (first defined on line 7)"),
    ("unknown type", BASE.replace("    tail: PERSON\n", "    tail: PERSN\n"),
     "t.yaml:10: relations.founded_by.tail: unknown entity type 'PERSN'"),
    ("head not in text", BASE.replace("head: Microsoft", "head: Apple"),
     't.yaml:14: relations.founded_by.examples[0]: head "Apple" does not occur in text'),
    ("ambiguous mention", BASE.replace("in 1975.", "in 1975, Microsoft says."),
     't.yaml:14: relations.founded_by.examples[0]: head "Microsoft" occurs 2 times in text; give head.start and head.end'),
    ("bad offsets", BASE.replace("head: Microsoft", "head: {text: Microsoft, start: 1, end: 10}"),
     "relations.founded_by.examples[0].head: head offsets 1:10 select 'icrosoft ', not 'Microsoft'"),
    ("missing field", "name: t\nentity_types: {A: [A]}\n", "t.yaml:1: relations: required field is missing"),
    ("unknown field", BASE.replace("    examples:\n", "    exampels: []\n    examples:\n"),
     "t.yaml:12: relations.founded_by.exampels: unknown field"),
    ("ambiguous type", BASE.replace("    head: ORG\n", "    head: [ORG, PERSON]\n"),
     "relations.founded_by.examples[0]: head type is ambiguous (relation allows ORG, PERSON); give head.type"),
    ("type not allowed", BASE.replace("tail: Bill Gates", "tail: {text: Bill Gates, type: ORG}"),
     "tail type 'ORG' is not allowed for this relation (allowed: PERSON)"),
    ("empty example", BASE.replace("      - text: Microsoft was founded by Bill Gates in 1975.", '      - text: ""'),
     "relations.founded_by.examples[0].text: example text is empty"),
    ("overlap", BASE.replace("tail: Bill Gates", "tail: {text: soft, type: PERSON}"),
     "relations.founded_by.examples[0]: head 'Microsoft' and tail 'soft' overlap"),
    ("nothing to go on", BASE + "  born_in:\n    head: PERSON\n    tail: PLACE\n",
     "t.yaml:16: relations.born_in: a relation needs examples or at least a description"),
    ("label mapped twice", BASE.replace("  PLACE: [GPE, LOC]", "  PLACE: [GPE, ORG]"),
     "entity_types.PLACE: NER label 'ORG' is already mapped to ORG"),
    ("bad placeholder", BASE.replace("{head} was founded by {tail}", "{head} was founded by {person}"),
     "relations.founded_by.template: unknown placeholder(s) ['person']"),
    ("half offsets", BASE.replace("head: Microsoft", "head: {text: Microsoft, start: 0}"),
     "head needs both start and end (or neither)"),
    ("not a mapping", "- a\n- b\n", "t.yaml:1: a schema must be a mapping"),
]


@pytest.mark.parametrize("text,expected", [(t, e) for _, t, e in INVALID], ids=[n for n, _, _ in INVALID])
def test_invalid_schema_messages(text: str, expected: str) -> None:
    with pytest.raises(SchemaError) as info:
        parse_schema(text, filename="t.yaml")
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_every_problem_is_reported_at_once() -> None:
    text = BASE.replace("tail: PERSON\n", "tail: PERSN\n").replace("head: Microsoft", "head: Apple")
    with pytest.raises(SchemaError) as info:
        parse_schema(text, filename="t.yaml")
    assert len(info.value.problems) >= 2


def test_template_without_slot_is_a_warning() -> None:
    schema = parse_schema(BASE.replace("{head} was founded by {tail}", "{head} was founded"), filename="t.yaml")
    assert any("template lacks {tail}" in w for w in schema.warnings)


def test_content_hash_tracks_examples_and_sidecar_path() -> None:
    a = parse_schema(BASE, path=Path("/x/s.yaml"))
    b = parse_schema(BASE.replace("in 1975", "in 1976"))
    assert a.content_hash() != b.content_hash()
    assert a.content_hash() == parse_schema(BASE).content_hash()
    assert a.sidecar_path == Path("/x/s.synth.jsonl")


def test_default_template_reads_the_relation_name() -> None:
    schema = parse_schema(BASE.replace('    template: "{head} was founded by {tail}"\n', ""))
    assert schema.relations["founded_by"].statement("Microsoft", "Bill Gates") == "Microsoft founded by Bill Gates"


# --------------------------------------------------------------------------- hostile files
def billion_laughs(levels: int = 9) -> str:
    """The classic alias bomb: each level repeats the one below nine times (9**9 strings in ~800 bytes)."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def check_in_subprocess(path: Path) -> "subprocess.CompletedProcess[str]":
    """`fsre schema check` in a child limited to 1 GB of address space and 20 s: a hang or a
    memory explosion fails the test instead of the machine."""
    import os
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run(
        [sys.executable, "-m", "fsre_cli", "schema", "check", str(path)],
        capture_output=True, text=True, timeout=20, preexec_fn=limit,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )


@pytest.mark.timeout(30)
def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    bomb = billion_laughs()
    assert len(bomb) < 1000
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb)
    result = check_in_subprocess(path)
    assert result.returncode == 2, result.stderr
    assert f"{path}:" in result.stderr and "aliases expand to more than" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(30)
def test_deep_nesting_is_refused_without_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("name: " + "[" * 20_000 + "]" * 20_000 + "\n")
    result = check_in_subprocess(path)
    assert result.returncode == 2, result.stderr
    assert f"{path}:1: nested more than 64 levels deep" in result.stderr
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    # block style too
    block = "".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100 + "v\n"
    with pytest.raises(SchemaError, match=r"t.yaml:\d+: nested more than 64 levels deep"):
        parse_schema(block, filename="t.yaml")


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(SchemaError, match=r"t.yaml:1: alias \*a refers to its own anchor"):
        parse_schema("name: &a [1, *a]\n", filename="t.yaml")


def test_a_few_aliases_still_work() -> None:
    text = BASE.replace("  PERSON: [PERSON]", "  PERSON: &people [PERSON]").replace(
        "    tail: PERSON\n", "    tail: *people\n")
    assert parse_schema(text).relations["founded_by"].tail_types == ("PERSON",)


def test_oversized_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("w") as fh:
        fh.write("name: t\ndescription: '")
        fh.write("x" * (6 * 1024 * 1024))
        fh.write("'\n")
    with pytest.raises(SchemaError, match=r"big.yaml: schema file is larger than 5 MB"):
        load_schema(path)


NOTA_SCHEMA = """\
name: nota
entity_types: {PERSON: [PERSON], ORG: [ORG], PLACE: [GPE]}
relations:
  ceo_of:
    description: the person leads the organization
    head: PERSON
    tail: ORG
    examples:
      - text: Tim Cook, who runs Apple, met Sundar Pichai of Google in Cupertino.
        head: Tim Cook
        tail: Apple
        entities:
          - {text: Sundar Pichai, type: PERSON}
          - {text: Google, type: ORG}
          - {text: Cupertino, type: PLACE}
    negatives:
      - text: Sofia Marchetti joined from Siemens.
        head: Sofia Marchetti
        tail: Siemens
"""


def test_example_entities_and_relation_negatives_resolve() -> None:
    schema = parse_schema(NOTA_SCHEMA, filename="n.yaml")
    (ex,) = schema.examples
    assert [(e.text, e.type) for e in ex.entities] == [("Sundar Pichai", "PERSON"), ("Google", "ORG"),
                                                       ("Cupertino", "PLACE")]
    assert ex.text[ex.entities[1].start:ex.entities[1].end] == "Google"
    (neg,) = schema.negatives
    assert (neg.relation, neg.head.text, neg.tail.text, neg.source) == ("ceo_of", "Sofia Marchetti", "Siemens", "negative")
    assert neg not in schema.examples  # a negative is never a positive example
    assert schema.nota_advice() == []
    # both change the model, so both are in the content hash; a schema without them keeps its old hash
    bare = NOTA_SCHEMA.split("        entities:")[0]
    assert "negatives" not in str(parse_schema(bare).canonical()) and "entities" not in str(parse_schema(bare).canonical())
    no_entities = NOTA_SCHEMA.replace(NOTA_SCHEMA[NOTA_SCHEMA.index("        entities:"):NOTA_SCHEMA.index("    negatives:")], "")
    assert parse_schema(no_entities).negatives and parse_schema(no_entities).content_hash() != schema.content_hash()
    retyped = NOTA_SCHEMA.replace("{text: Cupertino, type: PLACE}", "{text: Cupertino, type: ORG}")
    assert parse_schema(retyped).content_hash() != schema.content_hash()
    without_negatives = NOTA_SCHEMA.split("    negatives:")[0]
    assert parse_schema(without_negatives).content_hash() != schema.content_hash()


def test_a_relation_without_negatives_or_entities_gets_advice() -> None:
    bare = parse_schema(NOTA_SCHEMA.split("        entities:")[0])
    (advice,) = bare.nota_advice()
    assert "1 of 1 relations" in advice and "ceo_of" in advice and "negatives:" in advice


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("{text: Google, type: ORG}", "{text: Google}", "n.yaml:14: relations.ceo_of.examples[0].entities[1]: entity 'Google' needs a type"),
        ("{text: Google, type: ORG}", "{text: Googol, type: ORG}", 'entities[1]: entity "Googol" does not occur in text'),
        ("{text: Google, type: ORG}", "{text: Google, type: THING}", "entities[1]: unknown entity type 'THING' (schema types: ORG, PERSON, PLACE)"),
        ("{text: Google, type: ORG}", "{text: Apple, type: ORG}", "entities[1]: entity 'Apple' overlaps the tail ('Apple')"),
        ("{text: Cupertino, type: PLACE}", "{text: Cupertino, type: PLACE}\n          - {text: Pichai, type: PERSON}",
         "entities[3]: entity 'Pichai' overlaps another entity ('Sundar Pichai')"),
        ("{text: Google, type: ORG}", "{text: Google, type: ORG, colour: red}", "entities[1].colour: unknown field"),
        ("tail: Siemens", "tail: Sofia", "relations.ceo_of.negatives[0]: head 'Sofia Marchetti' and tail 'Sofia' overlap"),
        ("tail: Siemens", "tail: Siemens\n        entities: []", "negatives[0].entities: unknown field"),
    ],
)
def test_nota_fields_errors(old: str, new: str, expected: str) -> None:
    text = NOTA_SCHEMA.replace(old, new, 1)
    with pytest.raises(SchemaError) as info:
        parse_schema(text, filename="n.yaml")
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_a_negative_that_is_also_an_example_is_refused() -> None:
    text = NOTA_SCHEMA.replace("      - text: Sofia Marchetti joined from Siemens.\n        head: Sofia Marchetti\n"
                               "        tail: Siemens\n",
                               "      - text: Tim Cook, who runs Apple, met Sundar Pichai of Google in Cupertino.\n"
                               "        head: Tim Cook\n        tail: Apple\n")
    with pytest.raises(SchemaError) as info:
        parse_schema(text, filename="n.yaml")
    assert any("negatives[0]: this pair is also an example of the relation" in p for p in info.value.problems)


def _annotated(tmp_path: Path, triples_fix=None) -> Path:
    import json

    text = "Tim Cook runs Apple from Cupertino. Sundar Pichai met Tim Cook in Oslo.\n\nGoogle hired Ann Lee."

    def at(word: str, nth: int = 1) -> dict:
        i = -1
        for _ in range(nth):
            i = text.index(word, i + 1)
        return {"start": i, "end": i + len(word)}

    entities = [dict(at(w, n), type=t) for w, n, t in [("Tim Cook", 1, "PERSON"), ("Apple", 1, "ORG"),
                                                       ("Cupertino", 1, "GPE"), ("Sundar Pichai", 1, "PERSON"),
                                                       ("Tim Cook", 2, "PERSON"), ("Oslo", 1, "GPE"),
                                                       ("Google", 1, "ORG"), ("Ann Lee", 1, "PERSON")]]
    triples = [{"relation": "ceo_of", "head": at("Tim Cook"), "tail": at("Apple")},
               {"relation": "based_in", "head": at("Apple"), "tail": at("Cupertino")}]
    if triples_fix:
        triples = triples_fix(triples, at)
    (tmp_path / "docs.jsonl").write_text(json.dumps({"id": "d1", "text": text, "entities": entities,
                                                     "triples": triples}) + "\n")
    schema = tmp_path / "s.yaml"
    schema.write_text("""\
name: ann
entity_types: {PERSON: [PERSON], ORG: [ORG], PLACE: [GPE]}
data: [docs.jsonl]
relations:
  ceo_of: {description: the person leads the organization, head: PERSON, tail: ORG}
  based_in: {description: the organization is based in the place, head: ORG, tail: PLACE}
""")
    return schema


def test_annotated_documents_become_examples_and_nota_sentences(tmp_path: Path) -> None:
    schema = load_schema(_annotated(tmp_path))
    assert [s.text for s in schema.data] == ["Tim Cook runs Apple from Cupertino.", "Sundar Pichai met Tim Cook in Oslo.",
                                             "Google hired Ann Lee."]
    assert [s.triples for s in schema.data] == [((0, 1, "ceo_of"), (1, 2, "based_in")), (), ()]
    ex = {(e.relation, e.head.text, e.tail.text, tuple(x.text for x in e.entities)) for e in schema.examples}
    assert ex == {("ceo_of", "Tim Cook", "Apple", ("Cupertino",)), ("based_in", "Apple", "Cupertino", ("Tim Cook",))}
    second = schema.data[1]
    assert second.text[second.entities[2].start:second.entities[2].end] == "Oslo"  # offsets are the sentence's
    assert schema.nota_advice() == [] and schema.content_hash() != load_schema(_annotated(
        tmp_path, lambda t, at: t[:1])).content_hash()


def test_annotated_document_errors_point_at_file_and_line(tmp_path: Path) -> None:
    def broken(triples, at):
        return [{"relation": "ceo_of", "head": at("Apple"), "tail": at("Tim Cook")},
                {"relation": "owns", "head": at("Apple"), "tail": at("Tim Cook")},
                {"relation": "ceo_of", "head": {"start": 0, "end": 3}, "tail": at("Apple")},
                {"relation": "ceo_of", "head": at("Sundar Pichai"), "tail": at("Google")}]

    with pytest.raises(SchemaError) as info:
        load_schema(_annotated(tmp_path, broken))
    problems = "\n".join(info.value.problems)
    assert "docs.jsonl:1: triples[0]: ceo_of takes PERSON -> ORG, not ORG -> PERSON" in problems
    assert "docs.jsonl:1: triples[1]: relation 'owns' is not in the schema" in problems
    assert "docs.jsonl:1: triples[2].head: no listed entity at 0:3" in problems
    (tmp_path / "s.yaml").write_text((tmp_path / "s.yaml").read_text().replace("docs.jsonl", "missing.jsonl"))
    with pytest.raises(SchemaError) as info:
        load_schema(tmp_path / "s.yaml")
    assert any(":3: data[0]: no such file" in p for p in info.value.problems), info.value.problems


def test_a_triple_across_sentences_is_left_out_with_a_warning(tmp_path: Path) -> None:
    schema = load_schema(_annotated(tmp_path, lambda t, at: t + [{"relation": "ceo_of", "head": at("Sundar Pichai"),
                                                                   "tail": at("Google")}]))
    assert any("spans two sentences and is left out" in w for w in schema.warnings)
    assert len(schema.examples) == 2


def test_annotated_triples_that_cannot_be_examples_are_refused(tmp_path: Path) -> None:
    def odd(triples, at):
        return [{"relation": ["ceo_of"], "head": at("Tim Cook"), "tail": at("Apple")},  # not a string
                {"relation": "ceo_of", "head": at("Tim Cook"), "tail": at("Tim Cook")}]

    with pytest.raises(SchemaError) as info:
        load_schema(_annotated(tmp_path, odd))
    problems = "\n".join(info.value.problems)
    assert "triples[0]: relation ['ceo_of'] is not in the schema" in problems
    assert "triples[1].tail" in problems or "triples[1]: head and tail are the same entity" in problems
    twice = load_schema(_annotated(tmp_path, lambda t, at: t + t[:1]))  # a repeated triple is one example
    assert len(twice.examples) == 2


def test_sentence_cuts_skip_abbreviations_and_never_split_an_entity() -> None:
    from fsre_cli.annotated import sentence_bounds

    text = "Acme hired Mr. Smith in 2001. J. R. Hartley joined Acme Inc. in May. He left."
    cuts = [text[a:b] for a, b in sentence_bounds(text, [])]
    assert cuts == ["Acme hired Mr. Smith in 2001.", "J. R. Hartley joined Acme Inc. in May.", "He left."]
    name = "Ann Lee. Acme Ltd is here."
    assert [name[a:b] for a, b in sentence_bounds(name, [])] == ["Ann Lee.", "Acme Ltd is here."]
    entity = Span(0, 12, "X", "Ann Lee. Acme")  # a given entity across the full stop keeps one sentence
    assert [name[a:b] for a, b in sentence_bounds(name, [entity])] == [name]
