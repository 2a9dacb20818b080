"""Run issue 20's list of hostile inputs and faults against the real `fsre` command, one line per case.

Each case builds its inputs in a temporary folder, runs `python -m fsre_cli ...` as a subprocess
(this checkout's code: PYTHONPATH is set to it; HF_HUB_OFFLINE=1, FSRE_THREADS=1, NO_COLOR=1, and
one FSRE_CACHE_DIR in the temporary folder shared by the cases, so nothing touches the user's
cache), and judges what came back against what README.md promises for that input: the exit code,
no traceback, which lines were kept, files left alone. LLM faults use tiny HTTP/TCP servers on
127.0.0.1 started here. Methods: `prototype` with given entities (no training); a tiny tkre model
(`fsre train --epochs 1 --mslm-epochs 0 --scl-epochs 0`, seconds) for the tampered-model,
concurrent-train and batch-independence cases.

    python benchmarks/hostile.py                 # every case
    python benchmarks/hostile.py --only model    # cases whose name contains "model"
    python benchmarks/hostile.py --list          # names only
    python benchmarks/hostile.py --big-mb 5      # a smaller single-line document for item 9

Prints `case | exit | kept | verdict | last stderr line` per case (kept: output lines, or the
files or records the case counts), then notes (measurements, why a case failed, the command that
reproduces it) and `N ok, M defect(s), K open`. Exit 0 when no case is a DEFECT, else 1. "open"
marks a known open item (batch independence, issue 20 item 14) whose records differ.

Peak RSS is the child's own `ru_maxrss` from `os.wait4`, so earlier, larger children do not
count (RUSAGE_CHILDREN would keep the largest child so far).

As root, `-o /dev/full` and `-o /dev/stdout` would put a `.progress` file in /dev if that defect
came back; the case checks for it and removes only a file it saw appear.

A full run (64 cases) takes about 5 minutes on 2 shared CPU cores (5.2 min at load 2 to 5); the
20 MB document alone takes about 50 s and 0.9 GB peak RSS (`--big-mb 5` saves most of that).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fake_llm_server import http_server, openai_like, silent_server  # noqa: E402
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 120.0
TRACEBACK = "Traceback (most recent call last)"
BOX = " │╭╮╰╯─"  # the frame click/rich draws around a usage error

SCHEMA = """\
name: hostile
entity_types: {PERSON: [PERSON], ORG: [ORG], PLACE: [GPE, LOC]}
relations:
  works_for:
    description: the person works for the organization
    head: PERSON
    tail: ORG
    template: "{head} works for {tail}"
    examples:
      - {text: "Alice Smith works for Acme Corp in Boston.", head: Alice Smith, tail: Acme Corp}
      - {text: "Bob Jones, an engineer at Globex, lives in Denver.", head: Bob Jones, tail: Globex}
      - {text: "Initech employs Carol White as an analyst.", head: Carol White, tail: Initech}
  born_in:
    description: the person was born in the place
    head: PERSON
    tail: PLACE
    examples:
      - {text: "Alice Smith was born in Chicago.", head: Alice Smith, tail: Chicago}
      - {text: "Born in Dallas, Bob Jones moved to Globex.", head: Bob Jones, tail: Dallas}
      - {text: "Carol White is a native of Seattle.", head: Carol White, tail: Seattle}
"""

# two candidate pairs, so every document gives two records with --min-score -1
DOC = {
    "id": "d1",
    "text": "Dana Scott works for Umbrella Corp. She was born in Austin.",
    "entities": [{"start": 0, "end": 10, "type": "PERSON"}, {"start": 21, "end": 34, "type": "ORG"},
                 {"start": 52, "end": 58, "type": "PLACE"}],
}
TRAIN_FAST = ["--entities", "given", "--epochs", "1", "--mslm-epochs", "0", "--scl-epochs", "0"]


# --------------------------------------------------------------------------- running fsre


@dataclass
class Run:
    """One finished `fsre` process."""

    argv: list[str]
    env_shown: dict[str, str]  # the variables a reproducing command must set
    rc: int | None
    stdout: bytes
    stderr: str
    seconds: float
    max_rss_mb: float
    timed_out: bool
    stdin_file: Path | None = None

    @property
    def traceback(self) -> bool:
        return TRACEBACK in self.stderr

    @property
    def last_line(self) -> str:
        """The last stderr line with words in it (a usage error's box border is not a message)."""
        lines = [line.strip(BOX).strip() for line in self.stderr.splitlines()]
        lines = [line for line in lines if line]
        return lines[-1] if lines else ""

    @property
    def lines(self) -> list[str]:
        return self.stdout.decode("utf-8", "replace").splitlines()

    def command(self) -> str:
        """A shell command that runs this again from the repository root."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env_shown.items())
        argv = " ".join(shlex.quote(a) for a in self.argv)
        stdin = f" < {shlex.quote(str(self.stdin_file))}" if self.stdin_file else ""
        return f"cd {shlex.quote(str(ROOT))} && {env} {argv}{stdin}"


class Context:
    """The temporary folder, the shared cache, the tiny model and what every child gets in its environment."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.cache = work / "cache"
        self.schema = work / "hostile.yaml"
        self.schema.write_text(SCHEMA, encoding="utf-8")
        self._model: Path | None = None
        self._counter = 0
        base = {k: v for k, v in os.environ.items() if not k.startswith(("FSRE_", "OPENAI_"))}
        self.fixed = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "FSRE_THREADS": "1", "NO_COLOR": "1",
                      "COLUMNS": "300", "TOKENIZERS_PARALLELISM": "false"}
        self.base_env = {**base, **self.fixed}

    def folder(self, name: str) -> Path:
        """A new folder for one case's files."""
        self._counter += 1
        path = self.work / f"{self._counter:02d}-{name}"
        path.mkdir()
        return path

    def fsre(self, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None,
             timeout: float = TIMEOUT_S, preexec: Callable[[], None] | None = None,
             stdout_path: Path | None = None) -> Run:
        """Run `python -m fsre_cli ARGS` and wait for it (killed after `timeout` seconds)."""
        proc, shown, stdin_file, out_file, err_file = self.start(*args, env=env, stdin=stdin, preexec=preexec,
                                                                 stdout_path=stdout_path)
        return self.finish(proc, shown, stdin_file, out_file, err_file, timeout)

    def start(self, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None,
              preexec: Callable[[], None] | None = None, stdout_path: Path | None = None,
              stdin_pipe: bool = False) -> tuple[subprocess.Popen, dict[str, str], Path | None, Path, Path]:
        self._counter += 1
        shown = {"FSRE_CACHE_DIR": str(self.cache), **self.fixed, **(env or {})}
        full_env = {**self.base_env, "FSRE_CACHE_DIR": str(self.cache), **(env or {})}
        full_env = {k: v for k, v in full_env.items() if v is not None}
        stdin_file = None
        if stdin is not None:
            stdin_file = self.work / f"stdin-{self._counter:03d}"
            stdin_file.write_bytes(stdin)
        out_file = stdout_path or self.work / f"stdout-{self._counter:03d}"
        err_file = self.work / f"stderr-{self._counter:03d}"
        argv = [sys.executable, "-m", "fsre_cli", *args]
        with out_file.open("wb") as out, err_file.open("wb") as err:
            source = subprocess.PIPE if stdin_pipe else (stdin_file.open("rb") if stdin_file else subprocess.DEVNULL)
            proc = subprocess.Popen(argv, stdin=source, stdout=out, stderr=err, env=full_env, cwd=ROOT,
                                    preexec_fn=preexec)
            if stdin_file:
                source.close()
        proc._fsre_started = time.monotonic()  # type: ignore[attr-defined]
        proc._fsre_argv = argv  # type: ignore[attr-defined]
        return proc, shown, stdin_file, out_file, err_file

    def finish(self, proc: subprocess.Popen, shown: dict[str, str], stdin_file: Path | None, out_file: Path,
               err_file: Path, timeout: float) -> Run:
        """Wait with os.wait4, for the child's own peak RSS; kill it past `timeout`."""
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - proc._fsre_started  # type: ignore[attr-defined]
        rc = None if killed.is_set() else proc.returncode
        if rc is not None and rc < 0:
            rc = 128 - rc  # killed by a signal: the shell's convention
        return Run(proc._fsre_argv, shown, rc, out_file.read_bytes(),  # type: ignore[attr-defined]
                   err_file.read_text("utf-8", "replace"), seconds, usage.ru_maxrss / 1024, killed.is_set(),
                   stdin_file)

    def model(self) -> Path:
        """The tiny trained model folder, trained once (seconds) and reused."""
        if self._model is None:
            folder = self.work / "tiny-model"
            run = self.fsre("train", str(self.schema), *TRAIN_FAST, "-o", str(folder))
            if run.rc != 0:
                raise SystemExit(f"could not train the tiny model:\n{run.stderr}\n{run.command()}")
            self._model = folder
        return self._model


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    exit: str
    kept: str
    verdict: str  # ok | DEFECT | open
    message: str
    notes: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


def judge(runs: Run | list[Run], kept: int | str | None, checks: dict[str, bool], *, expect: int | None = None,
          note: str = "", open_item: bool = False, exit_text: str | None = None) -> Result:
    """DEFECT when a run timed out, printed a traceback, ended with another exit code than `expect`,
    or a check failed; "open" instead of DEFECT for a known open item."""
    runs = runs if isinstance(runs, list) else [runs]
    failed = []
    for run in runs:
        if run.timed_out:
            failed.append(f"timed out after {run.seconds:.0f} s")
        if run.traceback:
            failed.append("traceback on stderr")
    if expect is not None and runs[-1].rc != expect:
        failed.append(f"exit {runs[-1].rc}, expected {expect}")
    failed += [name for name, passed in checks.items() if not passed]
    verdict = "ok" if not failed else ("open" if open_item else "DEFECT")
    notes = [note] if note else []
    if failed:
        notes.append("failed: " + "; ".join(failed))
    exit_shown = exit_text if exit_text is not None else ("timeout" if runs[-1].timed_out else str(runs[-1].rc))
    message = runs[-1].last_line
    if runs[-1].traceback:  # the exception's line, not just the last frame
        message = next((l for l in reversed(runs[-1].stderr.splitlines()) if l.strip()), message)
    return Result(exit_shown, "-" if kept is None else str(kept), verdict, message, notes,
                  [r.command() for r in runs] if failed else [])


def jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def docs(n: int, prefix: str = "d") -> list[dict]:
    return [{**DOC, "id": f"{prefix}{i}"} for i in range(n)]


def records(data: bytes | str) -> list[dict]:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def whole_lines(data: bytes) -> bool:
    """Every line is complete JSON and the data ends with a newline (or is empty)."""
    if data and not data.endswith(b"\n"):
        return False
    try:
        records(data)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- local endpoints
# the tests' tiny endpoints (tests/fake_llm_server.py): the same servers the fault tests use

HTML = b"<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>hello</body></html>"
unusable = openai_like("I am sorry, I cannot help with that.")  # every answer a refusal: no usable example


def html_page(method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
    """A web server where an API should be: status 200, text/html, everywhere."""
    return 200, "text/html", HTML


# --------------------------------------------------------------------------- the cases

Case = Callable[[Context], Result]
CASES: list[tuple[str, str, Case]] = []


def case(name: str, item: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES.append((name, item, fn))
        return fn
    return register


def extract(ctx: Context, inputs: str, *more: str, **kw) -> Run:
    """`fsre extract INPUTS --schema hostile.yaml --method prototype --entities given --min-score -1 ...`"""
    return ctx.fsre("extract", inputs, "--schema", str(ctx.schema), "--method", "prototype", "--entities", "given",
                    "--min-score", "-1", *more, **kw)


def skips_one(ctx: Context, name: str, lines: list[bytes], named: str) -> Result:
    """A JSONL file with one bad line: that line alone is skipped and named (`named`), exit 1."""
    path = ctx.folder(name) / "docs.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    run = extract(ctx, str(path))
    good = len(lines) - 1
    kept_docs = {r["doc"] for r in records(run.stdout)} if whole_lines(run.stdout) else set()
    return judge(run, len(run.lines), {
        f"all {good} good documents kept": len(kept_docs) == good,
        f"names {named.format(path='FILE')}": named.format(path=path) in run.stderr,
    }, expect=1)


# kept from issue 20's good news ---------------------------------------------------------------


@case("kill -9 mid-run, then --resume: nothing lost or doubled", "keep")
def kill9_resume(ctx: Context) -> Result:
    folder = ctx.folder("kill9")
    n_docs = 3000  # several scoring flushes (2048 pairs each), so the kill lands between two writes
    path = jsonl(folder / "docs.jsonl", docs(n_docs))
    out, reference = folder / "out.jsonl", folder / "reference.jsonl"
    started = ctx.start("extract", str(path), "--schema", str(ctx.schema), "--method", "prototype",
                        "--entities", "given", "--min-score", "-1", "-o", str(out))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and started[0].poll() is None and (not out.exists() or out.stat().st_size == 0):
        time.sleep(0.02)
    os.kill(started[0].pid, signal.SIGKILL)
    killed = ctx.finish(*started, TIMEOUT_S)
    at_kill = len(out.read_bytes().splitlines()) if out.exists() else 0
    resumed = extract(ctx, str(path), "-o", str(out), "--resume")
    full = extract(ctx, str(path), "-o", str(reference))
    same = sorted(out.read_bytes().splitlines()) == sorted(reference.read_bytes().splitlines())
    return judge([killed, resumed, full], f"{at_kill}->{len(out.read_bytes().splitlines())}",
                 {"killed mid-run": killed.rc == 137 and 0 < at_kill < 2 * n_docs,
                  "resumed output = uninterrupted output (as sets of lines)": same and whole_lines(out.read_bytes())},
                 expect=0, exit_text=f"{killed.rc},{resumed.rc}")


# 1 ------------------------------------------------------------------------------------------


@case("train -o into a non-empty folder", "1")
def train_into_nonempty(ctx: Context) -> Result:
    folder = ctx.folder("train-nonempty") / "x"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    run = ctx.fsre("train", str(ctx.schema), *TRAIN_FAST, "-o", str(folder))
    kept = sorted(p.name for p in folder.iterdir())
    notes_kept = kept == ["notes.txt"] and (folder / "notes.txt").read_text() == "keep"
    return judge(run, len(kept), {"notes.txt kept": notes_kept,
                                  "refused before training": "training" not in run.stderr}, expect=2)


@case("train -o over an fsre model replaces it", "1")
def train_over_model(ctx: Context) -> Result:
    folder = ctx.folder("train-over-model") / "m"
    shutil.copytree(ctx.model(), folder)
    run = ctx.fsre("train", str(ctx.schema), *TRAIN_FAST, "-o", str(folder))
    return judge(run, len(list(folder.iterdir())), {"model written": (folder / "fsre.json").is_file()}, expect=0)


# 2 ------------------------------------------------------------------------------------------

BAD_SPANS = {
    "out of range": ({"start": 52, "end": 5000, "type": "PLACE"}, "ends after the text"),
    "negative": ({"start": -3, "end": 4, "type": "PLACE"}, "starts before the text"),
    "start > end": ({"start": 40, "end": 30, "type": "PLACE"}, "ends before it starts"),
    "whitespace-only": ({"start": 35, "end": 36, "type": "PLACE"}, "covers only whitespace"),
    "unknown type": ({"start": 52, "end": 58, "type": "WEAPON"}, "WEAPON"),
}


def bad_span_case(kind: str) -> Case:
    entity, reason = BAD_SPANS[kind]

    def run_case(ctx: Context) -> Result:
        batch = docs(200)
        batch[150] = {**batch[150], "entities": [*DOC["entities"], entity]}
        path = jsonl(ctx.folder("bad-span") / "docs.jsonl", batch)
        run = extract(ctx, str(path))
        written = {r["doc"] for r in records(run.stdout)} if whole_lines(run.stdout) else set()
        return judge(run, len(run.lines), {
            "the 199 good documents kept": written == {f"d{i}" for i in range(200) if i != 150},
            f'warning names "d150" and {reason!r}': '"d150"' in run.stderr and reason in run.stderr,
        }, expect=1)
    return run_case


for _kind in BAD_SPANS:
    case(f"bad entity span at doc 150/200: {_kind}", "2")(bad_span_case(_kind))


@case("bad entity span + --keep-going exits 0", "2")
def bad_span_keep_going(ctx: Context) -> Result:
    batch = docs(20)
    batch[15] = {**batch[15], "entities": [*DOC["entities"], BAD_SPANS["negative"][0]]}
    run = extract(ctx, str(jsonl(ctx.folder("keep-going") / "docs.jsonl", batch)), "--keep-going")
    return judge(run, len(run.lines), {"19 documents kept": len({r["doc"] for r in records(run.stdout)}) == 19},
                 expect=0)


def mention_doc(doc_id: str, text: str, mentions: list[tuple[str, str]]) -> dict:
    entities = []
    for mention, etype in mentions:
        start = text.index(mention)
        entities.append({"start": start, "end": start + len(mention), "type": etype})
    return {"id": doc_id, "text": text, "entities": entities}


@case("given entity across a sentence split (Col. Ripley, Ph.D)", "2")
def given_across_split(ctx: Context) -> Result:
    batch = [
        mention_doc("col", "Col. Ripley works for Umbrella Corp in Austin.",
                    [("Col. Ripley", "PERSON"), ("Umbrella Corp", "ORG"), ("Austin", "PLACE")]),
        mention_doc("phd", "Dana Scott earned a Ph.D. Program funding came from Initech. Dana moved to Austin.",
                    [("Dana Scott", "PERSON"), ("Ph.D. Program", "ORG"), ("Austin", "PLACE")]),
        mention_doc("phd2", "Erin Fox holds a Ph.D from Boston. She works for Globex.",
                    [("Erin Fox", "PERSON"), ("Ph.D", "ORG"), ("Boston", "PLACE"), ("Globex", "ORG")]),
    ]
    run = extract(ctx, str(jsonl(ctx.folder("split") / "docs.jsonl", batch)))
    got = records(run.stdout) if whole_lines(run.stdout) else []
    texts = {m for r in got for m in (r["head"]["text"], r["tail"]["text"])}
    return judge(run, len(got), {"all 3 documents scored": {r["doc"] for r in got} == {"col", "phd", "phd2"},
                                 "pairs with Col. Ripley, Ph.D. Program, Ph.D":
                                     {"Col. Ripley", "Ph.D. Program", "Ph.D"} <= texts,
                                 "each pair's evidence holds both mentions":
                                     all(r["head"]["text"] in r["evidence"] and r["tail"]["text"] in r["evidence"]
                                         for r in got)},
                 expect=0)


# 3 ------------------------------------------------------------------------------------------


def line_of(doc: dict) -> bytes:
    return json.dumps(doc).encode()


@case("non-UTF-8 byte in JSONL line 100 of 200", "3")
def bad_byte(ctx: Context) -> Result:
    lines = [line_of(d) for d in docs(200)]
    lines[99] = lines[99].replace(b"Dana", b"D\xe9na")
    return skips_one(ctx, "bad-byte", lines, "{path}:100")


@case("UTF-8 BOM at the start of a JSONL file", "3")
def bom(ctx: Context) -> Result:
    path = ctx.folder("bom") / "docs.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(line_of(d) + b"\n" for d in docs(3)))
    run = extract(ctx, str(path))
    written = {r["doc"] for r in records(run.stdout)}
    return judge(run, len(run.lines), {"first document kept": written == {"d0", "d1", "d2"}},
                 expect=0)


@case("latin-1 byte in JSONL on stdin", "3")
def latin1_jsonl_stdin(ctx: Context) -> Result:
    lines = [line_of(d) for d in docs(3)]
    lines[1] = lines[1].replace(b"Dana", b"D\xe9na")
    run = extract(ctx, "-", stdin=b"".join(line + b"\n" for line in lines))
    return judge(run, len(run.lines), {"2 good documents kept": {r["doc"] for r in records(run.stdout)} == {"d0", "d2"},
                                       "names <stdin>:2": "<stdin>:2" in run.stderr}, expect=1)


@case("latin-1 plain text on stdin", "3")
def latin1_text_stdin(ctx: Context) -> Result:
    run = ctx.fsre("extract", "-", "--schema", str(ctx.schema), "--method", "prototype",
                   stdin=b"Dana Scott works for Umbrella Corp.\ncaf\xe9 au lait in Austin.\n")
    no_ner = "Stanza models" in run.stderr or "NER model" in run.stderr
    return judge(run, len(run.lines), {
        # without the NER model the run stops before reading stdin (nothing would come of it), so
        # the decoding warning only shows where the model is installed
        "one not-UTF-8 warning, or the missing NER model said first": (run.stderr.count("not UTF-8") == 1
                                                                      or (run.rc == 2 and no_ner)),
        "exit 0, or 2 for the missing NER model": run.rc == 0 or (run.rc == 2 and no_ner),
    }, note="plain text needs a Stanza NER model; without one, exit 2 with one line before any reading")


@case("lone surrogate in a text", "3")
def surrogate_text(ctx: Context) -> Result:
    lines = [line_of(d) for d in docs(3)]
    lines[1] = lines[1].replace(b"Dana", b"D\\ud800na")
    return skips_one(ctx, "surrogate-text", lines, "lone surrogate U+D800")


@case("lone surrogate in an id", "3")
def surrogate_id(ctx: Context) -> Result:
    lines = [line_of(d) for d in docs(3)]
    lines[1] = lines[1].replace(b'"d1"', b'"\\udfff"')
    return skips_one(ctx, "surrogate-id", lines, "lone surrogate U+DFFF")


# 4 ------------------------------------------------------------------------------------------

REVIEWED = json.dumps({"kind": "example", "relation": "works_for", "text": "Omar Haddad works for Helix Labs.",
                       "head": {"text": "Omar Haddad", "start": 0, "end": 11, "type": "PERSON"},
                       "tail": {"text": "Helix Labs", "start": 22, "end": 32, "type": "ORG"},
                       "model": "m", "prompt_hash": "h"}) + "\n"


@case("synth with unusable LLM answers keeps the sidecar", "4")
def synth_unusable(ctx: Context) -> Result:
    folder = ctx.folder("synth-unusable")
    schema = folder / "hostile.yaml"
    schema.write_text(SCHEMA)
    side = folder / "hostile.synth.jsonl"
    side.write_text(REVIEWED)
    with http_server(unusable) as (url, _):
        run = ctx.fsre("synth", str(schema), "--per-relation", "1", "--no-explanations",
                       env={"OPENAI_BASE_URL": url, "OPENAI_API_KEY": "x"}, timeout=60)
    after = side.read_text() if side.exists() else ""
    return judge(run, len(after.splitlines()), {"sidecar unchanged": after == REVIEWED,
                                                "no file beside it": not (folder / "hostile.synth.new.jsonl").exists()},
                 expect=1)


# 5 ------------------------------------------------------------------------------------------


@case("newline in a document id, then --resume", "5")
def newline_id_resume(ctx: Context) -> Result:
    folder = ctx.folder("newline-id")
    odd = {**DOC, "id": "x\ny"}
    first = jsonl(folder / "first.jsonl", [odd])
    every = jsonl(folder / "all.jsonl", [odd, {**DOC, "id": "x"}, {**DOC, "id": "y"}])
    out = folder / "out.jsonl"
    run1 = extract(ctx, str(first), "-o", str(out))
    run2 = extract(ctx, str(every), "-o", str(out), "--resume")
    got = records(out.read_bytes()) if out.exists() and whole_lines(out.read_bytes()) else []
    counts = {d: sum(r["doc"] == d for r in got) for d in ("x\ny", "x", "y")}
    return judge([run1, run2], len(got), {"x, y and x\\ny each written once (2 records each)":
                                          counts == {"x\ny": 2, "x": 2, "y": 2} and len(got) == 6,
                                          "first run exit 0": run1.rc == 0}, expect=0)


@case("duplicate document ids warn", "5")
def duplicate_ids(ctx: Context) -> Result:
    path = jsonl(ctx.folder("dup-ids") / "docs.jsonl", [DOC, DOC, {**DOC, "id": "d2"}])
    run = extract(ctx, str(path))
    return judge(run, len(run.lines), {"warning says the id repeats": '"d1" repeats' in run.stderr,
                                       "every document scored (6 records)": len(run.lines) == 6}, expect=0)


# 6 ------------------------------------------------------------------------------------------


@contextmanager
def watch_progress(path: str) -> Iterator[list[bool]]:
    """Whether `PATH.progress` appeared; removes it only when this run created it (as root, in /dev)."""
    progress = Path(path + ".progress")
    existed = progress.exists()
    seen = [False]
    try:
        yield seen
    finally:
        seen[0] = progress.exists() and not existed
        if seen[0]:
            progress.unlink()


@case("-o /dev/full", "6")
def dev_full(ctx: Context) -> Result:
    with watch_progress("/dev/full") as created:
        run = extract(ctx, str(jsonl(ctx.folder("dev-full") / "docs.jsonl", docs(5))), "-o", "/dev/full")
    return judge(run, 0, {"says no space left": "no space left on device" in run.last_line,
                          "no /dev/full.progress": not created[0]}, expect=1)


@case("disk full midway (RLIMIT_FSIZE 5000) then --resume", "6")
def disk_full_midway(ctx: Context) -> Result:
    folder = ctx.folder("fsize")
    path = jsonl(folder / "docs.jsonl", docs(50))
    out = folder / "out.jsonl"

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (5000, 5000))

    run1 = extract(ctx, str(path), "-o", str(out), preexec=small_files)
    partial = out.read_bytes() if out.exists() else b""
    run2 = extract(ctx, str(path), "-o", str(out), "--resume")
    final = out.read_bytes() if out.exists() else b""
    counts = [r["doc"] for r in records(final)] if whole_lines(final) else []
    return judge([run1, run2], f"{len(partial.splitlines())}->{len(counts)}", {
        "first run exit 1 with one line": run1.rc == 1 and "cannot write" in run1.last_line,
        "only whole lines after the failure": whole_lines(partial) and len(partial) > 0,
        "resume completes: 50 documents, 2 records each, none twice":
            len(counts) == 100 and all(counts.count(f"d{i}") == 2 for i in range(50)),
    }, expect=0, exit_text=f"{run1.rc},{run2.rc}")


@case("-o /dev/stdout gets no progress file", "6")
def dev_stdout(ctx: Context) -> Result:
    with watch_progress("/dev/stdout") as created:
        run = extract(ctx, str(jsonl(ctx.folder("dev-stdout") / "docs.jsonl", docs(3))), "-o", "/dev/stdout")
    return judge(run, len(run.lines), {"6 records on stdout": len(run.lines) == 6,
                                       "no /dev/stdout.progress": not created[0]}, expect=0)


@case("-o /dev/stdout --resume is refused", "6")
def dev_stdout_resume(ctx: Context) -> Result:
    with watch_progress("/dev/stdout") as created:
        run = extract(ctx, str(jsonl(ctx.folder("dev-stdout-resume") / "docs.jsonl", docs(3))),
                      "-o", "/dev/stdout", "--resume")
    return judge(run, len(run.lines), {"nothing written": run.lines == [], "no /dev/stdout.progress": not created[0]},
                 expect=2)


# 7 ------------------------------------------------------------------------------------------


def limit_memory(gigabytes: float = 3) -> Callable[[], None]:
    def apply() -> None:
        limit = int(gigabytes * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


ALIAS_BOMB = "\n".join(
    ["a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    + ["name: bomb", "entity_types: {PERSON: [PERSON]}", "relations: {r: {description: d, head: PERSON, tail: PERSON,"
       " examples: *i}}"]) + "\n"


@case("YAML alias bomb (3 GB memory limit)", "7")
def alias_bomb(ctx: Context) -> Result:
    path = ctx.folder("alias-bomb") / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    run = ctx.fsre("schema", "check", str(path), preexec=limit_memory(), timeout=60)
    return judge(run, None, {"fails within 20 s": run.seconds < 20},
                 note=f"alias bomb of {len(ALIAS_BOMB)} bytes: {run.seconds:.1f} s, peak RSS {run.max_rss_mb:.0f} MB",
                 expect=2)


@case("schema nested 20,000 deep", "7")
def deep_schema(ctx: Context) -> Result:
    path = ctx.folder("deep-schema") / "deep.yaml"
    path.write_text("name: deep\nentity_types: {PERSON: [PERSON]}\nrelations: " + "[" * 20000 + "]" * 20000 + "\n")
    run = ctx.fsre("schema", "check", str(path), preexec=limit_memory(), timeout=60)
    return judge(run, None, {"says how deep": "nest" in run.stderr or "deep" in run.stderr}, expect=2)


# 8 ------------------------------------------------------------------------------------------

FAST_LLM = {"FSRE_LLM_CONNECT_TIMEOUT": "1", "FSRE_LLM_TIMEOUT": "0.5", "FSRE_LLM_DEADLINE": "2",
            "FSRE_LLM_MODEL": "m", "OPENAI_API_KEY": "x"}


@case("LLM endpoint accepts TCP, never answers (qa4re)", "8")
def silent_endpoint(ctx: Context) -> Result:
    path = jsonl(ctx.folder("silent") / "docs.jsonl", [DOC])
    with silent_server() as url:
        run = ctx.fsre("extract", str(path), "--schema", str(ctx.schema), "--method", "qa4re", "--entities", "given",
                       env={"OPENAI_BASE_URL": url, **FAST_LLM}, timeout=60)
    return judge(run, len(run.lines), {"names the endpoint": url.split("/v1")[0] in run.stderr,
                                       "gives up within 30 s": run.seconds < 30},
                 note=f"silent endpoint: gave up after {run.seconds:.1f} s (deadline 2 s)", expect=3)


# 9 ------------------------------------------------------------------------------------------


def big_document(megabytes: float) -> dict:
    """One line of `megabytes` MB without punctuation, with three related pairs at the start, middle and end."""
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit "
    n = int(megabytes * 1_000_000)
    body = (words * (n // len(words) + 1))[:n]
    middle = body.index(" ", len(body) // 2) + 1
    text = ("Dana Scott works for Umbrella Corp " + body[:middle] + "Gina Hall works for Initech "
            + body[middle:] + " Erin Fox was born in Austin")
    entities = []
    for mention, etype, find in [("Dana Scott", "PERSON", text.index), ("Umbrella Corp", "ORG", text.index),
                                 ("Gina Hall", "PERSON", text.index), ("Initech", "ORG", text.index),
                                 ("Erin Fox", "PERSON", text.rindex), ("Austin", "PLACE", text.rindex)]:
        start = find(mention)
        entities.append({"start": start, "end": start + len(mention), "type": etype})
    return {"id": "big", "text": text, "entities": entities}


BIG_MB = 20.0


@case("single-line document of 20 MB", "9")
def huge_line(ctx: Context) -> Result:
    folder = ctx.folder("huge-line")
    doc = big_document(BIG_MB)
    path = jsonl(folder / "big.jsonl", [doc])
    out = folder / "out.jsonl"
    run = extract(ctx, str(path), "-o", str(out), timeout=300)
    got = records(out.read_bytes()) if out.exists() and whole_lines(out.read_bytes()) else []
    longest = max((len(r["evidence"]) for r in got), default=0)
    offsets_ok = all(doc["text"][r[s]["start"]:r[s]["end"]] == r[s]["text"] for r in got for s in ("head", "tail"))
    return judge(run, len(got), {
        "3 pairs found": len(got) >= 3,
        "offsets into the whole document": offsets_ok,
        "peak RSS under 3 GB": run.max_rss_mb < 3 * 1024,
        "evidence at most 2,000 characters": 0 < longest <= 2000,
    }, note=f"{BIG_MB:g} MB line: {run.seconds:.0f} s, peak RSS {run.max_rss_mb:.0f} MB, "
            f"longest evidence {longest} characters", expect=0)


@case("one 900,000-character sentence, pair at its two ends", "9")
def far_pair(ctx: Context) -> Result:
    folder = ctx.folder("far-pair")
    filler = ("lorem ipsum dolor sit amet " * 40_000)[:900_000]
    text = "Dana Scott works for " + filler + " Umbrella Corp"
    doc = mention_doc("far", text, [("Dana Scott", "PERSON"), ("Umbrella Corp", "ORG")])
    out = folder / "out.jsonl"
    run = extract(ctx, str(jsonl(folder / "far.jsonl", [doc])), "-o", str(out))
    got = records(out.read_bytes()) if out.exists() and whole_lines(out.read_bytes()) else []
    longest = max((len(r["evidence"]) for r in got), default=0)
    return judge(run, len(got), {"the pair found": len(got) == 1,
                                 "evidence at most 2,000 characters (README: a record stays small)":
                                     0 < longest <= 2000},
                 note=f"pair {len(text) - 27} characters apart: {run.seconds:.0f} s, peak RSS "
                      f"{run.max_rss_mb:.0f} MB, evidence {longest} characters", expect=0)


# 10 -----------------------------------------------------------------------------------------


@case("FSRE_CACHE_DIR is a file (extract)", "10")
def cache_is_file_extract(ctx: Context) -> Result:
    folder = ctx.folder("cache-file")
    blocker = folder / "not-a-dir"
    blocker.write_text("x")
    path = jsonl(folder / "docs.jsonl", [DOC])
    run = ctx.fsre("extract", str(path), "--schema", str(ctx.schema), "--entities", "given",
                   env={"FSRE_CACHE_DIR": str(blocker)})
    return judge(run, len(run.lines), {"names FSRE_CACHE_DIR": "FSRE_CACHE_DIR" in run.stderr,
                                       "refused before training": "training" not in run.stderr}, expect=2)


@case("FSRE_CACHE_DIR is a file (train)", "10")
def cache_is_file_train(ctx: Context) -> Result:
    blocker = ctx.folder("cache-file-train") / "not-a-dir"
    blocker.write_text("x")
    run = ctx.fsre("train", str(ctx.schema), *TRAIN_FAST, env={"FSRE_CACHE_DIR": str(blocker)})
    return judge(run, None, {"names FSRE_CACHE_DIR": "FSRE_CACHE_DIR" in run.stderr,
                             "refused before training": "training" not in run.stderr}, expect=2)


def output_refused(ctx: Context, name: str, output: Callable[[Path], Path], message: str) -> Result:
    folder = ctx.folder(name)
    path = jsonl(folder / "docs.jsonl", [DOC])
    cache = folder / "cache"
    run = ctx.fsre("extract", str(path), "--schema", str(ctx.schema), "--entities", "given",
                   "-o", str(output(folder)), env={"FSRE_CACHE_DIR": str(cache)})
    return judge(run, None, {f"says {message!r}": message in run.stderr,
                             "no model built first": "training" not in run.stderr and not (cache / "models").exists()},
                 expect=2)


@case("-o into a missing directory", "10")
def output_missing_dir(ctx: Context) -> Result:
    return output_refused(ctx, "out-missing", lambda f: f / "missing" / "out.jsonl", "does not exist")


@case("-o onto a directory", "10")
def output_is_dir(ctx: Context) -> Result:
    return output_refused(ctx, "out-dir", lambda f: f, "is a directory")


# 11 -----------------------------------------------------------------------------------------


class _OpensAFile:
    """A pickle that, if anything unpickled it, would create the file `path`."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


TORCH_SAVE = """\
import sys, torch
class OpensAFile:
    def __reduce__(self):
        return (open, (sys.argv[2], "w"))
torch.save({"weight": torch.zeros(2), "trap": OpensAFile()}, sys.argv[1])
"""


def tampered(ctx: Context, name: str, tamper: Callable[[Path, Path], None]) -> Result:
    """Copy the tiny model (hard links), let `tamper(folder, marker)` damage it, extract with it."""
    folder = ctx.folder(name)
    model = folder / "model"
    shutil.copytree(ctx.model(), model, copy_function=os.link)
    marker = folder / "UNPICKLED"
    tamper(model, marker)
    path = jsonl(folder / "docs.jsonl", [DOC])
    run = ctx.fsre("extract", str(path), "--schema", str(ctx.schema), "--entities", "given", "--model", str(model))
    return judge(run, len(run.lines), {"names the folder": str(model) in run.stderr,
                                       "nothing unpickled": not marker.exists(),
                                       "nothing written": run.lines == []}, expect=2)


def replace_file(path: Path, data: bytes) -> None:
    path.unlink()  # a hard link: never write through to the original model
    path.write_bytes(data)


def edit_meta(edit: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    def tamper(model: Path, marker: Path) -> None:
        meta = json.loads((model / "fsre.json").read_text())
        edit(meta)
        replace_file(model / "fsre.json", json.dumps(meta).encode())
    return tamper


def torch_saved(model: Path, marker: Path) -> None:
    weights = model / "model.safetensors"
    weights.unlink()
    subprocess.run([sys.executable, "-c", TORCH_SAVE, str(weights), str(marker)], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


TAMPERS: dict[str, Callable[[Path, Path], None]] = {
    "fsre.json not JSON": lambda m, _: replace_file(m / "fsre.json", b"{not json"),
    "relations missing": edit_meta(lambda meta: meta.pop("relations")),
    "relations shortened": edit_meta(lambda meta: meta.update(relations=meta["relations"][:1])),
    "threshold not a number": edit_meta(lambda meta: meta.update(threshold="abc")),
    "threshold NaN": edit_meta(lambda meta: meta.update(threshold=math.nan)),
    "weights are a pickle": lambda m, marker: replace_file(m / "model.safetensors",
                                                           pickle.dumps({"w": _OpensAFile(marker)})),
    "weights are a torch.save file": torch_saved,
}


@case("model folder intact (control)", "11")
def model_intact(ctx: Context) -> Result:
    path = jsonl(ctx.folder("model-intact") / "docs.jsonl", [DOC])
    run = ctx.fsre("extract", str(path), "--schema", str(ctx.schema), "--entities", "given",
                   "--model", str(ctx.model()), "--min-score", "0")
    return judge(run, len(run.lines), {"2 records": len(run.lines) == 2}, expect=0)


def tamper_case(kind: str) -> Case:
    return lambda ctx: tampered(ctx, "tamper", TAMPERS[kind])


for _kind in TAMPERS:
    case(f"tampered model: {_kind}", "11/13" if "NaN" in _kind else "11")(tamper_case(_kind))


@case("LLM endpoint answers HTML with 200 (qa4re)", "11")
def html_qa4re(ctx: Context) -> Result:
    path = jsonl(ctx.folder("html-qa4re") / "docs.jsonl", [DOC])
    with http_server(html_page) as (url, _):
        run = ctx.fsre("extract", str(path), "--schema", str(ctx.schema), "--method", "qa4re", "--entities", "given",
                       env={"OPENAI_BASE_URL": url, "OPENAI_API_KEY": "x"}, timeout=60)
    return judge(run, len(run.lines), {"quotes the page": "html" in run.stderr.lower()}, expect=3)


@case("LLM endpoint answers HTML with 200 (synth)", "11")
def html_synth(ctx: Context) -> Result:
    folder = ctx.folder("html-synth")
    schema = folder / "hostile.yaml"
    schema.write_text(SCHEMA)
    with http_server(html_page) as (url, _):
        run = ctx.fsre("synth", str(schema), "--per-relation", "1", "--no-explanations",
                       env={"OPENAI_BASE_URL": url, "OPENAI_API_KEY": "x"}, timeout=60)
    return judge(run, None, {"quotes the page": "html" in run.stderr.lower(),
                             "no sidecar written": not (folder / "hostile.synth.jsonl").exists()}, expect=3)


def refused_option(*option: str, message: str, env: dict[str, str] | None = None) -> Case:
    def run_case(ctx: Context) -> Result:
        path = jsonl(ctx.folder("option") / "docs.jsonl", [DOC])
        run = ctx.fsre("extract", str(path), "--schema", str(ctx.schema), "--method", "prototype",
                       "--entities", "given", *option, env=env)
        return judge(run, len(run.lines), {f"says {message!r}": message in run.stderr,
                                           "nothing written": run.lines == []}, expect=2)
    return run_case


case("--batch-size 0", "11")(refused_option("--batch-size", "0", message="Invalid value for '--batch-size'"))
case("FSRE_THREADS=abc", "11")(refused_option(message="FSRE_THREADS must be a whole number",
                                              env={"FSRE_THREADS": "abc"}))


def bad_offset_case(raw: bytes) -> Case:
    def run_case(ctx: Context) -> Result:
        lines = [line_of(d) for d in docs(3)]
        lines[1] = lines[1].replace(b'"start": 0', b'"start": ' + raw, 1)
        return skips_one(ctx, "offset", lines, "{path}:2 (entities[0].start")
    return run_case


case("entity offset 1e400", "11")(bad_offset_case(b"1e400"))


@case("JSON line nested 100,000 deep", "11")
def deep_json(ctx: Context) -> Result:
    lines = [line_of(d) for d in docs(3)]
    lines[1] = b'{"id": "deep", "text": "x", "entities": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    return skips_one(ctx, "deep-json", lines, "{path}:2")


@case("schema show on a name with rich markup", "11")
def markup_name(ctx: Context) -> Result:
    path = ctx.folder("markup") / "s.yaml"
    path.write_text(SCHEMA.replace("name: hostile", "name: 'odd[/bold] [red]name'")
                    .replace("the person was born in the place", "born [/] in"))
    run = ctx.fsre("schema", "show", str(path))
    shown = run.stdout.decode("utf-8", "replace")
    literal = "odd[/bold] [red]name" in shown and "born [/] in" in shown
    return judge(run, len(run.lines), {"markup printed as text": literal},
                 expect=0)


# 12 -----------------------------------------------------------------------------------------


@case("two fsre train at once, same schema (3 rounds)", "12")
def concurrent_train(ctx: Context) -> Result:
    runs: list[Run] = []
    problems: list[str] = []
    for round_no in range(3):
        cache = ctx.folder(f"train-race-{round_no}") / "cache"
        started = [ctx.start("train", str(ctx.schema), *TRAIN_FAST, env={"FSRE_CACHE_DIR": str(cache)})
                   for _ in range(2)]
        pair = [ctx.finish(*s, TIMEOUT_S) for s in started]
        runs += pair
        models = [p for p in (cache / "models").iterdir()] if (cache / "models").is_dir() else []
        kept = [p for p in models if ".partial" not in p.name]
        if [r.rc for r in pair] != [0, 0]:
            problems.append(f"round {round_no}: exits {[r.rc for r in pair]}")
        if len(kept) != 1 or len(models) != 1:
            problems.append(f"round {round_no}: cache holds {sorted(p.name for p in models)}")
    exits = ",".join(str(r.rc) for r in runs)
    failed = [r for r in runs if r.rc != 0] or runs[-1:]
    result = judge(failed, f"{len(runs)} runs", {"; ".join(problems) or "every run exit 0, one model": not problems},
                   exit_text=exits)
    return result


# 13 -----------------------------------------------------------------------------------------

case("--batch-size -3", "13")(refused_option("--batch-size", "-3", message="Invalid value for '--batch-size'"))
case("--min-score 2", "13")(refused_option("--min-score", "2", message="--min-score must be a number from -1 to 1"))
case("--min-score nan", "13")(refused_option("--min-score", "nan", message="--min-score must be a number from -1 to 1"))


# 14 -----------------------------------------------------------------------------------------


def batch_case(method: str) -> Case:
    def run_case(ctx: Context) -> Result:
        folder = ctx.folder(f"batch-{method}")
        examples = [json.loads(line) for line in (ROOT / "examples" / "org-people.jsonl").read_text().splitlines()]
        target = next(d for d in examples if d["id"] == "org-people-2")
        crowd = [{**d, "id": f"{d['id']}-copy{k}"} for k in range(12) for d in examples]
        crowd += [{**DOC, "id": f"short{k}"} for k in range(12)]
        crowd.insert(len(crowd) // 2 + 1, target)  # off the batch boundaries of an aligned run
        alone = jsonl(folder / "alone.jsonl", [target])
        crowded = jsonl(folder / "crowd.jsonl", crowd)
        if method == "prototype":
            common = ["--schema", str(ROOT / "schemas" / "org-people.yaml"), "--method", "prototype"]
        else:
            common = ["--schema", str(ctx.schema), "--model", str(ctx.model())]
        runs = [ctx.fsre("extract", str(p), *common, "--entities", "given", "--min-score", "0")
                for p in (alone, crowded)]
        mine = [[line for line in r.lines if json.loads(line)["doc"] == "org-people-2"] for r in runs]
        same = mine[0] == mine[1] and bool(mine[0])
        drift = 0.0
        if not same and len(mine[0]) == len(mine[1]):
            drift = max(abs(json.loads(a)["score"] - json.loads(b)["score"]) for a, b in zip(*mine))
        note = (f"{method}: org-people-2 alone vs among {len(crowd)} documents: "
                + ("identical" if same else f"DIFFERENT ({len(mine[0])} vs {len(mine[1])} records, "
                                            f"largest score difference {drift:.4f})"))
        return judge(runs, len(mine[0]), {"records identical byte for byte": same,
                                          "both runs exit 0": all(r.rc == 0 for r in runs)},
                     note=note, open_item=True, exit_text=",".join(str(r.rc) for r in runs))
    return run_case


case("same document alone and in a batch (prototype)", "14")(batch_case("prototype"))
case("same document alone and in a batch (tkre tiny model)", "14")(batch_case("tkre"))


# 15 -----------------------------------------------------------------------------------------


def ctrl_c_case(delay: float) -> Case:
    def run_case(ctx: Context) -> Result:
        # stdin stays open, so the run is still going when the signal lands; SIGINT's default
        # disposition, because a background job inherits it as ignored
        started = ctx.start("extract", "-", "--schema", str(ctx.schema), "--method", "prototype",
                            "--entities", "given", stdin_pipe=True,
                            preexec=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        proc = started[0]
        proc.stdin.write((json.dumps(DOC) + "\n").encode())
        proc.stdin.flush()
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        run = ctx.finish(*started, 30)
        proc.stdin.close()
        return judge(run, len(run.lines), {'says "interrupted"': "interrupted" in run.stderr}, expect=130)
    return run_case


for _delay in (0.3, 1.0, 2.5):
    case(f"Ctrl-C at {_delay:g} s", "15")(ctrl_c_case(_delay))


@case("fsre extract ... | head -1 (pipefail)", "15")
def pipe_to_head(ctx: Context) -> Result:
    folder = ctx.folder("head")
    path = jsonl(folder / "docs.jsonl", docs(400))
    out = folder / "first.jsonl"
    command = (f"set -o pipefail; {shlex.quote(sys.executable)} -m fsre_cli extract {shlex.quote(str(path))} "
               f"--schema {shlex.quote(str(ctx.schema))} --method prototype --entities given --min-score -1 "
               f"| head -1 > {shlex.quote(str(out))}")
    env = {**ctx.base_env, "FSRE_CACHE_DIR": str(ctx.cache)}
    started = time.monotonic()
    proc = subprocess.run(["bash", "-c", command], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    run = Run(["bash", "-c", command], {"FSRE_CACHE_DIR": str(ctx.cache), **ctx.fixed}, proc.returncode,
              b"", proc.stderr, time.monotonic() - started, 0.0, False)
    kept = len(out.read_text().splitlines()) if out.exists() else 0
    return judge(run, kept, {"one line through head": kept == 1}, expect=0)


# 16 -----------------------------------------------------------------------------------------


@case("train -o from the cache writes a training log", "16")
def train_log_from_cache(ctx: Context) -> Result:
    ctx.model()  # the cache now holds the model
    folder = ctx.folder("train-log") / "m"
    run = ctx.fsre("train", str(ctx.schema), *TRAIN_FAST, "-o", str(folder))
    log = folder / "train_log.jsonl"
    lines = len(log.read_text().splitlines()) if log.exists() else 0
    return judge(run, lines, {"train_log.jsonl not empty": lines > 0,
                              "taken from the cache": "training" not in run.stderr}, expect=0)


def train_refuses(*option: str) -> Case:
    def run_case(ctx: Context) -> Result:
        run = ctx.fsre("train", str(ctx.schema), "--entities", "given", *option)
        return judge(run, None, {"refused before training": "training" not in run.stderr,
                                 "says Invalid value": "Invalid value" in run.stderr}, expect=2)
    return run_case


case("train --epochs -1", "16")(train_refuses("--epochs", "-1"))
case("train --max-length 4", "16")(train_refuses("--max-length", "4"))


@case("malformed OPENAI_BASE_URL (qa4re)", "16")
def malformed_url(ctx: Context) -> Result:
    path = jsonl(ctx.folder("bad-url") / "docs.jsonl", [DOC])
    run = ctx.fsre("extract", str(path), "--schema", str(ctx.schema), "--method", "qa4re", "--entities", "given",
                   env={"OPENAI_BASE_URL": "htp:/x", "OPENAI_API_KEY": "x"}, timeout=60)
    return judge(run, len(run.lines), {"names OPENAI_BASE_URL": "OPENAI_BASE_URL" in run.stderr,
                                       "refused at once (< 10 s)": run.seconds < 10}, expect=2)


@case("malformed OPENAI_BASE_URL (synth)", "16")
def malformed_url_synth(ctx: Context) -> Result:
    folder = ctx.folder("bad-url-synth")
    schema = folder / "hostile.yaml"
    schema.write_text(SCHEMA)
    run = ctx.fsre("synth", str(schema), "--no-explanations", env={"OPENAI_BASE_URL": "htp:/x"}, timeout=60)
    return judge(run, None, {"names OPENAI_BASE_URL": "OPENAI_BASE_URL" in run.stderr,
                             "refused at once (< 10 s)": run.seconds < 10}, expect=2)


case('entity offset given as "0"', "16")(bad_offset_case(b'"0"'))
case("entity offset given as 25.9", "16")(bad_offset_case(b"25.9"))


# --------------------------------------------------------------------------- main


def main() -> int:
    global BIG_MB
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only the cases whose name contains this (case-insensitive)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--big-mb", type=float, default=BIG_MB, help="size of the single-line document (item 9)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (kept anyway on a DEFECT)")
    args = parser.parse_args()
    BIG_MB = args.big_mb
    chosen = [c for c in CASES if not args.only or args.only.lower() in c[0].lower()]
    if args.list:
        for name, item, _ in chosen:
            print(f"{item:>5}  {name}")
        return 0
    if not chosen:
        print(f"no case matches {args.only!r}", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="fsre-hostile-"))
    ctx = Context(work)
    width = max(len(f"{item} {name}") for name, item, _ in chosen)
    header = f"{'case (issue item)':{width}} | {'exit':>11} | {'kept':>8} | {'verdict':7} | last stderr line"
    print(f"fsre hostile-input run: {len(chosen)} cases, tree {ROOT}, work folder {work}", flush=True)
    print(header)
    print("-" * len(header), flush=True)
    results: list[tuple[str, Result]] = []
    started = time.monotonic()
    for name, item, fn in chosen:
        label = f"{item} {name}"
        try:
            result = fn(ctx)
        except Exception as exc:  # a broken case is a defect of this script, said as such
            result = Result("-", "-", "DEFECT", f"the case itself failed: {type(exc).__name__}: {exc}"[:100])
        message = result.message if len(result.message) <= 100 else result.message[:97] + "..."
        print(f"{label:{width}} | {result.exit:>11} | {result.kept:>8} | {result.verdict:7} | {message}", flush=True)
        results.append((label, result))
    elapsed = time.monotonic() - started

    noted = [(label, r) for label, r in results if r.notes or r.commands]
    if noted:
        print("\nnotes:")
        for label, r in noted:
            print(f"- {label} [{r.verdict}]")
            for note in r.notes:
                print(f"    {note}")
            for command in r.commands:
                print(f"    reproduce: {command}")
    counts = {v: sum(r.verdict == v for _, r in results) for v in ("ok", "DEFECT", "open")}
    print(f"\n{counts['ok']} ok, {counts['DEFECT']} defect(s), {counts['open']} open  ({elapsed / 60:.1f} min)")
    if counts["DEFECT"] or args.keep:
        print(f"inputs and outputs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if counts["DEFECT"] else 0


if __name__ == "__main__":
    sys.exit(main())
