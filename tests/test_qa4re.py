"""QA4RE questions, answer parsing against the real local server, and cascade routing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsre_cli.documents import Candidate, Mention, Sentence
from fsre_cli.schema import parse_schema
from fsre_cli.scorers.base import Prediction
from fsre_cli.scorers.cascade import CascadeScorer, calibrated_band
from fsre_cli.scorers.qa4re import NOTA_TEMPLATE, QA4REScorer, build_question, letter_probabilities, parse_answer

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
    h = Mention(10 + text.index(head), 10 + text.index(head) + len(head), head_type, head)
    t = Mention(10 + text.index(tail), 10 + text.index(tail) + len(tail), tail_type, tail)
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
    fallback = CascadeScorer(FixedScorer([]), qa)  # no held-out scores: threshold +- 0.1
    assert fallback.band == pytest.approx((0.4, 0.6)) and "no held-out" in fallback.band_source


def test_calibrated_band_holds_the_requested_share_of_heldout_scores_around_the_threshold() -> None:
    scores = [i / 100 for i in range(100)]  # 0.00 .. 0.99
    low, high = calibrated_band(scores, threshold=0.5, fraction=0.1)
    inside = [s for s in scores if low <= s <= high]
    assert len(inside) == 10 and low <= 0.5 <= high
    assert sum(s < 0.5 for s in inside) == 5  # split evenly around the threshold
    # a threshold above nearly every score: the window slides down but still reaches the threshold
    low, high = calibrated_band(scores, threshold=0.995, fraction=0.05)
    assert (low, high) == (0.95, 0.995)
    # bunched scores (a 21-way softmax): a fixed +-0.2 width would route every pair; the calibrated band routes 20%
    bunched = [0.05 + 0.001 * i for i in range(200)]
    low, high = calibrated_band(bunched, threshold=0.15, fraction=0.2)
    assert sum(low <= s <= high for s in bunched) == 40
    assert calibrated_band([], 0.3) == pytest.approx((0.2, 0.4))
    with pytest.raises(ValueError):
        calibrated_band(scores, 0.5, fraction=0)


class HeldoutScorer(FixedScorer):
    threshold = 0.5

    def __init__(self, scores: list[float], heldout: list[float]) -> None:
        super().__init__(scores)
        self.heldout_scores = heldout


def test_cascade_calibrates_its_band_on_the_encoders_heldout_scores() -> None:
    heldout = [i / 20 for i in range(20)]  # 0.00 .. 0.95
    cascade = CascadeScorer(HeldoutScorer([0.1, 0.48, 0.52, 0.9], heldout), RecordingQA(), route_fraction=0.2)
    assert cascade.band == pytest.approx((0.4, 0.55)) and "20% of 20 held-out pairs" in cascade.band_source
    pairs = [cand(f"P{i} Smith leads Acme{i}.", f"P{i} Smith", "PERSON", f"Acme{i}", "ORG") for i in range(4)]
    cascade.predict(pairs)
    assert cascade.routed == 2
    given = CascadeScorer(HeldoutScorer([], heldout), RecordingQA(), band=(0.1, 0.2))
    assert given.band == (0.1, 0.2) and given.band_source == "given"


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
