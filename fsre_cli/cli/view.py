"""`fsre view`: an HTML page of triples over their text (the page is `fsre_cli.view`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from fsre_cli.cli.common import command
from fsre_cli.cli.options import QuietOpt
from fsre_cli.console import Log


@command
def view_command(
    triples: Annotated[Optional[list[str]], typer.Argument(
        metavar="TRIPLES", help="Triples as `fsre extract` writes them (JSONL files, folders of shards, - for "
        "stdin, the default).")] = None,
    docs: Annotated[Optional[list[str]], typer.Option(
        "--docs", help="The documents the triples come from, as `fsre extract` reads them (text files, folders, "
        "JSONL). Without them each triple's evidence sentence is shown. Repeat for more.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="The HTML file to write (- for stdout).")]
    = "view.html",
    title: Annotated[Optional[str], typer.Option("--title", help="The page's title.")] = None,
    per_page: Annotated[int, typer.Option("--per-page", min=1, help="Documents per page.")] = 20,
    schema_path: Annotated[Optional[Path], typer.Option("--schema", "-s", help="The schema the triples were "
                                                        "extracted with: the page's review buttons then download "
                                                        "NAME.review.jsonl, to put beside it.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """One self-contained HTML page (no network, opens from disk): each document's text with
    the triples' mentions coloured by type, the triples of each document beside it (relation,
    score, method); hovering or clicking a triple marks its head and tail; filters by
    relation, method, minimum score and entity text, with counts per relation. Its accept and
    reject buttons download the decisions as a review file (what `fsre review` writes).

    Example: `fsre extract notes.txt --schema s.yaml -o triples.jsonl && fsre view triples.jsonl --docs notes.txt`

    Example: `fsre view triples.jsonl -o view.html` (each triple's evidence sentence as its text)
    """
    from fsre_cli.aggregate import read_triples
    from fsre_cli.inputs import InputReport, expand_paths, read_documents
    from fsre_cli.view import build_view, render_html, whole_documents

    log = Log(quiet=quiet)
    documents = None
    if docs:
        report = InputReport()
        documents = whole_documents(read_documents(expand_paths(docs), report, warn=log.warn))
    pages, warnings = build_view(read_triples(triples or ["-"], scored=False), documents)
    for warning in warnings[:5]:
        log.warn(warning)
    if len(warnings) > 5:
        log.warn(f"... and {len(warnings) - 5} more triples whose offsets do not match their document")
    review_name = "review.jsonl"
    if schema_path is not None:
        from fsre_cli.review import review_path

        review_name = review_path(schema_path).name
    page = render_html(pages, title or "fsre view", per_page, review_name)
    if output == "-":
        sys.stdout.write(page)
    else:
        Path(output).write_text(page, encoding="utf-8")
    n_triples = sum(len(p.triples) for p in pages)
    log.info(f"{'page' if output == '-' else output}: {n_triples} triples in {len(pages)} "
             f"{'documents' if documents is not None else 'evidence sentences'}")
