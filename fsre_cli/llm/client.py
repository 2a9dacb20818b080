"""The one way fsre talks to an LLM: the `openai` client against any OpenAI-compatible endpoint.

OpenAI, vLLM, Ollama and llama.cpp all speak the chat-completions protocol, so
one client covers them. This layer adds what the pipeline needs on top:

- a disk cache (`LLMCache`) keyed by model, messages and parameters, consulted
  before any request, so re-runs are free and a killed run resumes;
- its own retries with exponential backoff on 429, 5xx and connection errors
  (the `openai` package's retries are turned off so that there is one policy),
  bounded in time: a connect timeout (FSRE_LLM_CONNECT_TIMEOUT, 10 s), a read
  timeout per request (FSRE_LLM_TIMEOUT, 120 s) and a deadline for one request
  and all its retries (FSRE_LLM_DEADLINE, 300 s), so a server that accepts
  connections and never answers fails in minutes, not an hour;
- answers read defensively: anything that is not a chat completion (an HTML
  page with status 200, JSON of another shape) is an `LLMBadAnswerError` that
  names the endpoint and quotes what came back;
- OPENAI_BASE_URL checked when the config is built: a malformed URL is a
  UsageError at once, not five retries;
- JSON output that works across servers: `response_format` type `json_schema`
  where supported, else llama.cpp's `json_object` + `schema`, else plain
  `json_object`, else nothing; the first that works is remembered per client,
  and a tolerant parser reads whatever comes back;
- bounded concurrency for batches, results in input order;
- `LLMUnavailableError` messages that say what to do, never a traceback.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import openai
from urllib.parse import urlsplit

from fsre_cli.console import Log
from fsre_cli.errors import FsreError, LLMUnavailableError, UsageError
from fsre_cli.paths import cache_root
from fsre_cli.llm.cache import LLMCache, cache_key

DUMMY_API_KEY = "sk-no-key-required"  # local servers ignore the key but the client needs one
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
START_ADVICE = "Start a local one with `fsre llm serve` (then export the OPENAI_BASE_URL it prints) or set OPENAI_BASE_URL."

# Ways to ask for JSON, most to least constrained; see DESIGN.md §4 for llama.cpp's behaviour.
JSON_MODES = ("json_schema", "json_object_schema", "json_object", "plain")
_FORMAT_REJECTED_STATUS = {400, 415, 422, 500, 501}


class LLMOutputError(FsreError):
    """The model's answer could not be read (e.g. no JSON in it)."""


class LLMRequestError(FsreError):
    """The endpoint refused a request for a reason retrying will not fix (e.g. prompt too long)."""


class LLMBadAnswerError(LLMUnavailableError):
    """The endpoint answered with something that is not the OpenAI protocol (e.g. an HTML page):
    most often OPENAI_BASE_URL points at a web server rather than an OpenAI-compatible API."""


class _FormatRejected(Exception):
    """Internal: the server does not accept this `response_format`; try the next one."""


@dataclass
class LLMConfig:
    """Where the LLM is and how to talk to it. `None` base_url + `None` api_key = not configured."""

    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None  # None: the endpoint's only/first model
    timeout: float = 120.0  # read timeout per request in seconds; a local server queues requests, so be generous
    connect_timeout: float = 10.0  # seconds to open a connection
    deadline: float = 300.0  # seconds for one request and all its retries together
    max_retries: int = 4
    concurrency: int = 4
    cache_path: Path | None = None  # None: no cache at all
    use_cache: bool = True  # False (--no-cache): do not read the cache, still write it
    retry_backoff: float = 0.5  # first retry delay in seconds, doubled per attempt (capped at 8 s)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "LLMConfig":
        """Read OPENAI_BASE_URL, OPENAI_API_KEY, FSRE_LLM_MODEL, FSRE_LLM_CONCURRENCY, FSRE_CACHE_DIR
        (and FSRE_LLM_MAX_RETRIES, FSRE_LLM_TIMEOUT, FSRE_LLM_CONNECT_TIMEOUT, FSRE_LLM_DEADLINE).

        A malformed OPENAI_BASE_URL is a UsageError here, before any request.

        Overrides whose value is None are ignored, so CLI options can be passed
        straight through (`--llm-model` unset keeps the environment's model).
        """
        env = os.environ if env is None else env
        names = {f.name for f in fields(cls)}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"unknown LLMConfig field(s): {sorted(unknown)}")
        cache_dir = cache_root(env)
        numbers: dict[str, Any] = {}
        for var, name, kind in (
            ("FSRE_LLM_CONCURRENCY", "concurrency", int),
            ("FSRE_LLM_MAX_RETRIES", "max_retries", int),
            ("FSRE_LLM_TIMEOUT", "timeout", float),
            ("FSRE_LLM_CONNECT_TIMEOUT", "connect_timeout", float),
            ("FSRE_LLM_DEADLINE", "deadline", float),
        ):
            if env.get(var):
                try:
                    numbers[name] = kind(env[var])
                except ValueError:
                    raise UsageError(f"{var} must be a number, not {env[var]!r}") from None
        config = cls(
            base_url=env.get("OPENAI_BASE_URL") or None,
            api_key=env.get("OPENAI_API_KEY") or None,
            model=env.get("FSRE_LLM_MODEL") or None,
            cache_path=cache_dir / "llm-cache.sqlite3",
            **numbers,
        )
        for name, value in overrides.items():
            if value is not None:
                setattr(config, name, value)
        if config.concurrency < 1:
            raise UsageError("the LLM concurrency must be at least 1")
        if config.max_retries < 0:
            raise UsageError("FSRE_LLM_MAX_RETRIES must be >= 0")
        for var, value in (("FSRE_LLM_TIMEOUT", config.timeout), ("FSRE_LLM_CONNECT_TIMEOUT", config.connect_timeout),
                           ("FSRE_LLM_DEADLINE", config.deadline)):
            if not value > 0:  # also refuses NaN
                raise UsageError(f"{var} must be a number of seconds > 0, not {value!r}")
        if config.base_url is not None:
            source = "OPENAI_BASE_URL" if overrides.get("base_url") is None else "the LLM base URL"
            config.base_url = validate_base_url(config.base_url, source)
        return config


def validate_base_url(url: str, source: str = "OPENAI_BASE_URL") -> str:
    """The URL, stripped, if it can be an HTTP(S) endpoint; else a UsageError naming `source`.

    A typo such as `htp:/x` or `localhost:8080` (no scheme) would otherwise be
    retried with backoff as if the server were down.
    """
    value = url.strip()
    hint = ""
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        raise UsageError(f"{source}={url!r} is not a valid URL ({exc}); e.g. http://127.0.0.1:8080/v1") from None
    if parts.scheme not in ("http", "https"):
        if parts.scheme and not parts.netloc and parts.path[:1].isdigit():  # "localhost:8080/v1"
            hint = f" (did you mean http://{value}?)"
        problem = f"needs an http:// or https:// scheme{hint}"
    elif not parts.hostname:
        problem = "has no host"
    elif any(c.isspace() for c in value):
        problem = "contains white space"
    elif port == 0:
        problem = "has port 0"
    else:
        return value
    raise UsageError(f"{source}={url!r} {problem}; e.g. http://127.0.0.1:8080/v1")


@dataclass
class ChatResult:
    text: str
    top_logprobs: list[dict[str, float]] | None = None  # per generated token: {token: logprob}
    cached: bool = False


@dataclass
class ChatRequest:
    """One `chat()` call, for `chat_many()`."""

    messages: list[dict[str, Any]]
    temperature: float = 0.0
    max_tokens: int = 256
    json_schema: dict[str, Any] | None = None
    top_logprobs: int | None = None
    seed: int | None = 0


@dataclass
class ClientStats:
    requests: int = 0  # chat completions sent over HTTP (including failed attempts)
    cache_hits: int = 0
    retries: int = 0


class LLMClient:
    """A cached, retrying chat client; create one per command and close it (or use `with`)."""

    def __init__(self, config: LLMConfig, *, http_client: Any = None, sleep: Callable[[float], None] = time.sleep):
        """`http_client` (an `openai.DefaultHttpxClient`) lets tests observe the HTTP traffic."""
        if config.base_url is not None:
            config.base_url = validate_base_url(config.base_url, "the LLM base URL")
        self.config = config
        self.stats = ClientStats()
        self._http_client = http_client
        self._sleep = sleep
        self._rng = random.Random()
        self._lock = threading.Lock()  # lazy init, stats
        self._probe_lock = threading.Lock()  # one JSON-mode probe at a time
        self._openai: openai.OpenAI | None = None
        self._model: str | None = config.model
        self._model_checked = False
        self._served_models: list[str] | None = None
        self.json_mode: str | None = None  # the response_format style that works here, once known
        self.cache: LLMCache | None = LLMCache(config.cache_path, warn=Log().warn) if config.cache_path else None

    # ------------------------------------------------------------------ endpoint
    @property
    def base_url(self) -> str:
        if self.config.base_url:
            return self.config.base_url.rstrip("/")
        if self.config.api_key:
            return OPENAI_DEFAULT_URL
        raise LLMUnavailableError(f"no LLM endpoint is configured. {START_ADVICE}")

    def _client(self) -> openai.OpenAI:
        with self._lock:
            if self._openai is None:
                self._openai = openai.OpenAI(
                    base_url=self.base_url,
                    api_key=self.config.api_key or DUMMY_API_KEY,
                    timeout=self._timeout(self.config.timeout),
                    max_retries=0,  # our own policy in _with_retries
                    http_client=self._http_client,
                )
            return self._openai

    @property
    def model(self) -> str:
        """The model name; asks the endpoint for its only/first model when none was configured."""
        if self._model is None:
            models = self.list_models()
            if not models:
                raise LLMUnavailableError(f"the LLM endpoint at {self.base_url} lists no models; set FSRE_LLM_MODEL")
            with self._lock:
                self._model = models[0]
                self._model_checked = True
        return self._model

    def list_models(self) -> list[str]:
        """The model ids the endpoint serves (one request per client)."""
        if self._served_models is None:
            raw = self._with_retries(lambda timeout: self._client().models.with_raw_response.list(timeout=timeout))
            data = self._json_answer(raw, "GET /models")
            items = data.get("data") if isinstance(data, dict) else None
            if not isinstance(items, list) or not all(isinstance(m, dict) and isinstance(m.get("id"), str) for m in items):
                raise self._bad_answer(raw, "GET /models", "not a model list")
            self._served_models = [m["id"] for m in items]
        return list(self._served_models)

    def _check_model(self) -> None:
        """Fail early, listing what is available, when the configured model is not served."""
        if self._model_checked:
            return
        try:
            models = self.list_models()
        except (LLMRequestError, LLMBadAnswerError):
            models = []  # the endpoint has no usable /models; let the chat request decide
        if models and self.model not in models:
            raise LLMUnavailableError(self._unknown_model_message(models))
        self._model_checked = True

    def _unknown_model_message(self, models: list[str]) -> str:
        return (
            f"model {self.model!r} is not served by {self.base_url}; it serves: {', '.join(models)}. "
            "Choose one with --llm-model or FSRE_LLM_MODEL."
        )

    # ------------------------------------------------------------------ chat
    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        temperature: float = 0.0,
        max_tokens: int = 256,
        json_schema: dict[str, Any] | None = None,
        top_logprobs: int | None = None,
        seed: int | None = 0,
    ) -> ChatResult:
        """One chat completion, from the cache when possible.

        With `json_schema`, the output is constrained to it as far as the server
        allows (see JSON_MODES); the text may still need `parse_json`.
        """
        model = self.model
        base: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        if seed is not None:
            base["seed"] = seed
        if top_logprobs is not None:
            base["logprobs"] = True
            base["top_logprobs"] = top_logprobs
        if json_schema is None:
            return self._complete(model, messages, base)

        mode = self.json_mode
        if mode is not None:
            return self._complete(model, messages, _with_format(base, mode, json_schema))
        # Mode unknown: an answer cached under any mode saves both the probe and the request.
        if self.cache is not None and self.config.use_cache:
            for m in JSON_MODES:
                params = _with_format(base, m, json_schema)
                hit = self.cache.get(cache_key(model, messages, params))
                if hit is not None:
                    self._count(cache_hits=1)
                    return ChatResult(hit["text"], hit["top_logprobs"], cached=True)
        with self._probe_lock:
            if self.json_mode is not None:
                return self._complete(model, messages, _with_format(base, self.json_mode, json_schema))
            for m in JSON_MODES:
                try:
                    result = self._complete(model, messages, _with_format(base, m, json_schema), probe=m != "plain")
                except _FormatRejected:
                    continue
                self.json_mode = m
                return result
        raise AssertionError("unreachable: the plain mode never counts as rejected")

    def chat_json(self, messages: list[dict[str, Any]], schema: dict[str, Any], **kw: Any) -> Any:
        """Ask for JSON conforming to `schema` and parse it tolerantly; LLMOutputError if impossible."""
        kw.setdefault("max_tokens", 512)
        return parse_json(self.chat(messages, json_schema=schema, **kw).text)

    def chat_many(
        self,
        requests: Sequence[ChatRequest | Mapping[str, Any]],
        progress: Callable[[int], Any] | None = None,
    ) -> list[ChatResult]:
        """Run many chats with at most `config.concurrency` in flight; results in input order.

        `progress` is called with 1 as each finishes (e.g. a ProgressTask's `advance`).
        On the first failure the rest are cancelled and the error raised; what
        finished is already in the cache, so a re-run resumes.
        """
        reqs = [r if isinstance(r, ChatRequest) else ChatRequest(**r) for r in requests]
        results: list[ChatResult | None] = [None] * len(reqs)
        if not reqs:
            return []

        def run(i: int) -> None:
            r = reqs[i]
            results[i] = self.chat(
                r.messages, temperature=r.temperature, max_tokens=r.max_tokens,
                json_schema=r.json_schema, top_logprobs=r.top_logprobs, seed=r.seed,
            )
            if progress is not None:
                progress(1)

        workers = max(1, min(self.config.concurrency, len(reqs)))
        if workers == 1:
            for i in range(len(reqs)):
                run(i)
        else:
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fsre-llm")
            try:
                futures = [pool.submit(run, i) for i in range(len(reqs))]
                wait(futures, return_when=FIRST_EXCEPTION)
                for fut in futures:
                    if fut.done() and fut.exception() is not None:
                        raise fut.exception()  # type: ignore[misc]
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------ internals
    def _complete(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any], probe: bool = False) -> ChatResult:
        key = cache_key(model, messages, params)
        if self.cache is not None and self.config.use_cache:
            hit = self.cache.get(key)
            if hit is not None:
                self._count(cache_hits=1)
                return ChatResult(hit["text"], hit["top_logprobs"], cached=True)
        self._check_model()
        raw = self._with_retries(
            lambda timeout: self._client().chat.completions.with_raw_response.create(
                model=model, messages=messages, timeout=timeout, **params
            ),
            probe=probe, counts_as_request=True,
        )
        what = "POST /chat/completions"
        data = self._json_answer(raw, what)
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list):
            raise self._bad_answer(raw, what, "not a chat completion")
        if not choices:
            raise LLMOutputError(f"the LLM endpoint at {self.base_url} returned no choices")
        try:
            text, logprobs = _read_choice(choices[0], "top_logprobs" in params)
        except (TypeError, ValueError, KeyError, AttributeError):
            raise self._bad_answer(raw, what, "not a chat completion") from None
        answer = {"text": text, "top_logprobs": logprobs}
        if self.cache is not None:
            self.cache.put(key, model, {"messages": messages, "params": params}, answer)
        return ChatResult(text, logprobs, cached=False)

    def _count(self, **kw: int) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self.stats, k, getattr(self.stats, k) + v)

    def _timeout(self, read: float) -> openai.Timeout:
        return openai.Timeout(read, connect=min(self.config.connect_timeout, read))

    def _json_answer(self, raw: Any, what: str) -> Any:
        """The JSON body of a raw 2xx response; LLMBadAnswerError when it is not JSON."""
        try:
            return json.loads(raw.http_response.content)
        except ValueError:  # includes UnicodeDecodeError
            raise self._bad_answer(raw, what, "not JSON") from None

    def _bad_answer(self, raw: Any, what: str, problem: str) -> LLMBadAnswerError:
        response = raw.http_response
        try:
            body = response.text
        except Exception:  # an undecodable body still gets a message
            body = repr(response.content[:80])
        preview = " ".join(body.split())
        preview = preview[:80] + ("..." if len(preview) > 80 else "")
        ctype = response.headers.get("content-type", "no content type")
        return LLMBadAnswerError(
            f"the LLM endpoint at {self.base_url} answered {what} with HTTP {response.status_code} ({ctype}) "
            f"that is {problem}: {preview!r}. Check OPENAI_BASE_URL: it must be an OpenAI-compatible API "
            "(it usually ends in /v1)."
        )

    def _with_retries(
        self, call: Callable[[openai.Timeout], Any], *, probe: bool = False, counts_as_request: bool = False
    ) -> Any:
        """Run `call(timeout)`, retrying 429/5xx/connection failures with backoff; map errors to FsreErrors.

        All attempts together stay within `config.deadline`: each gets the read
        timeout or what is left of the deadline, whichever is less, and no retry
        starts that could not finish in time.
        """
        last: Exception | None = None
        attempts = self.config.max_retries + 1
        started = time.monotonic()
        attempt = 0
        for attempt in range(attempts):
            if counts_as_request:
                self._count(requests=1)
            left = self.config.deadline - (time.monotonic() - started)
            try:
                return call(self._timeout(max(0.05, min(self.config.timeout, left))))
            except openai.APIConnectionError as exc:  # includes APITimeoutError
                last = exc
            except openai.APIStatusError as exc:
                if probe and exc.status_code in _FORMAT_REJECTED_STATUS:
                    raise _FormatRejected(str(exc)) from exc
                if exc.status_code == 429 or exc.status_code >= 500:
                    last = exc
                else:
                    raise self._status_error(exc) from None
            if attempt + 1 < attempts:
                delay = self._delay(attempt, last)
                if time.monotonic() - started + delay >= self.config.deadline:
                    break  # out of time: no point in a retry that cannot get its answer
                self._count(retries=1)
                self._sleep(delay)
        assert last is not None
        raise self._exhausted(last, attempt + 1, time.monotonic() - started) from None

    def _delay(self, attempt: int, exc: Exception | None) -> float:
        if isinstance(exc, openai.APIStatusError):
            retry_after = exc.response.headers.get("retry-after") if exc.response is not None else None
            try:
                if retry_after is not None and 0 <= float(retry_after) <= 60:
                    return float(retry_after)
            except ValueError:
                pass
        return min(self.config.retry_backoff * 2**attempt, 8.0) * (0.75 + 0.5 * self._rng.random())

    def _exhausted(self, exc: Exception, attempts: int, waited: float) -> FsreError:
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if isinstance(exc, openai.APITimeoutError):
            cause = exc.__cause__ or exc.__context__
            if type(cause).__name__ == "ConnectTimeout":
                return LLMUnavailableError(
                    f"the LLM endpoint at {self.base_url} did not accept a connection within "
                    f"{self.config.connect_timeout:g} s ({tries}, {waited:.1f} s in all). "
                    f"Check the address and the server; FSRE_LLM_CONNECT_TIMEOUT sets the wait. {START_ADVICE}"
                )
            return LLMUnavailableError(
                f"the LLM endpoint at {self.base_url} accepted the connection but did not answer within "
                f"{min(self.config.timeout, self.config.deadline):g} s ({tries}, {waited:.1f} s in all). "
                "Check the server, lower FSRE_LLM_CONCURRENCY, or raise FSRE_LLM_TIMEOUT / FSRE_LLM_DEADLINE."
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            reason = f": {cause}" if cause else ""
            return LLMUnavailableError(
                f"cannot reach the LLM endpoint at {self.base_url} ({tries}{reason}). {START_ADVICE}"
            )
        assert isinstance(exc, openai.APIStatusError)
        return LLMUnavailableError(
            f"the LLM endpoint at {self.base_url} kept failing ({tries}): HTTP {exc.status_code}: {_error_text(exc)}"
        )

    def _status_error(self, exc: openai.APIStatusError) -> FsreError:
        code = exc.status_code
        if code in (401, 403):
            return LLMUnavailableError(
                f"the LLM endpoint at {self.base_url} rejected the API key (HTTP {code}); set OPENAI_API_KEY."
            )
        if code == 404:
            models = self._served_models
            if models and self._model and self._model not in models:
                return LLMUnavailableError(self._unknown_model_message(models))
            return LLMUnavailableError(
                f"the LLM endpoint at {self.base_url} answered 404 ({_error_text(exc)}); "
                "check OPENAI_BASE_URL (it usually ends in /v1) and the model name."
            )
        return LLMRequestError(f"the LLM endpoint at {self.base_url} refused the request: HTTP {code}: {_error_text(exc)}")

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
            self.cache = None
        if self._openai is not None:
            self._openai.close()
            self._openai = None

    def __enter__(self) -> "LLMClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_format(base: dict[str, Any], mode: str, schema: dict[str, Any]) -> dict[str, Any]:
    params = dict(base)
    if mode == "json_schema":
        params["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    elif mode == "json_object_schema":  # llama.cpp's server: grammar-constrained by the schema
        params["response_format"] = {"type": "json_object", "schema": schema}
    elif mode == "json_object":
        params["response_format"] = {"type": "json_object"}
    return params


def _error_text(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
        if isinstance(body.get("detail"), str):
            return body["detail"][:300]
    try:
        text = " ".join(exc.response.text.split())
    except Exception:  # no readable body: the openai package's own summary
        text = ""
    if text:  # e.g. a proxy's HTML error page: what came back, shortened
        return repr(text[:80] + ("..." if len(text) > 80 else ""))
    return (exc.message or "")[:300]


def _read_choice(choice: Any, want_logprobs: bool) -> tuple[str, list[dict[str, float]] | None]:
    """Text and per-token top log-probabilities of one raw choice; TypeError/KeyError if misshapen."""
    message = choice["message"]
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise TypeError("message content is not text")
    logprobs: list[dict[str, float]] | None = None
    tokens = (choice.get("logprobs") or {}).get("content") if want_logprobs else None
    if tokens is not None:
        logprobs = [
            {str(alt["token"]): float(alt["logprob"]) for alt in (tok.get("top_logprobs") or [])}
            or {str(tok["token"]): float(tok["logprob"])}
            for tok in tokens
        ]
    return content or "", logprobs


_FENCE = re.compile(r"```[A-Za-z0-9_-]*\s*\n?(.*?)(?:```|$)", re.S)


def parse_json(text: str) -> Any:
    """Read JSON from a model's answer: as is, inside a code fence, or the first object/array in it.

    Small models wrap JSON in prose or fences; this recovers the data without
    guessing at broken syntax. Raises LLMOutputError when there is none.
    """
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    fence = _FENCE.search(stripped)
    if fence:
        try:
            return json.loads(fence.group(1).strip())
        except ValueError:
            pass
    decoder = json.JSONDecoder()
    tried = 0
    for i, ch in enumerate(stripped):
        if ch in "{[":
            try:
                return decoder.raw_decode(stripped, i)[0]
            except ValueError:
                tried += 1
                if tried > 200:
                    break
    preview = stripped[:120] + ("..." if len(stripped) > 120 else "")
    raise LLMOutputError(f"the LLM answer contains no JSON: {preview!r}")
