"""Candidate pairs: type constraints, direction, overlaps, counts."""

from __future__ import annotations

import pytest

from fsre_cli.candidates import candidate_pairs, document_candidates
from fsre_cli.documents import Document, EntitySpan, Mention, Sentence
from fsre_cli.entities import EntityRecognizer


def mention(text: str, sentence: str, type_: str) -> Mention:
    start = sentence.index(text)
    return Mention(start, start + len(text), type_, text, type_)


def sentence_with(text: str, *mentions: tuple[str, str]) -> Sentence:
    return Sentence("d", 0, 0, len(text), text, [mention(t, text, ty) for t, ty in mentions])


def names(cands):
    return [(c.head.text, c.tail.text, c.relations) for c in cands]


def test_type_constraints_and_direction(stanza_schema):
    s = sentence_with(
        "Alice Smith left Acme Corp for Paris.",
        ("Alice Smith", "PERSON"), ("Acme Corp", "ORG"), ("Paris", "PLACE"),
    )
    assert names(candidate_pairs(s, stanza_schema)) == [
        ("Alice Smith", "Acme Corp", ("works_for",)),
        ("Alice Smith", "Paris", ("born_in",)),
        ("Acme Corp", "Paris", ("based_in",)),
    ]
    for c in candidate_pairs(s, stanza_schema):
        assert c.sentence is s


def test_no_pairs_without_allowed_types(stanza_schema):
    s = sentence_with("Alice met Bob.", ("Alice", "PERSON"), ("Bob", "PERSON"))
    assert candidate_pairs(s, stanza_schema) == []
    assert candidate_pairs(sentence_with("Nothing."), stanza_schema) == []


def test_both_directions_and_several_relations():
    from fsre_cli.schema import parse_schema

    schema = parse_schema(
        "name: s\nentity_types:\n  PERSON: [PERSON]\n"
        "relations:\n"
        "  spouse:\n    description: married\n    head: PERSON\n    tail: PERSON\n"
        "  sibling:\n    description: siblings\n    head: PERSON\n    tail: PERSON\n"
    )
    s = sentence_with("Alice married Bob.", ("Alice", "PERSON"), ("Bob", "PERSON"))
    assert names(candidate_pairs(s, schema)) == [
        ("Alice", "Bob", ("spouse", "sibling")),
        ("Bob", "Alice", ("spouse", "sibling")),
    ]


def test_overlapping_mentions_are_not_paired(stanza_schema):
    text = "Bank of Paris hired Alice."
    s = Sentence("d", 0, 0, len(text), text, [
        Mention(0, 13, "ORG", "Bank of Paris"),
        Mention(8, 13, "PLACE", "Paris"),
        Mention(20, 25, "PERSON", "Alice"),
    ])
    assert names(candidate_pairs(s, stanza_schema)) == [
        ("Alice", "Bank of Paris", ("works_for",)),
        ("Alice", "Paris", ("born_in",)),
    ]


def test_document_candidates_concatenate_sentences(stanza_schema):
    s1 = sentence_with("Alice Smith joined Acme Corp.", ("Alice Smith", "PERSON"), ("Acme Corp", "ORG"))
    s2 = sentence_with("Paris is nice.", ("Paris", "PLACE"))
    assert len(document_candidates([s1, s2], stanza_schema)) == 1


def test_candidates_stay_inside_sentences(stanza_schema, tmp_path):
    """Real sentence splitting: mentions in different sentences never pair."""
    text = "Alice Smith was born in Paris.  Acme Corp hired Bob Jones."
    ents = [EntitySpan(text.index(t), text.index(t) + len(t), ty) for t, ty in
            [("Alice Smith", "PERSON"), ("Paris", "PLACE"), ("Acme Corp", "ORG"), ("Bob Jones", "PERSON")]]
    rec = EntityRecognizer(stanza_schema, entities="given", stanza_dir=str(tmp_path))
    sentences = rec.sentences(Document("d", text, ents))
    assert len(sentences) == 2
    cands = document_candidates(sentences, stanza_schema)
    assert names(cands) == [
        ("Alice Smith", "Paris", ("born_in",)),
        ("Bob Jones", "Acme Corp", ("works_for",)),
    ]
    for c in cands:
        assert text[c.head.start : c.head.end] == c.head.text
        assert c.sentence.start <= c.head.start and c.tail.end <= c.sentence.end


@pytest.mark.slow
def test_candidates_from_real_ner(tiny_recognizer, stanza_schema):
    text = "Alice Smith works for Acme Corp in Paris."
    [sentence] = tiny_recognizer.sentences(Document("d", text))
    pairs = {(c.head.text, c.tail.text): c.relations for c in candidate_pairs(sentence, stanza_schema)}
    assert pairs[("Alice Smith", "Acme Corp")] == ("works_for",)
    assert ("Acme Corp", "Alice Smith") not in pairs


def test_evidence_is_the_sentence_or_a_window_around_the_pair_of_a_long_one() -> None:
    from fsre_cli.documents import Candidate, Sentence
    from fsre_cli.pipeline import EVIDENCE_CHARS, EVIDENCE_CONTEXT, evidence

    short = Sentence("d", 0, 10, 40, "Alice Smith works for Acme Corp now.")
    head, tail = Mention(10, 21, "PERSON", "Alice Smith"), Mention(32, 41, "ORG", "Acme Corp")
    assert evidence(Candidate(short, head, tail, ("works_for",))) == short.text
    text = "x " * 3000 + "Alice Smith works for Acme Corp" + " y" * 3000
    long = Sentence("d", 0, 100, 100 + len(text), text)
    at = 100 + text.index("Alice")
    head = Mention(at, at + 11, "PERSON", "Alice Smith")
    tail = Mention(at + 22, at + 31, "ORG", "Acme Corp")
    quoted = evidence(Candidate(long, head, tail, ("works_for",)))
    assert len(quoted) == 31 + 2 * EVIDENCE_CONTEXT < EVIDENCE_CHARS
    assert "Alice Smith works for Acme Corp" in quoted and quoted in text


def test_evidence_of_a_far_apart_pair_in_a_long_sentence_is_two_windows() -> None:
    from fsre_cli.documents import Candidate, Sentence
    from fsre_cli.pipeline import EVIDENCE_CHARS, evidence

    text = "Alice Smith" + " x" * 50_000 + " Acme Corp"
    sentence = Sentence("d", 0, 0, len(text), text)
    head, tail = Mention(0, 11, "PERSON", "Alice Smith"), Mention(len(text) - 9, len(text), "ORG", "Acme Corp")
    quoted = evidence(Candidate(sentence, tail, head, ("works_for",)))
    assert len(quoted) < EVIDENCE_CHARS and " … " in quoted
    assert quoted.startswith("Alice Smith") and quoted.endswith("Acme Corp")
