"""`fsre eval`: score predicted triples against gold triples (the report is the command's data: stdout)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fsre_cli.evaluation import load_triples, make_console, render_report, score_triples


def eval_command(
    pred: Annotated[Path, typer.Argument(metavar="PRED.jsonl", help="Predicted triples, JSONL in the `fsre extract` output shape ('-' = stdin).")],
    gold: Annotated[Path, typer.Argument(metavar="GOLD.jsonl", help="Gold triples, JSONL with doc, relation, head.start/end, tail.start/end.")],
    relaxed: Annotated[
        bool,
        typer.Option("--relaxed", help="Match head/tail by normalised text (case, whitespace, edge punctuation) instead of offsets."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of tables.")] = False,
) -> None:
    """Precision, recall and F1 of predicted triples against gold triples, per relation.

    Exact mode matches doc, relation and the head/tail character offsets; --relaxed matches normalised mention text. NOTA-like relations (NA, no_relation, none, NOTA, empty) are ignored and duplicates count once. Tables (or --json) go to stdout.

    Examples:

      fsre extract docs.jsonl --schema s.yaml > pred.jsonl
      fsre eval pred.jsonl gold.jsonl
      fsre eval pred.jsonl gold.jsonl --relaxed --json | jq .micro.f1
    """
    if str(pred) == "-" and str(gold) == "-":
        from fsre_cli.errors import UsageError

        raise UsageError("only one of PRED and GOLD can be '-' (stdin)")
    mode = "relaxed" if relaxed else "exact"
    report = score_triples(load_triples(pred, mode), load_triples(gold, mode), mode=mode)
    if json_out:
        typer.echo(report.to_json())
    else:
        render_report(report, make_console(stderr=False), title=f"{pred} vs {gold} ({mode} match)")
