"""`fsre review`: accept, reject or correct extracted triples one key at a time; each decision is
appended to NAME.review.jsonl beside the schema, which training reads (`fsre_cli.review`)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Callable, Iterator, Optional, TextIO

import typer

from fsre_cli.cli.common import command
from fsre_cli.cli.options import QuietOpt
from fsre_cli.console import Log
from fsre_cli.errors import UsageError

KEYS = "[a]ccept  [r]eject  [c]hange relation  [s]kip  [u]ndo  [q]uit"


@contextlib.contextmanager
def key_reader(stream: TextIO) -> Iterator[Callable[[], str]]:
    """One key at a time. A terminal is put in cbreak mode for the whole session (keys arrive
    without Enter and unechoed, even one typed while a triple was still being drawn) and given
    back as it was, however the session ends; from a pipe, the next character that is not
    whitespace (so a script can type). End of input reads as q."""
    if not stream.isatty():
        def from_stream() -> str:
            while True:
                ch = stream.read(1)
                if not ch:
                    return "q"
                if not ch.isspace():
                    return ch

        yield from_stream
        return
    import termios
    import tty

    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd, termios.TCSANOW)  # not TCSAFLUSH: a key already typed is kept
    try:
        yield lambda: os.read(fd, 1).decode("utf-8", "replace") or "q"
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run_review(todo: list[dict], schema, log_file, read_key: Callable[[], str], console) -> dict[str, int]:
    """The loop: show a triple, take a key, append the decision. Returns the counts."""
    from rich.text import Text

    from fsre_cli.review import decision_record, locate_in_sentence

    counts = {"accept": 0, "reject": 0, "relation": 0, "skip": 0, "undo": 0}
    done: list[tuple[int, dict | None]] = []  # (index, the decision appended) for undo
    i = 0
    while i < len(todo):
        triple = todo[i]
        located = locate_in_sentence(triple.get("evidence", ""), triple)
        if located is None:  # a window of a very long sentence without its head or tail: nothing to show
            i += 1
            continue
        head, tail = located
        sentence = Text(triple["evidence"])
        sentence.stylize("bold red", head.start, head.end)
        sentence.stylize("bold blue", tail.start, tail.end)
        score = triple.get("score")
        console.rule(Text(f"{i + 1}/{len(todo)}  {triple['doc']} · sentence {triple['sentence']}"))
        console.print(Text.assemble((triple["relation"], "bold"), f"  score {score:.3f}" if score is not None else "",
                                    "   ", (head.text, "bold red"), " → ", (tail.text, "bold blue")))
        console.print(sentence)
        console.print(KEYS, style="dim", markup=False)
        key = read_key().lower()
        if key == "q":
            break
        if key == "u":
            if not done:
                console.print("nothing to undo", style="yellow", markup=False)
                continue
            i, record = done.pop()
            if record is not None:
                log_file.append({**record, "decision": "undo"})
                counts["undo"] += 1
            continue
        if key == "s":
            done.append((i, None))
            counts["skip"] += 1
            i += 1
            continue
        if key in ("a", "r"):
            decision = "accept" if key == "a" else "reject"
            record = decision_record(triple, decision, triple["relation"])
        elif key == "c":
            choices = [r for r in schema.relations_for(head.type, tail.type) if r != triple["relation"]]
            if not choices:
                console.print(f"no other relation takes {head.type} -> {tail.type}", style="yellow", markup=False)
                continue
            console.print("  ".join(f"[{n}] {r}" for n, r in enumerate(choices, 1)) + "  (other key: back)",
                          markup=False)
            pick = read_key()
            if not pick.isdigit() or not 1 <= int(pick) <= len(choices):
                continue
            record = decision_record(triple, "relation", choices[int(pick) - 1])
        else:
            console.print(f"unknown key {key!r}: {KEYS}", style="yellow", markup=False)
            continue
        if record is None:
            i += 1
            continue
        log_file.append(record)
        counts[record["decision"]] += 1
        done.append((i, record))
        i += 1
    return counts


@command
def review_command(
    triples: Annotated[Optional[list[str]], typer.Argument(metavar="TRIPLES", help="Triples as `fsre extract` "
                                                           "writes them (JSONL files or folders of shards).")]
    = None,
    schema_path: Annotated[Path, typer.Option("--schema", "-s", help="The schema the triples were extracted "
                                              "with; decisions go to NAME.review.jsonl beside it.")] = Path(),
    order: Annotated[str, typer.Option("--order", help="uncertain: scores nearest the threshold first; score: "
                                       "highest first; document: as written.")] = "uncertain",
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="The decision threshold for "
                                                       "--order uncertain (default: the lowest score given, the "
                                                       "boundary of a run that wrote only triples above it).")]
    = None,
    promote: Annotated[bool, typer.Option("--promote", help="Move the decisions so far into the schema YAML "
                                          "(examples under `examples:`, rejected pairs under `negatives:`) and "
                                          "empty the review file.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Review triples one at a time with single keys: a accept, r reject, c change the relation
    (among those the types allow), s skip, u undo, q quit. Each decision is appended to
    NAME.review.jsonl beside the schema at once, so quitting loses nothing and a rerun goes on
    where it stopped; `fsre train` learns from it (accepted: examples; rejected: negatives).

    Example: `fsre extract notes.txt --schema s.yaml -o triples.jsonl && fsre review triples.jsonl --schema s.yaml`

    Example: `fsre review --schema s.yaml --promote` (for schemas whose examples live in the YAML)
    """
    from rich.console import Console

    from fsre_cli.aggregate import read_triples
    from fsre_cli.review import ReviewLog, effective, order_triples, triple_key
    from fsre_cli.schema import load_schema

    log = Log(quiet=quiet)
    if schema_path == Path():
        raise UsageError("--schema is required: the review file goes beside it")
    if promote:
        from fsre_cli.review import promote as promote_decisions

        added, rejected = promote_decisions(schema_path)
        log.info(f"{schema_path}: {added} examples and {rejected} negatives moved in from the review file")
        return
    if not triples:
        raise UsageError("give the triples to review (or --promote)")
    if "-" in triples:
        raise UsageError("fsre review reads keys from stdin: give the triples as files")
    schema = load_schema(schema_path)  # checks the review file so far
    path = schema.review_path
    decided = set(effective(schema.review))
    records = [t for t in read_triples(triples) if t["relation"] in schema.relations]
    todo = [t for t in order_triples(records, order, threshold) if triple_key(t) not in decided]
    log.info(f"{len(todo)} triples to review ({len(records) - len(todo)} decided in {path.name} already)")
    with key_reader(sys.stdin) as read_key:
        counts = run_review(todo, schema, ReviewLog(path), read_key, Console(stderr=True, highlight=False))
    log.info(f"{counts['accept']} accepted, {counts['reject']} rejected, {counts['relation']} corrected, "
             f"{counts['skip']} skipped, {counts['undo']} undone; decisions in {path} (fsre train learns from them)")
