"""The sidecar file `NAME.synth.jsonl` beside a schema: LLM-written data a person can review.

One JSON object per line, with a `kind`:

- ``example``: a synthetic example, ``{"kind": "example", "relation", "text",
  "head": {text,start,end,type}, "tail": {...}, "model", "prompt_hash"}``
- ``explanation``: why the head has the relation with the tail in a real example,
  ``{"kind": "explanation", "relation", "text", "head": "Microsoft", "tail": "Bill Gates",
  "example_text", "model", "prompt_hash"}``

A run with the sidecar present needs no LLM; training reads it (stage 1 corpus:
examples + synthetic examples + explanations; fine-tuning: examples + synthetic).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsre_cli.errors import UsageError
from fsre_cli.schema import Example, Schema, Span


@dataclass(frozen=True)
class Explanation:
    relation: str
    text: str
    head: str
    tail: str
    example_text: str = ""


@dataclass
class Sidecar:
    examples: list[Example] = field(default_factory=list)
    explanations: list[Explanation] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)  # as read, for hashing

    def is_empty(self) -> bool:
        return not self.examples and not self.explanations


def example_record(ex: Example, **meta: Any) -> dict[str, Any]:
    return {
        "kind": "example",
        "relation": ex.relation,
        "text": ex.text,
        "head": ex.head.to_record(),
        "tail": ex.tail.to_record(),
        **meta,
    }


def explanation_record(ex: Explanation, **meta: Any) -> dict[str, Any]:
    return {
        "kind": "explanation",
        "relation": ex.relation,
        "text": ex.text,
        "head": ex.head,
        "tail": ex.tail,
        "example_text": ex.example_text,
        **meta,
    }


def read_sidecar(path: Path, schema: Schema | None = None) -> Sidecar:
    """Read a sidecar, checking each synthetic example still fits the schema."""
    side = Sidecar()
    if not path.exists():
        return side
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            kind = rec["kind"]
            if kind == "example":
                ex = Example(
                    rec["relation"], rec["text"], Span.from_record(rec["head"]), Span.from_record(rec["tail"]), "synthetic"
                )
                for span in (ex.head, ex.tail):
                    if ex.text[span.start : span.end] != span.text:
                        raise ValueError(f"offsets of {span.text!r} do not match the text")
                if schema is not None:
                    rel = schema.relations.get(ex.relation)
                    if rel is None:
                        continue  # relation removed from the schema since generation
                    if ex.head.type not in rel.head_types or ex.tail.type not in rel.tail_types:
                        continue
                side.examples.append(ex)
            elif kind == "explanation":
                if schema is not None and rec["relation"] not in schema.relations:
                    continue
                side.explanations.append(
                    Explanation(rec["relation"], rec["text"], rec["head"], rec["tail"], rec.get("example_text", ""))
                )
            else:
                raise ValueError(f"unknown kind {kind!r}")
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{path}:{lineno}: invalid sidecar line: {exc}") from None
        side.records.append(rec)
    return side


def write_sidecar(path: Path, records: list[dict[str, Any]]) -> None:
    """Write the records as JSON lines, atomically (`write_text_atomic`)."""
    write_text_atomic(path, "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records))


def write_text_atomic(path: Path, text: str) -> None:
    """Write atomically: a temporary file in the same folder, flushed to disk, then renamed over
    `path`, so an interrupted or concurrent run never leaves a half-written file. The file keeps
    the permissions of the one it replaces. Sidecars, review files, schema promotions and Ray
    shards are all written here."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def count_records(path: Path) -> int:
    """Non-blank lines of a sidecar (0 when there is none): what replacing it would throw away.
    Counted without validating, so that even a sidecar this version cannot read is protected."""
    try:
        with path.open("rb") as fh:
            return sum(1 for line in fh if line.strip())
    except FileNotFoundError:
        return 0


def beside_path(path: Path) -> Path:
    """Where a run that would shrink `path` writes instead: `NAME.synth.new.jsonl` beside `NAME.synth.jsonl`."""
    return path.with_suffix(".new" + (path.suffix or ".jsonl"))
