"""Ctrl-C that is never lost.

Python raises `KeyboardInterrupt` wherever the main thread is when SIGINT arrives. Inside a
destructor (`__del__`, run by the garbage collector at any moment) or a callback whose errors are
ignored, the exception is printed as "Exception ignored" and dropped, and the run goes on as if
nothing happened (seen: a `regex` pattern's `__del__` during extraction, which then finished
with exit 0). So the handler also records the press, long loops call `check()`, and the command
line turns a recorded press into exit 130 however the run ended.
"""

from __future__ import annotations

import signal
import threading

_pressed = threading.Event()


def _on_sigint(signum, frame) -> None:  # noqa: ARG001 - the signal module's signature
    _pressed.set()
    raise KeyboardInterrupt


def install() -> None:
    """Record every Ctrl-C (where Python's own handler is in place: not when SIGINT is ignored,
    as in a background job, or when an embedding application set its own)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


def pressed() -> bool:
    """Was Ctrl-C pressed during this run (even if its exception was swallowed)?"""
    return _pressed.is_set()


def check() -> None:
    """Raise `KeyboardInterrupt` if Ctrl-C was pressed: for loops that must stop even when the
    exception itself landed where Python drops it."""
    if _pressed.is_set():
        raise KeyboardInterrupt


def quiet() -> None:
    """Ignore further Ctrl-C: the run is already ending with its message and exit 130.

    Also clears CPython's record of an unhandled Ctrl-C. A `KeyboardInterrupt` that passed out of
    code run by `exec` on a string (dataclasses build their methods that way, so any import can be
    one) sets it, even when fsre catches the exception; the interpreter would then end by SIGINT
    (status -2) instead of exit 130. Any later `exec` of a string resets it."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    exec("None")  # noqa: S102 - a constant: resets the runtime's unhandled-KeyboardInterrupt flag
