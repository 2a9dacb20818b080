"""`fsre models download|list`: the Stanza models entity recognition needs."""

from __future__ import annotations

from typing import Annotated

import typer

from fsre_cli.cli.common import command
from fsre_cli.cli.options import StanzaDirOpt
from fsre_cli.console import Log

models_app = typer.Typer(help="Manage the Stanza models used for entity recognition.\n\n"
                         "Example: `fsre models download --lang en`", no_args_is_help=True)


@models_app.command("download")
@command
def models_download(
    lang: Annotated[str, typer.Option("--lang", help="Language code.")] = "en",
    stanza_dir: StanzaDirOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Give up after this many seconds.")] = 600.0,
) -> None:
    """Download the Stanza models entity recognition needs (tokenize, ner), once.

    Example: `fsre models download --lang en`
    """
    from fsre_cli.entities import download_models

    log = Log()
    log.info(f"downloading Stanza models for {lang!r} (timeout {timeout:.0f}s) ...")
    download_models(lang=lang, stanza_dir=stanza_dir, timeout=timeout)
    log.info("done")


@models_app.command("list")
@command
def models_list(stanza_dir: StanzaDirOpt = None) -> None:
    """Show the installed Stanza models and where they are.

    Example: `fsre models list --stanza-dir ~/stanza_resources`
    """
    from rich.console import Console
    from rich.table import Table

    from fsre_cli.entities import list_models

    rows = list_models(stanza_dir=stanza_dir)
    if not rows:
        Log().warn("no Stanza models installed; run: fsre models download --lang en")
        raise typer.Exit(1)
    table = Table(*rows[0].keys())
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console(markup=False).print(table)
