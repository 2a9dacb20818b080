"""The LLM client against the real local llama.cpp server: chat, JSON, cache, retries, errors."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import openai
import pytest

from fsre_cli.errors import LLMUnavailableError, UsageError
from fsre_cli.llm.cache import LLMCache, cache_key
from fsre_cli.llm.client import LLMClient, LLMConfig, LLMOutputError, parse_json
from fsre_cli.llm.server import free_port, start_server

HELLO = [{"role": "user", "content": "Say hello in three words."}]
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def counting_http_client() -> tuple[openai.DefaultHttpxClient, list[str]]:
    """An HTTP client that records every request the openai package sends."""
    sent: list[str] = []
    client = openai.DefaultHttpxClient(event_hooks={"request": [lambda request: sent.append(str(request.url))]})
    return client, sent


# --------------------------------------------------------------------------- real server
@pytest.mark.llm
@pytest.mark.slow
def test_chat_answers_text(llm_client: LLMClient) -> None:
    result = llm_client.chat(HELLO, max_tokens=12)
    assert isinstance(result.text, str) and result.text.strip()
    assert result.cached is False and result.top_logprobs is None
    assert llm_client.model  # discovered from /v1/models


@pytest.mark.llm
@pytest.mark.slow
def test_top_logprobs_per_token(llm_client: LLMClient) -> None:
    msg = [{"role": "user", "content": "Is Paris in France? Answer with the letter. A. yes B. no"}]
    result = llm_client.chat(msg, max_tokens=1, top_logprobs=3)
    assert result.top_logprobs is not None and len(result.top_logprobs) == 1
    alternatives = result.top_logprobs[0]
    assert 1 <= len(alternatives) <= 3
    assert all(isinstance(t, str) and lp <= 0.0 for t, lp in alternatives.items())


@pytest.mark.llm
@pytest.mark.slow
def test_chat_json_parses_a_real_constrained_answer(llm_client: LLMClient) -> None:
    data = llm_client.chat_json([{"role": "user", "content": "Describe a person as JSON with name and age."}], PERSON)
    assert isinstance(data, dict) and isinstance(data["name"], str) and isinstance(data["age"], int)
    # llama.cpp rejects json_schema (HTTP 500) and accepts json_object + schema: the client learnt that
    assert llm_client.json_mode in ("json_schema", "json_object_schema")


@pytest.mark.llm
@pytest.mark.slow
def test_second_identical_call_makes_no_http_request(llm_config: LLMConfig) -> None:
    http, sent = counting_http_client()
    with LLMClient(llm_config, http_client=http) as first:
        a = first.chat(HELLO, max_tokens=12)
        j = first.chat_json([{"role": "user", "content": "A person as JSON."}], PERSON)
    assert sent and not a.cached
    # a new client (as in a new process) on the same cache file: nothing goes over HTTP
    http2, sent2 = counting_http_client()
    with LLMClient(replace(llm_config, model=first.model), http_client=http2) as second:
        b = second.chat(HELLO, max_tokens=12)
        assert second.chat_json([{"role": "user", "content": "A person as JSON."}], PERSON) == j
        assert b.cached and b.text == a.text
        assert sent2 == [] and second.stats.requests == 0 and second.stats.cache_hits == 2
        # a different parameter is a different key (the first miss also checks the model once)
        second.chat(HELLO, max_tokens=13)
        assert [u.rsplit("/v1", 1)[1] for u in sent2] == ["/models", "/chat/completions"]
    # --no-cache: reads nothing, still writes
    http3, sent3 = counting_http_client()
    with LLMClient(replace(llm_config, model=first.model, use_cache=False), http_client=http3) as third:
        c = third.chat(HELLO, max_tokens=12)
    assert not c.cached and sum(u.endswith("/chat/completions") for u in sent3) == 1


@pytest.mark.llm
@pytest.mark.slow
def test_chat_many_keeps_input_order(llm_client: LLMClient) -> None:
    words = ["apple", "river", "candle", "orange"]
    requests = [{"messages": [{"role": "user", "content": f"Repeat the word: {w}"}], "max_tokens": 6} for w in words]
    ticks: list[int] = []
    results = llm_client.chat_many(requests, progress=ticks.append)
    assert len(results) == 4 and sum(ticks) == 4
    for req, res in zip(requests, results):
        again = llm_client.chat(req["messages"], max_tokens=6)
        assert again.cached and again.text == res.text  # same key -> the same answer, in the same slot


@pytest.mark.llm
@pytest.mark.slow
def test_retries_until_a_restarted_server_answers(tmp_path: Path, llm_base_url: str) -> None:
    port = free_port()
    server = start_server(port=port)
    config = LLMConfig(base_url=server.base_url, model="smollm2", cache_path=None, max_retries=8, retry_backoff=0.5)
    server.stop()
    restarted: list = []

    def restart() -> None:
        time.sleep(1.0)
        restarted.append(start_server(port=port))

    thread = threading.Thread(target=restart)
    thread.start()
    try:
        with LLMClient(config) as client:
            result = client.chat(HELLO, max_tokens=8)
        assert result.text.strip()
        assert client.stats.retries >= 1  # it was down when asked, and came back
    finally:
        thread.join()
        for s in restarted:
            s.stop()


@pytest.mark.llm
@pytest.mark.slow
def test_unknown_model_lists_the_served_ones(llm_config: LLMConfig) -> None:
    with LLMClient(replace(llm_config, model="no-such-model")) as client:
        served = client.list_models()
        with pytest.raises(LLMUnavailableError) as err:
            client.chat(HELLO)
    assert "no-such-model" in str(err.value) and served[0] in str(err.value)
    assert err.value.exit_code == 3


# --------------------------------------------------------------------------- no server needed
def test_unreachable_endpoint_says_what_to_do(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    config = LLMConfig(base_url=url, model="m", cache_path=tmp_path / "c.sqlite3", max_retries=1, retry_backoff=0.01)
    with LLMClient(config) as client, pytest.raises(LLMUnavailableError) as err:
        client.chat(HELLO)
    message = str(err.value)
    assert url in message and "fsre llm serve" in message and "OPENAI_BASE_URL" in message
    assert "2 attempts" in message and err.value.exit_code == 3


def test_no_endpoint_configured(tmp_path: Path) -> None:
    config = LLMConfig.from_env(env={"FSRE_CACHE_DIR": str(tmp_path)})
    assert config.base_url is None and config.cache_path == tmp_path / "llm-cache.sqlite3"
    with LLMClient(config) as client, pytest.raises(LLMUnavailableError, match="no LLM endpoint is configured.*fsre llm serve"):
        client.chat(HELLO)


def test_config_from_env_and_overrides(tmp_path: Path) -> None:
    env = {"OPENAI_BASE_URL": "http://h:1/v1", "FSRE_LLM_MODEL": "m1", "FSRE_LLM_CONCURRENCY": "3",
           "FSRE_CACHE_DIR": str(tmp_path)}
    config = LLMConfig.from_env(env=env, model=None, use_cache=False)
    assert (config.base_url, config.model, config.concurrency, config.use_cache) == ("http://h:1/v1", "m1", 3, False)
    assert LLMConfig.from_env(env=env, model="m2").model == "m2"  # an override beats the environment
    with pytest.raises(UsageError):
        LLMConfig.from_env(env={**env, "FSRE_LLM_CONCURRENCY": "many"})


def test_cache_is_shared_between_connections_and_threads(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    a, b = LLMCache(path), LLMCache(path)  # as two processes would open it
    keys = [cache_key("m", [{"role": "user", "content": str(i)}], {"temperature": 0}) for i in range(40)]

    def write(start: int) -> None:
        for k in keys[start::2]:
            (a if start == 0 else b).put(k, "m", {"i": k}, {"text": k[:5], "top_logprobs": [{"x": -0.1}]})

    threads = [threading.Thread(target=write, args=(s,)) for s in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(a) == 40 and b.get(keys[3]) == {"text": keys[3][:5], "top_logprobs": [{"x": -0.1}]}
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert cache_key("m", [], {"a": 1, "b": 2}) == cache_key("m", [], {"b": 2, "a": 1})
    assert cache_key("m", [], {"a": 1}) != cache_key("m2", [], {"a": 1})
    a.close()
    b.close()


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"a": 1}', {"a": 1}),
        ('  [1, 2]\n', [1, 2]),
        ('```json\n{"a": [1, 2]}\n```', {"a": [1, 2]}),
        ('```\n{"a": 2}\n```\nHope this helps!', {"a": 2}),
        ('Sure! Here is the JSON: {"name": "Ann", "age": 3} -- done.', {"name": "Ann", "age": 3}),
        ('Answer: [{"x": "}"}, 2] and more [3]', [{"x": "}"}, 2]),
        ('{broken {"ok": true}', {"ok": True}),
        ('```json\n{"a": 1}', {"a": 1}),  # unclosed fence
    ],
)
def test_parse_json_is_tolerant(text: str, expected: object) -> None:
    assert parse_json(text) == expected


@pytest.mark.parametrize("text", ["", "no json here", '{"a": ', "```\nnope\n```"])
def test_parse_json_raises_when_there_is_none(text: str) -> None:
    with pytest.raises(LLMOutputError):
        parse_json(text)


@pytest.mark.llm
@pytest.mark.slow
def test_llm_serve_prints_the_url_and_stops_on_ctrl_c(llm_base_url: str) -> None:
    import os
    import signal
    import subprocess
    import sys

    code = (
        "import typer; from fsre_cli.cli.llm import llm_app; app = typer.Typer(); "
        "app.add_typer(llm_app, name='llm'); app()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "llm", "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    try:
        lines = [proc.stderr.readline() for _ in range(3)]
        export = next(line for line in lines if line.startswith("export OPENAI_BASE_URL="))
        url = export.split("=", 1)[1].strip()
        with LLMClient(LLMConfig(base_url=url, cache_path=None)) as client:
            assert client.list_models() == ["smollm2"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and out == "" and "stopping" in err
    from fsre_cli.llm.server import models_answer

    assert not models_answer(url, timeout=1.0)
