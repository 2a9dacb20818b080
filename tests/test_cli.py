"""The `fsre` command as a user runs it: a real process, real files, exit codes, clean stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCHEMA = """\
name: cli-test
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

DOC = {
    "id": "d1",
    "text": "Dana Scott works for Umbrella Corp. She was born in Austin.",
    "entities": [
        {"start": 0, "end": 10, "type": "PERSON"},
        {"start": 21, "end": 34, "type": "ORG"},
        {"start": 52, "end": 58, "type": "PLACE"},
    ],
}


def fsre(*args: str, stdin: str | None = None, env: dict | None = None, cwd: Path | None = None):
    full_env = {**os.environ, "FSRE_THREADS": "1", "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "fsre_cli", *args], input=stdin, capture_output=True, text=True,
                          env=full_env, cwd=cwd or ROOT, timeout=600)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    (d / "s.yaml").write_text(SCHEMA)
    (d / "docs.jsonl").write_text(json.dumps(DOC) + "\n")
    return d


def test_version_and_help() -> None:
    out = fsre("--version")
    assert out.returncode == 0 and out.stdout.startswith("fsre ")
    for command in ("extract", "train", "synth", "eval", "schema", "models", "llm", "bench"):
        help_out = fsre(command, "--help")
        assert help_out.returncode == 0, (command, help_out.stderr)
        assert "Example" in help_out.stdout or "Commands" in help_out.stdout, command


def test_schema_check_exit_codes(workdir: Path) -> None:
    ok = fsre("schema", "check", str(workdir / "s.yaml"), *map(str, sorted((ROOT / "schemas").glob("*.yaml"))))
    assert ok.returncode == 0 and ok.stdout == ""
    broken = workdir / "broken.yaml"
    broken.write_text(SCHEMA.replace("tail: Acme Corp}", "tail: Acme Inc}"))
    bad = fsre("schema", "check", str(broken))
    assert bad.returncode == 2 and bad.stdout == ""
    assert f'{broken}:10: relations.works_for.examples[0]: tail "Acme Inc" does not occur in text' in bad.stderr
    assert "Traceback" not in bad.stderr
    shown = fsre("schema", "show", str(workdir / "s.yaml"))
    assert shown.returncode == 0 and "works_for" in shown.stdout and "{head} works for {tail}" in shown.stdout


def test_usage_errors_exit_2_without_traceback(workdir: Path) -> None:
    missing = fsre("extract", "x.txt", "--schema", str(workdir / "nope.yaml"))
    assert missing.returncode == 2 and "no such schema file" in missing.stderr and "Traceback" not in missing.stderr
    bad_method = fsre("extract", str(workdir / "docs.jsonl"), "--schema", str(workdir / "s.yaml"), "--method", "magic")
    assert bad_method.returncode == 2 and "--method must be one of" in bad_method.stderr
    no_input = fsre("extract", "--schema", str(workdir / "s.yaml"), "--files-from", str(workdir / "none.txt"))
    assert no_input.returncode == 2
    docs, schema = str(workdir / "docs.jsonl"), str(workdir / "s.yaml")
    bad_route = fsre("extract", docs, "--schema", schema, "--method", "cascade", "--cascade-route", "0")
    assert bad_route.returncode == 2 and "--cascade-route must be in (0, 1]" in bad_route.stderr
    bad_band = fsre("extract", docs, "--schema", schema, "--method", "cascade", "--cascade-band", "0.8", "0.2")
    assert bad_band.returncode == 2 and "--cascade-band needs 0 <= LOW <= HIGH <= 1" in bad_band.stderr


@pytest.mark.slow
def test_extract_prototype_given_entities_offsets_round_trip(workdir: Path) -> None:
    out = fsre("extract", str(workdir / "docs.jsonl"), "--schema", str(workdir / "s.yaml"),
               "--method", "prototype", "--min-score", "-1")
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]  # stdout is JSONL and nothing else
    assert records, out.stderr
    for r in records:
        for slot in ("head", "tail"):
            assert DOC["text"][r[slot]["start"] : r[slot]["end"]] == r[slot]["text"]
        assert r["method"] == "prototype" and r["doc"] == "d1" and r["evidence"] in DOC["text"]
    pairs = {(r["head"]["text"], r["tail"]["text"]): r["relation"] for r in records}
    assert pairs.get(("Dana Scott", "Umbrella Corp")) == "works_for"
    assert pairs.get(("Dana Scott", "Austin")) == "born_in"
    assert "candidate pairs" in out.stderr


@pytest.mark.slow
def test_train_takes_nota_pairs_from_stanza_and_extract_finds_that_model(workdir: Path, tiny_ner_model: Path,
                                                                         tmp_path: Path) -> None:
    env = {"FSRE_CACHE_DIR": str(tmp_path / "cache"), "FSRE_NER_MODEL": str(tiny_ner_model)}
    trained = fsre("train", str(workdir / "s.yaml"), env=env)
    assert trained.returncode == 0, trained.stderr
    assert "NOTA pairs from known entity mentions" in trained.stderr
    (model_dir,) = (tmp_path / "cache" / "models").iterdir()
    meta = json.loads((model_dir / "fsre.json").read_text())
    assert meta["train"]["negatives_from"] == "known mentions"
    text = "Alice Smith works for Acme Corp.  She was born in Paris.\n\nBob Jones joined Globex in London."
    out = fsre("extract", "-", "--schema", str(workdir / "s.yaml"), stdin=text, env=env)
    assert out.returncode == 0, out.stderr
    assert "training a model" not in out.stderr  # the same example mentions, so the same cache key
    given = fsre("train", str(workdir / "s.yaml"), "--entities", "given", "--epochs", "2", "--mslm-epochs", "1",
                 "--scl-epochs", "1", env=env)
    assert given.returncode == 0 and "NOTA pairs from name-like spans" in given.stderr


@pytest.mark.slow
def test_extract_stdin_with_stanza_test_model(workdir: Path, tiny_ner_model: Path) -> None:
    text = "Alice Smith works for Acme Corp.  She was born in Paris.\n\nBob Jones joined Globex in London."
    out = fsre("extract", "-", "--schema", str(workdir / "s.yaml"), "--method", "prototype", "--min-score", "-1",
               "--ner-model", str(tiny_ner_model), stdin=text)
    assert out.returncode == 0, out.stderr
    for r in map(json.loads, out.stdout.splitlines()):
        assert r["doc"] == "-"
        assert text[r["head"]["start"] : r["head"]["end"]] == r["head"]["text"]
        assert text[r["tail"]["start"] : r["tail"]["end"]] == r["tail"]["text"]


def test_missing_stanza_models_give_the_fix(workdir: Path, tmp_path: Path) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text("Alice Smith works for Acme Corp.")
    out = fsre("extract", str(doc), "--schema", str(workdir / "s.yaml"), "--method", "prototype",
               "--stanza-dir", str(tmp_path / "empty"))
    assert out.returncode == 2 and out.stdout == ""
    assert "fsre models download --lang en" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_skipped_inputs_exit_1_unless_keep_going(workdir: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    args = ["extract", str(workdir / "docs.jsonl"), str(tmp_path / "empty.txt"), "--schema", str(workdir / "s.yaml"),
            "--method", "prototype", "--entities", "given"]
    out = fsre(*args)
    assert out.returncode == 1 and "skipping" in out.stderr and "empty" in out.stderr
    assert fsre(*args, "--keep-going").returncode == 0


@pytest.mark.slow
def test_train_then_extract_with_model_dir_and_resume(workdir: Path, tmp_path: Path) -> None:
    env = {"FSRE_CACHE_DIR": str(tmp_path / "cache")}
    model = tmp_path / "model"
    trained = fsre("train", str(workdir / "s.yaml"), "--epochs", "3", "--mslm-epochs", "1", "--scl-epochs", "1",
                   "-o", str(model), env=env)
    assert trained.returncode == 0, trained.stderr
    assert (model / "fsre.json").exists() and trained.stdout == ""
    cached = fsre("train", str(workdir / "s.yaml"), "--epochs", "3", "--mslm-epochs", "1", "--scl-epochs", "1", env=env)
    assert cached.returncode == 0 and "training a model" not in cached.stderr  # the cache key matched
    out = tmp_path / "out.jsonl"
    docs = tmp_path / "many.jsonl"
    docs.write_text("".join(json.dumps({**DOC, "id": f"d{i}"}) + "\n" for i in range(3)))
    first = fsre("extract", str(docs), "--schema", str(workdir / "s.yaml"), "--model", str(model),
                 "--min-score", "0", "-o", str(out), env=env)
    assert first.returncode == 0, first.stderr
    lines = out.read_text().splitlines()
    assert {json.loads(line)["doc"] for line in lines} == {"d0", "d1", "d2"}
    resumed = fsre("extract", str(docs), "--schema", str(workdir / "s.yaml"), "--model", str(model),
                   "--min-score", "0", "-o", str(out), "--resume", env=env)
    assert resumed.returncode == 0 and out.read_text().splitlines() == lines
    assert "0 documents" in resumed.stderr
    other = workdir / "other.yaml"
    other.write_text(SCHEMA.replace("born_in", "lives_in"))
    refused = fsre("extract", str(docs), "--schema", str(other), "--model", str(model), env=env)
    assert refused.returncode == 2 and "other relations" in refused.stderr


@pytest.mark.slow
def test_packed_training_and_int8_extraction_keep_the_records_offsets(workdir: Path, tmp_path: Path) -> None:
    env = {"FSRE_CACHE_DIR": str(tmp_path / "cache")}
    model = tmp_path / "packed"
    quick = ["--epochs", "2", "--mslm-epochs", "1", "--scl-epochs", "1"]
    trained = fsre("train", str(workdir / "s.yaml"), *quick, "--packing", "sentence", "-o", str(model), env=env)
    assert trained.returncode == 0, trained.stderr
    meta = json.loads((model / "fsre.json").read_text())
    assert meta["config"]["packing"] == "sentence" and meta["format"] == 2  # an earlier fsre refuses it
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({**DOC, "id": f"d{i}"}) + "\n" for i in range(3)))
    base = ["extract", str(docs), "--schema", str(workdir / "s.yaml"), "--model", str(model), "--min-score", "0"]
    torch_run, int8_run = fsre(*base, env=env), fsre(*base, "--quantize", "int8", env=env)
    assert torch_run.returncode == 0 and int8_run.returncode == 0, int8_run.stderr
    assert (model / "encoder.int8.onnx").is_file()  # exported once, into the model folder

    def pairs(out: str) -> list[tuple]:
        return sorted((r["doc"], r["head"]["start"], r["head"]["end"], r["head"]["text"], r["tail"]["start"],
                       r["tail"]["end"]) for r in map(json.loads, out.splitlines()))

    assert pairs(torch_run.stdout) == pairs(int8_run.stdout) and len(pairs(torch_run.stdout)) == 3 * 2
    bad = fsre(*base, "--packing", "document", env=env)
    assert bad.returncode == 2 and "--packing must be one of pair, head, sentence" in bad.stderr
    proto = fsre(*base[:4], "--method", "prototype", "--quantize", "int8", env=env)
    assert proto.returncode == 2 and "--quantize" in proto.stderr and "--method tkre" in proto.stderr


@pytest.mark.slow
def test_ctrl_c_exits_130_keeps_finished_documents_and_resume_continues(workdir: Path, tmp_path: Path) -> None:
    import re
    import signal
    import time

    out = tmp_path / "out.jsonl"
    progress = tmp_path / "out.jsonl.progress"
    args = [sys.executable, "-m", "fsre_cli", "extract", "-", "--schema", str(workdir / "s.yaml"),
            "--method", "prototype", "--min-score", "0", "-o", str(out)]
    env = {**os.environ, "FSRE_THREADS": "1", "NO_COLOR": "1"}
    docs = [json.dumps({**DOC, "id": f"d{i}"}) + "\n" for i in range(2000)]  # several 2048-pair flushes
    # a background job's children inherit an ignored SIGINT, and Python then never raises KeyboardInterrupt:
    # give the child the default disposition, as a terminal would
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    proc.stdin.write("".join(docs))  # more than one scoring batch; stdin stays open, so the run waits
    proc.stdin.flush()
    deadline = time.time() + 300
    while time.time() < deadline and not (progress.exists() and progress.read_text().strip()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    match = re.search(r"interrupted after (\d+) complete document\(s\); rerun with `-o .* --resume`", err)
    assert match and "Traceback" not in err, err
    finished = progress.read_text().split()
    assert 0 < len(finished) < len(docs) and int(match.group(1)) == len(finished)
    resumed = fsre("extract", "-", "--schema", str(workdir / "s.yaml"), "--method", "prototype", "--min-score", "0",
                   "-o", str(out), "--resume", stdin="".join(docs))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(docs) - len(finished)} documents (and {len(finished)} finished by an earlier run, skipped)" \
        in resumed.stderr  # finished documents are not redone, and the summary says so
    assert {json.loads(line)["doc"] for line in out.read_text().splitlines()} == {f"d{i}" for i in range(len(docs))}


@pytest.mark.slow
def test_extract_from_a_paused_stream_writes_each_document_without_waiting_for_more(workdir: Path) -> None:
    """`tail -f docs.jsonl | fsre extract -`: a document's triples come out while stdin stays open."""
    import queue
    import threading

    args = [sys.executable, "-m", "fsre_cli", "extract", "-", "--schema", str(workdir / "s.yaml"),
            "--method", "prototype", "--min-score", "0"]
    env = {**os.environ, "FSRE_THREADS": "1", "NO_COLOR": "1"}
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()

    seen: set[str] = set()

    def wait_for(until: str) -> None:
        while until not in seen:
            try:
                seen.add(json.loads(lines.get(timeout=300))["doc"])
            except queue.Empty:
                proc.kill()
                pytest.fail(f"no triple for {until} while stdin stayed open: {proc.stderr.read()}")

    try:
        for doc_id in ("s1", "s2"):
            proc.stdin.write(json.dumps({**DOC, "id": doc_id}) + "\n")
            proc.stdin.flush()
            wait_for(doc_id)  # its triples are out while stdin is still open
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0
        assert "2 documents" in proc.stderr.read()
    finally:
        proc.kill()


@pytest.mark.slow
def test_a_paused_stream_records_each_finished_document_for_resume(workdir: Path, tmp_path: Path) -> None:
    """With -o on a stream, a document is recorded as finished as soon as it is written, not when the
    next one starts: a run killed while the stream waits does not redo it on --resume."""
    out = tmp_path / "out.jsonl"
    progress = tmp_path / "out.jsonl.progress"
    args = [sys.executable, "-m", "fsre_cli", "extract", "-", "--schema", str(workdir / "s.yaml"),
            "--method", "prototype", "--min-score", "0", "-o", str(out)]
    env = {**os.environ, "FSRE_THREADS": "1", "NO_COLOR": "1"}
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    try:
        proc.stdin.write(json.dumps({**DOC, "id": "s1"}) + "\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 300
        while not (progress.exists() and progress.read_text().splitlines() == ["s1"]):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"s1 was not recorded as finished while stdin stayed open: {proc.stderr.read()}")
            time.sleep(0.2)
        assert {json.loads(line)["doc"] for line in out.read_text().splitlines()} == {"s1"}
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0
        assert progress.read_text().splitlines() == ["s1"]  # recorded once
    finally:
        proc.kill()


def test_readme_command_reference_matches_the_commands() -> None:
    from fsre_cli.cli.reference import current_section, render

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert current_section(readme) == render(), "run: python -m fsre_cli.cli.reference --write README.md"


def test_every_help_has_an_example_and_readable_value_names() -> None:
    """Typer >= 0.25 prints Python annotations (`<bool>`, `<list[str]>`) as value names; fsre's
    help shows what a user types (TEXT, INTEGER, PATH, nothing for a flag) on every command and group."""
    import re

    import typer
    from typer.testing import CliRunner

    from fsre_cli.cli.reference import _commands
    from fsre_cli.cli.root import app

    root = typer.main.get_command(app)
    paths = [p for p, _ in _commands(root, "fsre")]
    groups = sorted({" ".join(p.split()[:2]) for p in paths if len(p.split()) > 2})
    assert "fsre bench" in groups and "fsre extract" in paths
    runner = CliRunner()
    for path in ["fsre"] + groups + paths:
        out = runner.invoke(app, path.split()[1:] + ["--help"], env={"COLUMNS": "120"})
        assert out.exit_code == 0, (path, out.output)
        assert "Example" in out.output, path
        assert not re.search(r"<(bool|str|int|float|path|list)", out.output), (path, out.output)
    extract_help = runner.invoke(app, ["extract", "--help"], env={"COLUMNS": "120"}).output
    assert re.search(r"--resume\s+With --output", extract_help)  # a flag shows no value name
    assert re.search(r"--min-score\s+FLOAT", extract_help) and re.search(r"--schema\s+-s\s+PATH", extract_help)


def test_decision_options_are_checked_before_anything_loads(workdir: Path) -> None:
    docs, schema = str(workdir / "docs.jsonl"), str(workdir / "s.yaml")
    bad = fsre("extract", docs, "--schema", schema, "--decision", "vote")
    assert bad.returncode == 2 and "--decision must be one of threshold, nota, relation" in bad.stderr
    both = fsre("extract", docs, "--schema", schema, "--min-precision", "0.9", "--min-score", "0.5")
    assert both.returncode == 2 and "give one" in both.stderr
    zero_shot = fsre("extract", docs, "--schema", schema, "--min-precision", "0.9", "--method", "qa4re")
    assert zero_shot.returncode == 2 and "use it with --method tkre" in zero_shot.stderr
    nota = fsre("extract", docs, "--schema", schema, "--min-precision", "0.9", "--decision", "nota")
    assert nota.returncode == 2 and "--decision nota does not use" in nota.stderr
    out_of_range = fsre("extract", docs, "--schema", schema, "--min-precision", "0")
    assert out_of_range.returncode == 2 and "--min-precision must be above 0" in out_of_range.stderr
    for out in (bad, both, zero_shot, out_of_range):
        assert "training" not in out.stderr and "Traceback" not in out.stderr
