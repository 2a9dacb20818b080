"""`fsre aggregate`: one record per distinct fact, with its counts and best evidence (the
facts are `fsre_cli.aggregate`; this parses options and writes them)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from fsre_cli.aggregate import CSV_COLUMNS, DEFAULT_MAX_EVIDENCE, aggregate_triples, csv_row, read_triples
from fsre_cli.cli.common import command
from fsre_cli.cli.options import QuietOpt
from fsre_cli.console import Log
from fsre_cli.errors import UsageError


@command
def aggregate_command(
    sources: Annotated[Optional[list[str]], typer.Argument(
        metavar="TRIPLES", help="Triples as `fsre extract` writes them: JSONL files, folders of .jsonl shards "
        "(`--engine ray` output), or - for stdin (the default).")] = None,
    by: Annotated[str, typer.Option("--by", help="document: a fact per document; corpus: one over all of them.")]
    = "corpus",
    min_count: Annotated[int, typer.Option("--min-count", min=1, help="Keep facts stated at least this many "
                                           "times.")] = 1,
    min_score: Annotated[Optional[float], typer.Option("--min-score", help="Leave out triples scored below "
                                                       "this.")] = None,
    max_evidence: Annotated[int, typer.Option("--max-evidence", min=0, help="Best-scored mentions kept per fact "
                                              "(doc, sentence, offsets, score).")] = DEFAULT_MAX_EVIDENCE,
    output_format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """One record per distinct fact: relation, normalised head and tail (case, whitespace,
    surrounding punctuation, possessives) with their types, how many mentions, documents and
    sentences state it, the maximum and mean score, and the best-scored evidence. Reads one
    record at a time: memory grows with the number of distinct facts, not with the input.

    Example: `fsre extract docs/ --schema s.yaml | fsre aggregate --min-count 2 > facts.jsonl`

    Example: `fsre aggregate triples.jsonl --by document --format csv -o facts.csv`
    """
    log = Log(quiet=quiet)
    if output_format not in ("jsonl", "csv"):
        raise UsageError(f"--format must be jsonl or csv, not {output_format!r}")
    records = read_triples(sources or ["-"])
    facts = aggregate_triples(records, by=by, max_evidence=max_evidence, min_score=min_score, min_count=min_count)
    fh = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        if output_format == "csv":
            columns = CSV_COLUMNS if by == "document" else CSV_COLUMNS[1:]
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            for fact in facts:
                writer.writerow(csv_row(fact))
        else:
            for fact in facts:
                fh.write(json.dumps(fact.record(), ensure_ascii=False) + "\n")
    finally:
        if output:
            fh.close()
    mentions = sum(f.mentions for f in facts)
    log.info(f"{len(facts)} facts from {mentions} triples (by {by})")
