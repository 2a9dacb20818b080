"""documents -> sentences and mentions -> candidate pairs -> scorer -> triples.

Candidate pairs of many documents are scored together (`batch_pairs`), so the
encoder runs on full, length-sorted batches; results come back per document, in
input order, with offsets into the original document text. `flush_when` scores a
partial batch when the input pauses (a stream), so output keeps up with input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from fsre_cli.candidates import document_candidates
from fsre_cli.documents import Candidate, Document, Mention, Sentence, Triple
from fsre_cli.schema import Schema
from fsre_cli.scorers.base import PairScorer, Prediction


@dataclass
class ExtractStats:
    documents: int = 0
    sentences: int = 0
    mentions: int = 0
    candidates: int = 0
    triples: int = 0
    per_document: dict[str, int] = field(default_factory=dict)  # candidates per document


def decide(pred: Prediction, min_score: float | None) -> tuple[str, float] | None:
    """The scorer's own decision, or with `min_score` the best relation when its score reaches it."""
    if min_score is None:
        return (pred.relation, pred.score) if pred.relation is not None else None
    if pred.best is not None and pred.best_score >= min_score:
        return pred.best, pred.best_score
    return None


def _shift(m: Mention, offset: int) -> Mention:
    return m if offset == 0 else Mention(m.text, m.start + offset, m.end + offset, m.type, m.label)


def extract_triples(
    sentences_by_document: Iterable[tuple[Document, list[Sentence]]],
    schema: Schema,
    scorer: PairScorer,
    *,
    min_score: float | None = None,
    batch_pairs: int = 512,
    stats: ExtractStats | None = None,
    flush_when: Callable[[], bool] | None = None,
) -> Iterator[tuple[Document, list[Triple]]]:
    """Score every candidate pair; yield each document (or chunk) with its triples."""
    stats = stats if stats is not None else ExtractStats()
    sentence_base: dict[str, int] = {}
    pending: list[tuple[Document, int, list[Candidate]]] = []
    n_pending = 0

    def flush() -> Iterator[tuple[Document, list[Triple]]]:
        flat = [c for _, _, cands in pending for c in cands]
        predictions = scorer.predict(flat) if flat else []
        i = 0
        for doc, base, cands in pending:
            triples = []
            for cand, pred in zip(cands, predictions[i : i + len(cands)]):
                decision = decide(pred, min_score)
                if decision is None:
                    continue
                relation, score = decision
                triples.append(Triple(
                    doc=doc.id, sentence=base + cand.sentence.index, relation=relation,
                    head=_shift(cand.head, doc.offset), tail=_shift(cand.tail, doc.offset),
                    score=score, method=scorer.method, evidence=cand.sentence.text,
                ))
            i += len(cands)
            stats.triples += len(triples)
            yield doc, triples
        pending.clear()

    for doc, sentences in sentences_by_document:
        base = sentence_base.get(doc.id, 0)
        sentence_base[doc.id] = base + len(sentences)
        cands = document_candidates(sentences, schema)
        stats.documents += doc.offset == 0
        stats.sentences += len(sentences)
        stats.mentions += sum(len(s.mentions) for s in sentences)
        stats.candidates += len(cands)
        stats.per_document[doc.id] = stats.per_document.get(doc.id, 0) + len(cands)
        pending.append((doc, base, cands))
        n_pending += len(cands)
        if n_pending >= batch_pairs or (flush_when is not None and flush_when()):
            yield from flush()
            n_pending = 0
    yield from flush()

