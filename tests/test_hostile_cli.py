"""Hostile input through the real `fsre` process: one bad document never costs the others,
and bad options are refused up front instead of ending in empty output or a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import DOC, SCHEMA, fsre


def _doc(i: int) -> dict:
    return {**DOC, "id": f"d{i}"}


@pytest.fixture(scope="module")
def schema_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "s.yaml"
    path.write_text(SCHEMA)
    return path


BAD_ENTITIES = [  # (the bad entity, what the warning says), each in a document of its own
    ({"start": 52, "end": 5000, "type": "PLACE"}, "ends after the text"),
    ({"start": -3, "end": 4, "type": "PLACE"}, "starts before the text"),
    ({"start": 40, "end": 30, "type": "PLACE"}, "ends before it starts"),
    ({"start": 35, "end": 36, "type": "PLACE"}, "covers only whitespace"),
    ({"start": 52, "end": 58, "type": "WEAPON"}, "WEAPON"),
]


@pytest.mark.slow
def test_one_bad_entity_skips_only_its_document(schema_file: Path, tmp_path: Path) -> None:
    docs = [_doc(i) for i in range(200)]
    bad = {30 * (k + 1): entity for k, (entity, _reason) in enumerate(BAD_ENTITIES)}  # d30, d60, ..., d150
    for i, entity in bad.items():
        docs[i] = {**docs[i], "entities": [*DOC["entities"], entity]}
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    args = ["extract", str(path), "--schema", str(schema_file), "--method", "prototype", "--min-score", "-1"]
    out = fsre(*args)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning: skipping")]
    for i, (_entity, reason) in zip(bad, BAD_ENTITIES):
        assert any(f'"d{i}"' in line and reason in line for line in warnings), (i, reason, out.stderr)
    written = {json.loads(line)["doc"] for line in out.stdout.splitlines()}
    assert written == {f"d{i}" for i in range(200) if i not in bad}
    assert fsre(*args, "--keep-going").returncode == 0


@pytest.mark.parametrize("option, value, message", [
    ("--min-score", "2", "--min-score must be a number from -1 to 1"),
    ("--min-score", "nan", "--min-score must be a number from -1 to 1"),
    ("--batch-size", "0", "Invalid value for '--batch-size'"),
    ("--batch-size", "100000", "Invalid value for '--batch-size'"),
    ("--batch-size", "-3", "Invalid value for '--batch-size'"),
])
def test_options_that_would_silently_write_nothing_are_refused(schema_file: Path, tmp_path: Path, option: str,
                                                              value: str, message: str) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps(DOC) + "\n")
    out = fsre("extract", str(path), "--schema", str(schema_file), "--method", "prototype", option, value)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_bad_thread_count_is_a_usage_error(schema_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps(DOC) + "\n")
    out = fsre("extract", str(path), "--schema", str(schema_file), env={"FSRE_THREADS": "abc"})
    assert out.returncode == 2 and "FSRE_THREADS must be a whole number" in out.stderr
    assert "Traceback" not in out.stderr


def test_schema_show_prints_markup_in_names_as_text(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCHEMA.replace("name: cli-test", "name: 'odd[/bold] [red]name'")
                    .replace("the person was born in the place", "born [/] in"))
    out = fsre("schema", "show", str(path))
    assert out.returncode == 0, out.stderr
    assert "odd[/bold] [red]name" in out.stdout and "born [/] in" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["-o", "{tmp}/missing/out.jsonl"], "does not exist"),
    (["-o", "{tmp}"], "is a directory"),
    (["-o", "/dev/stdout", "--resume"], "--resume needs a regular output file"),
])
def test_outputs_are_checked_before_any_model_is_built(schema_file: Path, tmp_path: Path, args: list[str],
                                                       message: str) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps(DOC) + "\n")
    cache = tmp_path / "cache"
    out = fsre("extract", str(path), "--schema", str(schema_file), *[a.format(tmp=tmp_path) for a in args],
               env={"FSRE_CACHE_DIR": str(cache)})
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert "training" not in out.stderr and not (cache / "models").exists()


def test_a_cache_dir_that_is_a_file_is_refused_before_training(schema_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps(DOC) + "\n")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    for args in (["extract", str(path), "--schema", str(schema_file)], ["train", str(schema_file)]):
        out = fsre(*args, env={"FSRE_CACHE_DIR": str(blocker)})
        assert out.returncode == 2 and "FSRE_CACHE_DIR" in out.stderr and "training" not in out.stderr, out.stderr


def test_train_refuses_an_output_folder_holding_other_files(schema_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    out = fsre("train", str(schema_file), "--entities", "given", "-o", str(folder),
               env={"FSRE_CACHE_DIR": str(tmp_path / "cache")})
    assert out.returncode == 2 and "training" not in out.stderr, out.stderr
    assert "not empty and not an fsre model" in out.stderr
    assert (folder / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize("option", [["--epochs", "-1"], ["--max-length", "4"]])
def test_train_refuses_impossible_settings(schema_file: Path, option: list[str]) -> None:
    out = fsre("train", str(schema_file), "--entities", "given", *option)
    assert out.returncode == 2 and "Invalid value" in out.stderr and "training" not in out.stderr


@pytest.mark.parametrize("delay", [0.05, 0.3, 1.0, 2.5])
def test_ctrl_c_at_any_moment_is_one_line_and_exit_130(schema_file: Path, tmp_path: Path, delay: float) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "FSRE_THREADS": "1", "NO_COLOR": "1", "FSRE_CACHE_DIR": str(tmp_path / "cache")}
    # The clock starts once the interpreter is up: a Ctrl-C inside Python's own start-up (importing
    # `site`, before any fsre code runs) is CPython's "Fatal Python error", exit 1, which no program
    # can catch; on a loaded machine that start-up alone can take longer than the shortest delay.
    # The launcher says "up" on a pipe of its own, then runs `python -m fsre_cli` unchanged.
    ready_read, ready_write = os.pipe()
    launcher = ("import os, runpy, sys; os.write(int(sys.argv.pop(1)), b'1'); "
                "runpy.run_module('fsre_cli', run_name='__main__', alter_sys=True)")
    # stdin stays open, so the run is still going whenever the signal lands; the default
    # disposition, because under a background job SIGINT is inherited as ignored
    proc = subprocess.Popen([sys.executable, "-c", launcher, str(ready_write), "extract", "-",
                             "--schema", str(schema_file), "--method", "prototype"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, pass_fds=(ready_write,),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(ready_write)
    try:
        assert os.read(ready_read, 1) == b"1", proc.communicate(timeout=60)[1]
    finally:
        os.close(ready_read)
    proc.stdin.write(json.dumps(DOC) + "\n")
    proc.stdin.flush()
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except BrokenPipeError:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "interrupted" in line]) == 1  # said once


@pytest.mark.slow
def test_a_reader_that_stops_early_ends_the_run_with_exit_0(schema_file: Path, tmp_path: Path) -> None:
    """`fsre extract ... | head -1`: the broken pipe is the reader's choice, not an error."""
    import os
    import subprocess
    import sys

    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(_doc(i)) + "\n" for i in range(400)))
    env = {**os.environ, "FSRE_THREADS": "1", "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fsre_cli", "extract", str(path), "--schema", str(schema_file),
                             "--method", "prototype", "--min-score", "-1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert json.loads(first)["doc"] == "d0" and "Traceback" not in err


def test_the_cli_batch_limit_is_the_scorers() -> None:
    from fsre_cli.cli.options import MAX_BATCH
    from fsre_cli.tkre.config import MAX_SCORING_ROWS

    assert MAX_BATCH == MAX_SCORING_ROWS


def test_a_missing_text_file_says_no_such_file_not_what_reading_it_would_need(schema_file: Path,
                                                                             tmp_path: Path) -> None:
    out = fsre("extract", str(tmp_path / "note.txt"), "--schema", str(schema_file),
               "--stanza-dir", str(tmp_path / "no-models"))
    assert out.returncode == 2 and "no such file" in out.stderr and "Stanza" not in out.stderr


def test_missing_ner_models_say_the_offline_way_before_any_training(schema_file: Path, tmp_path: Path) -> None:
    doc = tmp_path / "note.txt"
    doc.write_text("Alice Smith works for Acme Corp.")
    out = fsre("extract", "-", "--schema", str(schema_file), "--stanza-dir", str(tmp_path / "no-models"),
               "--format", "text", stdin=doc.read_text(), env={"FSRE_CACHE_DIR": str(tmp_path / "cache")})
    assert out.returncode == 2 and "--entities given" in out.stderr and "training" not in out.stderr


def test_cascade_checks_its_llm_endpoint_before_training(schema_file: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps(DOC) + "\n")
    out = fsre("extract", str(path), "--schema", str(schema_file), "--method", "cascade",
               env={"FSRE_CACHE_DIR": str(tmp_path / "cache"), "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
                    "FSRE_LLM_MAX_RETRIES": "0"})
    assert out.returncode == 3 and "training" not in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_a_ctrl_c_that_python_drops_in_a_destructor_is_still_seen() -> None:
    """SIGINT landing in a `__del__` raises KeyboardInterrupt where Python ignores it ("Exception
    ignored in ..."): the run would go on and exit 0. The handler records the press, so the next
    `check()` stops the run and the command line still exits 130."""
    import gc
    import os
    import signal

    from fsre_cli import interrupts

    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        interrupts.install()

        class Busy:
            def __del__(self) -> None:
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(1000):  # the handler runs here, and its exception is dropped
                    pass

        Busy()
        gc.collect()
        assert interrupts.pressed()
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    finally:
        interrupts._pressed.clear()
        signal.signal(signal.SIGINT, before)
