"""`fsre schema check|show`: validate and inspect schema files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from fsre_cli.cli.common import command
from fsre_cli.cli.options import QuietOpt
from fsre_cli.console import Log
from fsre_cli.errors import SchemaError

schema_app = typer.Typer(help="Validate and inspect schema files.\n\nExample: `fsre schema check schemas/*.yaml`",
                         no_args_is_help=True)


@schema_app.command("check")
@command
def schema_check(
    files: Annotated[list[Path], typer.Argument(metavar="SCHEMA", help="Schema YAML files.")],
    quiet: QuietOpt = False,
) -> None:
    """Validate schema files (and the NAME.silver.jsonl of self-training beside one): exit 0
    when all are valid, 2 otherwise; every problem is listed as FILE:LINE: PATH: reason.

    Example: `fsre schema check schemas/*.yaml`
    """
    from fsre_cli.errors import UsageError
    from fsre_cli.schema import load_schema
    from fsre_cli.tkre.silver import read_silver, silver_path

    log = Log(quiet=quiet)
    bad = 0
    for path in files:
        try:
            schema = load_schema(path)
        except SchemaError as exc:
            bad += 1
            for problem in exc.problems:
                log.problem(problem)
            continue
        for warning in schema.warnings:
            log.warn(warning)
        for advice in schema.nota_advice():
            log.warn(f"{path}: {advice}")
        negatives = f", {len(schema.negatives)} negatives" if schema.negatives else ""
        if schema.data:
            negatives += f", {len(schema.data)} annotated sentences"
        if schema.review:
            negatives += f", {len(schema.review)} review decisions in {schema.review_path.name}"
        silver = silver_path(schema)
        if silver is not None and silver.exists():
            try:
                negatives += f", {len(read_silver(silver, schema))} silver pairs in {silver.name}"
            except UsageError as exc:
                bad += 1
                log.problem(str(exc))
                continue
        log.info(f"{path}: ok ({len(schema.relations)} relations, {len(schema.examples)} examples{negatives})")
    if bad:
        raise typer.Exit(2)


@schema_app.command("show")
@command
def schema_show(file: Annotated[Path, typer.Argument(metavar="SCHEMA", help="Schema YAML file.")]) -> None:
    """Print a schema as a readable table (relations, types, examples, templates).

    Example: `fsre schema show schemas/org-people.yaml`
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from fsre_cli.schema import default_template, load_schema

    schema = load_schema(file)
    console = Console(width=None if sys.stdout.isatty() else 200)  # no wrapping when piped
    # every string comes from the user's file: escaped, so `[/bold]` in a name is text, not markup
    console.print(f"[bold]{escape(schema.name)}[/bold]  {escape(schema.description)}")
    types = Table("entity type", "NER labels", title="Entity types", title_justify="left")
    for name, labels in schema.entity_types.items():
        types.add_row(escape(name), escape(", ".join(labels)))
    console.print(types)
    table = Table("relation", "head → tail", "examples", "QA4RE statement", "description",
                  title="Relations", title_justify="left")
    for rel in schema.relations.values():
        table.add_row(escape(rel.name), escape(f"{'|'.join(rel.head_types)} → {'|'.join(rel.tail_types)}"),
                      str(len(rel.examples)), escape(rel.template or default_template(rel) + " (default)"),
                      escape(rel.description))
    console.print(table)
