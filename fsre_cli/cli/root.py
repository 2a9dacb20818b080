"""The `fsre` application: the root command, every command group registered, and `main`.

Importing this module imports no torch: each command loads what it needs when it runs, so
`fsre --help` and `fsre schema check` start fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from fsre_cli import __version__
from fsre_cli.cli.aggregate import aggregate_command
from fsre_cli.cli.bench import bench_app
from fsre_cli.cli.common import quiet_stdout, report_error, report_interrupt
from fsre_cli.cli.eval import eval_command
from fsre_cli.cli.extract import extract_command
from fsre_cli.cli.help_format import FsreGroup
from fsre_cli.cli.llm import llm_app, synth_command
from fsre_cli.cli.models import models_app
from fsre_cli.cli.schema import schema_app
from fsre_cli.cli.review import review_command
from fsre_cli.cli.train import train_command
from fsre_cli.cli.view import view_command
from fsre_cli.errors import FsreError

app = typer.Typer(
    name="fsre",
    cls=FsreGroup,
    help="Mine relation triples from documents with a few examples per relation.\n\n"
    "Example: fsre extract notes.txt --schema schemas/org-people.yaml > triples.jsonl",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fsre {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version.")] = False,
) -> None:
    """fsre: few-shot relation extraction (TKRE encoder, QA4RE zero-shot)."""


app.command("extract", no_args_is_help=True)(extract_command)
app.command("train")(train_command)
app.command("synth")(synth_command)
app.command("eval")(eval_command)
app.command("aggregate")(aggregate_command)
app.command("view")(view_command)
app.command("review", no_args_is_help=True)(review_command)
app.add_typer(schema_app, name="schema")
app.add_typer(models_app, name="models")
app.add_typer(llm_app, name="llm", help="Run the embedded local LLM server.\n\nExample: `fsre llm serve --port 8080`")
app.add_typer(bench_app, name="bench", help="Reproducible benchmark runs on FewRel, CrossRE, Re-DocRED.\n\n"
              "Example: `fsre bench crossre --domains ai --k 8 --methods prototype --seeds 0`")


def main() -> None:
    """Entry point: expected errors become one message and an exit code, never a traceback.
    Usage errors, --help and exit codes are handled by typer itself (standalone mode)."""
    from fsre_cli import interrupts

    try:
        app()
    except FsreError as exc:  # raised outside a command (commands report their own)
        report_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        interrupts.quiet()
        report_interrupt()
        sys.exit(130)
    except SystemExit as exc:  # typer turns Ctrl-C while parsing options into a silent 130
        if exc.code == 130 or (interrupts.pressed() and exc.code in (0, None)):
            # a Ctrl-C whose exception Python dropped (it landed in a destructor) still ends in 130
            interrupts.quiet()
            report_interrupt()
            sys.exit(130)
        raise
    except BrokenPipeError:  # `fsre extract ... | head`, outside a command
        quiet_stdout()
        sys.exit(0)
