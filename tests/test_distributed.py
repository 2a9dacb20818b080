"""`fsre extract --engine ray`: a real local Ray with 2 workers gives the local engine's records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fsre_cli.distributed import plan_tasks, read_manifest
from fsre_cli.inputs import InputReport, read_documents, read_slice

ROOT = Path(__file__).resolve().parents[1]


def generated_docs(path: Path, n: int) -> None:
    """`n` JSONL documents with given entities (every fifth without an id: its default id is
    FILE:LINE, which a slice must keep)."""
    with path.open("w") as fh:
        for i in range(n):
            text = f"Person{i} Smith works for Company{i} in City{i}. Company{i} was founded by Person{i} Smith."
            ents = [(text.index(f"Person{i}"), "PERSON", f"Person{i} Smith"), (text.index(f"Company{i}"), "ORG", f"Company{i}"),
                    (text.index(f"City{i}"), "PLACE", f"City{i}"), (text.rindex(f"Company{i}"), "ORG", f"Company{i}"),
                    (text.rindex(f"Person{i}"), "PERSON", f"Person{i} Smith")]
            record = {"text": text, "entities": [{"start": s, "end": s + len(w), "type": t} for s, t, w in ents]}
            if i % 5:
                record = {"id": f"g{i}", **record}
            fh.write(json.dumps(record) + "\n")


def test_jsonl_slices_read_the_documents_of_the_whole_file(tmp_path: Path) -> None:
    docs = tmp_path / "docs.jsonl"
    generated_docs(docs, 23)
    tasks = plan_tasks([str(docs)], lines_per_task=5)
    assert [(t.first_line, t.kind) for t in tasks] == [(1, "jsonl"), (6, "jsonl"), (11, "jsonl"), (16, "jsonl"),
                                                       (21, "jsonl")]
    whole = [(d.id, d.text) for d in read_documents([str(docs)], InputReport())]
    sliced = [(d.id, d.text) for t in tasks for d in read_slice(t.path, t.start, t.end, t.first_line, InputReport())]
    assert sliced == whole and whole[0][0] == f"{docs}:1"  # default ids keep the file's line numbers


def test_a_task_is_finished_only_with_its_manifest_line_and_its_shard(tmp_path: Path) -> None:
    from fsre_cli.distributed import MANIFEST, SHARDS, Task, write_shard

    tasks = [Task(0, "a.jsonl", "jsonl", 0, 10, 1), Task(1, "a.jsonl", "jsonl", 10, 20, 3), Task(2, "b.txt", "text")]
    lines = []
    for task in tasks:
        write_shard(tmp_path, task, '{"doc": "x"}')
        lines.append(json.dumps({"key": task.key, "shard": task.shard}))
    (tmp_path / MANIFEST).write_text("\n".join(lines) + '\n{"key": "cut short')  # a crash mid-line
    (tmp_path / SHARDS / tasks[1].shard).unlink()  # a lost shard
    assert set(read_manifest(tmp_path)) == {tasks[0].key, tasks[2].key}  # task 1 runs again


def fsre(*args: str, env: dict | None = None):
    full = {**os.environ, "FSRE_THREADS": "1", "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "fsre_cli", *args], capture_output=True, text=True, env=full,
                          cwd=ROOT, timeout=900)


def records(text: str) -> set[str]:
    return {json.dumps(json.loads(line), sort_keys=True) for line in text.splitlines() if line.strip()}


@pytest.mark.slow
def test_ray_with_two_workers_writes_the_local_engines_records_and_resumes(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    env = {"FSRE_CACHE_DIR": str(tmp_path / "cache")}
    docs = tmp_path / "docs.jsonl"
    generated_docs(docs, 300)
    model = tmp_path / "model"
    schema = "schemas/org-people.yaml"
    trained = fsre("train", schema, "--entities", "given", "--no-pretrain", "--epochs", "1",
                   "-o", str(model), env=env)
    assert trained.returncode == 0, trained.stderr
    inputs = ["examples/org-people.jsonl", str(docs)]
    common = ["--schema", schema, "--model", str(model), "--entities", "given", "--min-score", "0"]
    local = fsre("extract", *inputs, *common, env=env)
    assert local.returncode == 0, local.stderr
    out = tmp_path / "out"
    ray_args = ["--engine", "ray", "--workers", "2", "--task-lines", "100", "-o", str(out)]
    ray_run = fsre("extract", *inputs, *common, *ray_args, env=env)
    assert ray_run.returncode == 0, ray_run.stderr
    shards = sorted((out / "shards").glob("*.jsonl"))
    assert len(shards) == 4 and len(read_manifest(out)) == 4  # the example file, and 300 lines in slices of 100
    assert records("".join(p.read_text() for p in shards)) == records(local.stdout) != set()
    assert "Traceback" not in ray_run.stderr
    # resume: a finished run starts no Ray at all (a lost shard is done again: see the manifest test)
    again = fsre("extract", *inputs, *common, *ray_args, "--resume", env=env)
    assert again.returncode == 0, again.stderr
    assert "4 finished by an earlier run" in again.stderr and "ray start" not in again.stderr
    refused = fsre("extract", *inputs, *common, "--engine", "ray", "-o", str(out), env=env)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    aggregated = fsre("aggregate", str(out))
    assert aggregated.returncode == 0 and aggregated.stdout.strip()


@pytest.mark.slow
def test_an_unreachable_cluster_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    out = fsre("extract", "examples/org-people.jsonl", "--schema", "schemas/org-people.yaml", "--entities", "given",
               "--method", "prototype", "--engine", "ray", "--address", "ray://127.0.0.1:9", "-o", str(tmp_path / "o"),
               env={"FSRE_CACHE_DIR": str(tmp_path / "cache")})
    assert out.returncode != 0 and "cannot reach the Ray cluster" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) <= 3
    stdin = fsre("extract", "-", "--schema", "schemas/org-people.yaml", "--engine", "ray", "-o", str(tmp_path / "p"))
    assert stdin.returncode == 2 and "stdin" in stdin.stderr
