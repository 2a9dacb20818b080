"""The `fsre` command line: one module per command group, each a thin layer over library calls."""

from fsre_cli.cli.app import app, main

__all__ = ["app", "main"]
