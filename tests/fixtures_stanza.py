"""Stanza fixtures: a tiny real NER model trained offline for the test session.

The model is cached under `tests/.cache/stanza/tiny-ner-<recipe hash>/` (the
hash covers tests/tiny_stanza.py and the Stanza version), so it is trained
once and reused across runs until the recipe changes. Set FSRE_TEST_CACHE to
cache elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest

from fsre_cli.entities import EntityRecognizer
from fsre_cli.schema import Schema, parse_schema

TEST_CACHE = Path(os.environ.get("FSRE_TEST_CACHE") or Path(__file__).parent / ".cache")

STANZA_SCHEMA_YAML = """\
name: stanza-test
entity_types:
  PERSON: [PERSON]
  ORG: [ORG]
  PLACE: [GPE, LOC]
relations:
  works_for:
    description: the person works for the organization
    head: PERSON
    tail: ORG
    examples:
      - text: Alice Smith works for Acme Corp.
        head: Alice Smith
        tail: Acme Corp
  based_in:
    description: the organization is based in the place
    head: ORG
    tail: PLACE
  born_in:
    description: the person was born in the place
    head: PERSON
    tail: PLACE
"""


@pytest.fixture(scope="session")
def tiny_ner_model() -> Path:
    """Path of the tiny trained Stanza NER model (.pt; labels PERSON, ORG, GPE); resources.json beside it."""
    from tiny_stanza import cached_tiny_ner

    return cached_tiny_ner(TEST_CACHE / "stanza")


@pytest.fixture(scope="session")
def stanza_schema() -> Schema:
    """A schema mapping PERSON, ORG and PLACE (GPE, LOC) with three type-constrained relations."""
    return parse_schema(STANZA_SCHEMA_YAML, filename="stanza-test.yaml")


@pytest.fixture
def recognizer_factory(tiny_ner_model: Path, stanza_schema: Schema) -> Callable[..., EntityRecognizer]:
    """`make(schema=None, **kwargs)`: an EntityRecognizer using the tiny model unless kwargs say otherwise."""

    def make(schema: Schema | None = None, **kwargs: Any) -> EntityRecognizer:
        kwargs.setdefault("ner_model_path", tiny_ner_model)
        return EntityRecognizer(schema or stanza_schema, **kwargs)

    return make


@pytest.fixture(scope="session")
def tiny_recognizer(tiny_ner_model: Path, stanza_schema: Schema) -> EntityRecognizer:
    """One shared recognizer over the tiny model and `stanza_schema` (pipelines load once per session)."""
    return EntityRecognizer(stanza_schema, ner_model_path=tiny_ner_model)
