"""On-disk cache of LLM answers, so re-running costs nothing and a killed run resumes.

One SQLite file in the user cache dir. Each answer is committed the moment it
arrives (autocommit), WAL mode lets readers and a writer work side by side, and a
busy timeout makes concurrent `fsre` processes wait for each other instead of
failing. Inside a process one connection is shared under a lock, so the cache is
safe to use from `LLMClient.chat_many`'s worker threads.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable

from fsre_cli.errors import UsageError
from fsre_cli.formats import FORMATS, is_current

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    text TEXT NOT NULL,
    top_logprobs TEXT,
    created REAL NOT NULL
)
"""


def cache_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """sha256 over everything that determines an answer: model, messages and every parameter."""
    payload = json.dumps({"model": model, "messages": messages, "params": params}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class LLMCache:
    """A thread-safe, multi-process-safe key -> answer store.

    Answers are plain dicts ``{"text": str, "top_logprobs": list[dict[str, float]] | None}``
    so that the cache does not depend on the client's types.
    """

    def __init__(self, path: str | Path, busy_timeout_s: float = 30.0,
                 warn: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cache folder {self.path.parent} cannot be created ({exc.strerror or exc}); "
                             "set FSRE_CACHE_DIR to a writable folder") from None
        try:
            self._open(busy_timeout_s, warn)
        except sqlite3.DatabaseError as exc:  # not a database (a truncated or foreign file): set aside, start anew
            self._conn.close()
            damaged = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
            os.replace(self.path, damaged)
            if warn is not None:
                warn(f"the LLM answer cache {self.path} could not be read ({exc}); moved to {damaged.name}, "
                     "starting a new one")
            self._open(busy_timeout_s, warn)
        except sqlite3.Error as exc:  # e.g. a folder in its place, or no permission
            raise UsageError(f"cannot use the LLM answer cache {self.path}: {exc}") from None

    def _open(self, busy_timeout_s: float, warn: Callable[[str], None] | None) -> None:
        # isolation_level=None: autocommit, each put() is durable when it returns
        self._conn = sqlite3.connect(
            str(self.path), timeout=busy_timeout_s, check_same_thread=False, isolation_level=None
        )
        with self._lock:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._check_format(warn)
            self._conn.execute(_SCHEMA)

    def _check_format(self, warn: Callable[[str], None] | None) -> None:
        """SQLite's user_version holds the format; answers of another format are dropped with a
        notice (0 is a cache written before versioning, which is format 1)."""
        found = int(self._conn.execute("PRAGMA user_version").fetchone()[0]) or FORMATS["llm-cache"].version
        if not is_current("llm-cache", found, str(self.path), warn):
            self._conn.execute("DROP TABLE IF EXISTS responses")
        self._conn.execute(f"PRAGMA user_version = {FORMATS['llm-cache'].version}")

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT text, top_logprobs FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return {"text": row[0], "top_logprobs": json.loads(row[1]) if row[1] is not None else None}

    def put(self, key: str, model: str, request: dict[str, Any], answer: dict[str, Any]) -> None:
        logprobs = answer.get("top_logprobs")
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (key, model, request, text, top_logprobs, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    model,
                    json.dumps(request, sort_keys=True, ensure_ascii=False),
                    answer["text"],
                    json.dumps(logprobs) if logprobs is not None else None,
                    time.time(),
                ),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "LLMCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
