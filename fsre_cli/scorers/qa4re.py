"""Zero-shot relation extraction as multiple-choice QA (QA4RE), and the encoder/LLM cascade.

For a candidate pair the LLM sees the sentence with both entities marked and one
lettered statement per relation the pair's types allow (the relation's template
filled with the two mentions) plus a NOTA statement, and is asked which option
follows from the sentence. The answer is read from the log-probabilities of the
option letters when the endpoint returns them (the score of a triple is the
probability mass on its letter), else parsed from the generated text.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import re
from dataclasses import dataclass
from typing import Sequence

from fsre_cli.documents import Candidate
from fsre_cli.schema import Schema
from fsre_cli.scorers.base import Prediction

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
NOTA_TEMPLATE = "{head} has no known relation to {tail}"
INSTRUCTION = "Determine which option can be inferred from the given sentence."


@dataclass(frozen=True)
class Question:
    prompt: str
    options: list[tuple[str, str | None]]  # (statement, relation or None for NOTA), in letter order

    @property
    def letters(self) -> str:
        return LETTERS[: len(self.options)]


def build_question(schema: Schema, candidate: Candidate, seed: int = 0) -> Question | None:
    """The multiple-choice question for a pair; None when only NOTA would remain."""
    relations = [r for r in candidate.relations if r in schema.relations]
    if not relations:
        return None
    head, tail = candidate.head.text, candidate.tail.text
    options: list[tuple[str, str | None]] = [(schema.relations[r].statement(head, tail), r) for r in relations]
    options.append((NOTA_TEMPLATE.format(head=head, tail=tail), None))
    rng = random.Random(_question_seed(candidate, seed))
    rng.shuffle(options)  # position bias averages out; fixed per question, so runs repeat
    sentence = _marked_sentence(candidate)
    lines = [INSTRUCTION, "", f"Sentence: {sentence}", "", "Options:"]
    lines += [f"{LETTERS[i]}. {statement}" for i, (statement, _) in enumerate(options)]
    lines += ["", "Which option can be inferred from the given sentence? Answer with the letter only.", "Option:"]
    return Question("\n".join(lines), options)


def _marked_sentence(c: Candidate) -> str:
    text, base = c.sentence.text, c.sentence.start
    spans = sorted([(c.head.start - base, c.head.end - base), (c.tail.start - base, c.tail.end - base)])
    out, cursor = [], 0
    for s, e in spans:
        out += [text[cursor:s], "[", text[s:e], "]"]
        cursor = e
    out.append(text[cursor:])
    return "".join(out)


def _question_seed(c: Candidate, seed: int) -> int:
    key = f"{seed}|{c.sentence.text}|{c.head.start}:{c.head.end}|{c.tail.start}:{c.tail.end}"
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16)


def letter_probabilities(top_logprobs: dict[str, float] | None, letters: str) -> dict[str, float] | None:
    """Probability of each option letter from the first token's top log-probabilities
    (tokens like 'A', ' A', 'A.' count for A), renormalised over the letters; None when
    no letter is among them."""
    if not top_logprobs:
        return None
    mass = {letter: 0.0 for letter in letters}
    for token, logprob in top_logprobs.items():
        m = re.fullmatch(r"\s*\(?([A-Z])[\).:]?\s*", token)
        if m and m.group(1) in mass:
            mass[m.group(1)] += math.exp(logprob)
    total = sum(mass.values())
    if total <= 0:
        return None
    return {k: v / total for k, v in mass.items()}


def parse_answer(text: str, question: Question) -> str | None:
    """The letter a generated answer names: a leading letter, 'Option B', or an option's text."""
    stripped = text.strip()
    m = re.match(r"^(?:option\s*)?\(?([A-Z])(?:[\).:,\s]|$)", stripped, flags=re.IGNORECASE)
    if m and m.group(1).upper() in question.letters:
        return m.group(1).upper()
    lowered = stripped.lower()
    for letter, (statement, _) in zip(question.letters, question.options):
        if statement.lower() in lowered:
            return letter
    return None


class QA4REScorer:
    """Asks the LLM one multiple-choice question per candidate pair (cached, concurrent)."""

    method = "qa4re"

    def __init__(self, schema: Schema, client, *, seed: int = 0, top_logprobs: int = 20, log=None) -> None:
        self.schema = schema
        self.client = client
        self.seed = seed
        self.top_logprobs = top_logprobs
        self.log = log
        self.calls = 0
        self.skipped = 0

    def predict(self, candidates: Sequence[Candidate]) -> list[Prediction]:
        from fsre_cli.llm.client import ChatRequest

        questions = [build_question(self.schema, c, self.seed) for c in candidates]
        asked = [i for i, q in enumerate(questions) if q is not None]
        self.skipped += len(candidates) - len(asked)
        requests = [
            ChatRequest(messages=[{"role": "user", "content": questions[i].prompt}], temperature=0.0,
                        max_tokens=4, top_logprobs=self.top_logprobs)
            for i in asked
        ]
        self.calls += len(requests)
        if not requests:
            results = []
        elif self.log is not None:
            with self.log.progress("asking the LLM", total=len(requests)) as bar:
                results = self.client.chat_many(requests, progress=bar.advance)
        else:
            results = self.client.chat_many(requests)
        out = [Prediction(None, 0.0, None, 0.0) for _ in candidates]
        for i, result in zip(asked, results):
            out[i] = self.decide(questions[i], result.text, result.top_logprobs)
        return out

    @staticmethod
    def decide(question: Question, text: str, top_logprobs: list[dict[str, float]] | None) -> Prediction:
        probs = letter_probabilities(top_logprobs[0] if top_logprobs else None, question.letters)
        if probs is None:  # no usable log-probabilities: parse the text, all mass on that letter
            letter = parse_answer(text, question)
            probs = {k: float(k == letter) for k in question.letters}
        relation_of = {letter: rel for letter, (_, rel) in zip(question.letters, question.options)}
        chosen = max(probs, key=lambda k: probs[k])
        relation_letters = [k for k in question.letters if relation_of[k] is not None]
        best = max(relation_letters, key=lambda k: probs[k])
        if probs[chosen] == 0:  # nothing parsed: NOTA
            return Prediction(None, 0.0, relation_of[best], 0.0)
        decided = relation_of[chosen]
        return Prediction(decided, probs[chosen] if decided else probs[best], relation_of[best], probs[best])


DEFAULT_ROUTE_FRACTION = 0.15


class CascadeScorer:
    """The encoder scores every pair; pairs whose score falls inside the uncertainty band
    go to QA4RE, whose answer decides. Near-encoder speed, LLM judgement where it matters.

    Without an explicit band, the band is calibrated on the encoder's held-out scores so that
    about `route_fraction` of pairs fall inside it (see `calibrated_band`)."""

    method = "cascade"

    def __init__(self, encoder_scorer, qa_scorer: QA4REScorer, band: tuple[float, float] | None = None,
                 route_fraction: float = DEFAULT_ROUTE_FRACTION) -> None:
        self.encoder_scorer = encoder_scorer
        self.qa_scorer = qa_scorer
        threshold = float(getattr(encoder_scorer, "threshold", 0.5))
        heldout = list(getattr(encoder_scorer, "heldout_scores", None) or [])
        if band is not None:
            self.band, self.band_source = (float(band[0]), float(band[1])), "given"
        elif heldout:
            self.band = calibrated_band(heldout, threshold, route_fraction)
            self.band_source = f"calibrated to route about {route_fraction:.0%} of {len(heldout)} held-out pairs"
        else:
            self.band = default_band(threshold)
            self.band_source = "the threshold ± 0.1 (the model has no held-out scores to calibrate on)"
        self.routed = 0
        self.total = 0

    def predict(self, candidates: Sequence[Candidate]) -> list[Prediction]:
        predictions = self.encoder_scorer.predict(candidates)
        low, high = self.band
        unsure = [i for i, p in enumerate(predictions) if low <= p.best_score <= high]
        self.total += len(candidates)
        self.routed += len(unsure)
        if unsure:
            answers = self.qa_scorer.predict([candidates[i] for i in unsure])
            for i, answer in zip(unsure, answers):
                predictions[i] = answer
        return predictions


def default_band(threshold: float, width: float = 0.1) -> tuple[float, float]:
    """Centred on the encoder's calibrated threshold: the scores where it is least sure.
    Only a fallback: a fixed width routes almost every pair when the scores are bunched
    (21-way softmaxes put most best-relation scores within 0.2 of a low threshold)."""
    return max(0.0, threshold - width), min(1.0, threshold + width)


def calibrated_band(scores: Sequence[float], threshold: float,
                    fraction: float = DEFAULT_ROUTE_FRACTION) -> tuple[float, float]:
    """The band of the `fraction` of held-out scores nearest the threshold in rank, split evenly
    above and below it where the scores allow; it always contains the threshold.

    Ranks rather than a score width, because how bunched the scores are depends on the number of
    relations and on training; ranks make the LLM's share of the work (its cost) predictable."""
    if not 0 < fraction <= 1:
        raise ValueError(f"route fraction must be in (0, 1], not {fraction}")
    ordered = sorted(float(s) for s in scores)
    if not ordered:
        return default_band(threshold)
    n = len(ordered)
    k = max(1, math.ceil(fraction * n))
    below = bisect.bisect_left(ordered, threshold)
    lo = min(max(0, below - k // 2), n - k)
    return min(ordered[lo], threshold), max(ordered[lo + k - 1], threshold)
