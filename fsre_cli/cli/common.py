"""What the commands share: the one error path, and loading a schema with its sidecar."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, TypeVar

import typer

from fsre_cli.console import Log
from fsre_cli.errors import FsreError, SchemaError

F = TypeVar("F", bound=Callable)


def report_error(exc: FsreError, log: Log | None = None) -> None:
    """An expected error as one message per line on stderr (schema problems as FILE:LINE: PATH: reason)."""
    log = log or Log()
    for line in str(exc).splitlines() or ["error"]:
        log.problem(line) if isinstance(exc, SchemaError) else log.error(line)


_interrupt_reported = False


def report_interrupt(message: str = "interrupted") -> None:
    """Say "interrupted" once per process, wherever Ctrl-C landed."""
    global _interrupt_reported
    if not _interrupt_reported:
        _interrupt_reported = True
        if message:
            Log().error(message)


def command(fn: F) -> F:
    """Every command's error path: an `FsreError` becomes its message and exit code, Ctrl-C
    "interrupted" and 130, never a traceback, however the command is invoked (the `fsre` script, a test's CliRunner, an app
    that registers the command itself)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FsreError as exc:
            report_error(exc)
            if exc.exit_code == 130:
                report_interrupt("")  # said already, with what was kept
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:  # `fsre extract ... | head`: the reader has all it wanted
            quiet_stdout()
            raise typer.Exit(0) from None
        except KeyboardInterrupt:  # before a run has anything to keep (loading, training)
            from fsre_cli import interrupts

            interrupts.quiet()
            report_interrupt()
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def quiet_stdout() -> None:
    """Point stdout at /dev/null, so flushing at exit after a broken pipe says nothing."""
    import os
    import sys

    sys.stdout = open(os.devnull, "w")


def load_schema_and_sidecar(path: Path, log: Log):
    """The schema (its warnings logged) and its sidecar of synthetic data, when there is one."""
    from fsre_cli.schema import load_schema
    from fsre_cli.sidecar import read_sidecar

    schema = load_schema(path)
    for warning in schema.warnings:
        log.warn(warning)
    sidecar = read_sidecar(schema.sidecar_path, schema) if schema.sidecar_path else None
    if sidecar is not None and not sidecar.is_empty():
        log.info(f"using {schema.sidecar_path}: {len(sidecar.examples)} synthetic examples, "
                 f"{len(sidecar.explanations)} explanations")
    return schema, sidecar


def recognizer_for(schema, *, entities: str, lang=None, stanza_dir=None, ner_model=None, device: str = "auto"):
    """The entity recognizer a command runs with, its example-mention cache in the user's cache."""
    from fsre_cli.entities import EntityRecognizer
    from fsre_cli.paths import mention_cache_dir

    return EntityRecognizer(schema, lang=lang, stanza_dir=stanza_dir, ner_model_path=ner_model, entities=entities,
                            use_gpu=device == "cuda", mention_cache=mention_cache_dir())
