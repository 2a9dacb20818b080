"""Tiny local endpoints for LLM fault tests: an HTTP server whose answers a test chooses, and a
TCP server that accepts connections and never answers. Both bind 127.0.0.1 on a free port."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

from contextlib import contextmanager

# (status, content type, body) for a request path
Answer = tuple[int, str, bytes]
Responder = Callable[[str, str, bytes], Answer]  # (method, path, body) -> answer


def chat_completion(content: str, model: str = "fake") -> bytes:
    """A well-formed chat completion whose message is `content`."""
    return json.dumps({
        "id": "c1", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }).encode()


MODELS = json.dumps({"object": "list", "data": [{"id": "fake", "object": "model", "created": 0, "owned_by": "t"}]}).encode()


def openai_like(content: str) -> Responder:
    """An OpenAI-compatible endpoint serving model `fake` that always answers `content`."""

    def respond(method: str, path: str, body: bytes) -> Answer:
        if path.endswith("/models"):
            return 200, "application/json", MODELS
        if path.endswith("/chat/completions"):
            return 200, "application/json", chat_completion(content)
        return 404, "application/json", b'{"error": {"message": "not found"}}'

    return respond


@contextmanager
def http_server(respond: Responder) -> Iterator[tuple[str, list[str]]]:
    """Serve `respond` on 127.0.0.1; yields (base URL ending in /v1, paths requested)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            seen.append(self.path)
            status, ctype, data = respond(self.command, self.path, body)
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_server() -> Iterator[str]:
    """Accept TCP connections and never send a byte; yields the base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)  # keep it open, never answer

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        listener.close()
