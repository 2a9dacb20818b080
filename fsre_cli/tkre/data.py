"""Training instances for the classifier, NOTA negatives included.

Documents are mostly pairs with *no* schema relation, so the classifier must see
such pairs during training: reversed pairs, and pairs with other name-like spans
of the example sentences (typed so they would be real candidates). Spans joined
to the head or tail by a coordination ("Bill Gates and Paul Allen") are skipped:
they usually share the relation and would be false negatives.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from fsre_cli.spans import overlaps
from fsre_cli.schema import Example, Schema, Span
from fsre_cli.tkre.markers import PairSpec

NAME_LIKE = re.compile(
    r"\b(?:[A-Z][\w&'\-.]*[\w&]|[A-Z])(?:\s+(?:of|the|de|van|von|der|and|for|la|du)?\s*(?:[A-Z][\w&'\-.]*[\w&]|[A-Z]))*"
    r"|\b(?:1[5-9]|20)\d\d\b"
)
NOT_NAMES = {
    "The", "A", "An", "In", "On", "At", "It", "He", "She", "They", "We", "I", "This", "That", "These", "Those",
    "His", "Her", "Its", "Their", "After", "Before", "When", "While", "During", "Since", "As", "By", "For",
    "From", "With", "But", "And", "Or", "If", "Although", "Following", "Today", "Yesterday", "There", "Then",
    "Our", "Some", "Many", "Most", "Both", "Each", "Every", "One", "Two", "Three", "Later", "Earlier", "Also",
}
COORDINATION = re.compile(r"^\s*(?:,|,?\s+(?:and|or|&)|/)\s*$")


@dataclass(frozen=True)
class Instance:
    pair: PairSpec
    label: str | None  # None = NOTA
    group: str  # the sentence: instances of one sentence stay on one side of the split
    source: str = "schema"
    # A schema `negatives:` pair: it does not hold this relation, and may hold another one, so
    # training only pushes this relation's probability down (label is None).
    not_relation: str | None = None


def example_pair(ex: Example) -> PairSpec:
    return PairSpec(ex.text, ex.head.start, ex.head.end, ex.head.type, ex.tail.start, ex.tail.end, ex.tail.type)


def name_like_spans(text: str) -> list[tuple[int, int]]:
    """Capitalised spans and years: a cheap stand-in for the other entities of a sentence."""
    spans = []
    for m in NAME_LIKE.finditer(text):
        s, e = m.start(), m.end()
        word = m.group(0)
        if word in NOT_NAMES or (s == 0 and " " not in word):
            continue  # a capitalised first word is usually just the start of the sentence
        first = word.split()[0]
        if first in NOT_NAMES and len(word.split()) > 1:
            s += len(first) + 1
        spans.append((s, e))
    return spans


def _coordinated(text: str, a: tuple[int, int], b: tuple[int, int]) -> bool:
    lo, hi = (a, b) if a[0] < b[0] else (b, a)
    return bool(COORDINATION.match(text[lo[1] : hi[0]]))


def negatives_for(ex: Example, schema: Schema, labelled: set[tuple[int, int, int, int]], rng: random.Random) -> list[Instance]:
    """NOTA instances from one example sentence; `labelled` holds the pairs that do carry a relation."""
    out: list[Instance] = []
    text = ex.text
    h, t = (ex.head.start, ex.head.end), (ex.tail.start, ex.tail.end)
    if (t + h) not in labelled and schema.relations_for(ex.tail.type, ex.head.type):
        out.append(Instance(PairSpec(text, *t, ex.tail.type, *h, ex.head.type), None, text, ex.source))
    for span in name_like_spans(text):
        if overlaps(*span, *h) or overlaps(*span, *t):
            continue
        for anchor, anchor_type, anchor_is_head in ((h, ex.head.type, True), (t, ex.tail.type, False)):
            if _coordinated(text, span, t if anchor_is_head else h):
                continue  # "founded by Gates and Allen": Allen likely shares the relation
            if anchor_is_head:
                types = [ty for ty in schema.entity_types if schema.relations_for(anchor_type, ty)]
            else:
                types = [ty for ty in schema.entity_types if schema.relations_for(ty, anchor_type)]
            if not types:
                continue
            other_type = rng.choice(sorted(types))
            key = (anchor + span) if anchor_is_head else (span + anchor)
            if key in labelled:
                continue
            if anchor_is_head:
                pair = PairSpec(text, *anchor, anchor_type, *span, other_type)
            else:
                pair = PairSpec(text, *span, other_type, *anchor, anchor_type)
            out.append(Instance(pair, None, text, ex.source))
    return out


def context_swap_negative(ex: Example, schema: Schema, rng: random.Random) -> Instance | None:
    """The example's pair re-typed so that its own relation is not allowed but another one is:
    the context then expresses no relation the types admit, which is NOTA. Such negatives
    exist for every schema with two or more type signatures, even when the example
    sentences hold no other entities."""
    options = [
        (h, t)
        for h in schema.entity_types
        for t in schema.entity_types
        if (h, t) != (ex.head.type, ex.tail.type)
        and schema.relations_for(h, t)
        and ex.relation not in schema.relations_for(h, t)
    ]
    if not options:
        return None
    h, t = rng.choice(sorted(options))
    pair = PairSpec(ex.text, ex.head.start, ex.head.end, h, ex.tail.start, ex.tail.end, t)
    return Instance(pair, None, ex.text, ex.source)


def known_mention_negatives(ex: Example, schema: Schema, mentions: Sequence[Span],
                            labelled: set[tuple[int, int, int, int]]) -> list[Instance]:
    """Every other ordered pair of the sentence's known, typed mentions that some relation
    admits and that carries no labelled relation."""
    out = []
    for a in mentions:
        for b in mentions:
            if a is b or a.overlaps(b):
                continue
            if (a.start, a.end, b.start, b.end) in labelled or not schema.relations_for(a.type, b.type):
                continue
            out.append(Instance(PairSpec(ex.text, a.start, a.end, a.type, b.start, b.end, b.type), None, ex.text, ex.source))
    return out


def with_labelled_spans(mentions: Sequence[Span], labelled: Sequence[Span]) -> list[Span]:
    """The example's own head and tail spans, plus the known mentions that overlap none of them.
    An NER mention such as "Apple Inc." around a labelled "Apple" would otherwise pair up as a
    NOTA copy of a positive pair."""
    own = list({(s.start, s.end): s for s in labelled}.values())
    return own + [m for m in mentions if not any(m.overlaps(s) for s in own)]


def schema_entities(examples: Iterable[Example]) -> dict[str, list[Span]]:
    """Sentence text -> the entities the schema lists for it (`entities:` of any of its examples,
    with every example's head and tail of that sentence). Only sentences that list them."""
    examples = list(examples)
    listed = {e.text for e in examples if e.entities is not None}
    out: dict[str, dict[tuple[int, int], Span]] = {}
    for e in examples:
        if e.text in listed:
            spans = out.setdefault(e.text, {})
            for span in (e.head, e.tail, *(e.entities or ())):
                spans.setdefault((span.start, span.end), span)
    return {text: list(spans.values()) for text, spans in out.items()}


def reversed_negative(ex: Example, schema: Schema, labelled: set[tuple[int, int, int, int]]) -> Instance | None:
    """The example's own pair the other way round, when its types admit a relation and no example
    labels it: the commonest error of a few-shot model ("acquired" read backwards)."""
    h, t = (ex.head.start, ex.head.end), (ex.tail.start, ex.tail.end)
    if (t + h) in labelled or not schema.relations_for(ex.tail.type, ex.head.type):
        return None
    return Instance(PairSpec(ex.text, *t, ex.tail.type, *h, ex.head.type), None, ex.text, ex.source)


def statement_instances(examples: Iterable[Example], schema: Schema) -> list[Instance]:
    """Each example's relation stated plainly with its own head and tail ("Frida Kahlo was born
    in Coyoacán."), from the relation's template: what the user wrote about the relation becomes
    one more positive per example, in the example's group (same side of the held-out split)."""
    out = []
    for ex in examples:
        rel = schema.relations.get(ex.relation)
        if rel is None or ex.head.text == ex.tail.text:
            continue
        text = rel.statement(ex.head.text, ex.tail.text).rstrip(".") + "."
        pair = explanation_pair(text, ex.head.text, ex.tail.text, ex.head.type, ex.tail.type)
        if pair is not None:
            out.append(Instance(pair, ex.relation, ex.text, "statement"))
    return out


def annotated_nota(sentences: Sequence, schema: Schema, seed: int, per_sentence: int | None) -> list[Instance]:
    """NOTA pairs of the `data:` sentences that carry no triple (the sentences with triples give
    theirs through their examples' `entities`): at most `per_sentence` of each, seeded."""
    rng = random.Random(f"annotated/{seed}")
    out: list[Instance] = []
    for s in sentences:
        if s.triples:
            continue
        pairs = [Instance(PairSpec(s.text, a.start, a.end, a.type, b.start, b.end, b.type), None, s.text, "data")
                 for a in s.entities for b in s.entities
                 if a is not b and not a.overlaps(b) and schema.relations_for(a.type, b.type)]
        if per_sentence is not None and len(pairs) > per_sentence:
            pairs = rng.sample(pairs, per_sentence)
        out += pairs
    return out


def relation_negatives(negatives: Iterable[Example]) -> list[Instance]:
    """The schema's `negatives:`: pairs that do not hold the relation they are listed under."""
    return [Instance(example_pair(n), None, n.text, "negative", not_relation=n.relation) for n in negatives]


def build_instances(examples: Iterable[Example], schema: Schema, seed: int = 0,
                    mentions: Mapping[str, Sequence[Span]] | None = None,
                    negatives_per_example: int | None = 4) -> list[Instance]:
    """Positives for every example and NOTA negatives: the example's pair reversed, other pairs
    of the same sentences, and each example's pair re-typed for a relation its context does not
    express. A sentence's entities are the schema's `entities:` when it lists them, else
    `mentions` (sentence text -> typed spans, from NER) when known, else name-like spans. At most
    `negatives_per_example` other in-sentence pairs are sampled per example: crowded sentences
    would otherwise swamp the positives and the training time. (The schema's relation
    `negatives:` are `relation_negatives`, kept apart: they only train, never calibrate.)"""
    rng = random.Random(seed)
    examples = list(examples)
    mentions = {**(mentions or {}), **schema_entities(examples)}
    labelled_by_text: dict[str, set[tuple[int, int, int, int]]] = {}
    for ex in examples:
        labelled_by_text.setdefault(ex.text, set()).add((ex.head.start, ex.head.end, ex.tail.start, ex.tail.end))
    instances = [Instance(example_pair(ex), ex.relation, ex.text, ex.source) for ex in examples]
    labelled_spans: dict[str, list[Span]] = {}
    for ex in examples:
        labelled_spans.setdefault(ex.text, []).extend([ex.head, ex.tail])
    seen_neg: set[tuple] = set()
    for ex in examples:
        swapped = context_swap_negative(ex, schema, rng)
        backwards = reversed_negative(ex, schema, labelled_by_text[ex.text])
        known = mentions.get(ex.text)
        if known is not None:
            known = with_labelled_spans(known, labelled_spans[ex.text])
        if known is not None:
            in_sentence = known_mention_negatives(ex, schema, known, labelled_by_text[ex.text])
        else:
            in_sentence = negatives_for(ex, schema, labelled_by_text[ex.text], rng)
        if backwards is not None:
            in_sentence = [n for n in in_sentence if n.pair != backwards.pair]
        if negatives_per_example is not None and len(in_sentence) > negatives_per_example:
            in_sentence = rng.sample(in_sentence, negatives_per_example)
        for neg in ([backwards] if backwards else []) + in_sentence + ([swapped] if swapped else []):
            key = (neg.pair.text, neg.pair.head_start, neg.pair.head_end, neg.pair.tail_start, neg.pair.tail_end)
            if key not in seen_neg:
                seen_neg.add(key)
                instances.append(neg)
    return instances


def nota_weights(instances: Sequence[Instance], per_example: int) -> list[float]:
    """Loss weights for packed training, where every NOTA pair of a sentence trains: a sentence's
    NOTA pairs together weigh at most what per-pair training samples for it (`per_example` + 2
    per positive: the sampled pairs, the reversed one, the re-typed one), so a crowded sentence
    does not drown its few positives. Positives and "not R" pairs weigh 1."""
    positives: dict[str, int] = {}
    nota: dict[str, int] = {}
    for i in instances:
        if i.label is not None:
            positives[i.group] = positives.get(i.group, 0) + 1
        elif i.not_relation is None:
            nota[i.group] = nota.get(i.group, 0) + 1
    weights = []
    for i in instances:
        if i.label is not None or i.not_relation is not None:
            weights.append(1.0)
        else:
            cap = (per_example + 2) * max(1, positives.get(i.group, 0))
            weights.append(min(1.0, cap / nota[i.group]))
    return weights


def split_heldout(instances: list[Instance], fraction: float, seed: int,
                  train_only: Iterable[str] = ()) -> tuple[list[Instance], list[Instance]]:
    """Hold out whole sentences, stratified by relation, so every relation keeps most of its
    examples; relations with fewer than 3 sentences keep all of them for training. A fraction of 0
    holds out nothing (every example trains; the threshold is then 0.5, or use `--decision nota`).
    Sentences in `train_only` are never held out and do not count toward a relation's slice."""
    if fraction <= 0:
        return list(instances), []
    rng = random.Random(seed)
    train_only = set(train_only)
    groups_by_relation: dict[str, list[str]] = {}
    for inst in instances:
        if inst.group in train_only:
            continue
        if inst.label is not None and inst.group not in groups_by_relation.get(inst.label, []):
            groups_by_relation.setdefault(inst.label, []).append(inst.group)
    held: set[str] = set()
    for relation in sorted(groups_by_relation):
        groups = [g for g in groups_by_relation[relation] if g not in held]
        if len(groups) < 3:
            continue
        rng.shuffle(groups)
        held.update(groups[: max(1, int(round(len(groups) * fraction)))])
    train = [i for i in instances if i.group not in held]
    heldout = [i for i in instances if i.group in held]
    return train, heldout


def crossfit_folds(instances: Sequence[Instance], folds: int, seed: int) -> list[set[str]]:
    """The example sentences (instance groups) dealt into `folds` folds, each sentence in exactly
    one: per relation (shuffled with `seed`), each sentence goes to the fold that holds the fewest
    of that relation so far (then the fewest sentences), so every fold sees every relation with
    enough sentences and training on the others keeps most of each relation's examples."""
    rng = random.Random(f"crossfit/{seed}")
    by_relation: dict[str, list[str]] = {}
    for inst in instances:
        if inst.label is not None and inst.group not in by_relation.setdefault(inst.label, []):
            by_relation[inst.label].append(inst.group)
    # sentences without a labelled pair last, as one more "relation"
    by_relation["\uffff"] = list(dict.fromkeys(i.group for i in instances))
    out: list[set[str]] = [set() for _ in range(folds)]
    assigned: set[str] = set()
    for relation in sorted(by_relation):
        groups = [g for g in by_relation[relation] if g not in assigned]
        rng.shuffle(groups)
        count = [0] * folds
        for group in groups:
            f = min(range(folds), key=lambda i: (count[i], len(out[i]), i))
            out[f].add(group)
            count[f] += 1
            assigned.add(group)
    return out


def span_of(text: str, needle: str) -> tuple[int, int] | None:
    i = text.find(needle)
    return None if i < 0 else (i, i + len(needle))


def explanation_pair(text: str, head: str, tail: str, head_type: str, tail_type: str) -> PairSpec | None:
    """Mark an explanation's head and tail mentions when both occur in it."""
    hs, ts = span_of(text, head), span_of(text, tail)
    if hs is None or ts is None or overlaps(*hs, *ts):
        return None
    return PairSpec(text, *hs, head_type, *ts, tail_type)


def as_span(text: str, start: int, end: int, etype: str) -> Span:
    return Span(start, end, etype, text[start:end])
