"""Entity stage with real Stanza: offsets, sentences, type mapping, given entities, model errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fsre_cli.documents import Document, EntitySpan, Sentence
from fsre_cli.entities import EntityRecognizer, download_models, given_entity_problem, list_models
from fsre_cli.entities.given import given_sentences
from fsre_cli.errors import BadEntityError, FsreError, ModelMissingError, UsageError

MESSY = (
    "Alice  Smith works for Acme Corp in Paris.\n\n"
    "Bob Jones was born in\tTokyo. “Wei Chen” hired José Álvarez at  Globex.\r\n"
    "The mayor of Berlin thanked Hooli."
)


def span(text: str, surface: str, type_: str, occurrence: int = 0) -> EntitySpan:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(surface, start + 1)
    return EntitySpan(start, start + len(surface), type_)


def assert_consistent(doc: Document, sentences: list[Sentence]) -> None:
    """The invariants every stage relies on."""
    assert [s.index for s in sentences] == list(range(len(sentences)))
    previous_end = 0
    for s in sentences:
        assert s.doc_id == doc.id
        assert s.text == doc.text[s.start : s.end]
        assert s.text == s.text.strip() and s.text
        assert s.start >= previous_end
        previous_end = s.end
        for m in s.mentions:
            assert doc.text[m.start : m.end] == m.text
            assert s.start <= m.start < m.end <= s.end


# --------------------------------------------------------------------------- given entities (offline, no NER)
@pytest.fixture
def offline_recognizer(stanza_schema, tmp_path) -> EntityRecognizer:
    """Given entities only, with an empty Stanza dir: proves no downloaded model is needed."""
    return EntityRecognizer(stanza_schema, entities="given", stanza_dir=str(tmp_path / "no-models"))


def test_given_entities_offline_sentences_and_offsets(offline_recognizer):
    ents = [
        span(MESSY, "Alice  Smith", "PERSON"),
        span(MESSY, "Acme Corp", "ORG"),
        span(MESSY, "Tokyo", "PLACE"),
        span(MESSY, "Wei Chen", "PERSON"),
        span(MESSY, "José Álvarez", "PERSON"),
        span(MESSY, "Globex", "ORG"),
        span(MESSY, "Berlin", "GPE"),  # an NER label the schema maps to PLACE
    ]
    doc = Document("messy", MESSY, ents)
    [(out_doc, sentences)] = list(offline_recognizer.process([doc]))
    assert out_doc is doc
    assert_consistent(doc, sentences)
    assert [s.text for s in sentences] == [
        "Alice  Smith works for Acme Corp in Paris.",
        "Bob Jones was born in\tTokyo.",
        "“Wei Chen” hired José Álvarez at  Globex.",  # the opening quote moves to the sentence it opens
        "The mayor of Berlin thanked Hooli.",
    ]
    assert [[m.text for m in s.mentions] for s in sentences] == [
        ["Alice  Smith", "Acme Corp"], ["Tokyo"], ["Wei Chen", "José Álvarez", "Globex"], ["Berlin"],
    ]
    berlin = sentences[3].mentions[0]
    assert (berlin.type, berlin.label) == ("PLACE", "GPE")
    assert not offline_recognizer.ner_loaded


@pytest.mark.parametrize(
    "text, expected",
    [
        ('He left. "Wei Chen" arrived.', ["He left.", '"Wei Chen" arrived.']),
        ('He said "hi." Then left.', ['He said "hi."', "Then left."]),
        ("It rained (a lot). (See below.) Done!", ["It rained (a lot).", "(See below.)", "Done!"]),
        ("Dr. Smith met Mr. Jones at 5 p.m. yesterday. OK?", ["Dr. Smith met Mr. Jones at 5 p.m. yesterday.", "OK?"]),
        ("Heading without period\n \nBody text.\nSame paragraph.", ["Heading without period", "Body text.", "Same paragraph."]),
    ],
)
def test_sentence_boundaries(offline_recognizer, text, expected):
    sentences = offline_recognizer.sentences(Document("d", text, []))
    assert [s.text for s in sentences] == expected
    assert_consistent(Document("d", text, []), sentences)


def test_given_entities_empty_list_and_blank_text(offline_recognizer):
    docs = [Document("a", "Nothing to see here. Really.", []), Document("b", "  \n ", [])]
    results = list(offline_recognizer.process(docs))
    assert [d.id for d, _ in results] == ["a", "b"]
    assert [s.text for s in results[0][1]] == ["Nothing to see here.", "Really."]
    assert all(not s.mentions for s in results[0][1])
    assert results[1][1] == []


def test_given_duplicate_spans_are_merged(offline_recognizer):
    text = "Acme Corp hired Bob Jones."
    doc = Document("d", text, [span(text, "Acme Corp", "ORG"), span(text, "Acme Corp", "ORG")])
    [(_, sentences)] = list(offline_recognizer.process([doc]))
    assert [m.text for m in sentences[0].mentions] == ["Acme Corp"]


TEXT_7 = "Acme Corp hired Bob. Jones left Paris."


@pytest.mark.parametrize(
    "entity, expected",
    [
        (EntitySpan(10, 99, "ORG"), 'entity 0 [10, 99) ends after the text (length 38)'),
        (EntitySpan(-1, 3, "ORG"), "entity 0 [-1, 3) starts before the text"),
        (EntitySpan(5, 5, "ORG"), "entity 0 [5, 5) is empty"),
        (EntitySpan(9, 4, "ORG"), "entity 0 [9, 4) ends before it starts"),
        (EntitySpan(30, 20, "ORG"), "entity 0 [30, 20) ends before it starts"),
        (EntitySpan(5, -2, "ORG"), "entity 0 [5, -2) ends before it starts"),
        (EntitySpan(9, 10, "ORG"), "entity 0 [9, 10) covers only whitespace"),
        (EntitySpan(0, 9, "WEAPON"),
         'entity 0 [0, 9) "Acme Corp" has type "WEAPON", which the schema does not declare'),
        (EntitySpan(1.5, 4, "ORG"), "entity 0 [1.5, 4): start and end must be integers"),  # type: ignore[arg-type]
        (EntitySpan(True, 4, "ORG"), "entity 0 [True, 4): start and end must be integers"),
    ],
)
def test_given_entity_problem_names_document_and_entity(stanza_schema, entity, expected):
    doc = Document("doc-7", TEXT_7, [entity])
    problem = given_entity_problem(doc, stanza_schema)
    assert problem is not None and problem.startswith('document "doc-7": ')
    assert expected in problem
    assert "\n" not in problem


def test_given_entity_problem_reports_the_first_bad_entity_by_index(stanza_schema):
    good = [span(TEXT_7, "Acme Corp", "ORG"), span(TEXT_7, "Paris", "GPE"), span(TEXT_7, "Bob", "person")]
    assert given_entity_problem(Document("d", TEXT_7, good), stanza_schema) is None  # labels map, any case
    assert given_entity_problem(Document("d", TEXT_7, []), stanza_schema) is None
    assert given_entity_problem(Document("d", TEXT_7), stanza_schema) is None
    bad = good + [EntitySpan(0, 4, "COMPANY"), EntitySpan(120, 95, "ORG")]
    assert given_entity_problem(Document("d9", TEXT_7, bad), stanza_schema) == (
        'document "d9": entity 3 [0, 4) "Acme" has type "COMPANY", which the schema does not declare '
        "(schema types: ORG, PERSON, PLACE)"
    )
    assert given_entity_problem(Document("d9", TEXT_7, [EntitySpan(120, 95, "ORG")]), stanza_schema) == (
        'document "d9": entity 0 [120, 95) ends before it starts'
    )


def test_bad_given_entity_raises_for_that_document_only(offline_recognizer):
    """A bad document raises a typed error after the documents before it are handed on and before
    any work on it; the same iterator then goes on with the documents after it."""
    text = "Acme Corp hired Bob Jones."
    docs = iter([
        Document("good-1", text, [span(text, "Acme Corp", "ORG")]),
        Document("good-2", text, [span(text, "Bob Jones", "PERSON")]),
        Document("bad", text, [span(text, "Acme Corp", "ORG"), EntitySpan(9, 4, "ORG")]),
        Document("good-3", text, [span(text, "Bob Jones", "PERSON")]),
    ])
    seen = []
    with pytest.raises(BadEntityError) as info:
        for doc, sentences in offline_recognizer.process(docs):
            seen.append((doc.id, [m.text for s in sentences for m in s.mentions]))
    assert seen == [("good-1", ["Acme Corp"]), ("good-2", ["Bob Jones"])]
    assert info.value.doc_id == "bad"
    assert str(info.value) == 'document "bad": entity 1 [9, 4) ends before it starts'
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2  # uncaught: invalid input
    rest = [(d.id, [m.text for s in sents for m in s.mentions]) for d, sents in offline_recognizer.process(docs)]
    assert rest == [("good-3", ["Bob Jones"])]


def test_recognizer_given_problem_only_where_given_entities_are_used(stanza_schema):
    doc = Document("d", TEXT_7, [EntitySpan(0, 9, "WEAPON")])
    assert EntityRecognizer(stanza_schema).given_problem(doc) == given_entity_problem(doc, stanza_schema)
    assert EntityRecognizer(stanza_schema, entities="given").given_problem(doc) is not None
    assert EntityRecognizer(stanza_schema, entities="stanza").given_problem(doc) is None  # ignored there
    assert EntityRecognizer(stanza_schema).given_problem(Document("d", TEXT_7)) is None


def test_bad_given_entity_in_a_single_document(offline_recognizer):
    doc = Document("d", "Acme Corp hired Bob.", [EntitySpan(0, 9, "COMPANY")])
    with pytest.raises(BadEntityError, match="schema types: ORG, PERSON, PLACE"):
        offline_recognizer.sentences(doc)


# --------------------------------------------------------------------------- the splitter cutting inside a given entity
@pytest.fixture
def misc_recognizer(tmp_path) -> EntityRecognizer:
    from fsre_cli.schema import parse_schema

    schema = parse_schema(
        "name: m\nentity_types:\n  PERSON: [PERSON]\n  ORG: [ORG]\n  MISC: [MISC]\n"
        "relations:\n  r:\n    description: d\n    head: PERSON\n    tail: ORG\n"
    )
    return EntityRecognizer(schema, entities="given", stanza_dir=str(tmp_path / "no-models"))


@pytest.mark.parametrize(
    "text, entities, expected",
    [
        # Re-DocRED-style text, raw and pre-tokenized: the splitter ends a sentence after "Col."
        ("He met Col. Ripley at the base. Then he left.", [("Col. Ripley", "PERSON")],
         ["He met Col. Ripley at the base.", "Then he left."]),
        ("He met Col . Ripley at the base . Then he left .", [("Col . Ripley", "PERSON")],
         ["He met Col . Ripley at the base .", "Then he left ."]),
        # CrossRE ai: "Ph.D" is cut after "Ph."
        ("She holds a Ph.D in machine learning from MIT. She works at Google.",
         [("Ph.D", "MISC"), ("MIT", "ORG"), ("Google", "ORG")],
         ["She holds a Ph.D in machine learning from MIT.", "She works at Google."]),
        # one mention over three pieces ("He met Lt." / "Col." / "Ripley.")
        ("He met Lt. Col. Ripley. Then he left.", [("Lt. Col. Ripley", "PERSON")],
         ["He met Lt. Col. Ripley.", "Then he left."]),
        # two mentions chaining three pieces ("Lt." / "Col." / "J. Ripley met him.")
        ("Lt. Col. J. Ripley met him. Then he left.", [("Lt. Col.", "MISC"), ("Col. J. Ripley", "PERSON")],
         ["Lt. Col. J. Ripley met him.", "Then he left."]),
    ],
)
def test_given_entity_merges_the_pieces_the_splitter_cut(misc_recognizer, text, entities, expected):
    doc = Document("d", text, [span(text, surface, type_) for surface, type_ in entities])
    sentences = misc_recognizer.sentences(doc)
    assert [s.text for s in sentences] == expected
    assert_consistent(doc, sentences)
    assert sorted(m.text for s in sentences for m in s.mentions) == sorted(surface for surface, _ in entities)
    # without the given entity, the same text is cut inside it: the merge is what keeps it whole
    assert len(misc_recognizer.sentences(Document("d", text, []))) > len(expected)


def test_merge_keeps_other_sentences_and_documents_apart(misc_recognizer):
    text = "Alice left. He met Col. Ripley there. Bob stayed. It rained."
    doc = Document("d", text, [span(text, "Col. Ripley", "PERSON"), span(text, "Bob", "PERSON")])
    other = Document("e", "Acme Corp hired Bob. Jones left.", [EntitySpan(0, 9, "ORG")])
    results = list(misc_recognizer.process([doc, other]))
    [(_, sentences), (_, other_sentences)] = results
    assert [s.text for s in sentences] == ["Alice left.", "He met Col. Ripley there.", "Bob stayed.", "It rained."]
    assert [[m.text for m in s.mentions] for s in sentences] == [[], ["Col. Ripley"], ["Bob"], []]
    assert_consistent(doc, sentences)
    assert [s.text for s in other_sentences] == ["Acme Corp hired Bob.", "Jones left."]


def test_given_sentences_merges_bounds_directly(stanza_schema):
    """The pure placement step: pieces a mention overlaps merge; a mention over no piece is a sentence."""
    text = "aaa bbb. ccc ddd. eee fff. ggg"
    doc = Document("d", text, [EntitySpan(4, 12, "ORG"), EntitySpan(27, 30, "PERSON"), EntitySpan(22, 25, "ORG")])
    bounds = [(0, 8), (9, 17), (18, 26)]
    sentences = given_sentences(doc, stanza_schema, bounds)
    assert [(s.start, s.end, s.text) for s in sentences] == [(0, 17, "aaa bbb. ccc ddd."), (18, 26, "eee fff."),
                                                            (27, 30, "ggg")]
    assert [[m.text for m in s.mentions] for s in sentences] == [["bbb. ccc"], ["fff"], ["ggg"]]
    assert [s.index for s in sentences] == [0, 1, 2]


def test_entities_given_requires_entities(offline_recognizer):
    docs = [Document("ok", "Bob left.", []), Document("bare", "Alice stayed.")]
    with pytest.raises(UsageError, match="'bare' has no `entities`"):
        list(offline_recognizer.process(docs))


def test_invalid_mode(stanza_schema):
    with pytest.raises(UsageError, match="entities must be one of"):
        EntityRecognizer(stanza_schema, entities="magic")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- missing models
def test_missing_models_error_names_the_fix(stanza_schema, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    rec = EntityRecognizer(stanza_schema, stanza_dir=str(empty), entities="stanza")
    with pytest.raises(ModelMissingError) as info:
        list(rec.process([Document("d", "Alice Smith works for Acme Corp.")]))
    message = str(info.value)
    assert "fsre models download --lang en" in message
    assert f"--stanza-dir {empty}" in message  # the download command targets the same directory
    assert "FSRE_STANZA_DIR" in message
    assert "\n" not in message
    assert info.value.exit_code == 2


def test_missing_models_env_dir(stanza_schema, tmp_path, monkeypatch):
    monkeypatch.setenv("FSRE_STANZA_DIR", str(tmp_path))
    rec = EntityRecognizer(stanza_schema)
    assert rec.stanza_dir == str(tmp_path)
    with pytest.raises(ModelMissingError, match="fsre models download --lang en"):
        rec.sentences(Document("d", "Alice Smith works for Acme Corp."))


def test_missing_custom_model_file(stanza_schema, tmp_path):
    rec = EntityRecognizer(stanza_schema, ner_model_path=tmp_path / "nope.pt")
    with pytest.raises(ModelMissingError, match="nope.pt does not exist"):
        rec.sentences(Document("d", "Alice Smith works for Acme Corp."))


def test_list_models(tmp_path):
    assert list_models(str(tmp_path / "absent")) == []
    (tmp_path / "en" / "ner").mkdir(parents=True)
    (tmp_path / "en" / "ner" / "ontonotes_charlm.pt").write_bytes(b"x" * 10)
    (tmp_path / "en" / "tokenize").mkdir()
    (tmp_path / "en" / "tokenize" / "combined.pt").write_bytes(b"y" * 3)
    (tmp_path / "resources.json").write_text("{}")
    models = list_models(str(tmp_path))
    assert [(m["language"], m["processor"], m["package"], m["size"]) for m in models] == [
        ("en", "ner", "ontonotes_charlm", 10),
        ("en", "tokenize", "combined", 3),
    ]
    assert all(Path(m["path"]).is_file() for m in models)


@pytest.mark.slow
def test_download_unreachable_server_is_one_clear_error(tmp_path):
    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FsreError, match="unreachable") as info:
        download_models("en", str(tmp_path), timeout=60, resources_url=f"http://127.0.0.1:{port}")
    assert "--stanza-dir" in str(info.value)


@pytest.mark.slow
def test_download_timeout(tmp_path):
    with socket.socket() as server:  # accepts connections (kernel backlog) and never answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        with pytest.raises(FsreError, match="did not finish within 3 s"):
            download_models("en", str(tmp_path), timeout=3, resources_url=f"http://127.0.0.1:{port}")


# --------------------------------------------------------------------------- real NER with the tiny model
@pytest.mark.slow
def test_ner_offsets_on_messy_text(tiny_recognizer):
    doc = Document("messy", MESSY)
    [(_, sentences)] = list(tiny_recognizer.process([doc]))
    assert_consistent(doc, sentences)
    assert len(sentences) == 4
    found = {(m.text, m.type) for s in sentences for m in s.mentions}
    # names and templates the tiny model was trained on, behind double spaces, tabs and quotes
    for expected in [("Alice  Smith", "PERSON"), ("Acme Corp", "ORG"), ("Bob Jones", "PERSON"),
                     ("Wei Chen", "PERSON"), ("Globex", "ORG")]:
        assert expected in found
    for s in sentences:
        for m in s.mentions:
            assert m.label in ("PERSON", "ORG", "GPE")


@pytest.mark.slow
def test_unmapped_labels_are_dropped(recognizer_factory):
    from fsre_cli.schema import parse_schema

    no_places = parse_schema(
        "name: p\nentity_types:\n  PERSON: [PERSON]\n  ORG: [ORG]\n"
        "relations:\n  works_for:\n    description: d\n    head: PERSON\n    tail: ORG\n"
    )
    text = "Alice Smith works for Acme Corp in Paris."
    with_places = recognizer_factory().sentences(Document("d", text))
    without = recognizer_factory(no_places).sentences(Document("d", text))
    assert ("Paris", "PLACE", "GPE") in {(m.text, m.type, m.label) for m in with_places[0].mentions}
    assert {m.label for m in without[0].mentions} <= {"PERSON", "ORG"}
    assert "Paris" not in {m.text for m in without[0].mentions}
    assert {m.text for m in without[0].mentions} >= {"Alice Smith", "Acme Corp"}


@pytest.mark.slow
def test_bulk_order_and_auto_mode(recognizer_factory):
    rec = recognizer_factory(batch_size=2)
    given_text = "Hooli hired Ravi Patel."
    docs = [
        Document("n1", "Globex hired Maria Garcia."),
        Document("g1", given_text, [span(given_text, "Ravi Patel", "PERSON")]),  # NER would find Hooli too
        Document("n2", ""),
        Document("n3", "Wei Chen was born in Tokyo. Initech hired Bob Jones."),
        Document("g2", "Nobody here.", []),
    ]
    results = list(rec.process(iter(docs)))
    assert [d.id for d, _ in results] == ["n1", "g1", "n2", "n3", "g2"]
    by_id = {d.id: s for d, s in results}
    for d, s in results:
        assert_consistent(d, s)
    assert [m.text for m in by_id["g1"][0].mentions] == ["Ravi Patel"]
    assert by_id["n2"] == []
    assert len(by_id["n3"]) == 2
    assert {m.text for m in by_id["n1"][0].mentions} >= {"Globex", "Maria Garcia"}
    assert by_id["g2"][0].mentions == []
    assert rec.ner_loaded


@pytest.mark.slow
def test_stanza_mode_ignores_given_entities(recognizer_factory):
    text = "Hooli hired Ravi Patel."
    doc = Document("g", text, [span(text, "Ravi Patel", "PERSON")])
    sentences = recognizer_factory(entities="stanza").sentences(doc)
    assert {m.text for m in sentences[0].mentions} >= {"Hooli", "Ravi Patel"}


def test_auto_mode_with_all_entities_given_never_loads_ner(stanza_schema, tmp_path):
    # the NER model does not even exist: it must not be needed when every document brings entities
    rec = EntityRecognizer(stanza_schema, ner_model_path=tmp_path / "missing.pt", stanza_dir=str(tmp_path))
    text = "Hooli hired Ravi Patel."
    [(_, sentences)] = list(rec.process([Document("g", text, [span(text, "Hooli", "ORG")])]))
    assert [m.text for m in sentences[0].mentions] == ["Hooli"]
    assert not rec.ner_loaded


@pytest.mark.slow
def test_example_mentions_give_training_real_entities(tiny_recognizer, stanza_schema, tmp_path):
    texts = [e.text for e in stanza_schema.examples] + ["Bob Jones joined Globex in Paris."]
    mentions = tiny_recognizer.example_mentions(texts + texts[:1])  # duplicates are processed once
    assert list(mentions) == texts
    found = {(m.text, m.type) for m in mentions[texts[-1]]}
    assert {("Bob Jones", "PERSON"), ("Globex", "ORG"), ("Paris", "PLACE")} <= found
    assert ("Alice Smith", "PERSON") in {(m.text, m.type) for m in mentions[texts[0]]}
    for text, spans in mentions.items():
        assert all(text[m.start:m.end] == m.text for m in spans)  # offsets into the example text
    # no NER: training falls back to guessed spans, without an error
    assert EntityRecognizer(stanza_schema, entities="given").example_mentions(texts) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert EntityRecognizer(stanza_schema, stanza_dir=str(empty)).example_mentions(texts) is None


@pytest.mark.slow
def test_example_mentions_are_cached_per_model_and_labels(tiny_ner_model, stanza_schema, tmp_path):
    """A repeated extract reads the examples' mentions from disk without loading NER; a changed
    model file or label mapping computes them again."""
    import dataclasses
    import os
    import shutil

    model = tmp_path / "ner.pt"
    shutil.copy(tiny_ner_model, model)
    cache = tmp_path / "mentions"
    texts = [e.text for e in stanza_schema.examples]
    first = EntityRecognizer(stanza_schema, ner_model_path=model, mention_cache=cache)
    mentions = first.example_mentions(texts)
    assert first.ner_loaded and mentions and len(list(cache.glob("*.json"))) == 1

    again = EntityRecognizer(stanza_schema, ner_model_path=model, mention_cache=cache)
    assert again.example_mentions(list(reversed(texts))) == mentions  # order of texts does not matter
    assert not again.ner_loaded

    relabelled = dataclasses.replace(stanza_schema, entity_types={**stanza_schema.entity_types, "PLACE": ("GPE",)})
    other = EntityRecognizer(relabelled, ner_model_path=model, mention_cache=cache)
    other.example_mentions(texts)
    assert other.ner_loaded and len(list(cache.glob("*.json"))) == 2

    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a retrained model file
    retrained = EntityRecognizer(stanza_schema, ner_model_path=model, mention_cache=cache)
    assert retrained.example_mentions(texts) == mentions
    assert retrained.ner_loaded and len(list(cache.glob("*.json"))) == 3

    for entry in cache.glob("*.json"):
        entry.write_text("{not json", encoding="utf-8")  # a damaged entry is recomputed, not an error
    damaged = EntityRecognizer(stanza_schema, ner_model_path=model, mention_cache=cache)
    assert damaged.example_mentions(texts) == mentions and damaged.ner_loaded
