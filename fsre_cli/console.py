"""Logging and progress on stderr only; stdout carries data and nothing else."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Log:
    """A small logger over a rich stderr console; quiet mode keeps warnings and errors."""

    def __init__(self, quiet: bool = False, verbose: bool = False) -> None:
        # markup off: tables and messages carry the user's strings (relation names, paths), which
        # must print as they are, never be parsed as rich markup such as `[/bold]`
        self.console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")) or None, highlight=False,
                               markup=False)
        self.quiet = quiet
        self.verbose = verbose

    def info(self, msg: str) -> None:
        if not self.quiet:
            self.console.print(msg, markup=False, soft_wrap=True)

    def debug(self, msg: str) -> None:
        if self.verbose and not self.quiet:
            self.console.print(msg, markup=False, style="dim", soft_wrap=True)

    def warn(self, msg: str) -> None:
        self.console.print(f"warning: {msg}", markup=False, style="yellow", soft_wrap=True)

    def error(self, msg: str) -> None:
        self.console.print(f"error: {msg}", markup=False, style="bold red", soft_wrap=True)

    def problem(self, msg: str) -> None:
        """A validation problem, printed as is (FILE:LINE: PATH: reason) so editors can jump to it."""
        self.console.print(msg, markup=False, style="red", soft_wrap=True)

    @property
    def show_progress(self) -> bool:
        return not self.quiet and self.console.is_terminal

    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator["ProgressTask"]:
        """A progress bar on stderr when it is a terminal; a no-op otherwise."""
        if not self.show_progress:
            yield ProgressTask(None, None)
            return
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn()]
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(description, total=total)
            yield ProgressTask(progress, task)


class ProgressTask:
    def __init__(self, progress: Progress | None, task) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def update(self, **kwargs) -> None:
        if self._progress is not None:
            self._progress.update(self._task, **kwargs)


NULL_LOG = Log(quiet=True)
