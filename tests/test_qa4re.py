"""QA4RE questions, answer parsing against the real local server, and cascade routing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsre_cli.documents import Candidate, Mention, Sentence
from fsre_cli.qa4re import (
    NOTA_TEMPLATE, CascadeScorer, QA4REScorer, build_question, letter_probabilities, parse_answer,
)
from fsre_cli.schema import parse_schema
from fsre_cli.scoring import Prediction

SCHEMA = parse_schema("""\
name: qa
entity_types: {PERSON: [PERSON], ORG: [ORG], PLACE: [GPE]}
relations:
  founded_by: {description: founder, head: ORG, tail: PERSON, template: "{head} was founded by {tail}"}
  ceo_of: {description: chief executive, head: PERSON, tail: ORG, template: "{head} is the chief executive of {tail}"}
  employee_of: {description: works for, head: PERSON, tail: ORG}
  born_in: {description: birthplace, head: PERSON, tail: PLACE, template: "{head} was born in {tail}"}
""")


def cand(text: str, head: str, head_type: str, tail: str, tail_type: str) -> Candidate:
    s = Sentence("d", 0, 10, 10 + len(text), text)  # the sentence starts at offset 10 of its document
    h = Mention(head, 10 + text.index(head), 10 + text.index(head) + len(head), head_type)
    t = Mention(tail, 10 + text.index(tail), 10 + text.index(tail) + len(tail), tail_type)
    return Candidate(s, h, t, SCHEMA.relations_for(head_type, tail_type))


PAIR = cand("Satya Nadella leads Microsoft from Redmond.", "Satya Nadella", "PERSON", "Microsoft", "ORG")


def test_question_has_allowed_options_plus_nota_and_marks_entities() -> None:
    q = build_question(SCHEMA, PAIR)
    statements = sorted(s for s, _ in q.options)
    assert statements == sorted([
        "Satya Nadella is the chief executive of Microsoft",
        "Satya Nadella employee of Microsoft",  # no template: read from the relation name
        NOTA_TEMPLATE.format(head="Satya Nadella", tail="Microsoft"),
    ])
    assert {r for _, r in q.options} == {"ceo_of", "employee_of", None}  # founded_by/born_in filtered by type
    assert "Sentence: [Satya Nadella] leads [Microsoft] from Redmond." in q.prompt
    for letter, (statement, _) in zip("ABC", q.options):
        assert f"{letter}. {statement}" in q.prompt


def test_shuffle_is_deterministic_and_varies_between_questions() -> None:
    assert build_question(SCHEMA, PAIR).options == build_question(SCHEMA, PAIR).options
    orders = set()
    for i in range(12):
        c = cand(f"Person{i} Smith leads Acme{i} today.", f"Person{i} Smith", "PERSON", f"Acme{i}", "ORG")
        orders.add(tuple(r for _, r in build_question(SCHEMA, c).options))
    assert len(orders) > 1  # NOTA and relations move around: position bias averages out


def test_only_nota_left_means_no_question() -> None:
    no_relation = Candidate(PAIR.sentence, PAIR.head, PAIR.tail, ())
    assert build_question(SCHEMA, no_relation) is None
    scorer = QA4REScorer(SCHEMA, client=None)  # never called
    assert scorer.predict([no_relation]) == [Prediction(None, 0.0, None, 0.0)]
    assert scorer.skipped == 1 and scorer.calls == 0


def test_letter_probabilities_and_text_fallback() -> None:
    q = build_question(SCHEMA, PAIR)
    probs = letter_probabilities({"A": -0.1, " B": -2.5, "B.": -4.0, "The": -1.0}, q.letters)
    assert probs["A"] > probs["B"] > probs["C"] == 0 and abs(sum(probs.values()) - 1) < 1e-9
    assert letter_probabilities({"The": -0.1}, q.letters) is None
    assert parse_answer("B. something", q) == "B" and parse_answer("Option C", q) == "C"
    nota_statement = next(s for s, r in q.options if r is None)
    assert parse_answer(f"I think {nota_statement}.", q) == "ABC"[[r for _, r in q.options].index(None)]
    assert parse_answer("no idea", q) is None
    decided = QA4REScorer.decide(q, "no idea", None)
    assert decided.relation is None and decided.score == 0.0


@pytest.mark.llm
@pytest.mark.slow
def test_real_server_answers_are_read_from_logprobs(llm_client) -> None:
    scorer = QA4REScorer(SCHEMA, llm_client)
    pairs = [PAIR, cand("Ada Lovelace was born in London.", "Ada Lovelace", "PERSON", "London", "PLACE")]
    predictions = scorer.predict(pairs)
    assert scorer.calls == 2
    for p, c in zip(predictions, pairs):
        assert p.best in c.relations and 0.0 <= p.best_score <= 1.0
        assert p.relation is None or p.relation in c.relations
    requests_before = llm_client.stats.requests
    again = QA4REScorer(SCHEMA, llm_client).predict(pairs)  # a second run is answered by the cache
    assert again == predictions and llm_client.stats.requests == requests_before


class FixedScorer:
    method = "fixed"
    threshold = 0.5

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores

    def predict(self, candidates):
        return [Prediction("ceo_of" if s >= 0.5 else None, s, "ceo_of", s) for s in self.scores]


class RecordingQA:
    def __init__(self) -> None:
        self.seen: list[Candidate] = []

    def predict(self, candidates):
        self.seen += candidates
        return [Prediction("employee_of", 0.9, "employee_of", 0.9) for _ in candidates]


def test_cascade_sends_only_unsure_pairs_to_the_llm() -> None:
    pairs = [cand(f"P{i} Smith leads Acme{i}.", f"P{i} Smith", "PERSON", f"Acme{i}", "ORG") for i in range(4)]
    qa = RecordingQA()
    cascade = CascadeScorer(FixedScorer([0.05, 0.45, 0.62, 0.95]), qa, band=(0.3, 0.7))
    out = cascade.predict(pairs)
    assert qa.seen == pairs[1:3] and cascade.routed == 2 and cascade.total == 4
    assert [p.relation for p in out] == [None, "employee_of", "employee_of", "ceo_of"]
    default = CascadeScorer(FixedScorer([]), qa)
    assert default.band == pytest.approx((0.3, 0.7))  # centred on the encoder's threshold


@pytest.mark.llm
@pytest.mark.slow
def test_qa4re_end_to_end_through_the_cli(llm_base_url: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    schema = tmp_path / "s.yaml"
    schema.write_text("""\
name: zs
entity_types: {PERSON: [PERSON], ORG: [ORG]}
relations:
  employee_of: {description: the person works for the organization, head: PERSON, tail: ORG,
                template: "{head} works for {tail}"}
""")
    doc = {"id": "d", "text": "Dana Scott works for Umbrella Corp.",
           "entities": [{"start": 0, "end": 10, "type": "PERSON"}, {"start": 21, "end": 34, "type": "ORG"}]}
    env = {**os.environ, "OPENAI_BASE_URL": llm_base_url, "FSRE_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-m", "fsre_cli", "extract", "-", "--schema", str(schema), "--min-score", "0"],
                         input=json.dumps(doc), capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["head"]["text"], r["tail"]["text"], r["method"]) for r in records] == [("Dana Scott", "Umbrella Corp", "qa4re")]
