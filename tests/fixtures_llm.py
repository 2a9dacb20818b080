"""LLM fixtures: the real local llama.cpp server for the test session.

CI may start the server before pytest and export its URL as FSRE_TEST_LLM_URL
(e.g. `http://127.0.0.1:8765/v1`); otherwise the session starts one with
`start_server()` and stops it at the end. Tests that use these fixtures are
marked `llm` and `slow`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from fsre_cli.errors import ModelMissingError
from fsre_cli.llm.client import LLMClient, LLMConfig
from fsre_cli.llm.server import check_llama_cpp, models_answer, start_server

__all__ = ["llm_base_url", "llm_config", "llm_client"]


@pytest.fixture(scope="session")
def llm_base_url() -> Iterator[str]:
    """Base URL (ending in /v1) of a running OpenAI-compatible server with the local model."""
    url = os.environ.get("FSRE_TEST_LLM_URL")
    if url:
        if not models_answer(url, timeout=5.0):
            pytest.fail(f"FSRE_TEST_LLM_URL={url} does not answer GET /models")
        yield url.rstrip("/")
        return
    try:
        check_llama_cpp()
    except ModelMissingError as exc:
        pytest.skip(str(exc))
    server = start_server()
    try:
        yield server.base_url
    finally:
        server.stop()


@pytest.fixture
def llm_config(llm_base_url: str, tmp_path: Path) -> LLMConfig:
    """A config for the session server with a fresh cache and quick retries."""
    return LLMConfig(
        base_url=llm_base_url,
        api_key=None,
        model=None,  # whatever the server serves (alias "smollm2" when started here)
        timeout=120.0,
        max_retries=2,
        retry_backoff=0.2,
        concurrency=2,
        cache_path=tmp_path / "llm-cache.sqlite3",
    )


@pytest.fixture
def llm_client(llm_config: LLMConfig) -> Iterator[LLMClient]:
    """A real client on the session server with a fresh, per-test cache."""
    client = LLMClient(llm_config)
    try:
        yield client
    finally:
        client.close()
