"""Expected failures: the CLI prints their message (no traceback) and exits with their code."""

from __future__ import annotations


class FsreError(Exception):
    """An error the user can fix; `exit_code` 2 means bad usage or invalid input."""

    exit_code: int = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(FsreError):
    exit_code = 2


class BadEntityError(UsageError):
    """A document's given entity cannot be used (outside the text, empty, reversed, whitespace,
    a type the schema does not declare). Only `doc_id` is at fault, so a caller may skip that
    document and go on; left uncaught it is invalid input (exit 2)."""

    def __init__(self, doc_id: str, message: str) -> None:
        self.doc_id = doc_id
        super().__init__(message)


class SchemaError(FsreError):
    """Every problem found in a schema file, one per line."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ModelMissingError(FsreError):
    """A Stanza, encoder or LLM resource is not installed; the message says how to get it."""

    exit_code = 2


class LLMUnavailableError(FsreError):
    exit_code = 3
