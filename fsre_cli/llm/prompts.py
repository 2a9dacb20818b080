"""Prompts for synthetic examples (SCDG) and explanations (EDKG), kept apart from the logic
so they can be read and tuned in one place. Short and concrete: the default model has 135M
parameters, and every answer is filtered afterwards anyway."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Sequence

from fsre_cli.schema import Example, Relation

Messages = list[dict[str, str]]

SYNTH_SYSTEM = (
    "You write training data for relation extraction. "
    "Answer with JSON only, no explanations."
)

EXPLAIN_SYSTEM = "You explain, in one or two plain sentences, how a sentence expresses a relation between two entities."


def prompt_hash(messages: Messages) -> str:
    """A short, stable id of the exact prompt, stored with each sidecar line for review."""
    data = json.dumps(messages, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


def relation_meaning(rel: Relation) -> str:
    return rel.description or rel.name.replace("_", " ")


def example_json(ex: Example) -> str:
    return json.dumps(
        {"head": ex.head.text, "head_type": ex.head.type, "tail": ex.tail.text, "tail_type": ex.tail.type, "text": ex.text},
        ensure_ascii=False,
    )


def synth_schema(rel: Relation, n: int) -> dict[str, Any]:
    """The JSON schema of a generation: {"examples": [{head, head_type, tail, tail_type, text}]}.

    Names come before the sentence so that a grammar-constrained model (llama.cpp
    follows the property order) picks the entities first and then writes a
    sentence about them, rather than forgetting what it wrote. Type enums,
    lengths and maxItems are enforced by such servers too."""
    item = {
        "type": "object",
        "properties": {
            "head": {"type": "string", "minLength": 2, "maxLength": 60},
            "head_type": {"type": "string", "enum": list(rel.head_types)},
            "tail": {"type": "string", "minLength": 2, "maxLength": 60},
            "tail_type": {"type": "string", "enum": list(rel.tail_types)},
            "text": {"type": "string", "minLength": 20, "maxLength": 300},
        },
        "required": ["head", "head_type", "tail", "tail_type", "text"],
    }
    return {
        "type": "object",
        "properties": {"examples": {"type": "array", "items": item, "minItems": 1, "maxItems": n}},
        "required": ["examples"],
    }


def synth_messages(rel: Relation, n: int, avoid: Sequence[str] = (), max_shown: int = 4) -> Messages:
    """Ask for `n` new examples of `rel`; `avoid` lists sentences already kept (later rounds).

    At most `max_shown` real examples go into the prompt: on a CPU the prompt's
    length, not the answer's, dominates the time of a small local model.
    """
    lines = [
        f"Relation: {rel.name} ({relation_meaning(rel)})",
        f"head: a {' or '.join(rel.head_types)} named in the text; tail: a {' or '.join(rel.tail_types)} named in the text.",
    ]
    if rel.examples:
        lines.append("Examples:")
        lines += [example_json(ex) for ex in rel.examples[:max_shown]]
    if avoid:
        lines.append("Already written (do not repeat):")
        lines += [f"- {t}" for t in list(avoid)[:8]]
    lines.append(
        f"Write {n} new examples: first choose a new head and tail, then one full sentence that "
        f'says {rel.statement("the head", "the tail")} and contains both names exactly. '
        'Answer as {"examples": [...]}.'
    )
    return [{"role": "system", "content": SYNTH_SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def explain_messages(rel: Relation, ex: Example) -> Messages:
    """Ask why `ex.head` has `rel` with `ex.tail` in `ex.text`."""
    user = (
        f'Sentence: "{ex.text}"\n'
        f'Relation "{rel.name}": {relation_meaning(rel)}.\n'
        f'Explain why "{ex.head.text}" has the relation "{rel.name}" with "{ex.tail.text}" in this sentence. '
        f'Name both "{ex.head.text}" and "{ex.tail.text}" in your answer.'
    )
    return [{"role": "system", "content": EXPLAIN_SYSTEM}, {"role": "user", "content": user}]
