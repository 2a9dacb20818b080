"""Entities with Stanza: sentences and typed entity mentions with offsets into the original text.

* `models`: where Stanza models live, `fsre models download` / `list`, missing-model messages.
* `recognizer`: `EntityRecognizer` (NER or given entities, in bulk batches) and the token/sentence helpers.
* `given`: the user's own entities (JSONL `entities`): validation and placing them in sentences.
* `mention_cache`: the on-disk cache of the example sentences' NER mentions.

Stanza is imported lazily: importing this package does not load it.
"""

from __future__ import annotations

from fsre_cli.entities.given import given_entity_problem
from fsre_cli.entities.models import (
    DOWNLOAD_PROCESSORS,
    ENV_STANZA_DIR,
    MINIMAL_RESOURCES,
    download_models,
    list_models,
    missing_models_message,
    resolve_stanza_dir,
    write_minimal_resources,
)
from fsre_cli.entities.recognizer import ENTITY_MODES, EntitiesMode, EntityRecognizer

__all__ = [
    "DOWNLOAD_PROCESSORS",
    "ENTITY_MODES",
    "ENV_STANZA_DIR",
    "MINIMAL_RESOURCES",
    "EntitiesMode",
    "EntityRecognizer",
    "download_models",
    "given_entity_problem",
    "list_models",
    "missing_models_message",
    "resolve_stanza_dir",
    "write_minimal_resources",
]
