"""Input documents: text files, directories, stdin, lists of files, JSONL documents.

Bad inputs (missing, unreadable, binary, not UTF-8, empty) are reported on
stderr and skipped; `InputReport` counts them so the CLI can summarise and exit
non-zero. Large text files are read in paragraph-aligned chunks, so memory stays
bounded whatever the file size.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TextIO

from fsre_cli.documents import Document, EntitySpan
from fsre_cli.errors import UsageError

CHUNK_CHARS = 1 << 20  # 1M characters per chunk of a large text file
SNIFF_BYTES = 8192


@dataclass
class InputReport:
    documents: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)

    def skip(self, source: str, reason: str, warn: Callable[[str], None] | None) -> None:
        self.skipped.append((source, reason))
        if warn:
            warn(f"skipping {source}: {reason}")


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
    stdin by its first character), text, or jsonl."""
    for source in sources:
        if source == "-":
            stream = stdin or sys.stdin
            head = stream.read(1)
            fmt = input_format if input_format != "auto" else ("jsonl" if head == "{" else "text")
            rest = _prepend(head, stream)
            if fmt == "jsonl":
                yield from _jsonl_documents(rest, "<stdin>", report, warn)
            else:
                yield from _text_documents(rest, "-", report, warn, chunk_chars)
            continue
        path = Path(source)
        problem = _check_file(path)
        if problem:
            report.skip(source, problem, warn)
            continue
        fmt = input_format if input_format != "auto" else ("jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "text")
        try:
            with path.open("r", encoding="utf-8", errors="strict", newline="") as fh:
                if fmt == "jsonl":
                    yield from _jsonl_documents(fh, source, report, warn)
                else:
                    yield from _text_documents(fh, source, report, warn, chunk_chars)
        except UnicodeDecodeError as exc:
            report.skip(source, f"not UTF-8 text (byte {exc.start} of a chunk: {exc.reason})", warn)
        except OSError as exc:
            report.skip(source, f"cannot read: {exc.strerror or exc}", warn)


class _prepend:
    """A text stream with one already-read prefix put back."""

    def __init__(self, prefix: str, stream: TextIO) -> None:
        self.prefix, self.stream = prefix, stream

    def read(self, n: int = -1) -> str:
        if self.prefix:
            head, self.prefix = self.prefix, ""
            if n is None or n < 0:
                return head + self.stream.read()
            return head + self.stream.read(max(0, n - len(head)))
        return self.stream.read(n)

    def __iter__(self) -> Iterator[str]:
        first = self.prefix + (self.stream.readline() if self.prefix else "")
        self.prefix = ""
        if first:
            yield first
        yield from self.stream


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


def _text_documents(stream, source: str, report: InputReport, warn, chunk_chars: int) -> Iterator[Document]:
    """One document per text source; a large one arrives as consecutive chunks cut at
    paragraph (else line) boundaries, each with its character offset."""
    offset = 0
    buffer = ""
    yielded = False
    while True:
        block = stream.read(chunk_chars)
        buffer += block
        if not block or len(buffer) >= chunk_chars:
            if block:
                cut = buffer.rfind("\n\n", 0, chunk_chars)
                if cut < chunk_chars // 4:
                    cut = buffer.rfind("\n", 0, chunk_chars)
                cut = len(buffer) if cut < 0 else cut + 1
            else:
                cut = len(buffer)
            piece, buffer = buffer[:cut], buffer[cut:]
            if piece.strip():
                yield Document(source, piece, None, offset)
                yielded = True
            offset += len(piece)
        if not block and not buffer:
            break
    if not yielded:
        report.skip(source, "empty", warn)
    else:
        report.documents += 1


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
