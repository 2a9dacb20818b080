"""Writing triples: JSONL on stdout or a file, whole documents at a time, flushed.

A killed run leaves only whole lines. With `--output FILE --resume`, documents
recorded as finished in `FILE.progress` (one id a line; an id that holds a line
break, starts with a quote or is not valid Unicode is written as a JSON string) are skipped, and lines of a document that was cut off mid-way
(a large file arrives in chunks) are dropped first.

A write that fails (disk full, I/O error) raises a one-line `FsreError` and puts
a regular output file back to its last whole line. An output that is not a
regular file (`/dev/stdout`, a FIFO, a terminal) is written as a stream: no
progress file beside it, no truncation, and no `--resume`.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Iterable, TextIO

from fsre_cli.documents import Triple
from fsre_cli.errors import FsreError, UsageError

_DEVICE_DIRS = ("/dev/", "/proc/")  # /dev/stdout may lead to a regular file: still no progress file in /dev


def _reason(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "character device"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "device path"


def check_output_path(path: Path, *, resume: bool = False) -> bool:
    """Fail with a one-line UsageError, before any work, when `path` cannot take the output:
    a directory, a parent directory that is missing or not writable, `--resume` on an output
    that is not a regular file. Returns whether the output is (or will be) a regular file,
    which alone gets a progress file and `--resume`."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--output {path}: {_reason(exc) if isinstance(exc, OSError) else exc}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UsageError(f"--output {path}: is a directory; give a file path")
    if st is not None and not os.access(path, os.W_OK):
        raise UsageError(f"--output {path}: permission denied")
    regular = st is None or stat.S_ISREG(st.st_mode)
    if regular and str(path.absolute()).startswith(_DEVICE_DIRS):
        regular = False
    if not regular:
        if resume:
            kind = _kind(st.st_mode) if st is not None else "device path"
            raise UsageError(f"--resume needs a regular output file; {path} is a {kind}, which keeps no "
                             "record of finished documents")
        return False
    parent = path.parent
    if not parent.exists():
        raise UsageError(f"--output {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise UsageError(f"--output {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--output {path}: cannot create files in {parent} (permission denied)")
    progress = path.with_name(path.name + ".progress")
    if resume and st is not None and st.st_size > 0 and not progress.exists():
        # without it no document counts as finished, and resuming would drop every line
        raise UsageError(f"--resume: {progress} is missing, so fsre cannot tell which documents in {path} are "
                         "complete; move the file away, or run without --resume to start over")
    return True


def read_progress(path: Path) -> set[str]:
    """The finished ids in a progress file, one a line: a line that is a JSON string is that
    string (see `progress_line`), any other line is the id as it is. A last line without its
    newline was cut by a kill, so that document counts as unfinished."""
    try:
        data = path.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return set()
    except OSError as exc:
        raise FsreError(f"cannot read {path}: {_reason(exc)}") from None
    lines = data.split("\n")
    lines.pop()  # what follows the last newline: nothing, or a line cut short
    done: set[str] = set()
    for line in lines:
        if line.startswith('"'):
            try:
                value = json.loads(line)
            except ValueError:
                value = None
            if isinstance(value, str):
                done.add(value)
                continue
        done.add(line)
    return done


def progress_line(doc_id: str) -> bytes:
    """An id as one line of a progress file: as it is (the format older versions read and
    write), or as a JSON string when it would not read back as itself (a line break splits
    it in two, a leading quote looks like JSON, a lone surrogate cannot be written)."""
    plain = not doc_id.startswith('"') and "\n" not in doc_id and "\r" not in doc_id
    if plain:
        try:
            return (doc_id + "\n").encode("utf-8")
        except UnicodeEncodeError:
            pass
    return (json.dumps(doc_id) + "\n").encode("ascii")


class TripleWriter:
    def __init__(self, output: Path | None = None, *, resume: bool = False, stream: TextIO | None = None) -> None:
        if resume and output is None:
            raise UsageError("--resume needs --output FILE (it reads what that file already holds)")
        self.output = output
        self.done: set[str] = set()
        self.written = 0
        self.finished = 0  # documents completed in this run
        self._stream: TextIO | None = None
        self._fd: int | None = None
        self._size: int | None = None  # a regular output's size at its last whole line
        self._progress_path: Path | None = None
        self._progress_fd: int | None = None
        self._progress_size: int | None = None
        if output is None:
            self._stream = stream or sys.stdout
            return
        output = Path(output)
        regular = check_output_path(output, resume=resume)
        try:
            if not regular:  # a device or FIFO: written as a stream, never truncated
                self._fd = os.open(output, os.O_WRONLY | os.O_APPEND)
                return
            self._progress_path = output.with_name(output.name + ".progress")
            again = resume and output.exists()
            if again:
                self.done = read_progress(self._progress_path)
                self._drop_unfinished(output)
            keep = os.O_APPEND if again else os.O_TRUNC
            self._fd = os.open(output, os.O_WRONLY | os.O_CREAT | keep, 0o666)
            self._size = os.fstat(self._fd).st_size
            self._progress_fd = os.open(self._progress_path, os.O_WRONLY | os.O_CREAT | keep, 0o666)
            self._progress_size = os.fstat(self._progress_fd).st_size
        except OSError as exc:
            self.close()
            raise FsreError(f"cannot write {exc.filename or output}: {_reason(exc)}") from None

    def _drop_unfinished(self, output: Path) -> None:
        """Keep whole lines of finished documents only (a kill can cut a line or a document).
        Read and written line by line, so a large output is never held in memory."""
        tmp = output.with_name(output.name + ".tmp")
        try:
            with output.open("rb") as src, tmp.open("wb") as dst:
                for line in src:
                    if not line.endswith(b"\n"):
                        continue
                    try:
                        record = json.loads(line)
                    except (ValueError, RecursionError):
                        continue
                    doc = record.get("doc") if isinstance(record, dict) else None
                    if isinstance(doc, str) and doc in self.done:
                        dst.write(line)
            tmp.replace(output)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise

    def is_done(self, doc_id: str) -> bool:
        return doc_id in self.done

    def _write_whole(self, fd: int, payload: bytes, size: int | None, path: Path) -> int | None:
        """Write all of `payload`; when that fails, cut a regular file back to `size` (its
        last whole line) and raise one line that says why. Returns the new size."""
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:
            if size is not None:
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    pass
            raise FsreError(f"cannot write {path}: {_reason(exc)}") from None
        return None if size is None else size + len(payload)

    def write(self, triples: Iterable[Triple]) -> None:
        """Write one document's (or chunk's) triples in a single write."""
        lines = "".join(json.dumps(t.to_record(), ensure_ascii=False) + "\n" for t in triples)
        if not lines:
            return
        if self._fd is None:
            try:
                self._stream.write(lines)  # type: ignore[union-attr]
                self._stream.flush()  # type: ignore[union-attr]
            except BrokenPipeError:  # `fsre extract ... | head`: the CLI ends quietly
                raise
            except OSError as exc:
                raise FsreError(f"cannot write to standard output: {_reason(exc)}") from None
        else:
            try:
                payload = lines.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise FsreError(f"cannot write {self.output}: a triple holds text that is not valid Unicode "
                                f"({exc.reason})") from None
            self._size = self._write_whole(self._fd, payload, self._size, self.output)  # type: ignore[arg-type]
        self.written += lines.count("\n")

    def finish_document(self, doc_id: str) -> None:
        """Record a document as complete (after all of its chunks were written)."""
        self.done.add(doc_id)
        self.finished += 1
        if self._progress_fd is not None:
            self._progress_size = self._write_whole(self._progress_fd, progress_line(doc_id), self._progress_size,
                                                    self._progress_path)  # type: ignore[arg-type]

    def close(self) -> None:
        for name in ("_fd", "_progress_fd"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                try:
                    os.close(fd)
                except OSError:
                    pass
