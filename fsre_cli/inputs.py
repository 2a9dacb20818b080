"""Input documents: text files, directories, stdin, lists of files, JSONL documents.

Bad inputs (missing, unreadable, binary, not UTF-8, empty) are reported on
stderr and skipped; `InputReport` counts them so the CLI can summarise and exit
non-zero. Large text files are read in paragraph-aligned chunks, so memory stays
bounded whatever the file size. Stdin is read by a `StreamFeed`, which also tells
the pipeline when the stream has paused, so `tail -f log | fsre extract -` writes
triples as documents arrive instead of after a full batch.
"""

from __future__ import annotations

import itertools
import json
import queue
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TextIO

from fsre_cli.documents import Document, EntitySpan
from fsre_cli.errors import UsageError

CHUNK_CHARS = 1 << 20  # 1M characters per chunk of a large text file
SNIFF_BYTES = 8192
JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass
class InputReport:
    documents: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)

    def skip(self, source: str, reason: str, warn: Callable[[str], None] | None) -> None:
        self.skipped.append((source, reason))
        if warn:
            warn(f"skipping {source}: {reason}")


class StreamFeed:
    """The lines of a stream, read ahead by a daemon thread.

    `paused()` is true when no line arrives within `pause_seconds`: the producer (a
    `tail -f`, a slow process) has stopped for now, and whoever batches documents
    should hand on what it holds rather than wait for more. The grace period keeps a
    fast pipe (`cat big.txt |`) from looking paused between two reads. Lines come out
    in order; a read error is raised in the consumer, where it would have been raised
    without the thread. At most `read_ahead` lines wait in memory (a JSONL line can be a
    whole large document)."""

    _END = object()
    _NOTHING = object()

    def __init__(self, stream: TextIO, *, pause_seconds: float = 0.2, read_ahead: int = 64) -> None:
        self.pause_seconds = pause_seconds
        self._lines: queue.Queue = queue.Queue(read_ahead)
        self._next: object = self._NOTHING  # a line taken off the queue by paused(), not yet consumed
        threading.Thread(target=self._pump, args=(stream,), name="fsre-stdin", daemon=True).start()

    def _pump(self, stream: TextIO) -> None:
        try:
            for line in stream:
                self._lines.put(line)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            self._lines.put(_ReadError(exc))
        self._lines.put(self._END)

    def paused(self) -> bool:
        if self._next is self._NOTHING:
            try:
                self._next = self._lines.get(timeout=self.pause_seconds)
            except queue.Empty:
                return True
        return False

    def __iter__(self) -> Iterator[str]:
        while True:
            if self._next is self._NOTHING:
                item = self._lines.get()
            else:
                item, self._next = self._next, self._NOTHING
            if item is self._END:
                self._next = item  # later iterations end too
                return
            if isinstance(item, _ReadError):
                raise item.exc
            yield item  # type: ignore[misc]


@dataclass
class _ReadError:
    exc: BaseException


def expand_paths(args: Iterable[str], glob: str = "*.txt", files_from: str | None = None,
                 stdin: TextIO | None = None) -> list[str]:
    """Arguments and `--files-from` entries as a list of paths ('-' stays '-'); directories
    are expanded recursively with `glob` (plus *.jsonl), sorted for reproducible output."""
    items = list(args)
    if files_from is not None:
        stream = (stdin or sys.stdin) if files_from == "-" else None
        try:
            lines = stream.read().splitlines() if stream else Path(files_from).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UsageError(f"--files-from {files_from}: {exc.strerror or exc}") from None
        items += [ln.strip() for ln in lines if ln.strip()]
    out: list[str] = []
    for item in items:
        path = Path(item)
        if item != "-" and path.is_dir():
            found = sorted({*path.rglob(glob), *path.rglob("*.jsonl")})
            out += [str(p) for p in found if p.is_file()]
        else:
            out.append(item)
    return out


def read_documents(sources: Iterable[str], report: InputReport, *, warn: Callable[[str], None] | None = None,
                   stdin: TextIO | None = None, input_format: str = "auto",
                   chunk_chars: int = CHUNK_CHARS) -> Iterator[Document]:
    """Yield documents from each source in order. `input_format`: auto (by extension; for
    stdin by its first character), text, or jsonl. Pass a `StreamFeed` as `stdin` to
    learn when the stream pauses; text read from stdin is then cut into a document
    chunk at each pause."""
    for source in sources:
        if source == "-":
            feed = stdin if isinstance(stdin, StreamFeed) else StreamFeed(stdin or sys.stdin)
            lines = iter(feed)
            first = next(lines, "")
            fmt = input_format if input_format != "auto" else ("jsonl" if first[:1] == "{" else "text")
            rest = itertools.chain([first], lines)
            try:
                if fmt == "jsonl":
                    yield from _jsonl_documents(rest, "<stdin>", report, warn)
                else:
                    yield from _text_documents(rest, "-", report, warn, chunk_chars, feed.paused)
            except UnicodeDecodeError as exc:
                report.skip("<stdin>", f"not UTF-8 text (byte {exc.start} of a chunk: {exc.reason})", warn)
            continue
        path = Path(source)
        problem = _check_file(path)
        if problem:
            report.skip(source, problem, warn)
            continue
        fmt = source_format(source, input_format)
        try:
            with path.open("r", encoding="utf-8", errors="strict", newline="") as fh:
                if fmt == "jsonl":
                    yield from _jsonl_documents(fh, source, report, warn)
                else:
                    yield from _text_documents(iter(lambda: fh.read(chunk_chars), ""), source, report, warn,
                                              chunk_chars)
        except UnicodeDecodeError as exc:
            report.skip(source, f"not UTF-8 text (byte {exc.start} of a chunk: {exc.reason})", warn)
        except OSError as exc:
            report.skip(source, f"cannot read: {exc.strerror or exc}", warn)


def source_format(source: str, input_format: str = "auto") -> str | None:
    """jsonl or text for a file path (by its suffix under auto); None for stdin under auto
    (its first character decides)."""
    if input_format != "auto":
        return input_format
    if source == "-":
        return None
    return "jsonl" if Path(source).suffix.lower() in JSONL_SUFFIXES else "text"


def _check_file(path: Path) -> str | None:
    if not path.exists():
        return "no such file"
    if not path.is_file():
        return "not a regular file"
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if not head.strip():
        return "empty"
    if b"\x00" in head:
        return "binary file (contains NUL bytes)"
    return None


def _text_documents(pieces: Iterable[str], source: str, report: InputReport, warn, chunk_chars: int,
                    paused: Callable[[], bool] = lambda: False) -> Iterator[Document]:
    """One document per text source; a large one arrives as consecutive chunks cut at paragraph
    (else line) boundaries, each with its character offset. `pieces` are the blocks of a file
    or the lines of a stream; for a stream, `paused` also ends a chunk where the input pauses,
    so its sentences are scored without waiting for more.

    The last chunk is `final`. When the input ends in blank text after a chunk was already cut,
    an empty final chunk closes the document, so every document ends with one."""
    offset = 0
    buffer = ""
    last: Document | None = None
    for piece in itertools.chain(pieces, [None]):
        if piece is not None:
            buffer += piece
        while buffer:
            if len(buffer) >= chunk_chars:
                cut = _chunk_end(buffer, chunk_chars)
            elif piece is None or paused():
                cut = len(buffer)
            else:
                break
            chunk, buffer = buffer[:cut], buffer[cut:]
            if chunk.strip():
                last = Document(source, chunk, None, offset, final=piece is None and not buffer)
                yield last
            offset += len(chunk)
    if last is None:
        report.skip(source, "empty", warn)
        return
    if not last.final:
        yield Document(source, "", None, offset, final=True)
    report.documents += 1


def _chunk_end(buffer: str, chunk_chars: int) -> int:
    """Where a chunk ends: after a blank line, else after a line; a buffer without line
    breaks stays whole rather than cut mid-word."""
    cut = buffer.rfind("\n\n", 0, chunk_chars)
    if cut < chunk_chars // 4:
        cut = buffer.rfind("\n", 0, chunk_chars)
    return len(buffer) if cut < 0 else cut + 1


def _jsonl_documents(lines: Iterable[str], source: str, report: InputReport, warn) -> Iterator[Document]:
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            doc = parse_jsonl_document(line, default_id=where)
        except ValueError as exc:
            report.skip(where, str(exc), warn)
            continue
        if not doc.text.strip():
            report.skip(where, "empty text", warn)
            continue
        report.documents += 1
        yield doc


def parse_jsonl_document(line: str, default_id: str) -> Document:
    """`{"id": ..., "text": ..., "entities": [{"start", "end", "type"}]?}`; raises ValueError."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
        raise ValueError('each line must be an object with a string "text"')
    entities = None
    if rec.get("entities") is not None:
        if not isinstance(rec["entities"], list):
            raise ValueError('"entities" must be a list of {"start", "end", "type"}')
        entities = []
        for i, ent in enumerate(rec["entities"]):
            try:
                entities.append(EntitySpan(int(ent["start"]), int(ent["end"]), str(ent["type"])))
            except (KeyError, TypeError, ValueError):
                raise ValueError(f'entities[{i}] needs integer "start", "end" and a "type"') from None
    doc_id = rec.get("id")
    return Document(str(doc_id) if doc_id is not None else default_id, rec["text"], entities)


def read_lines(path: str | Path) -> list[str]:
    """All lines of a UTF-8 file ('-' = stdin), or a UsageError that names the file and why."""
    path = Path(path)
    try:
        if str(path) == "-":
            return sys.stdin.read().splitlines()
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, expected a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None


def read_records(path: str | Path) -> list[tuple[int, dict]]:
    """(line number, record) for every non-blank line of a JSONL file; '-' reads stdin.

    Raises UsageError with ``FILE:LINE`` for unreadable files and invalid JSON."""
    path = Path(path)
    lines = read_lines(path)
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append((i, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{i}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    return out
