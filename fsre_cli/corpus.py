"""The user's own documents as unlabelled training text: which sentences, and which pairs in them.

A corpus sentence is a sentence of the user's documents with its schema-typed mentions (found
by Stanza, or given in JSONL), in the sentence's own coordinates. Only sentences holding at
least one pair that some relation admits are kept: masked span language modelling (TKRE's
stage 1) masks the tokens between a candidate pair's two mentions most, and without a pair
there is no such span. Sampling is a seeded reservoir, so memory stays bounded by the sample
size however large the corpus, and the same corpus and seed always give the same sentences.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from fsre_cli.console import NULL_LOG, Log
from fsre_cli.schema import Schema
from fsre_cli.spans import Span
from fsre_cli.tkre.markers import PairSpec

DEFAULT_CORPUS_SENTENCES = 2000  # about a minute of one MSLM epoch on one CPU core (BENCHMARKS.md)


@dataclass(frozen=True)
class CorpusSentence:
    """A sentence and its schema-typed mentions, offsets into `text`."""

    text: str
    mentions: tuple[Span, ...]

    def candidate_pairs(self, schema: Schema) -> list[PairSpec]:
        """Every ordered pair of non-overlapping mentions whose types some relation admits,
        in mention order (as `candidates.candidate_pairs` orders a document's)."""
        mentions = sorted(self.mentions, key=lambda m: (m.start, m.end, m.type))
        return [PairSpec(self.text, h.start, h.end, h.type, t.start, t.end, t.type)
                for h in mentions for t in mentions
                if h is not t and not h.overlaps(t) and schema.relations_for(h.type, t.type)]

    def to_record(self) -> dict:
        return {"text": self.text, "mentions": [[m.start, m.end, m.type] for m in self.mentions]}


def sample_corpus(sentences: Iterable[CorpusSentence], schema: Schema, limit: int, seed: int = 0
                  ) -> list[CorpusSentence]:
    """At most `limit` of the sentences that hold a candidate pair, drawn uniformly with `seed`
    (reservoir sampling: one pass, `limit` sentences in memory), in corpus order."""
    if limit < 1:
        return []
    rng = random.Random(f"corpus/{seed}")
    kept: list[tuple[int, CorpusSentence]] = []
    seen = 0
    for sentence in sentences:
        if not sentence.candidate_pairs(schema):
            continue
        if len(kept) < limit:
            kept.append((seen, sentence))
        else:
            slot = rng.randrange(seen + 1)
            if slot < limit:
                kept[slot] = (seen, sentence)
        seen += 1
    return [s for _, s in sorted(kept, key=lambda item: item[0])]


def corpus_digest(sentences: Sequence[CorpusSentence]) -> str:
    """A hash of the sentences and mentions used: part of the model's cache key."""
    digest = hashlib.sha256()
    for sentence in sentences:
        digest.update(json.dumps(sentence.to_record(), ensure_ascii=False, sort_keys=True).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def document_sentences(sources: Sequence[str], recognizer, *, log: Log = NULL_LOG
                       ) -> Iterator[CorpusSentence]:
    """The sentences of `sources` (what `fsre extract` reads: files, folders, JSONL with or
    without entities, `-`) with the recognizer's mentions, one at a time."""
    from fsre_cli.inputs import InputReport, read_documents
    from fsre_cli.pipeline import usable

    report = InputReport()
    docs = (d for d in read_documents(sources, report, warn=log.warn) if usable(d, recognizer, report, log.warn))
    with log.progress("reading the corpus", total=None) as bar:
        for _doc, sentences in recognizer.process(docs):
            for s in sentences:
                yield CorpusSentence(s.text, tuple(Span(m.start - s.start, m.end - s.start, m.type, m.text)
                                                   for m in s.mentions))
            bar.advance()


def check_corpus_sources(sources: Sequence[str]) -> None:
    """A corpus path that does not exist is a typo, not an empty corpus: say so before training."""
    from pathlib import Path

    from fsre_cli.errors import UsageError

    if list(sources).count("-") > 1:
        raise UsageError("--corpus: stdin (-) can be used only once")
    for source in sources:
        if source != "-" and not Path(source).exists():
            raise UsageError(f"--corpus {source}: no such file or directory")


def read_corpus(sources: Sequence[str], recognizer, schema: Schema, *, limit: int = DEFAULT_CORPUS_SENTENCES,
                seed: int = 0, log: Log = NULL_LOG) -> list[CorpusSentence]:
    """A seeded sample of at most `limit` corpus sentences that hold a candidate pair."""
    check_corpus_sources(sources)
    sample = sample_corpus(document_sentences(sources, recognizer, log=log), schema, limit, seed)
    log.info(f"corpus: {len(sample)} sentences with a candidate pair (at most {limit}, seed {seed})")
    return sample
