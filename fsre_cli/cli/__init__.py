"""The `fsre` command line: one module per command group, each a thin layer over library calls.

`main` is the installed script's entry point. It imports the application inside its own
Ctrl-C guard, so an interrupt in the first moments (while modules load) is one line and exit
130 like any other, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    from fsre_cli import interrupts

    interrupts.install()
    try:
        from fsre_cli.cli.root import main as run_app
    except KeyboardInterrupt:
        interrupts.quiet()
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    run_app()


def __getattr__(name: str) -> Any:  # `from fsre_cli.cli import app` without importing it at package import
    if name == "app":
        from fsre_cli.cli.root import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
