"""Readable value names in `--help`, whatever typer version renders it.

Typer 0.2x prints an option's Python annotation (`<bool>`, `<str>`, `<list[str]>`) in the
help's type column. fsre's help shows what a user types instead, as click always did: nothing
for a flag, TEXT, INTEGER, FLOAT, PATH, a choice's values, and `TEXT...` for an argument that
takes several. `FsreGroup` is the root app's class, so it reaches every command of every group.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, get_args, get_origin

import typer.core

NAMES = {int: "INTEGER", float: "FLOAT", str: "TEXT", bool: "BOOLEAN", Path: "PATH"}


def _annotation(param: Any) -> Any:
    """The parameter's Python type: typer >= 0.25 keeps it on `type_descriptor`; older typer
    hands click a click type, whose name is the readable one already."""
    descriptor = getattr(param, "type_descriptor", None)
    return getattr(descriptor, "annotation", None)


def value_name(param: Any) -> str | None:
    """What the help shows for a parameter's value: "" for a flag, None to leave typer's own."""
    annotation = _annotation(param)
    if getattr(param, "is_flag", False) or getattr(param, "count", False) or annotation is bool:
        return ""
    if annotation is None:
        return None
    many = get_origin(annotation) in (list, tuple)
    if many:
        annotation = (get_args(annotation) or (str,))[0]
    descriptor = param.type_descriptor
    if getattr(descriptor, "is_choice", False) and getattr(descriptor, "choices", None):
        name = "|".join(str(getattr(c, "value", c)) for c in descriptor.choices)
    elif isinstance(annotation, type) and issubclass(annotation, Path):
        name = "PATH"
    else:
        name = NAMES.get(annotation, "TEXT")
    return name + ("..." if many or param.nargs != 1 else "")


def _readable_param(param: Any) -> None:
    shown = value_name(param)
    if shown is None:
        return
    if isinstance(param, typer.core.TyperArgument):
        # an argument's name column is its name; only the type column beside it changes
        param.display_type_rich = types.MethodType(lambda self, ctx, _shown=shown: _shown, param)
    elif param.metavar is None:
        param.metavar = shown


def readable(command: Any) -> None:
    """Give every parameter of `command` (and of its subcommands) a readable value name,
    `--help` included (click adds it per context, so `get_params` is wrapped to reach it)."""
    for param in command.params:
        _readable_param(param)
    own_get_params = command.get_params

    def get_params(ctx: Any) -> list:
        params = own_get_params(ctx)
        for param in params:
            _readable_param(param)
        return params

    command.get_params = get_params
    for sub in getattr(command, "commands", {}).values():
        readable(sub)


class FsreGroup(typer.core.TyperGroup):
    """The root group: every command below it gets readable value names when the app is built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        readable(self)
