"""The on-disk cache of the example sentences' NER mentions.

Every extract needs the examples' mentions (they are part of the trained model's
cache key), so a repeated run reads them from here instead of loading the NER
model. An entry is keyed by everything that determines the mentions: language,
NER model files (path, size, mtime), Stanza and spaCy versions, the schema's
label mapping and the texts. Entries are plain JSON, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Mapping

from fsre_cli.formats import FORMATS
from fsre_cli.schema import Span

# in the key: an entry of another format is never read, it is simply rebuilt under a new key
CACHE_FORMAT = FORMATS["mentions"].version


def entry_path(
    directory: Path,
    *,
    lang: str,
    model_files: list[tuple[str, int, int]],
    entity_types: Mapping[str, Iterable[str]],
    texts: list[str],
) -> Path:
    """The cache entry for these texts under this NER model and schema label mapping."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("stanza", "spacy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    payload = {
        "format": CACHE_FORMAT,
        "lang": lang,
        "model": model_files,
        "versions": versions,
        "labels": sorted((t, sorted(labels)) for t, labels in entity_types.items()),
        "texts": sorted(texts),
    }
    digest = hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()[:24]
    return Path(directory) / f"{digest}.json"


def read_mentions(path: Path, texts: list[str]) -> dict[str, list[Span]] | None:
    """A cache entry's mentions in the order of `texts`; None when missing, unreadable or incomplete."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {t: [Span.from_record(r) for r in data[t]] for t in texts}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_mentions(path: Path, mentions: dict[str, list[Span]]) -> None:
    """Write atomically (a killed run leaves no half entry); a cache that cannot be written is skipped."""
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        records = {t: [m.to_record() for m in spans] for t, spans in mentions.items()}
        tmp.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
