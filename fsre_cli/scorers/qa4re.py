"""`qa4re`: zero-shot relation extraction as multiple-choice QA (QA4RE).

For a candidate pair the LLM sees the sentence with both entities marked and one
lettered statement per relation the pair's types allow (the relation's template
filled with the two mentions) plus a NOTA statement, and is asked which option
follows from the sentence. The answer is read from the log-probabilities of the
option letters when the endpoint returns them (the score of a triple is the
probability mass on its letter), else parsed from the generated text.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from typing import Any, Sequence

from fsre_cli.documents import Candidate
from fsre_cli.schema import Schema
from fsre_cli.scorers.base import Prediction, ScorerOptions

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
    decides_by_threshold = False

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

    def run_summary(self) -> dict[str, Any]:
        return {"llm_questions": self.calls}

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


def llm_client(options: ScorerOptions):
    """The injected client, else one for the configured endpoint (`OPENAI_BASE_URL`, `--llm-model`)."""
    if options.llm_client is not None:
        return options.llm_client
    from fsre_cli.llm.client import LLMClient, LLMConfig

    return LLMClient(LLMConfig.from_env(model=options.llm_model, use_cache=options.use_llm_cache))


def build(schema: Schema, sidecar, options: ScorerOptions) -> QA4REScorer:
    return QA4REScorer(schema, llm_client(options), seed=options.seed, log=options.log)
