"""Benchmark readers on tiny files in the exact formats and on slices of the real data."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import pytest
import yaml

from fsre_cli.bench.datasets import (
    CROSSRE_DESCRIPTIONS,
    CROSSRE_TEMPLATES,
    NOTA_LABEL,
    REDOCRED_TEMPLATES,
    REDOCRED_TOP20,
    Instance,
    LabeledSentence,
    gold_records,
    kshot_schema,
    load_crossre,
    load_fewrel,
    load_redocred_sentences,
    redocred_descriptions,
    relation_counts,
    relation_names,
    sample_episodes,
    to_documents,
    tokens_to_text,
)
from fsre_cli.errors import UsageError
from fsre_cli.evaluation import score_triples
from fsre_cli.schema import Span, parse_schema

DATA = Path("/work/shared/data")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="benchmark data not present")


def check_span(text: str, span: Span) -> None:
    assert text[span.start : span.end] == span.text
    assert span.text and span.text == span.text.strip()


def test_tokens_to_text_offsets():
    text, offs = tokens_to_text(["Bill", "Gates", "\xa0", "founded", "it", "."])
    assert text == "Bill Gates \xa0 founded it ."
    assert [text[a:b] for a, b in offs] == ["Bill", "Gates", "\xa0", "founded", "it", "."]
    assert tokens_to_text([]) == ("", [])


# --------------------------------------------------------------------------- FewRel
def write_fewrel(path: Path, n_rel: int = 6, n_inst: int = 12) -> Path:
    data = {
        f"P{r}": [
            {"tokens": ["Entity", f"h{r}_{i}", "relates", "to", f"t{r}_{i}", "."],
             "h": [f"entity h{r}_{i}", "Q1", [[0, 1]]], "t": [f"t{r}_{i}", "Q2", [[4], [5]]]}
            for i in range(n_inst)
        ]
        for r in range(n_rel)
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_load_fewrel_tiny(tmp_path):
    data = load_fewrel(write_fewrel(tmp_path / "f.json"))
    assert sorted(data) == [f"P{r}" for r in range(6)] and all(len(v) == 12 for v in data.values())
    inst = data["P2"][3]
    assert inst.text == "Entity h2_3 relates to t2_3 ." and inst.relation == "P2"
    assert inst.head == Span(0, 11, "ENTITY", "Entity h2_3")
    assert inst.tail == Span(23, 27, "ENTITY", "t2_3")  # first of the two mentions
    (tmp_path / "bad.json").write_text('{"P1": [{"tokens": ["a"]}]}')
    with pytest.raises(UsageError, match=r"bad\.json: P1\[0\]"):
        load_fewrel(tmp_path / "bad.json")
    with pytest.raises(UsageError, match="no such file"):
        load_fewrel(tmp_path / "none.json")


@needs_data
def test_fewrel_real_offsets_round_trip():
    raw = json.loads((DATA / "fewrel/val_wiki.json").read_text())
    data = load_fewrel(DATA / "fewrel/val_wiki.json")
    assert len(data) == 16 and all(len(v) == 700 for v in data.values())
    for rel in list(data)[:4]:
        for inst, item in zip(data[rel][:100], raw[rel][:100]):
            for span, slot in ((inst.head, "h"), (inst.tail, "t")):
                check_span(inst.text, span)
                idx = item[slot][2][0]
                assert span.text == " ".join(item["tokens"][idx[0] : idx[-1] + 1])
    names = relation_names(DATA / "fewrel/pid2name.json")
    assert names["P26"] == "spouse" and all(r in names for r in data)


def test_episodes_reproducible_by_seed(tmp_path):
    data = load_fewrel(write_fewrel(tmp_path / "f.json"))
    a = sample_episodes(data, n_way=5, k_shot=2, n_query=3, n_episodes=4, seed=7)
    b = sample_episodes(data, n_way=5, k_shot=2, n_query=3, n_episodes=4, seed=7)
    c = sample_episodes(data, n_way=5, k_shot=2, n_query=3, n_episodes=4, seed=8)
    assert a == b and a != c
    for ep in a:
        assert len(ep.relations) == len(set(ep.relations)) == 5
        assert [len(s) for s in ep.support] == [2] * 5
        assert len(ep.query) == len(ep.labels) == 15
        for rel, sup in zip(ep.relations, ep.support):
            assert all(i.relation == rel for i in sup)
        assert all(q.relation == lab for q, lab in zip(ep.query, ep.labels))
        support_ids = {id(i) for s in ep.support for i in s}
        assert not any(id(q) in support_ids for q in ep.query)
    nota = sample_episodes(data, 5, 1, 2, 3, seed=1, nota_rate=0.5)
    for ep in nota:
        assert ep.labels.count(NOTA_LABEL) == 5
        assert all(q.relation not in ep.relations for q, lab in zip(ep.query, ep.labels) if lab == NOTA_LABEL)
    with pytest.raises(ValueError):
        sample_episodes(data, 7, 1, 1, 1, seed=0)
    with pytest.raises(ValueError):
        sample_episodes(data, 5, 10, 5, 1, seed=0)


# --------------------------------------------------------------------------- CrossRE
CROSSRE_LINES = [
    {"doc_key": "ai-train-1",
     "sentence": ["Alex", "Graves", "works", "at", "Google", "DeepMind", "in", "London", "."],
     "ner": [[0, 1, "researcher"], [4, 5, "organisation"], [7, 7, "location"]],
     "relations": [[0, 1, 4, 5, "role", "", False, False], [0, 1, 4, 5, "physical", "", False, False],
                   [0, 1, 4, 5, "role", "", False, False], [4, 5, 7, 7, "physical", "", False, False]]},
    {"sentence": ["LSTM", "is", "used", "in", "speech", "recognition", "."],
     "ner": [[0, 0, "algorithm"], [4, 5, "task"]],
     "relations": [[4, 5, 0, 0, "usage", "", False, False]]},
]


def write_crossre(path: Path, lines=CROSSRE_LINES) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in lines), encoding="utf-8")
    return path


def test_load_crossre_tiny(tmp_path):
    s = load_crossre(write_crossre(tmp_path / "ai-train.json"))
    assert [x.id for x in s] == ["ai-train-1", "ai-1"]
    first = s[0]
    assert first.text == "Alex Graves works at Google DeepMind in London ."
    assert [m.text for m in first.mentions] == ["Alex Graves", "Google DeepMind", "London"]
    assert first.mentions[1] == Span(21, 36, "organisation", "Google DeepMind")
    assert first.relations == [(0, 1, "role"), (0, 1, "physical"), (1, 2, "physical")]  # duplicate dropped
    assert first.labels()[(0, 1)] == ("physical", "role")
    pairs = first.pairs()
    assert len(pairs) == 6 and sum(1 for *_, lab in pairs if not lab) == 4
    assert first.source == "crossre/ai"

    docs = to_documents(s)
    assert docs[0].id == "ai-train-1" and docs[0].entities[2].type == "location"
    recs = gold_records(s)
    assert len(recs) == 4
    r = recs[-1]
    assert r["doc"] == "ai-1" and r["sentence"] == 0 and r["relation"] == "usage"
    assert r["head"] == {"text": "speech recognition", "type": "task", "start": 16, "end": 34}
    assert score_triples(recs, recs).micro.f1 == 1.0
    assert gold_records(s, type_map={"task": "TASK"})[-1]["head"]["type"] == "TASK"

    bad = tmp_path / "x-dev.json"
    bad.write_text(json.dumps(CROSSRE_LINES[0]) + "\n" + '{"sentence": ["a"], "ner": [[0, 0, "misc"]], '
                   '"relations": [[0, 0, 3, 3, "usage"]]}\n')
    with pytest.raises(UsageError, match=r"x-dev\.json:2: malformed CrossRE"):
        load_crossre(bad)
    bad.write_text("{oops\n")
    with pytest.raises(UsageError, match=r"x-dev\.json:1: invalid JSON"):
        load_crossre(bad)


@needs_data
def test_crossre_real_slice_round_trip():
    path = DATA / "crossre/news-train.json"
    raw = [json.loads(line) for line in islice(path.open(encoding="utf-8"), 30)]
    sents = load_crossre(path)[:30]
    for s, d in zip(sents, raw):
        assert s.id == d["doc_key"]
        assert len(s.mentions) == len({(a, b) for a, b, _ in d["ner"]})
        for m, (a, b, t) in zip(s.mentions, d["ner"]):
            check_span(s.text, m)
            assert m.text == " ".join(d["sentence"][a : b + 1]) and m.type == t
        assert len(s.relations) == len({tuple(r[:5]) for r in d["relations"]})
    for rec in gold_records(sents):
        text = next(s.text for s in sents if s.id == rec["doc"])
        for slot in ("head", "tail"):
            assert text[rec[slot]["start"] : rec[slot]["end"]] == rec[slot]["text"]


@needs_data
def test_crossre_descriptions_cover_all_labels():
    labels = set()
    for path in sorted((DATA / "crossre").glob("*-train.json")):
        labels |= set(relation_counts(load_crossre(path)))
    assert labels == set(CROSSRE_DESCRIPTIONS) == set(CROSSRE_TEMPLATES)
    assert len(labels) == 17
    for t in CROSSRE_TEMPLATES.values():
        assert t.count("{head}") == 1 and t.count("{tail}") == 1


# --------------------------------------------------------------------------- Re-DocRED
def mention(name, sent_id, pos, etype):
    return {"name": name, "sent_id": sent_id, "pos": pos, "type": etype}


REDOCRED_DOC = {
    "title": "Tiny",
    "sents": [["Ann", "Lee", "was", "born", "in", "Paris", ",", "France", "."],
              ["Lee", "(", "Ann", "Lee", ")", "lived", "in", "Paris", "."],
              ["She", "left", "."]],
    "vertexSet": [
        [mention("Ann Lee", 0, [0, 2], "PER"), mention("Ann Lee", 1, [2, 4], "PER"), mention("Lee", 1, [0, 1], "PER")],
        [mention("Paris", 0, [5, 6], "LOC"), mention("Paris", 1, [7, 8], "LOC")],
        [mention("France", 0, [7, 8], "LOC")],
    ],
    "labels": [{"h": 0, "t": 1, "r": "P19", "evidence": [0]},
               {"h": 0, "t": 1, "r": "P551", "evidence": [1]},
               {"h": 1, "t": 2, "r": "P17", "evidence": [0]},
               {"h": 0, "t": 2, "r": "P27", "evidence": []}],
}


def test_redocred_sentence_rules(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps([REDOCRED_DOC]), encoding="utf-8")
    s = load_redocred_sentences(path, top_relations=None)
    assert [x.id for x in s] == ["redocred-0-0", "redocred-0-1"]  # sentence 2 has no pair
    s0, s1 = s
    assert [m.text for m in s0.mentions] == ["Ann Lee", "Paris", "France"]
    assert sorted(s0.relations) == [(0, 1, "P19"), (0, 1, "P551"), (0, 2, "P27"), (1, 2, "P17")]
    # first mention of the entity in the sentence represents it ("Lee", not "Ann Lee")
    assert [m.text for m in s1.mentions] == ["Lee", "Paris"] and s1.mentions[0].type == "PER"
    assert sorted(s1.relations) == [(0, 1, "P19"), (0, 1, "P551")]
    for x in s:
        for m in x.mentions:
            check_span(x.text, m)
    # P19 and P551 occur twice, P17 and P27 once: top-3 keeps P19, P551 and (tie by pid) P17
    top = load_redocred_sentences(path, top_relations=3)
    assert relation_counts(top) == {"P19": 2, "P551": 2, "P17": 1}
    assert (0, 2) not in top[0].labels() and not top[0].ignored  # P27 pair -> NOTA
    ign = load_redocred_sentences(path, top_relations=3, other_relations="ignore")
    assert ign[0].ignored == {(0, 2)} and all(p[:2] != (0, 2) for p in ign[0].pairs())


@needs_data
def test_redocred_real_top20_and_offsets():
    sents = load_redocred_sentences(DATA / "redocred/dev_revised.json")
    counts = relation_counts(sents)
    assert tuple(p for p, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) == REDOCRED_TOP20
    for s in sents[:200]:
        for m in s.mentions:
            check_span(s.text, m)
    assert all(p in REDOCRED_TEMPLATES for p in REDOCRED_TOP20)
    desc = redocred_descriptions(DATA / "fewrel/pid2name.json", REDOCRED_TOP20)
    assert desc["P569"].startswith("date of birth") and desc["P131"].startswith("located in")


# --------------------------------------------------------------------------- K-shot schemas
def _as_yaml_dict(schema) -> dict:
    c = schema.canonical()
    return {"name": c["name"], "entity_types": c["entity_types"], "relations": c["relations"]}


def test_kshot_schema_tiny(tmp_path):
    sents = load_crossre(write_crossre(tmp_path / "ai-train.json"))
    schema = kshot_schema(sents, k=1, seed=0, relation_descriptions={"role": "works for", "compare": "vs"},
                          templates=CROSSRE_TEMPLATES)
    assert list(schema.relations) == ["role", "compare", "physical", "usage"]
    phys = schema.relations["physical"]
    # the honest protocol: a relation's types are those of its K examples, all a K-shot user knows
    (ex,) = phys.examples
    assert (phys.head_types, phys.tail_types) == ((ex.head.type,), (ex.tail.type,)) == (("researcher",), ("organisation",))
    assert ex.entities is None  # head and tail only, unless the protocol lists the other entities
    split = kshot_schema(sents, k=1, seed=0, relation_descriptions={"role": "works for", "compare": "vs"},
                         templates=CROSSRE_TEMPLATES, types="split", example_entities=True)
    phys = split.relations["physical"]  # the earlier protocol: types seen anywhere in the train split
    assert phys.head_types == ("organisation", "researcher") and phys.tail_types == ("location", "organisation")
    (ex,) = phys.examples
    # London is the tail of another gold pair (Google DeepMind -> London): listing it would train that
    # true pair as NOTA, so the example lists no other entity
    assert ex.entities == ()
    from fsre_cli.bench.datasets import LabeledSentence, _nota_entities

    s = LabeledSentence("x", "A B C D", [Span(0, 1, "t", "A"), Span(2, 3, "t", "B"), Span(4, 5, "t", "C"),
                                         Span(6, 7, "t", "D")], [(0, 1, "r"), (3, 1, "q")])
    assert _nota_entities(s, 0, 1) == [2]  # C relates to nothing; D is in a gold pair with B
    assert schema.relations["compare"].examples == [] and schema.warnings
    assert schema.entity_types["task"] == ("task",)
    assert schema.relations["usage"].statement("A", "B") == "A uses B"
    mapped = kshot_schema(sents, k=2, seed=0, relation_descriptions={}, type_map={"researcher": "PERSON"})
    assert mapped.entity_types["PERSON"] == ("researcher",)
    assert mapped.relations["role"].head_types == ("PERSON",)


@needs_data
def test_kshot_schema_real_crossre():
    train = load_crossre(DATA / "crossre/ai-train.json")
    k = 4
    schema = kshot_schema(train, k=k, seed=1, relation_descriptions=CROSSRE_DESCRIPTIONS, templates=CROSSRE_TEMPLATES)
    assert len(schema.relations) == 17
    counts = relation_counts(train)
    for name, rel in schema.relations.items():
        assert len(rel.examples) == min(k, counts.get(name, 0))
        for ex in rel.examples:
            check_span(ex.text, ex.head)
            check_span(ex.text, ex.tail)
            assert ex.head.type in rel.head_types and ex.tail.type in rel.tail_types
    again = kshot_schema(train, k=k, seed=1, relation_descriptions=CROSSRE_DESCRIPTIONS, templates=CROSSRE_TEMPLATES)
    other = kshot_schema(train, k=k, seed=2, relation_descriptions=CROSSRE_DESCRIPTIONS, templates=CROSSRE_TEMPLATES)
    assert again.content_hash() == schema.content_hash() != other.content_hash()
    # the generated schema is a valid schema file
    parsed = parse_schema(yaml.safe_dump(_as_yaml_dict(schema), allow_unicode=True))
    assert {r: len(x.examples) for r, x in parsed.relations.items()} == {
        r: len(x.examples) for r, x in schema.relations.items()
    }


def test_labeled_sentence_pairs_excludes_self_pairs():
    s = LabeledSentence("x", "a b", [Span(0, 1, "T", "a"), Span(2, 3, "T", "b")], [(0, 1, "r")])
    assert s.pairs() == [(0, 1, ("r",)), (1, 0, ())]
    assert isinstance(Instance("a b", s.mentions[0], s.mentions[1], "r").head, Span)
