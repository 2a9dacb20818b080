"""Every persisted format is versioned in one table, and an entry of another version is ignored
(and rebuilt by its owner) with one line saying so."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from fsre_cli import formats
from fsre_cli.errors import UsageError
from fsre_cli.llm.cache import LLMCache
from fsre_cli.schema import parse_schema

SCHEMA = parse_schema("""\
name: fmt
entity_types: {PERSON: [PERSON], ORG: [ORG]}
relations:
  works_for:
    head: PERSON
    tail: ORG
    examples:
      - {text: "Alice Smith works for Acme Corp.", head: Alice Smith, tail: Acme Corp}
""")


def test_is_current_says_once_per_place_why_an_entry_is_ignored() -> None:
    said: list[str] = []
    assert formats.is_current("model", formats.FORMATS["model"].version, "/m", said.append)
    assert not formats.is_current("model", 0, "/old-model", said.append)
    assert not formats.is_current("model", 0, "/old-model", said.append)
    assert said == [f"ignoring trained model /old-model: format 0, this fsre writes "
                    f"{formats.FORMATS['model'].version}; it will be rebuilt"]


def test_llm_cache_of_another_format_is_dropped_with_a_notice(tmp_path: Path) -> None:
    path = tmp_path / "llm.sqlite"
    with LLMCache(path) as cache:
        cache.put("k", "m", {}, {"text": "A", "top_logprobs": None})
    with LLMCache(path) as cache:  # same format: kept
        assert cache.get("k") == {"text": "A", "top_logprobs": None}
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    said: list[str] = []
    with LLMCache(path, warn=said.append) as cache:
        assert cache.get("k") is None and len(cache) == 0
    assert len(said) == 1 and "LLM answer cache" in said[0] and "format 99" in said[0]


def test_a_cached_model_of_an_older_format_is_not_used(tmp_path: Path, monkeypatch) -> None:
    from fsre_cli.console import Log
    from fsre_cli.tkre.config import TrainConfig
    from fsre_cli.tkre.store import cached_dir_for, ensure_model

    monkeypatch.setenv("FSRE_CACHE_DIR", str(tmp_path))
    directory = cached_dir_for(SCHEMA, None, TrainConfig(), "cpu")
    directory.mkdir(parents=True)
    (directory / "fsre.json").write_text(json.dumps({"format": 0, "relations": ["works_for"]}))
    said: list[str] = []

    class Recorder(Log):
        def warn(self, msg: str) -> None:
            said.append(msg)

    with pytest.raises(UsageError, match="no trained model"):
        ensure_model(SCHEMA, None, TrainConfig(), device="cpu", train_if_missing=False, log=Recorder())
    assert said and "format 0" in said[0] and str(directory) in said[0]


def test_a_damaged_llm_cache_is_set_aside_with_a_notice(tmp_path: Path) -> None:
    path = tmp_path / "llm.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    said: list[str] = []
    with LLMCache(path, warn=said.append) as cache:
        cache.put("k", "m", {}, {"text": "A", "top_logprobs": None})
        assert cache.get("k") is not None
    assert len(said) == 1 and "could not be read" in said[0]
    assert list(tmp_path.glob("llm.sqlite.damaged-*"))


def test_an_llm_cache_under_a_file_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="FSRE_CACHE_DIR"):
        LLMCache(blocker / "llm.sqlite")


def test_training_under_a_new_key_names_the_earlier_model_of_the_same_schema(tmp_path: Path, monkeypatch) -> None:
    from fsre_cli.tkre.config import TrainConfig
    from fsre_cli.tkre.store import cached_dir_for, earlier_models

    monkeypatch.setenv("FSRE_CACHE_DIR", str(tmp_path))
    directory = cached_dir_for(SCHEMA, None, TrainConfig(), "cpu")
    old = directory.parent / "an-older-key"
    old.mkdir(parents=True)
    (old / "fsre.json").write_text(json.dumps({"format": 1, "schema": {"hash": SCHEMA.content_hash()}}))
    other = directory.parent / "another-schema"
    other.mkdir()
    (other / "fsre.json").write_text(json.dumps({"format": 1, "schema": {"hash": "something else"}}))
    assert earlier_models(SCHEMA, directory) == [old]
