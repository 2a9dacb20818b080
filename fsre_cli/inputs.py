"""Input documents: text files, directories, stdin, lists of files, JSONL documents.

Bad inputs (missing, unreadable, binary, not UTF-8, empty) are reported on
stderr and skipped; `InputReport` counts them so the CLI can summarise and exit
non-zero. JSONL is decoded line by line, so one bad line (bytes that are not
UTF-8, a lone surrogate, a bad number or entity span) skips that line only and is
named as FILE:LINE. Large text files, long lines and long JSONL texts are read in
chunks cut at paragraph, line, sentence or word boundaries, so memory stays
bounded whatever the document size. Stdin is read by a `StreamFeed`, which also tells
the pipeline when the stream has paused, so `tail -f log | fsre extract -` writes
triples as documents arrive instead of after a full batch.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TextIO

from fsre_cli.documents import Document, EntitySpan, entity_problem
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
    whole large document).

    A text stream with a byte buffer (`sys.stdin`) is read as bytes and each line is
    decoded here with `surrogateescape`: a byte that is not UTF-8 cannot raise in the
    middle of the stream (and lose what follows); it arrives as a lone surrogate that
    the reader names and skips or replaces (see `encoding_problem`)."""

    _END = object()
    _NOTHING = object()

    def __init__(self, stream: TextIO, *, pause_seconds: float = 0.2, read_ahead: int = 64) -> None:
        self.pause_seconds = pause_seconds
        self._lines: queue.Queue = queue.Queue(read_ahead)
        self._next: object = self._NOTHING  # a line taken off the queue by paused(), not yet consumed
        threading.Thread(target=self._pump, args=(stream,), name="fsre-stdin", daemon=True).start()

    def _pump(self, stream: TextIO) -> None:
        try:
            raw = getattr(stream, "buffer", None)
            if raw is not None:
                for line in raw:
                    self._lines.put(line.decode("utf-8", "surrogateescape"))
            else:
                for line in stream:
                    self._lines.put(line)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            self._lines.put(_ReadError(exc))
        self._lines.put(self._END)

    def _get(self) -> object:
        """The next line, waiting as long as it takes, but never past a recorded Ctrl-C."""
        from fsre_cli import interrupts

        while True:
            interrupts.check()
            try:
                return self._lines.get(timeout=0.5)
            except queue.Empty:
                continue

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
                item = self._get()
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


def encoding_problem(text: str) -> str | None:
    """Why `text` cannot be written as UTF-8, or None. Input is decoded with `surrogateescape`,
    so a byte that was not UTF-8 shows up as U+DC80..U+DCFF; any other lone surrogate came
    from a JSON escape such as "\ud800"."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        if 0xDC80 <= code <= 0xDCFF:
            return f"not UTF-8 (byte 0x{code - 0xDC00:02x} at character {exc.start + 1})"
        return f"lone surrogate U+{code:04X} at character {exc.start + 1}, which cannot be written as UTF-8"


_SURROGATE = re.compile("[\ud800-\udfff]")


def printable_name(name: str) -> str:
    """A path or id that can be written as UTF-8: bytes that were not UTF-8 (argv, --files-from)
    are shown as \\xNN, so a document id never breaks the output file."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long, a NUL byte: not a directory; reading it says why
        return False


def expand_paths(args: Iterable[str], glob: str = "*.txt", files_from: str | None = None,
                 stdin: TextIO | None = None) -> list[str]:
    """Arguments and `--files-from` entries as a list of paths ('-' stays '-'); directories
    are expanded recursively with `glob` (plus *.jsonl), sorted for reproducible output.
    `--files-from` is read as bytes and each line decoded as the file system does, so a
    name that is not UTF-8 still names its file."""
    items = list(args)
    if files_from is not None:
        try:
            if files_from == "-":
                stream = stdin or sys.stdin
                raw = getattr(stream, "buffer", None)
                data: bytes | str = raw.read() if raw is not None else stream.read()
            else:
                data = Path(files_from).read_bytes()
        except OSError as exc:
            raise UsageError(f"--files-from {files_from}: {exc.strerror or exc}") from None
        lines = ([os.fsdecode(line) for line in data.split(b"\n")] if isinstance(data, bytes)
                 else data.split("\n"))
        if lines and lines[0].startswith("\ufeff"):
            lines[0] = lines[0][1:]
        items += [ln.strip() for ln in lines if ln.strip()]
    out: list[str] = []
    for item in items:
        path = Path(item)
        if item != "-" and _is_dir(path):
            found = sorted({*path.rglob(glob), *path.rglob("*.jsonl")})
            out += [str(p) for p in found if p.is_file()]
        else:
            out.append(item)
    return out


class _SeenIds:
    """Document ids met so far: a new document with an id already seen is merged with the
    earlier one downstream (its sentences numbered after it, one entry in --resume's
    progress), so say so, once per id."""

    def __init__(self, warn: Callable[[str], None] | None) -> None:
        self.warn = warn
        self.seen: set[str] = set()
        self.warned: set[str] = set()

    def check(self, doc_id: str, where: str) -> None:
        if doc_id not in self.seen:
            self.seen.add(doc_id)
            return
        if doc_id not in self.warned:
            self.warned.add(doc_id)
            if self.warn:
                self.warn(f"{where}: document id {json.dumps(doc_id, ensure_ascii=False)} repeats an earlier "
                          "document's id; their triples share it and their sentences are numbered as one document")


def read_documents(sources: Iterable[str], report: InputReport, *, warn: Callable[[str], None] | None = None,
                   stdin: TextIO | None = None, input_format: str = "auto",
                   chunk_chars: int = CHUNK_CHARS) -> Iterator[Document]:
    """Yield documents from each source in order. `input_format`: auto (by extension; for
    stdin by its first character), text, or jsonl. Pass a `StreamFeed` as `stdin` to
    learn when the stream pauses; text read from stdin is then cut into a document
    chunk at each pause. A document longer than `chunk_chars` arrives as chunks."""
    ids = _SeenIds(warn)
    for source in sources:
        if source == "-":
            feed = stdin if isinstance(stdin, StreamFeed) else StreamFeed(stdin or sys.stdin)
            lines = iter(feed)
            try:
                first = next(lines, "")
                if first.startswith("\ufeff"):
                    first = first[1:]
                fmt = input_format if input_format != "auto" else ("jsonl" if first[:1] == "{" else "text")
                rest = itertools.chain([first], lines)
                if fmt == "jsonl":
                    yield from _jsonl_documents(rest, "<stdin>", report, warn, chunk_chars, ids)
                else:
                    yield from _text_documents(_repaired_lines(rest, "<stdin>", warn), "-", report, warn,
                                               chunk_chars, feed.paused, ids)
            except UnicodeDecodeError as exc:
                report.skip("<stdin>", f"not UTF-8 text (byte {exc.start} of a chunk: {exc.reason})", warn)
            except OSError as exc:
                report.skip("<stdin>", f"cannot read: {exc.strerror or exc}", warn)
            continue
        path = Path(source)
        name = printable_name(source)
        problem = _check_file(path)
        if problem:
            report.skip(name, problem, warn)
            continue
        fmt = source_format(source, input_format)
        try:
            if fmt == "jsonl":
                with path.open("rb") as raw:
                    lines = (line.decode("utf-8", "surrogateescape") for line in raw)
                    yield from _jsonl_documents(lines, name, report, warn, chunk_chars, ids)
                continue
            problem = _utf8_problem(path)  # before any chunk goes out: a file that is not UTF-8 is skipped whole
            if problem:
                report.skip(name, problem, warn)
                continue
            with path.open("r", encoding="utf-8-sig", errors="strict", newline="") as fh:
                yield from _text_documents(iter(lambda: fh.read(chunk_chars), ""), name, report, warn,
                                           chunk_chars, ids=ids)
        except UnicodeDecodeError as exc:  # the file changed after it was checked
            report.skip(name, f"not UTF-8 text (byte {exc.start} of a chunk: {exc.reason})", warn)
        except OSError as exc:
            report.skip(name, f"cannot read: {exc.strerror or exc}", warn)


def jsonl_slices(path: str | Path, lines_per_slice: int) -> Iterator[tuple[int, int, int]]:
    """(start byte, end byte, first line number) of consecutive slices of a JSONL file, each of
    at most `lines_per_slice` lines, found in one pass over the bytes."""
    start, line, first = 0, 1, 1
    offset, count = 0, 0
    with open(path, "rb") as fh:
        for raw in fh:
            offset += len(raw)
            line += 1
            count += 1
            if count == lines_per_slice:
                yield start, offset, first
                start, first, count = offset, line, 0
    if count:
        yield start, offset, first


def read_slice(path: str | Path, start: int, end: int, first_line: int, report: InputReport, *,
               warn: Callable[[str], None] | None = None, chunk_chars: int = CHUNK_CHARS) -> Iterator[Document]:
    """The documents of one slice of a JSONL file (`jsonl_slices`), exactly as `read_documents`
    reads them from the whole file: the same ids, chunks and skipped lines."""
    name = printable_name(str(path))
    with open(path, "rb") as raw:
        raw.seek(start)
        data = raw.read(end - start)
    import io

    lines = (line.decode("utf-8", "surrogateescape") for line in io.BytesIO(data))  # as `for line in file`
    yield from _jsonl_documents(lines, name, report, warn, chunk_chars, _SeenIds(None), first_line)


def file_problem(path: str | Path) -> str | None:
    """Why a file cannot be read as input (missing, a folder, empty, binary), or None."""
    return _check_file(Path(path))


def source_format(source: str, input_format: str = "auto") -> str | None:
    """jsonl or text for a file path (by its suffix under auto); None for stdin under auto
    (its first character decides)."""
    if input_format != "auto":
        return input_format
    if source == "-":
        return None
    return "jsonl" if Path(source).suffix.lower() in JSONL_SUFFIXES else "text"


def _check_file(path: Path) -> str | None:
    try:
        if not path.exists():
            return "no such file"
        if not path.is_file():
            return "not a regular file"
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except (OSError, ValueError) as exc:
        return f"cannot read: {getattr(exc, 'strerror', None) or exc}"
    if not head.strip():
        return "empty"
    if b"\x00" in head:
        return "binary file (contains NUL bytes)"
    return None


def _utf8_problem(path: Path, block_bytes: int = 1 << 20) -> str | None:
    """Why a text file is not UTF-8 (the byte where it stops being so), or None; reads in blocks."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    position = 0
    with path.open("rb") as fh:
        for block in itertools.chain(iter(lambda: fh.read(block_bytes), b""), [None]):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(block or b"", final=block is None)
            except UnicodeDecodeError as exc:
                return f"not UTF-8 text (byte {position - pending + exc.start}: {exc.reason})"
            position += len(block or b"")
    return None


def _repaired_lines(lines: Iterable[str], source: str, warn) -> Iterator[str]:
    """Stdin text cannot be skipped whole once chunks of it went out, so a byte that is not
    UTF-8 is read as U+FFFD (one character for one, so offsets stay those of the stream)
    and the first such line is named."""
    warned = False
    for lineno, line in enumerate(lines, 1):
        problem = encoding_problem(line)
        if problem:
            if not warned and warn:
                warn(f"{source}:{lineno}: {problem}; such characters are read as U+FFFD (reported once)")
            warned = True
            line = _SURROGATE.sub("\ufffd", line)
        yield line


def _text_documents(pieces: Iterable[str], source: str, report: InputReport, warn, chunk_chars: int,
                    paused: Callable[[], bool] = lambda: False, ids: _SeenIds | None = None) -> Iterator[Document]:
    """One document per text source; a large one arrives as consecutive chunks cut at paragraph
    (else line, sentence or word) boundaries, each with its character offset. `pieces` are the
    blocks of a file or the lines of a stream; for a stream, `paused` also ends a chunk where
    the input pauses, so its sentences are scored without waiting for more.

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
                if last is None and ids is not None:
                    ids.check(source, source)
                last = Document(source, chunk, None, offset, final=piece is None and not buffer)
                yield last
            offset += len(chunk)
    if last is None:
        report.skip(source, "empty", warn)
        return
    if not last.final:
        yield Document(source, "", None, offset, final=True)
    report.documents += 1


_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019\u00bb)\]]*\s+")
_SPACES = " \t\r\f\v\u00a0\u3000"


def _chunk_end(buffer: str, chunk_chars: int) -> int:
    """Where a chunk of at most `chunk_chars` ends: after a blank line, else after a line
    break, else after a sentence end, else after a space; the first of these that leaves at
    least a quarter of the limit, else any of them, else hard at the limit (a single
    "word" longer than a chunk). Cutting within a line is what keeps one huge line (a
    JSONL text, a file without line breaks) from being read, tagged and held whole."""
    window = buffer[:chunk_chars]
    blank = window.rfind("\n\n")
    line = window.rfind("\n")
    sentence = -1
    for match in _SENTENCE_END.finditer(window, max(blank, line, 0)):
        sentence = match.end() - 1
    space = max(window.rfind(c) for c in _SPACES)
    cuts = [blank, line, sentence, space]
    for cut in cuts:
        if cut + 1 >= chunk_chars // 4:
            return cut + 1
    for cut in cuts:
        if cut >= 0:
            return cut + 1
    return chunk_chars


def _document_chunks(doc: Document, chunk_chars: int) -> Iterator[Document]:
    """A document as chunks of at most `chunk_chars` (cut like a text file's), each with its
    offset; given entities go to the chunk that holds them, relative to it. A cut is moved
    back before any entity it would split (or, for an entity longer than a chunk, past it)."""
    text = doc.text
    if len(text) <= chunk_chars:
        yield doc
        return
    spans = doc.entities or []
    start = 0
    while start < len(text):
        if len(text) - start <= chunk_chars:
            cut = len(text)
        else:
            cut = start + _chunk_end(text[start : start + chunk_chars], chunk_chars)
            planned = cut
            while crossing := [s.start for s in spans if s.start < cut < s.end]:
                cut = min(crossing)
            if cut <= start:  # an entity that starts the chunk is longer than the chunk: keep it whole
                cut = planned
                while crossing := [s.end for s in spans if s.start < cut < s.end]:
                    cut = max(crossing)
        entities = None
        if doc.entities is not None:
            entities = [EntitySpan(s.start - start, s.end - start, s.type) for s in spans
                        if start <= s.start and s.end <= cut]
        yield Document(doc.id, text[start:cut], entities, offset=start, final=cut == len(text))
        start = cut


def _jsonl_documents(lines: Iterable[str], source: str, report: InputReport, warn,
                     chunk_chars: int = CHUNK_CHARS, ids: _SeenIds | None = None,
                     first_line: int = 1) -> Iterator[Document]:
    """Documents of JSONL lines (decoded with surrogateescape); each bad line is skipped and
    named FILE:LINE, the lines around it are kept. `first_line`: the number of the first line
    given (a slice of a file keeps the file's line numbers, and so its default ids)."""
    for lineno, line in enumerate(lines, first_line):
        if lineno == 1 and line.startswith("\ufeff"):
            line = line[1:]
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        problem = encoding_problem(line)
        if problem:
            report.skip(where, problem, warn)
            continue
        try:
            doc = parse_jsonl_document(line, default_id=where)
        except ValueError as exc:
            report.skip(where, str(exc), warn)
            continue
        if not doc.text.strip():
            report.skip(where, "empty text", warn)
            continue
        if ids is not None:
            ids.check(doc.id, where)
        report.documents += 1
        yield from _document_chunks(doc, chunk_chars)


def _json_value(value: Any, limit: int = 40) -> str:
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _is_json_int(value: Any) -> bool:
    return type(value) is int  # not bool, not a float such as 25.9 or 1e400, not a string "0"


def _text_field(value: str, name: str) -> str:
    problem = encoding_problem(value)
    if problem:
        raise ValueError(f'"{name}" has a {problem.replace("not UTF-8", "byte that is not UTF-8")}')
    return value


def parse_jsonl_document(line: str, default_id: str) -> Document:
    """`{"id": ..., "text": ..., "entities": [{"start", "end", "type"}]?}`; raises ValueError
    with a one-line reason that names the field (and, for a bad span, the document and entity)."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg}, column {exc.colno})") from None
    except RecursionError:
        raise ValueError("invalid JSON (nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ValueError(f"invalid JSON ({exc})") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
        raise ValueError('each line must be an object with a string "text"')
    text = _text_field(rec["text"], "text")
    doc_id = rec.get("id")
    if doc_id is None:
        doc_id = default_id
    elif _is_json_int(doc_id):
        doc_id = str(doc_id)
    elif isinstance(doc_id, str):
        doc_id = _text_field(doc_id, "id")
    else:
        raise ValueError(f'"id" must be a string or an integer, not {_json_value(doc_id)}')
    entities = None
    if rec.get("entities") is not None:
        if not isinstance(rec["entities"], list):
            raise ValueError('"entities" must be a list of {"start", "end", "type"}')
        entities = []
        for i, ent in enumerate(rec["entities"]):
            if not isinstance(ent, dict) or not {"start", "end", "type"} <= ent.keys():
                raise ValueError(f'entities[{i}] needs integer "start", "end" and a "type"')
            for key in ("start", "end"):
                if not _is_json_int(ent[key]):
                    raise ValueError(f'entities[{i}].{key} must be a JSON integer, not {_json_value(ent[key])}')
            if not isinstance(ent["type"], str):
                raise ValueError(f'entities[{i}].type must be a string, not {_json_value(ent["type"])}')
            span = EntitySpan(ent["start"], ent["end"], _text_field(ent["type"], f"entities[{i}].type"))
            problem = entity_problem(text, span, i)
            if problem:
                raise ValueError(f"document {json.dumps(doc_id, ensure_ascii=False)}: {problem}")
            entities.append(span)
    return Document(doc_id, text, entities)


def read_lines(path: str | Path) -> list[str]:
    """All lines of a UTF-8 file ('-' = stdin), or a UsageError that names the file and why."""
    path = Path(path)
    try:
        if str(path) == "-":
            return sys.stdin.read().lstrip("\ufeff").splitlines()
        return path.read_text(encoding="utf-8-sig").splitlines()
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
        except (RecursionError, ValueError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise UsageError(f"{path}:{i}: invalid JSON: {reason}") from None
    return out
