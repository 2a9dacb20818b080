"""`fsre review` and the review file: decisions, undo, ordering, validation, and training on them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fsre_cli.review import decision_record, effective, learned, order_triples, parse_decision, read_review

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = """\
name: review-test
entity_types: {PERSON: [PERSON], ORG: [ORG]}
relations:
  works_for:
    description: the person works for the organization
    head: PERSON
    tail: ORG
    examples:
      - {text: "Alice Smith works for Acme Corp in Boston.", head: Alice Smith, tail: Acme Corp}
      - {text: "Carol White is an analyst at Initech.", head: Carol White, tail: Initech}
  founded:
    description: the person founded the organization
    head: PERSON
    tail: ORG
    examples:
      - {text: "Bob Jones founded Globex.", head: Bob Jones, tail: Globex}
      - {text: "Globex was started by Bob Jones.", head: Bob Jones, tail: Globex}
"""
TEXT = "Dana Scott works for Umbrella Corp, which Eve Lin founded."


def triple(relation: str, head: str, tail: str, score: float, base: int = 100) -> dict:
    h, t = TEXT.index(head), TEXT.index(tail)
    return {"doc": "d1", "sentence": 2, "relation": relation,
            "head": {"text": head, "type": "PERSON", "start": base + h, "end": base + h + len(head)},
            "tail": {"text": tail, "type": "ORG", "start": base + t, "end": base + t + len(tail)},
            "score": score, "method": "tkre", "evidence": TEXT}


def test_the_last_decision_counts_and_undo_takes_it_back() -> None:
    dana, eve = triple("works_for", "Dana Scott", "Umbrella Corp", 0.9), triple("works_for", "Eve Lin", "Umbrella Corp", 0.3)
    records = [decision_record(dana, "reject", "works_for"), decision_record(dana, "accept", "works_for"),
               decision_record(eve, "reject", "works_for"), decision_record(eve, "relation", "founded"),
               {**decision_record(eve, "relation", "founded"), "decision": "undo"}]
    decisions = [parse_decision(r) for r in records]
    assert {d.key[2]: d.decision for d in effective(decisions).values()} == {(100, 110): "accept"}
    examples, negatives = learned(decisions)
    assert [(r, h.text, t.text) for r, _, h, t in examples] == [("works_for", "Dana Scott", "Umbrella Corp")]
    assert negatives == []
    # offsets are the sentence's: the example reads as any schema example would
    (_, text, head, _tail), = examples
    assert text[head.start:head.end] == "Dana Scott" and head.start == 0
    changed = learned([parse_decision(decision_record(eve, "relation", "founded"))])
    assert [e[0] for e in changed[0]] == ["founded"] and [n[0] for n in changed[1]] == ["works_for"]


def test_order_puts_scores_nearest_the_threshold_first() -> None:
    ts = [triple("works_for", "Dana Scott", "Umbrella Corp", s) for s in (0.9, 0.31, 0.5, 0.3)]
    assert [t["score"] for t in order_triples(ts, "uncertain")] == [0.3, 0.31, 0.5, 0.9]
    assert [t["score"] for t in order_triples(ts, "uncertain", threshold=0.55)] == [0.5, 0.31, 0.3, 0.9]
    assert [t["score"] for t in order_triples(ts, "score")] == [0.9, 0.5, 0.31, 0.3]
    assert order_triples(ts, "document") == ts


def test_a_bad_review_line_is_named_and_the_schema_refused(tmp_path: Path) -> None:
    from fsre_cli.errors import SchemaError
    from fsre_cli.schema import load_schema

    (tmp_path / "s.yaml").write_text(SCHEMA)
    good = decision_record(triple("works_for", "Dana Scott", "Umbrella Corp", 0.9), "accept", "works_for")
    lines = [good, {**good, "relation": "ceo_of", "decision": "relation"},
             {**good, "head": {**good["head"], "start": 1}}]
    (tmp_path / "s.review.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(SchemaError) as caught:
        load_schema(tmp_path / "s.yaml")
    assert caught.value.problems == [f"{tmp_path / 's.review.jsonl'}:2: relation 'ceo_of' is not in the schema",
                                     f"{tmp_path / 's.review.jsonl'}:3: head offsets 1-10 do not cover 'Dana Scott' "
                                     "in the sentence"]
    with pytest.raises(ValueError, match=r":1: Expecting value"):
        (tmp_path / "bad.jsonl").write_text("nope\n")
        read_review(tmp_path / "bad.jsonl")


def test_decisions_change_the_schema_hash_and_what_training_reads(tmp_path: Path) -> None:
    from fsre_cli.schema import load_schema

    (tmp_path / "s.yaml").write_text(SCHEMA)
    before = load_schema(tmp_path / "s.yaml")
    eve = triple("works_for", "Eve Lin", "Umbrella Corp", 0.3)
    (tmp_path / "s.review.jsonl").write_text(json.dumps(decision_record(eve, "relation", "founded")) + "\n")
    after = load_schema(tmp_path / "s.yaml")
    assert after.content_hash() != before.content_hash()  # part of every model's cache key
    assert len(after.examples) == len(before.examples) + 1 and after.examples[-1].source == "review"
    (negative,) = after.negatives
    assert (negative.relation, negative.head.text, negative.source) == ("works_for", "Eve Lin", "review")


def fsre(*args: str, stdin: str | None = None, env: dict | None = None):
    full = {**os.environ, "NO_COLOR": "1", "FSRE_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "fsre_cli", *args], input=stdin, capture_output=True, text=True,
                          env=full, cwd=ROOT, timeout=600)


@pytest.mark.slow
def test_review_by_keys_resumes_and_training_learns_from_it(tmp_path: Path) -> None:
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA)
    trip = tmp_path / "triples.jsonl"
    ts = [triple("works_for", "Dana Scott", "Umbrella Corp", 0.9), triple("works_for", "Eve Lin", "Umbrella Corp", 0.3)]
    trip.write_text("".join(json.dumps(t) + "\n" for t in ts))
    first = fsre("review", str(trip), "--schema", str(schema), stdin="c1q")  # Eve Lin (0.3) first: founded
    assert first.returncode == 0, first.stderr
    assert "2 triples to review" in first.stderr and "1 corrected" in first.stderr
    again = fsre("review", str(trip), "--schema", str(schema), stdin="r")  # goes on with Dana Scott
    assert "1 triples to review (1 decided" in again.stderr and "1 rejected" in again.stderr
    decisions = [json.loads(line) for line in (tmp_path / "s.review.jsonl").read_text().splitlines()]
    assert [(d["decision"], d["relation"], d["head"]["text"]) for d in decisions] == [
        ("relation", "founded", "Eve Lin"), ("reject", "works_for", "Dana Scott")]
    checked = fsre("schema", "check", str(schema))
    assert checked.returncode == 0 and "2 review decisions in s.review.jsonl" in checked.stderr
    env = {"FSRE_CACHE_DIR": str(tmp_path / "cache")}
    trained = fsre("train", str(schema), "--entities", "given", "--epochs", "2", "--mslm-epochs", "1",
                   "--scl-epochs", "1", "-o", str(tmp_path / "model"), env=env)
    assert trained.returncode == 0, trained.stderr
    meta = json.loads((tmp_path / "model" / "fsre.json").read_text())
    assert meta["train"]["examples"] == 5 and meta["train"]["relation_negatives"] == 2  # 4 + 1; 1 + 1
    piped = fsre("review", "-", "--schema", str(schema), stdin="")
    assert piped.returncode == 2 and "reads keys from stdin" in piped.stderr


@pytest.mark.slow
def test_the_loop_in_a_pseudo_terminal_with_undo_quit_and_resume(tmp_path: Path) -> None:
    import pty
    import select
    import time

    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA)
    trip = tmp_path / "triples.jsonl"
    ts = [triple("works_for", "Dana Scott", "Umbrella Corp", 0.9), triple("works_for", "Eve Lin", "Umbrella Corp", 0.3)]
    trip.write_text("".join(json.dumps(t) + "\n" for t in ts))

    def session(keys: str) -> str:
        """Run the review in a pseudo-terminal (single keys, no Enter), typing `keys` one by one
        as each prompt appears; returns what the terminal showed."""
        pid, fd = pty.fork()
        if pid == 0:  # the child: fsre review on the terminal
            os.chdir(ROOT)
            os.environ.update({"NO_COLOR": "1", "COLUMNS": "100"})
            os.execv(sys.executable, [sys.executable, "-m", "fsre_cli", "review", str(trip), "--schema", str(schema)])
        shown, pending = b"", list(keys)
        deadline = time.time() + 120
        while time.time() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                shown += chunk
            if not pending and b"undone; decisions in" in shown:
                time.sleep(0.2)
                break
            if pending and shown.count(b"[q]uit") + shown.count(b"(other key: back)") > len(keys) - len(pending):
                os.write(fd, pending.pop(0).encode())
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:  # still waiting for a key: never hang the test run
            import signal

            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("fsre review did not finish: " + shown.decode(errors="replace")[-500:])
        assert os.waitstatus_to_exitcode(status) == 0, shown.decode(errors="replace")
        return shown.decode(errors="replace")

    first = session("ruq")  # reject Eve Lin, undo it (back to Eve Lin), quit
    assert "1 rejected" in first and "1 undone" in first
    lines = [json.loads(line) for line in (tmp_path / "s.review.jsonl").read_text().splitlines()]
    assert [d["decision"] for d in lines] == ["reject", "undo"]
    second = session("aq")  # Eve Lin again (the undo left it undecided): accept, quit
    assert "2 triples to review (0 decided" in second and "1 accepted" in second
    third = session("q")
    assert "1 triples to review (1 decided" in third and "Dana Scott" in third


def test_promote_moves_decisions_into_the_yaml_and_keeps_its_comments(tmp_path: Path) -> None:
    from fsre_cli.review import promote
    from fsre_cli.schema import load_schema

    schema_file = tmp_path / "s.yaml"
    schema_file.write_text("# my schema, kept in git\n" + SCHEMA.replace("  founded:\n", "  # who started it\n  founded:\n"))
    dana, eve = triple("works_for", "Dana Scott", "Umbrella Corp", 0.9), triple("works_for", "Eve Lin", "Umbrella Corp", 0.3)
    (tmp_path / "s.review.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        decision_record(dana, "accept", "works_for"), decision_record(eve, "relation", "founded")]))
    before = load_schema(schema_file)
    assert promote(schema_file) == (2, 1)
    text = schema_file.read_text()
    assert text.startswith("# my schema, kept in git\n") and "  # who started it\n" in text
    assert not (tmp_path / "s.review.jsonl").exists()
    after = load_schema(schema_file)
    def pairs(items):
        return sorted((e.relation, e.text, e.head.start, e.head.end, e.tail.start, e.tail.end) for e in items)

    assert after.review == []  # the same data, now in the YAML
    assert pairs(after.examples) == pairs(before.examples) and pairs(after.negatives) == pairs(before.negatives)
    assert [(e.relation, e.head.text) for e in after.relations["founded"].examples][-1] == ("founded", "Eve Lin")
    (negative,) = after.relations["works_for"].negatives  # a `negatives:` list was added for it
    assert (negative.head.text, negative.tail.text, negative.source) == ("Eve Lin", "Umbrella Corp", "negative")
