"""The model store: a schema's model is a folder given by the user, or the cached one for its
cache key, or one trained now and saved to the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from fsre_cli.corpus import CorpusSentence, corpus_digest
from fsre_cli.errors import UsageError
from fsre_cli.schema import Schema, Span
from fsre_cli.sidecar import Sidecar
from fsre_cli.formats import is_current
from fsre_cli.tkre.artifact import (
    Artifact, cached_model_dir, check_compatible, load_artifact, save_artifact, stored_format,
)
from fsre_cli.tkre.config import TrainConfig, cache_key
from fsre_cli.tkre.encoder import resolve_encoder


def cached_dir_for(schema: Schema, sidecar: Sidecar | None, config: TrainConfig, device: str,
                   mentions: Mapping[str, Sequence[Span]] | None = None,
                   corpus: Sequence[CorpusSentence] = ()) -> Path:
    """Where the cache keeps the model this config would train on `device`."""
    config = config.for_device(device)
    source = resolve_encoder(config.encoder or schema.encoder)
    digest = corpus_digest(corpus) if corpus else None
    return cached_model_dir(cache_key(schema, sidecar, config, source.fingerprint, mentions, digest))


def load_cached(directory: Path, device: str, log=None) -> Artifact | None:
    """The model cached in `directory`, or None when there is none or it was written in another
    format (said in one line: it will be retrained and replaced)."""
    if not (directory / "fsre.json").exists():
        return None
    if not is_current("model", stored_format(directory), str(directory), log.warn if log else None):
        return None
    return load_artifact(directory, device)


def earlier_models(schema: Schema, directory: Path) -> list[Path]:
    """Cached models of the same schema content under other keys (newest first): what a user
    may expect to be reused when a new key (an upgrade, a changed setting) means training."""
    import json

    found = []
    for meta_path in directory.parent.glob("*/fsre.json"):
        if meta_path.parent == directory:
            continue
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and (meta.get("schema") or {}).get("hash") == schema.content_hash():
            found.append(meta_path.parent)
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def ensure_model(
    schema: Schema,
    sidecar: Sidecar | None,
    config: TrainConfig,
    *,
    model_dir: str | None = None,
    device: str = "cpu",
    train_if_missing: bool = True,
    force: bool = False,
    mentions: Mapping[str, Sequence[Span]] | None = None,
    corpus: Sequence[CorpusSentence] = (),
    save: bool = True,
    log=None,
) -> tuple[Artifact, str]:
    """The model for this schema: `model_dir` if given, else the cached one for the cache key,
    else a freshly trained one (saved to the cache unless `save` is off). Returns it with where
    it came from. `mentions`: the example sentences' entity mentions; `corpus`: unlabelled
    sentences for pre-training (see `train_model`)."""
    from fsre_cli.tkre.progress import train_with_progress

    if model_dir is not None:
        artifact = load_artifact(Path(model_dir), device)
        for warning in check_compatible(artifact, schema, model_dir):
            if log:
                log.warn(warning)
        return artifact, model_dir
    directory = cached_dir_for(schema, sidecar, config, device, mentions, corpus)
    cached = None if force else load_cached(directory, device, log)
    if cached is not None:
        return cached, str(directory)
    if not train_if_missing:
        raise UsageError(f"no trained model for schema {schema.name!r}; run: fsre train {schema.path or 'SCHEMA'}")
    earlier = earlier_models(schema, directory)
    if earlier and log:
        log.info(f"the cached model {earlier[0]} for this schema was trained with other settings or by an earlier "
                 "fsre (a different cache key); training one for these")
    result = train_with_progress(schema, sidecar, config.for_device(device), device=device, mentions=mentions,
                                 corpus=corpus, log=log)
    if not save:
        return result.artifact, "(not saved)"
    save_artifact(result.artifact, directory)
    return result.artifact, str(directory)
