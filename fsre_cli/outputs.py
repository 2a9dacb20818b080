"""Writing triples: JSONL on stdout or a file, whole documents at a time, flushed.

A killed run leaves only whole lines. With `--output FILE --resume`, documents
recorded as finished in `FILE.progress` are skipped, and lines of a document
that was cut off mid-way (a large file arrives in chunks) are dropped first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterable, TextIO

from fsre_cli.documents import Triple
from fsre_cli.errors import UsageError


class TripleWriter:
    def __init__(self, output: Path | None = None, *, resume: bool = False, stream: TextIO | None = None) -> None:
        if resume and output is None:
            raise UsageError("--resume needs --output FILE (it reads what that file already holds)")
        self.output = output
        self.done: set[str] = set()
        self.written = 0
        self.finished = 0  # documents completed in this run
        self._progress = None
        if output is None:
            self._fh = stream or sys.stdout
            return
        progress_path = output.with_name(output.name + ".progress")
        if resume and output.exists():
            self.done = set(progress_path.read_text(encoding="utf-8").splitlines()) if progress_path.exists() else set()
            self._drop_unfinished(output)
            self._fh = output.open("a", encoding="utf-8")
        else:
            self._fh = output.open("w", encoding="utf-8")
            progress_path.write_text("")
        self._progress = progress_path.open("a", encoding="utf-8")

    def _drop_unfinished(self, output: Path) -> None:
        """Keep whole lines of finished documents only (a kill can cut a line or a document)."""
        kept = []
        for line in output.read_text(encoding="utf-8").splitlines(keepends=True):
            if not line.endswith("\n"):
                continue
            try:
                if json.loads(line).get("doc") in self.done:
                    kept.append(line)
            except json.JSONDecodeError:
                continue
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_text("".join(kept), encoding="utf-8")
        tmp.replace(output)

    def is_done(self, doc_id: str) -> bool:
        return doc_id in self.done

    def write(self, triples: Iterable[Triple]) -> None:
        lines = "".join(json.dumps(t.to_record(), ensure_ascii=False) + "\n" for t in triples)
        if lines:
            self._fh.write(lines)
            self._fh.flush()
            self.written += lines.count("\n")

    def finish_document(self, doc_id: str) -> None:
        """Record a document as complete (after all of its chunks were written)."""
        self.done.add(doc_id)
        self.finished += 1
        if self._progress is not None:
            self._progress.write(doc_id + "\n")
            self._progress.flush()

    def close(self) -> None:
        if self.output is not None:
            self._fh.close()
        if self._progress is not None:
            self._progress.close()
