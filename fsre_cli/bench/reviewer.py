"""A simulated reviewer: what `fsre review` would teach a model if a person with the gold labels
decided the first N triples the loop shows.

The review goes through the product's own path: the scored triples in the output record shape,
`review.order_triples` (uncertain first, nearest the model's threshold, as `fsre review` orders
them), one `review.decision_record` per decision, checked by `review.parse_decision` against the
schema, and the decisions handed to training as `Schema.review` (what loading `NAME.review.jsonl`
beside the schema gives). The gold decides as a careful person would:

- accept: the gold holds the pair with the predicted relation;
- relation: the gold holds the pair with another relation whose types fit the pair;
- reject: otherwise (the pair holds no relation, or only one the schema cannot take here).

The reviewed triples are test pairs, so the reviewed model is also scored on the test sentences
that held no reviewed triple (`without_docs`): that figure says whether the corrections
generalise, where the whole test set says what a user who reviews and re-extracts gets.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Sequence

from fsre_cli.schema import Schema

FIXED_TIME = "2026-01-01T00:00:00Z"  # decisions carry a time stamp; a fixed one keeps runs identical


def review_records(test, predictions, min_score: float | None = None) -> list[dict[str, Any]]:
    """The predicted triples as `fsre extract` writes them (one sentence per benchmark document,
    so its offsets are the sentence's), with the sentence as evidence. With `min_score`, as
    `fsre extract --min-score` writes them: each pair's best relation when its score reaches it,
    NOTA decisions included."""
    from fsre_cli.pipeline import decide

    out = []
    for c, p in zip(test.candidates, predictions):
        decision = decide(p, min_score)
        if decision is None:
            continue
        relation, score = decision
        out.append({"doc": c.sentence.doc_id, "sentence": 0, "relation": relation,
                    "head": c.head.output_record(), "tail": c.tail.output_record(), "score": score,
                    "evidence": c.sentence.text})
    return out


def gold_relations(gold: Sequence[dict[str, Any]]) -> dict[tuple, list[str]]:
    """`review.triple_key` of a pair -> the gold relations of that ordered pair."""
    from fsre_cli.review import triple_key

    out: dict[tuple, list[str]] = {}
    for g in gold:
        out.setdefault(triple_key(g), []).append(g["relation"])
    return out


def simulate_review(schema: Schema, scorer, test, budget: int, below_threshold: bool = False
                    ) -> tuple[Schema, dict[str, Any]]:
    """`schema` with the decisions of a gold-label reviewer on the first `budget` triples
    `fsre review` would show for `scorer`'s predictions on `test`, and what was decided.
    `below_threshold`: the reviewer is shown every pair's best relation (`fsre extract
    --min-score 0 | fsre review --threshold T`), so the pairs nearest the threshold on either
    side come first and a missed triple can be accepted too."""
    from fsre_cli.review import decision_record, order_triples, parse_decision, triple_key

    predictions = scorer.predict(test.candidates)
    records = review_records(test, predictions, 0.0 if below_threshold else None)
    ordered = order_triples(records, "uncertain", getattr(scorer, "threshold", None))
    gold = gold_relations(test.gold)
    decisions, counts, docs = [], Counter(), set()
    for triple in ordered:
        if len(decisions) >= budget:
            break
        truth = gold.get(triple_key(triple), [])
        fitting = [r for r in truth if r in schema.relations
                   and triple["head"]["type"] in schema.relations[r].head_types
                   and triple["tail"]["type"] in schema.relations[r].tail_types]
        if triple["relation"] in truth:
            decision, relation = "accept", triple["relation"]
        elif fitting:
            decision, relation = "relation", fitting[0]
        else:
            decision, relation = "reject", triple["relation"]
        record = decision_record(triple, decision, relation, now=FIXED_TIME)
        if record is None:  # evidence that does not hold the pair: the loop skips it too
            continue
        decisions.append(parse_decision(record, schema.relations))
        counts[decision] += 1
        docs.add(str(triple["doc"]))
    info = {"budget": budget, "reviewed": len(decisions), "accept": counts["accept"],
            "reject": counts["reject"], "relation": counts["relation"], "sentences": len(docs),
            "emitted": sum(p.relation is not None for p in predictions), "shown": len(records),
            "below_threshold": below_threshold}
    return dataclasses.replace(schema, review=list(schema.review) + decisions), info


def without_docs(test, docs: set[str]):
    """`test` without the sentences in `docs` (candidates and gold alike)."""
    return dataclasses.replace(
        test, sentences=[s for s in test.sentences if s.id not in docs],
        candidates=[c for c in test.candidates if c.sentence.doc_id not in docs],
        gold=[g for g in test.gold if str(g["doc"]) not in docs])


def reviewed_docs(schema: Schema) -> set[str]:
    """The documents the review decisions of `schema` name."""
    return {str(d.key[0]) for d in schema.review}
