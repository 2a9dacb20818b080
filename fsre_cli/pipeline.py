"""An extract run: sources -> documents -> entities -> candidate pairs -> scores -> triples -> writer.

`run` owns the whole flow for the CLI and for Python callers alike: reading and skipping bad
inputs, resuming, flushing a paused stream, counting, and stopping cleanly on Ctrl-C.
`extract_triples` is its scoring core: candidate pairs of many documents are scored together
(`batch_pairs`), so the encoder runs on full, length-sorted batches; results come back per
document, in input order, with offsets into the original document text.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TextIO

from fsre_cli.candidates import document_candidates
from fsre_cli.console import NULL_LOG, Log
from fsre_cli.documents import Candidate, Document, Sentence, Triple
from fsre_cli import interrupts
from fsre_cli.errors import FsreError, UsageError
from fsre_cli.schema import Schema
from fsre_cli.scorers.base import PairScorer, Prediction

INPUT_FORMATS = ("auto", "text", "jsonl")
EVIDENCE_CHARS = 1000  # a longer sentence is quoted around the pair only (see `evidence`)
EVIDENCE_CONTEXT = 200


@dataclass
class ExtractStats:
    documents: int = 0
    sentences: int = 0
    mentions: int = 0
    candidates: int = 0
    triples: int = 0
    already_done: int = 0  # documents an earlier run finished (--resume), skipped
    per_document: dict[str, int] = field(default_factory=dict)  # candidates per document


class Interrupted(FsreError):
    """Ctrl-C during a run: what was finished is kept (and resumable with --output/--resume)."""

    exit_code = 130


@dataclass
class RunResult:
    stats: ExtractStats
    skipped: list[tuple[str, str]]  # (source or document, reason)
    scorer: dict[str, Any]  # the scorer's own counts (`PairScorer.run_summary`)
    method: str

    def summary(self) -> str:
        """The one-line summary `fsre extract` prints."""
        s = self.stats
        extra = ""
        if "sent_to_llm" in self.scorer:
            routed = self.scorer["sent_to_llm"]
            share = f" ({routed / s.candidates:.0%})" if s.candidates else ""
            extra = f", {routed} sent to the LLM{share}"
        done = f" (and {s.already_done} finished by an earlier run, skipped)" if s.already_done else ""
        return (f"{s.documents} documents{done}, {s.sentences} sentences, {s.mentions} mentions, "
                f"{s.candidates} candidate pairs{extra}, {s.triples} triples ({self.method})")


def check_sources(sources: Sequence[str], files_from: str | None = None) -> None:
    if not sources:
        raise UsageError("no inputs: give files, directories, - for stdin, or --files-from")
    if list(sources).count("-") + (files_from == "-") > 1:
        raise UsageError("stdin (-) can be used only once")


def preflight(sources: Sequence[str], recognizer, *, input_format: str = "auto", output: Path | None = None,
              resume: bool = False, stdin: TextIO | None = None) -> None:
    """Fail now, before any model is trained or loaded, on what would fail later: an output that
    cannot be written, a cache folder that cannot be, and, for a run over plain text, a missing
    NER model (JSONL may carry its own entities)."""
    from fsre_cli.inputs import source_format
    from fsre_cli.outputs import check_output_path
    from fsre_cli.paths import check_cache_root

    if input_format not in INPUT_FORMATS:
        raise UsageError(f"--format must be {', '.join(INPUT_FORMATS)}, not {input_format!r}")
    if resume and output is None:
        raise UsageError("--resume needs --output FILE (it reads what that file already holds)")
    if output is not None:
        check_output_path(output, resume=resume)
    check_cache_root()
    files = [s for s in sources if s != "-"]
    present = [s for s in files if Path(s).exists()]
    if files and not present and "-" not in sources:  # nothing to read: say so, not what reading would need
        raise UsageError(f"no such file: {files[0]}" + (f" (and {len(files) - 1} more)" if len(files) > 1 else ""))
    plain_text = any(source_format(s, input_format) == "text" for s in present)
    if "-" in sources and not plain_text and recognizer.entities == "auto" and not recognizer.ner_installed():
        # only then is it worth waiting for stdin's first byte: plain text would fail after training
        plain_text = stdin_format(input_format, stdin) == "text"
    if recognizer.entities == "stanza" or (recognizer.entities == "auto" and plain_text):
        recognizer.preload()


def stdin_format(input_format: str, stdin: TextIO | None = None) -> str:
    """jsonl or text for stdin: the option, or under auto what its first character says (peeked,
    not read, so the run still gets every byte; waits for the first input to arrive)."""
    if input_format != "auto":
        return input_format
    buffer = getattr(stdin or sys.stdin, "buffer", None)
    if buffer is None or not hasattr(buffer, "peek"):
        return "unknown"
    head = buffer.peek(4)[:4].removeprefix(b"\xef\xbb\xbf").lstrip()
    return "jsonl" if head[:1] == b"{" else "text" if head else "unknown"


def run(
    sources: Sequence[str],
    schema: Schema,
    scorer: PairScorer,
    recognizer,
    *,
    output: Path | None = None,
    resume: bool = False,
    input_format: str = "auto",
    min_score: float | None = None,
    stdin: TextIO | None = None,
    log: Log = NULL_LOG,
) -> RunResult:
    """Extract triples from `sources` (paths, '-' for stdin) into `output` (stdout when None)."""
    from fsre_cli.inputs import InputReport, StreamFeed, read_documents
    from fsre_cli.outputs import TripleWriter

    writer = TripleWriter(output, resume=resume)
    report = InputReport()
    stats = ExtractStats()
    # stdin is read ahead by a thread; when it pauses, the batches held so far are scored
    # and written, so a slow stream (tail -f) gets its triples without waiting for more
    feed = StreamFeed(stdin or sys.stdin) if "-" in sources else None

    def todo(doc: Document) -> bool:
        if writer.is_done(doc.id):
            stats.already_done += doc.offset == 0  # counted once, at its first chunk
            return False
        return usable(doc, recognizer, report, log.warn)

    docs = (d for d in read_documents(sources, report, warn=log.warn, input_format=input_format, stdin=feed)
            if todo(d))
    sentences = recognizer.process(docs, flush_when=feed.paused if feed else None)
    flush_when = (lambda: recognizer.holding == 0 and feed.paused()) if feed else None
    try:
        with log.progress("extracting", total=None) as bar:
            for doc, triples in extract_triples(sentences, schema, scorer, min_score=min_score,
                                                stats=stats, flush_when=flush_when):
                interrupts.check()  # a Ctrl-C Python dropped (in a destructor) still stops the run here
                writer.write(triples)
                log.debug(f"{doc.id}: {stats.per_document.get(doc.id, 0)} candidate pairs, {len(triples)} triples")
                if doc.final:  # recorded as soon as its last chunk is written: a stream may pause here
                    writer.finish_document(doc.id)
                    bar.advance()
    except KeyboardInterrupt:
        hint = f"; rerun with `-o {output} --resume` to continue" if output else ""
        raise Interrupted(f"interrupted after {writer.finished} complete document(s){hint}") from None
    finally:
        writer.close()
    return RunResult(stats, list(report.skipped), scorer.run_summary(), scorer.method)


def usable(doc: Document, recognizer, report, warn: Callable[[str], None] | None = None) -> bool:
    """Whether the recognizer can use `doc`'s given entities; if not, the document is skipped
    alone (said once, as `document "ID": reason`), never the run. The local engine, the Ray
    workers and corpus reading all check documents here."""
    where = f"document {json.dumps(doc.id, ensure_ascii=False)}"
    problem = recognizer.given_problem(doc)
    if problem:
        report.skip(where, problem.removeprefix(where + ": "), warn)
    return problem is None


def decide(pred: Prediction, min_score: float | None) -> tuple[str, float] | None:
    """The scorer's own decision, or with `min_score` the best relation when its score reaches it."""
    if min_score is None:
        return (pred.relation, pred.score) if pred.relation is not None else None
    if pred.best is not None and pred.best_score >= min_score:
        return pred.best, pred.best_score
    return None


def evidence(cand: Candidate) -> str:
    """The sentence, or for a sentence over `EVIDENCE_CHARS` (a line without punctuation, a
    table) the stretch of it from `EVIDENCE_CONTEXT` characters before the pair to as many
    after; when head and tail lie further apart than that, the two windows around them joined
    by " … ". A triple's record stays small whatever the input."""
    sentence = cand.sentence
    text, base = sentence.text, sentence.start
    if len(text) <= EVIDENCE_CHARS:
        return text
    first, second = sorted((cand.head, cand.tail), key=lambda m: m.start)

    def window(start: int, end: int) -> tuple[int, int]:
        return max(0, start - base - EVIDENCE_CONTEXT), end - base + EVIDENCE_CONTEXT

    lo, hi = window(min(first.start, second.start), max(first.end, second.end))
    if hi - lo <= EVIDENCE_CHARS:
        return text[lo:hi]
    (a, b), (c, d) = window(first.start, first.end), window(second.start, second.end)
    return text[a:b] + " … " + text[c:d]


def extract_triples(
    sentences_by_document: Iterable[tuple[Document, list[Sentence]]],
    schema: Schema,
    scorer: PairScorer,
    *,
    min_score: float | None = None,
    batch_pairs: int | None = None,
    stats: ExtractStats | None = None,
    flush_when: Callable[[], bool] | None = None,
) -> Iterator[tuple[Document, list[Triple]]]:
    """Score every candidate pair; yield each document (or chunk) with its triples. Pairs are
    scored `batch_pairs` at a time (default: the scorer's `flush_pairs`, else 2048), whole
    documents per call."""
    if batch_pairs is None:
        batch_pairs = int(getattr(scorer, "flush_pairs", 2048))
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
                    head=cand.head.shifted(doc.offset), tail=cand.tail.shifted(doc.offset),
                    score=score, method=scorer.method, evidence=evidence(cand),
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
