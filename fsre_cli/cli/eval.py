"""`fsre eval`: score predicted triples against gold triples, and render the report as tables
(the report is the command's data: stdout). The metrics themselves are `fsre_cli.evaluation`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fsre_cli.cli.common import command
from fsre_cli.console import Log
from fsre_cli.errors import UsageError
from fsre_cli.evaluation import EvalReport, load_triples, score_triples


def check_documents(predicted: list[dict], expected: list[dict], pred: Path, gold: Path, log: Log) -> None:
    """Say how many documents the two files share; refuse when they share none, because every
    score would then be 0 for a reason that has nothing to do with the triples (a text file's
    path against a JSONL `id`, say)."""
    pred_docs = list(dict.fromkeys(str(r.get("doc")) for r in predicted))
    gold_docs = list(dict.fromkeys(str(r.get("doc")) for r in expected))
    both = set(pred_docs) & set(gold_docs)
    if pred_docs and gold_docs and not both:
        raise UsageError(f"no document of {pred} is in {gold}: predicted {pred_docs[0]!r}"
                         f"{f' and {len(pred_docs) - 1} more' if len(pred_docs) > 1 else ''}, gold "
                         f"{gold_docs[0]!r}{f' and {len(gold_docs) - 1} more' if len(gold_docs) > 1 else ''}; "
                         "`doc` must match (the file path for text inputs, the `id` for JSONL)")
    log.info(f"documents: {len(pred_docs)} predicted, {len(gold_docs)} gold, {len(both)} in both")
    missing = [d for d in pred_docs if d not in both]
    if missing:
        log.warn(f"{len(missing)} predicted document(s) are not in {gold} (e.g. {missing[0]!r}): "
                 "all their triples count as wrong")


@command
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

    `fsre extract docs.jsonl --schema s.yaml > pred.jsonl`

    `fsre eval pred.jsonl gold.jsonl`

    `fsre eval pred.jsonl gold.jsonl --relaxed --json | jq .micro.f1`
    """
    if str(pred) == "-" and str(gold) == "-":
        raise UsageError("only one of PRED and GOLD can be '-' (stdin)")
    mode = "relaxed" if relaxed else "exact"
    predicted, expected = load_triples(pred, mode), load_triples(gold, mode)
    check_documents(predicted, expected, pred, gold, Log())
    report = score_triples(predicted, expected, mode=mode)
    if json_out:
        typer.echo(report.to_json())
    else:
        render_report(report, make_console(stderr=False), title=f"{pred} vs {gold} ({mode} match)")


def make_console(stderr: bool = True) -> Console:
    """A rich console honouring NO_COLOR; stdout for reports that are the command's data."""
    return Console(stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")) or None, highlight=False,
                   markup=False)  # relation names are the user's: never parsed as markup


def render_report(report: EvalReport, console: Console | None = None, title: str = "") -> None:
    """Summary, per-relation and confusion tables (stderr unless a console is given)."""
    console = console or make_console(stderr=True)
    pct = lambda x: f"{100 * x:.2f}"  # noqa: E731
    head = Table(title=title or f"fsre eval ({report.mode} match)", title_justify="left")
    for col in ("", "P", "R", "F1", "TP", "pred", "gold"):
        head.add_column(col, justify="left" if not col else "right")
    m = report.micro
    head.add_row("micro", pct(m.precision), pct(m.recall), pct(m.f1), str(m.tp), str(m.n_pred), str(m.n_gold))
    a = report.macro
    head.add_row("macro", pct(a.precision), pct(a.recall), pct(a.f1), "", "", "")
    console.print(head)

    if report.per_relation:
        per = Table(title="per relation", title_justify="left")
        for col in ("relation", "P", "R", "F1", "TP", "pred", "support"):
            per.add_column(col, justify="left" if col == "relation" else "right")
        for name, s in sorted(report.per_relation.items(), key=lambda kv: (-kv[1].n_gold, kv[0])):
            per.add_row(name, pct(s.precision), pct(s.recall), pct(s.f1), str(s.tp), str(s.n_pred), str(s.n_gold))
        console.print(per)

    if report.confusions:
        conf = Table(title="most frequent errors", title_justify="left")
        for col in ("gold", "predicted", "kind", "count"):
            conf.add_column(col, justify="right" if col == "count" else "left")
        for c in report.confusions:
            conf.add_row(c.gold, c.pred, c.kind, str(c.count))
        console.print(conf)

    c = report.counts
    ignored = []
    if c.get("pred_nota_ignored") or c.get("gold_nota_ignored"):
        ignored.append(f"NOTA records ignored: {c['pred_nota_ignored']} predicted, {c['gold_nota_ignored']} gold")
    if c.get("pred_duplicates") or c.get("gold_duplicates"):
        ignored.append(f"duplicates counted once: {c['pred_duplicates']} predicted, {c['gold_duplicates']} gold")
    for line in ignored:
        console.print(line, markup=False, style="dim")
