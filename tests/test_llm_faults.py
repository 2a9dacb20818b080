"""Hostile or broken LLM endpoints, played by tiny local servers (no llama.cpp needed): each
fault ends quickly in a typed, one-line error that names the endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fake_llm_server import http_server, openai_like, silent_server
from fsre_cli.errors import LLMUnavailableError, UsageError
from fsre_cli.llm.client import LLMBadAnswerError, LLMClient, LLMConfig, validate_base_url

ROOT = Path(__file__).resolve().parents[1]
HELLO = [{"role": "user", "content": "Say hello."}]
HTML = b"<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>It works</body></html>"


def html_everywhere(method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
    return 200, "text/html", HTML


def fsre(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "FSRE_THREADS": "1", "NO_COLOR": "1", "COLUMNS": "300", **env}
    return subprocess.run([sys.executable, "-m", "fsre_cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=ROOT, timeout=timeout)


def one_line_error(stderr: str) -> str:
    """The error line of a failed command, checking nothing else went to stderr but progress."""
    assert "Traceback" not in stderr and "AttributeError" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(lines) == 1, stderr
    return lines[0]


# --------------------------------------------------------------------------- a server that never answers
@pytest.mark.timeout(20)
def test_silent_endpoint_fails_within_the_deadline(tmp_path: Path) -> None:
    env = {"FSRE_LLM_TIMEOUT": "0.5", "FSRE_LLM_DEADLINE": "2", "FSRE_LLM_MAX_RETRIES": "50",
           "FSRE_CACHE_DIR": str(tmp_path)}
    with silent_server() as url:
        config = LLMConfig.from_env(env={**env, "OPENAI_BASE_URL": url, "FSRE_LLM_MODEL": "m"}, retry_backoff=0.05)
        assert (config.timeout, config.deadline, config.connect_timeout) == (0.5, 2.0, 10.0)
        started = time.monotonic()
        with LLMClient(config) as client, pytest.raises(LLMUnavailableError) as err:
            client.chat(HELLO)
        waited = time.monotonic() - started
    assert 1.0 <= waited < 4.0  # the deadline, not 51 attempts x 0.5 s
    message = str(err.value)
    assert url in message and "did not answer within 0.5 s" in message and "s in all" in message
    assert err.value.exit_code == 3


def test_default_timeouts_are_bounded() -> None:
    config = LLMConfig.from_env(env={})
    assert config.connect_timeout <= 10 and config.timeout <= 120 and config.deadline <= 300
    with pytest.raises(UsageError, match="FSRE_LLM_DEADLINE"):
        LLMConfig.from_env(env={"FSRE_LLM_DEADLINE": "0"})
    with pytest.raises(UsageError, match="FSRE_LLM_CONNECT_TIMEOUT"):
        LLMConfig.from_env(env={"FSRE_LLM_CONNECT_TIMEOUT": "soon"})


@pytest.mark.timeout(30)
def test_synth_against_a_silent_endpoint_exits_3_quickly(tmp_path: Path) -> None:
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA)
    with silent_server() as url:
        started = time.monotonic()
        out = fsre("synth", str(schema), "--no-explanations", env={
            "OPENAI_BASE_URL": url, "FSRE_LLM_MODEL": "m", "FSRE_CACHE_DIR": str(tmp_path),
            "FSRE_LLM_TIMEOUT": "0.5", "FSRE_LLM_DEADLINE": "1.5"})
        waited = time.monotonic() - started
    assert out.returncode == 3, out.stderr
    assert url in one_line_error(out.stderr) and waited < 20


# --------------------------------------------------------------------------- answers that are not the protocol
@pytest.mark.timeout(20)
def test_html_with_status_200_is_a_typed_error_naming_what_came_back(tmp_path: Path) -> None:
    with http_server(html_everywhere) as (url, seen):
        with LLMClient(LLMConfig(base_url=url, cache_path=None)) as client, pytest.raises(LLMBadAnswerError) as err:
            client.list_models()
        message = str(err.value)
        assert url in message and "GET /models" in message and "text/html" in message and "Welcome to nginx" in message
        # a configured model skips discovery; the chat answer itself is the HTML
        config = LLMConfig(base_url=url, model="m", cache_path=tmp_path / "c.sqlite3", max_retries=3)
        with LLMClient(config) as client, pytest.raises(LLMBadAnswerError) as err:
            client.chat(HELLO)
        assert "POST /chat/completions" in str(err.value) and "<!DOCTYPE html>" in str(err.value)
        assert err.value.exit_code == 3
        assert seen.count("/v1/chat/completions") == 1  # not retried: the same page would come back
        assert len(str(err.value)) < 400


@pytest.mark.timeout(20)
def test_json_of_the_wrong_shape_is_a_typed_error() -> None:
    def wrong(method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        if path.endswith("/models"):
            return 200, "application/json", b'{"data": [{"name": "no id"}]}'
        return 200, "application/json", json.dumps({"choices": [{"message": "hi"}]}).encode()

    with http_server(wrong) as (url, _):
        with LLMClient(LLMConfig(base_url=url, cache_path=None)) as client:
            with pytest.raises(LLMBadAnswerError, match="GET /models .* not a model list"):
                client.list_models()
        with LLMClient(LLMConfig(base_url=url, model="m", cache_path=None)) as client:
            with pytest.raises(LLMBadAnswerError, match="POST /chat/completions .* not a chat completion"):
                client.chat(HELLO)


@pytest.mark.timeout(20)
def test_a_well_formed_fake_endpoint_still_works() -> None:
    with http_server(openai_like("hello there")) as (url, _):
        with LLMClient(LLMConfig(base_url=url, cache_path=None)) as client:
            assert client.model == "fake" and client.chat(HELLO).text == "hello there"


@pytest.mark.timeout(20)
def test_top_logprobs_are_read_from_the_raw_answer() -> None:
    answer = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "A"}, "logprobs": {
        "content": [{"token": "A", "logprob": -0.1, "top_logprobs": [{"token": "A", "logprob": -0.1},
                                                                     {"token": "B", "logprob": -2.5}]}]}}]}).encode()

    def respond(method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        return 200, "application/json", answer

    with http_server(respond) as (url, _):
        with LLMClient(LLMConfig(base_url=url, model="m", cache_path=None)) as client:
            result = client.chat(HELLO, max_tokens=1, top_logprobs=2)
    assert result.text == "A" and result.top_logprobs == [{"A": -0.1, "B": -2.5}]


@pytest.mark.timeout(30)
def test_synth_against_html_prints_one_line_and_exits_3(tmp_path: Path) -> None:
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA)
    with http_server(html_everywhere) as (url, _):
        out = fsre("synth", str(schema), env={"OPENAI_BASE_URL": url, "FSRE_CACHE_DIR": str(tmp_path)})
    assert out.returncode == 3, out.stderr
    line = one_line_error(out.stderr)
    assert url in line and "Welcome to nginx" in line
    assert not (tmp_path / "s.synth.jsonl").exists()


@pytest.mark.timeout(60)
def test_qa4re_extract_against_html_prints_one_line_and_exits_3(tmp_path: Path) -> None:
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA)
    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps(DOC) + "\n")
    with http_server(html_everywhere) as (url, _):
        out = fsre("extract", str(docs), "--schema", str(schema), "--method", "qa4re",
                   env={"OPENAI_BASE_URL": url, "FSRE_LLM_MODEL": "m", "FSRE_CACHE_DIR": str(tmp_path)})
    assert out.returncode == 3, out.stderr
    assert out.stdout == ""
    line = one_line_error(out.stderr)
    assert url in line and "POST /chat/completions" in line


# --------------------------------------------------------------------------- malformed OPENAI_BASE_URL
@pytest.mark.parametrize("url", ["htp:/x", "localhost:8080", "localhost:8080/v1", "http://", "http:///v1",
                                 "http://host:99999/v1", "http://h st/v1", "ftp://h/v1"])
def test_malformed_base_url_is_a_usage_error_at_once(url: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        LLMConfig.from_env(env={"OPENAI_BASE_URL": url, "FSRE_CACHE_DIR": str(tmp_path)})
    assert "OPENAI_BASE_URL" in str(err.value) and repr(url) in str(err.value) and err.value.exit_code == 2
    with pytest.raises(UsageError):
        LLMClient(LLMConfig(base_url=url, cache_path=None))


def test_scheme_less_url_gets_a_hint_and_good_urls_pass() -> None:
    with pytest.raises(UsageError, match=r"did you mean http://localhost:8080/v1\?"):
        validate_base_url("localhost:8080/v1")
    for good in ("http://127.0.0.1:8080/v1", "https://api.openai.com/v1", "http://[::1]:8080/v1", " http://h/v1 "):
        assert validate_base_url(good) == good.strip()


@pytest.mark.timeout(30)
def test_synth_with_a_malformed_url_exits_2_without_retrying(tmp_path: Path) -> None:
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA)
    started = time.monotonic()
    out = fsre("synth", str(schema), env={"OPENAI_BASE_URL": "htp:/x", "FSRE_CACHE_DIR": str(tmp_path)})
    assert out.returncode == 2, out.stderr
    assert "OPENAI_BASE_URL='htp:/x'" in one_line_error(out.stderr)
    assert time.monotonic() - started < 15  # no backoff: the process start is all the time it takes


SCHEMA = """\
name: faults
entity_types: {PERSON: [PERSON], ORG: [ORG]}
relations:
  works_for:
    description: the person works for the organization
    head: PERSON
    tail: ORG
    template: "{head} works for {tail}"
    examples:
      - {text: "Alice Smith works for Acme Corp in Boston.", head: Alice Smith, tail: Acme Corp}
"""

DOC = {
    "id": "d1",
    "text": "Dana Scott works for Umbrella Corp.",
    "entities": [{"start": 0, "end": 10, "type": "PERSON"}, {"start": 21, "end": 34, "type": "ORG"}],
}
