"""A shipped schema on real text: `schemas/org-people.yaml`, as shipped, over Re-DocRED's dev
sentences with their gold entities, scored on the relations that map to Wikidata properties.

This is what a user gets who takes the schema off the shelf and runs it over Wikipedia prose:
no K-shot sampling, no tuning, the schema's own examples and nothing else.

Protocol:

* sentences: every Re-DocRED dev sentence with at least two entities of the schema's types (gold
  PER, ORG and LOC mentions, read as PERSON, ORG and PLACE; an entity mentioned twice in a
  sentence is its first mention there); candidates are every ordered pair the schema's types
  allow, as `fsre extract --entities given` makes them;
* gold: a document triple whose Wikidata property maps to a schema relation (`WIKIDATA`, some
  reversed) counts in a sentence that mentions both entities *and* is one of the triple's
  evidence sentences;
* not scored: a pair whose mapped relation holds in the document but whose sentence is no
  evidence for it (the sentence may or may not say it), and any prediction of a relation with
  no Wikidata property (`acquired`): neither side counts them;
* every other candidate pair is NOTA.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from fsre_cli.bench.common import environment, subsample
from fsre_cli.bench.datasets import _read_json, tokens_to_text
from fsre_cli.candidates import candidate_pairs
from fsre_cli.console import NULL_LOG, Log
from fsre_cli.documents import Mention, Sentence
from fsre_cli.errors import UsageError
from fsre_cli.evaluation import error_kinds, reliability, score_triples, triple_key

# schema relation -> [(Wikidata pid, reversed)]: reversed when the property's subject is the relation's tail
WIKIDATA: dict[str, list[tuple[str, bool]]] = {
    "founded_by": [("P112", False)],  # founded by: organisation -> founder
    "employee_of": [("P108", False)],  # employer: person -> organisation
    "ceo_of": [("P169", True)],  # chief executive officer: organisation -> person
    "headquartered_in": [("P159", False)],  # headquarters location: organisation -> place
    "born_in": [("P19", False)],  # place of birth: person -> place
    "subsidiary_of": [("P749", False), ("P355", True)],  # parent organization; subsidiary (parent -> child)
}
REDOCRED_TYPES = {"PER": "PERSON", "ORG": "ORG", "LOC": "PLACE"}


def load_sentences(path: str | Path, mapping: Mapping[str, list[tuple[str, bool]]] = WIKIDATA,
                   types: Mapping[str, str] = REDOCRED_TYPES) -> tuple[list[Sentence], list[dict], set[tuple]]:
    """Sentences (gold mentions as schema types), gold triples (the output record shape), and the
    pairs left out of scoring (`(doc, head start, head end, tail start, tail end)`)."""
    docs = _read_json(path)
    if not isinstance(docs, list):
        raise UsageError(f"{path}: expected a list of Re-DocRED documents")
    by_pid: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for relation, props in mapping.items():
        for pid, backwards in props:
            by_pid[pid].append((relation, backwards))
    sentences: list[Sentence] = []
    gold: list[dict] = []
    unscored: set[tuple] = set()
    for di, d in enumerate(docs):
        try:
            first: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
            for ei, ent in enumerate(d["vertexSet"]):
                for m in sorted(ent, key=lambda m: (m["sent_id"], m["pos"][0])):
                    if m["type"] in types:
                        first[ei].setdefault(m["sent_id"], m)
            in_sentence: dict[int, list[int]] = defaultdict(list)
            for ei, ms in first.items():
                for sid in ms:
                    in_sentence[sid].append(ei)
            facts: dict[int, list[tuple[int, int, str, set[int]]]] = defaultdict(list)
            for lab in d.get("labels", []):
                for relation, backwards in by_pid.get(str(lab["r"]), []):
                    h, t = (lab["t"], lab["h"]) if backwards else (lab["h"], lab["t"])
                    facts[h].append((h, t, relation, set(lab.get("evidence") or [])))
            for sid in sorted(in_sentence):
                ents = sorted(in_sentence[sid], key=lambda e: (first[e][sid]["pos"][0], e))
                if len(ents) < 2:
                    continue
                text, offsets = tokens_to_text(d["sents"][sid])
                doc_id = f"redocred-{di}-{sid}"
                spans: dict[int, Mention] = {}
                for e in ents:
                    m = first[e][sid]
                    start, end = offsets[m["pos"][0]][0], offsets[m["pos"][1] - 1][1]
                    spans[e] = Mention(start, end, types[m["type"]], text[start:end], m["type"])
                sentences.append(Sentence(doc_id, 0, 0, len(text), text, [spans[e] for e in ents]))
                for h in ents:
                    for h_, t, relation, evidence in facts.get(h, []):
                        if t not in spans or t == h:
                            continue
                        a, b = spans[h], spans[t]
                        if sid in evidence:
                            gold.append({"doc": doc_id, "sentence": 0, "relation": relation,
                                         "head": a.output_record(), "tail": b.output_record()})
                        else:
                            unscored.add((doc_id, a.start, a.end, b.start, b.end))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise UsageError(f"{path}: document {di}: malformed Re-DocRED document ({exc!r})") from None
    # P749 A->B and P355 B->A state one subsidiary_of triple: count it once
    gold = list({(g["doc"], g["relation"], g["head"]["start"], g["head"]["end"], g["tail"]["start"],
                  g["tail"]["end"]): g for g in gold}.values())
    scored_pairs = {(g["doc"], g["head"]["start"], g["head"]["end"], g["tail"]["start"], g["tail"]["end"]) for g in gold}
    unscored -= scored_pairs  # evidence for the pair in this sentence: it is scored
    return sentences, gold, unscored


def precision_at_recall(scored: Sequence[tuple[float, bool]], n_gold: int, min_recall: float) -> float | None:
    """The best precision of any threshold whose recall reaches `min_recall` (None: none does)."""
    ranked = sorted(scored, key=lambda x: -x[0])
    best, hits = None, 0
    for i, (score, right) in enumerate(ranked):
        hits += bool(right)
        if i + 1 < len(ranked) and ranked[i + 1][0] == score:
            continue
        if n_gold and hits / n_gold >= min_recall:
            p = hits / (i + 1)
            best = p if best is None else max(best, p)
    return best


def run_shipped(schema_path: str | Path = "schemas/org-people.yaml", *, data: str | Path | None = None,
                max_sentences: int | None = None, sample_seed: int = 0, model: str | None = None,
                device: str = "cpu", batch_size: int = 64, precision: str = "auto", decision: str = "threshold",
                top: int = 0, log: Log = NULL_LOG) -> dict[str, Any]:
    """Score a shipped schema's triples on Re-DocRED dev (see the module docstring)."""
    from fsre_cli.bench.common import data_file
    from fsre_cli.bench.labeled import prediction_records
    from fsre_cli.schema import load_schema
    from fsre_cli.scorers import ScorerOptions, build
    from fsre_cli.sidecar import read_sidecar

    started = time.perf_counter()
    schema = load_schema(schema_path)
    unknown = sorted(set(WIKIDATA) - set(schema.relations))
    if unknown:
        raise UsageError(f"{schema_path}: no relation {', '.join(unknown)}; this benchmark maps org-people's relations")
    path = data_file(data, "redocred", "dev_revised.json")
    sentences, gold, unscored = load_sentences(path)
    sentences = subsample(sentences, max_sentences, sample_seed)
    docs = {s.doc_id for s in sentences}
    gold = [g for g in gold if g["doc"] in docs]

    def key(c) -> tuple:
        return (c.sentence.doc_id, c.head.start, c.head.end, c.tail.start, c.tail.end)

    candidates = [c for s in sentences for c in candidate_pairs(s, schema) if key(c) not in unscored]
    log.info(f"{len(sentences)} sentences, {len(candidates)} candidate pairs, {len(gold)} gold triples "
             f"({len(unscored)} pairs not scored: their relation holds in the document, not as evidence here)")
    side = schema.sidecar_path
    sidecar = read_sidecar(side, schema) if side is not None and side.exists() else None
    options = ScorerOptions(model=model, device=device, batch_size=batch_size, precision=precision,
                            decision=decision, log=log)
    t0 = time.perf_counter()
    scorer = build(schema, sidecar, method="tkre", options=options)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    preds = scorer.predict(candidates)
    seconds = time.perf_counter() - t0
    mapped = set(WIKIDATA)
    records = [r for r in prediction_records(candidates, preds) if r["relation"] in mapped]
    best = [r for r in prediction_records(candidates, preds, best=True) if r["relation"] in mapped]
    report = score_triples(records, gold)
    gold_keys = {triple_key(g) for g in gold}

    def right(r: dict) -> bool:
        return triple_key(r) in gold_keys

    emitted = [(r["score"], right(r)) for r in records]
    ranked = [(r["score"], right(r)) for r in best]
    high = [ok for s, ok in emitted if s >= 0.9]
    micro = report.micro
    per_relation = {r: {"f1": round(v.f1, 4), "precision": round(v.precision, 4), "recall": round(v.recall, 4),
                        "predicted": v.n_pred, "gold": v.n_gold} for r, v in report.per_relation.items()}
    return {
        "benchmark": "shipped-schema-redocred",
        "schema": str(schema_path),
        "schema_hash": schema.content_hash(),
        "data": str(path),
        "decision": decision,
        "sentences": len(sentences),
        "candidates": len(candidates),
        "gold": len(gold),
        "unscored_pairs": len(unscored),
        "f1": round(micro.f1, 6), "precision": round(micro.precision, 6), "recall": round(micro.recall, 6),
        "predicted": micro.n_pred, "tp": micro.tp,
        "precision_at_recall_0.5": precision_at_recall(ranked, len(gold), 0.5),
        "emitted_at_0.9": {"triples": len(high), "right": round(sum(high) / len(high), 4) if high else None},
        "reliability": reliability(ranked).to_dict(),
        "errors": error_kinds(records, gold),
        "per_relation": per_relation,
        # the best-scored pairs with their sentences, to read what the errors are
        "top": [{"score": round(r["score"], 4), "right": right(r), "relation": r["relation"],
                 "head": r["head"]["text"], "tail": r["tail"]["text"], "doc": r["doc"]}
                for r in sorted(best, key=lambda r: -r["score"])[:top]],
        "threshold": getattr(scorer, "threshold", None),
        "model_setup_seconds": round(setup, 1),
        "pairs_per_second": round(len(candidates) / seconds, 1) if seconds > 0 else None,
        "seconds": round(time.perf_counter() - started, 1),
        "environment": environment(device),
    }
