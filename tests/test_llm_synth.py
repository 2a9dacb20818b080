"""Synthetic examples and explanations: the filter on hand-written generations, and a real
run against the local model whose every kept line is re-checked. Mechanics, not wisdom."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fsre_cli.cli.llm import llm_app, synth_command
from fsre_cli.llm import synth as S
from fsre_cli.llm.client import LLMClient
from fsre_cli.llm.prompts import synth_messages, synth_schema
from fsre_cli.schema import Schema, load_schema, parse_schema
from fsre_cli.sidecar import read_sidecar

SCHEMA = """
name: tiny
entity_types:
  PERSON: [PERSON, PER]
  ORG: [ORG]
  PLACE: [GPE, LOC]
relations:
  founded_by:
    description: the organisation was founded by the person
    head: ORG
    tail: PERSON
    template: "{head} was founded by {tail}"
    examples:
      - {text: "Microsoft was founded by Bill Gates in 1975.", head: Microsoft, tail: Bill Gates}
      - {text: "Anna Berg started Nordlight Games in Oslo.", head: Nordlight Games, tail: Anna Berg}
  born_in:
    description: the person was born in the place
    head: PERSON
    tail: PLACE
    template: "{head} was born in {tail}"
    examples:
      - {text: "Marie Curie was born in Warsaw.", head: Marie Curie, tail: Warsaw}
      - {text: "The painter Joan Miro was born in Barcelona in 1893.", head: Joan Miro, tail: Barcelona}
"""


@pytest.fixture
def schema() -> Schema:
    return parse_schema(SCHEMA)


def gen(text: str, head: str, tail: str, ht: str | None = "ORG", tt: str | None = "PERSON") -> dict:
    return {"text": text, "head": head, "tail": tail, "head_type": ht, "tail_type": tt}


def assert_valid_example(rec: dict, schema: Schema) -> None:
    """What the filter promises about every kept example, checked from the written record."""
    rel = schema.relations[rec["relation"]]
    text, head, tail = rec["text"], rec["head"], rec["tail"]
    assert text[head["start"]:head["end"]] == head["text"]
    assert text[tail["start"]:tail["end"]] == tail["text"]
    assert head["end"] <= tail["start"] or tail["end"] <= head["start"], "head and tail overlap"
    assert head["type"] in rel.head_types and tail["type"] in rel.tail_types
    assert head["text"].lower() != tail["text"].lower()
    assert S.MIN_CHARS <= len(text) <= S.MAX_CHARS
    assert rec["model"] and rec["prompt_hash"]


# --------------------------------------------------------------------------- filter, hand-written
def test_filter_keeps_good_and_names_each_drop_reason(schema: Schema) -> None:
    good = gen("Helix Labs was founded by Omar Haddad in 2011.", "Helix Labs", "Omar Haddad")
    candidates = [
        good,
        gen("Bright Foods was started by Lena Ortiz in Lima.", "Bright Foods", "Lena Ortiz", "ORG", "PER"),  # label
        gen("Helix Labs was founded by Omar Haddad in 2011!", "Helix Labs", "Omar Haddad"),  # duplicate
        gen("Microsoft was founded by Bill Gates in 1975.", "Microsoft", "Bill Gates"),  # a real example
        gen("Microsoft was founded by Bill Gates in 1975, people say.", "Microsoft", "Bill Gates"),  # real + more
        gen("Zeta Corp was founded by Ian Wu in 1999.", "Zeta Corp", "Ivan Wu"),  # tail not in text
        gen("Zeta Corp was founded by Ian Wu in 1999.", "Zeta Company", "Ian Wu"),  # head not in text
        gen("Kappa Oil was founded by Ria Sen in 1990.", "Kappa Oil", "Ria Sen", "PLACE", "PERSON"),  # head type
        gen("Kappa Gas was founded by Rob Sen in 1990.", "Kappa Gas", "Rob Sen", "ORG", "ORG"),  # tail type
        gen("The Gates Foundation was founded in Seattle.", "Gates Foundation", "Gates"),  # only inside the head
        gen("Annual Reports Ltd was founded by Annette Lee.", "Annual Reports Ltd", "Ann"),  # "Ann" only in words
        gen("Ivo Ltd was founded by Ivo Ltd himself.", "Ivo Ltd", "ivo ltd"),  # same entity
        gen("Too short.", "Too", "short"),
        gen("Omega Tech was founded by Sara Kim", "Omega Tech", "Sara Kim"),  # no sentence end
        {"text": "Delta Air was founded by Tom Ray.", "head": "Delta Air"},  # no tail field
        "not even a dict",
        gen("Sigma Bank was founded by Eve Moss. " * 20, "Sigma Bank", "Eve Moss"),
    ]
    seen: set[str] = set()
    kept, dropped = S.filter_generation("founded_by", candidates, schema, seen)
    assert [ex.text for ex in kept] == [good["text"], "Bright Foods was started by Lena Ortiz in Lima."]
    assert kept[1].tail.type == "PERSON"  # the NER label PER maps to the schema type
    assert all(ex.source == "synthetic" for ex in kept)
    assert dropped == Counter({
        S.DUPLICATE: 1, S.COPY: 2, S.TAIL_MISSING: 2, S.HEAD_MISSING: 1, S.OVERLAP: 1, S.HEAD_TYPE: 1, S.TAIL_TYPE: 1,
        S.SAME_ENTITY: 1, S.TOO_SHORT: 1, S.NOT_SENTENCE: 1, S.MALFORMED: 2, S.TOO_LONG: 1,
    })
    # `seen` carries over: the same text in a later batch is a duplicate
    _, again = S.filter_generation("founded_by", [good], schema, seen)
    assert again == Counter({S.DUPLICATE: 1})


def test_filter_places_mentions_without_overlap(schema: Schema) -> None:
    # the tail's first occurrence is inside the head: take its next, separate occurrence
    text = "The Gates Foundation was set up by Gates and his wife."
    kept, dropped = S.filter_generation("founded_by", [gen(text, "Gates Foundation", "Gates")], schema, set())
    assert not dropped and len(kept) == 1
    ex = kept[0]
    assert (ex.head.start, ex.head.end) == (4, 20) and text[ex.tail.start:ex.tail.end] == "Gates"
    assert ex.tail.start == text.index("by Gates") + 3
    # a mention occurring twice: the first occurrence
    text2 = "Kim Ode founded Zenith Bikes, and Zenith Bikes grew fast."
    kept2, _ = S.filter_generation("founded_by", [gen(text2, "Zenith Bikes", "Kim Ode")], schema, set())
    assert kept2[0].head.start == text2.index("Zenith Bikes")


def test_filter_types_missing_or_ambiguous() -> None:
    s = parse_schema("""
name: t
entity_types: {PERSON: [PERSON], ORG: [ORG], PLACE: [GPE]}
relations:
  based_in: {description: x, head: ORG, tail: [PLACE, ORG]}
""")
    no_types = {"text": "Acme Tools is based in Lyon, France.", "head": "Acme Tools", "tail": "Lyon"}
    kept, dropped = S.filter_generation("based_in", [no_types], s, set())
    # head type is implied (one allowed), tail type is ambiguous (two allowed) -> dropped
    assert not kept and dropped == Counter({S.TAIL_TYPE: 1})
    kept, _ = S.filter_generation("based_in", [{**no_types, "tail_type": "gpe"}], s, set())
    assert kept[0].head.type == "ORG" and kept[0].tail.type == "PLACE"


def test_generation_items_salvages_a_truncated_answer() -> None:
    full = '{"examples": [{"text": "a", "head": "h"}, {"text": "b", "head": "h"}]}'
    assert [i["text"] for i in S.generation_items(full)] == ["a", "b"]
    cut = '{"examples": [{"text": "a", "head": "h"}, {"text": "b", "head": "h"}, {"text": "c", "he'
    assert [i["text"] for i in S.generation_items(cut)] == ["a", "b"]
    assert S.generation_items("I cannot help with that.") is None


def test_explanation_checks() -> None:
    ex = parse_schema(SCHEMA).relations["born_in"].examples[0]
    assert S.check_explanation("", ex) == S.EMPTY
    assert S.check_explanation("Because it says so in the text.", ex) == S.NO_ENTITY
    assert S.check_explanation("The sentence says Marie Curie was born there.", ex) is None
    assert S.clean_explanation("Warsaw is where  she was born. And then the") == "Warsaw is where she was born."


def test_prompts_carry_the_relation_and_its_examples(schema: Schema) -> None:
    rel = schema.relations["founded_by"]
    content = synth_messages(rel, 3, avoid=["Already kept sentence."])[1]["content"]
    assert "founded_by" in content and "Microsoft was founded by Bill Gates" in content
    assert "Already kept sentence." in content and "Write 3 new examples" in content
    js = synth_schema(rel, 3)
    assert js["properties"]["examples"]["maxItems"] == 3
    assert js["properties"]["examples"]["items"]["properties"]["head_type"]["enum"] == ["ORG"]


class CannedClient:
    """Stands in for LLMClient where the test is about bookkeeping, not the model: answers
    each synth call with the next canned generation and each explanation with a sentence."""

    model = "canned"

    def __init__(self, generations: list[list[dict]]) -> None:
        self.generations = list(generations)
        self.asked: list[list[dict]] = []

    def chat_many(self, requests, progress=None):
        from fsre_cli.llm.client import ChatResult

        out = []
        for req in requests:
            self.asked.append(req.messages)
            if req.json_schema is not None:
                items = self.generations.pop(0) if self.generations else []
                out.append(ChatResult(json.dumps({"examples": items})))
            else:
                user = req.messages[-1]["content"]
                head = user.split('Explain why "', 1)[1].split('"', 1)[0]
                out.append(ChatResult(f"The sentence says that {head} has this relation."))
            if progress:
                progress(1)
        return out


def test_run_synth_writes_appends_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(SCHEMA, encoding="utf-8")
    schema = load_schema(path)
    founded = [gen("Helix Labs was founded by Omar Haddad.", "Helix Labs", "Omar Haddad"),
               gen("Zeta Corp was founded by Ian Wu.", "Zeta Corp", "Ivan Wu")]
    born = [gen("Lena Ortiz was born in Lima.", "Lena Ortiz", "Lima", "PERSON", "GPE")]
    client = CannedClient([founded, born])  # round 1: one call per relation (need 1)
    report = S.run_synth(schema, client, per_relation=1, max_rounds=1)  # type: ignore[arg-type]
    lines = [json.loads(line) for line in path.with_name("tiny.synth.jsonl").read_text().splitlines()]
    examples = [r for r in lines if r["kind"] == "example"]
    assert [r["text"] for r in examples] == ["Helix Labs was founded by Omar Haddad.", "Lena Ortiz was born in Lima."]
    for rec in examples:
        assert_valid_example(rec, schema)
    assert examples[1]["tail"]["type"] == "PLACE" and examples[0]["model"] == "canned"
    assert dict(report.kept) == {"founded_by": 1, "born_in": 1} and report.dropped["founded_by"] == Counter({S.TAIL_MISSING: 1})
    assert report.explanations_kept == 4 and sum(r["kind"] == "explanation" for r in lines) == 4

    # --append: old lines stay, a repeat is a duplicate, explained examples are not asked again
    client2 = CannedClient([[founded[0], gen("Kappa Oil was founded by Ria Sen.", "Kappa Oil", "Ria Sen")], []])
    report2 = S.run_synth(schema, client2, per_relation=1, max_rounds=1, append=True)  # type: ignore[arg-type]
    lines2 = [json.loads(line) for line in path.with_name("tiny.synth.jsonl").read_text().splitlines()]
    assert lines2[: len(lines)] == lines and len(lines2) == len(lines) + 1
    assert lines2[-1]["text"] == "Kappa Oil was founded by Ria Sen."
    assert report2.dropped["founded_by"][S.DUPLICATE] == 1 and report2.explanations_kept == 0
    assert "Helix Labs was founded by Omar Haddad." in client2.asked[0][-1]["content"]  # told what it has

    # the verify hook rejects; more than requested is counted, not written
    client3 = CannedClient([[gen("Nova Ltd was founded by Al Tan.", "Nova Ltd", "Al Tan"),
                             gen("Orbit Inc was founded by Bo Li.", "Orbit Inc", "Bo Li")], []])
    report3 = S.generate_synthetic(schema, client3, per_relation=1, max_rounds=1,  # type: ignore[arg-type]
                                   verify=lambda ex: ex.head.text != "Nova Ltd")
    assert [e.text for e in report3.examples] == ["Orbit Inc was founded by Bo Li."]
    assert report3.dropped["founded_by"] == Counter({S.REJECTED: 1})
    assert report3.dropped["born_in"] == Counter() and report3.kept["born_in"] == 0


# --------------------------------------------------------------------------- real local model
@pytest.mark.llm
@pytest.mark.slow
def test_synth_writes_a_sidecar_whose_every_line_passes_the_filters(
    tmp_path: Path, llm_client: LLMClient, llm_base_url: str
) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(SCHEMA, encoding="utf-8")
    schema = load_schema(path)
    report = S.run_synth(schema, llm_client, per_relation=2, explanations=True)
    assert report.output == tmp_path / "tiny.synth.jsonl" and report.output.exists()

    records = [json.loads(line) for line in report.output.read_text(encoding="utf-8").splitlines()]
    examples = [r for r in records if r["kind"] == "example"]
    explanations = [r for r in records if r["kind"] == "explanation"]
    real = {S.normalise(e.text) for e in schema.examples}
    texts = [S.normalise(r["text"]) for r in examples]
    for rec in examples:
        assert_valid_example(rec, schema)
    assert len(set(texts)) == len(texts) and not real & set(texts)
    assert sum(report.generated.values()) > 0  # the constrained JSON came back and was read
    for rec in explanations:
        assert rec["text"].strip() and (rec["head"].lower() in rec["text"].lower() or rec["tail"].lower() in rec["text"].lower())
    # the counts add up: every candidate read was kept or dropped for a stated reason
    dropped = report.drop_reasons()
    assert sum(report.generated.values()) == sum(report.kept.values()) + sum(dropped.values()) - dropped[S.UNPARSEABLE]
    assert len(examples) == sum(report.kept.values()) and all(n <= 2 for n in report.kept.values())
    assert len(explanations) == report.explanations_kept
    assert report.explanations_kept + sum(report.explanations_dropped.values()) == len(schema.examples)
    # the sidecar reader (used by training) accepts it as is
    side = read_sidecar(report.output, schema)
    assert len(side.examples) == len(examples) and len(side.explanations) == len(explanations)

    # the CLI on the same cache: no new LLM call, the same lines, counts on stderr, nothing on stdout
    app = typer.Typer()
    app.add_typer(llm_app, name="llm")
    app.command("synth")(synth_command)
    out = tmp_path / "again.jsonl"
    env = {"OPENAI_BASE_URL": llm_base_url, "FSRE_CACHE_DIR": str(tmp_path), "FSRE_LLM_MODEL": llm_client.model}
    result = CliRunner().invoke(app, ["synth", str(path), "--per-relation", "2", "--output", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == report.output.read_text(encoding="utf-8")
    assert result.stdout == "" and "kept" in result.stderr
    assert f"{report.calls} LLM call(s), {report.calls} from the cache" in " ".join(result.stderr.split())

    # the verify hook sees each example that passed the filters and can reject it
    calls: list[str] = []

    def reject_all(ex) -> bool:
        calls.append(ex.text)
        return False

    rejected = S.generate_synthetic(schema, llm_client, per_relation=2, max_rounds=1, verify=reject_all)
    assert sum(rejected.kept.values()) == 0 and rejected.drop_reasons()[S.REJECTED] == len(calls)
    assert rejected.cached_calls == rejected.calls  # round 1 was asked before: all from the cache


def test_synth_cli_error_is_a_message_and_an_exit_code(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(SCHEMA, encoding="utf-8")
    app = typer.Typer()
    app.command("synth")(synth_command)
    app.command("other")(lambda: None)
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "FSRE_CACHE_DIR": str(tmp_path), "FSRE_LLM_MODEL": "m"}
    result = CliRunner().invoke(app, ["synth", str(path)], env={**env, "FSRE_LLM_MAX_RETRIES": "0"})
    assert result.exit_code == 3
    assert "error: cannot reach the LLM endpoint" in result.stderr and "fsre llm serve" in result.stderr
    assert "Traceback" not in result.output
    bad = CliRunner().invoke(app, ["synth", str(tmp_path / "missing.yaml")], env=env)
    assert bad.exit_code == 2 and "no such schema file" in bad.stderr


# --------------------------------------------------------------------------- never shrink a reviewed sidecar
def _sidecar_with(tmp_path: Path, n_examples: int) -> tuple[Schema, Path, bytes]:
    path = tmp_path / "tiny.yaml"
    path.write_text(SCHEMA, encoding="utf-8")
    schema = load_schema(path)
    client = CannedClient([[gen(f"Firm {c} was founded by Tom {c}.", f"Firm {c}", f"Tom {c}")
                            for c in "ABCDEFGH"[:n_examples]]])
    S.run_synth(schema, client, per_relation=n_examples, max_rounds=1, explanations=False)  # type: ignore[arg-type]
    side = path.with_name("tiny.synth.jsonl")
    assert len(side.read_text().splitlines()) == n_examples
    return schema, side, side.read_bytes()


def test_unusable_answers_leave_the_sidecar_untouched_and_fail(tmp_path: Path) -> None:
    schema, side, before = _sidecar_with(tmp_path, 2)
    junk = CannedClient([[{"text": "no"}], [gen("hi", "x", "y")], [], []])
    for kwargs in ({}, {"append": True}, {"replace": True}):
        with pytest.raises(S.FsreError) as err:
            S.run_synth(schema, junk, per_relation=1, max_rounds=1, explanations=False, **kwargs)  # type: ignore[arg-type]
        assert "nothing usable came back from the LLM" in str(err.value) and "left unchanged" in str(err.value)
        assert err.value.exit_code == 1 and "\n" not in str(err.value)
        assert side.read_bytes() == before
    assert not S.beside_path(side).exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_smaller_run_goes_beside_the_sidecar_unless_replace(tmp_path: Path) -> None:
    schema, side, before = _sidecar_with(tmp_path, 3)
    one = [gen("Quill Media was founded by Eva Lund.", "Quill Media", "Eva Lund")]
    report = S.run_synth(schema, CannedClient([one]), per_relation=1, max_rounds=1,  # type: ignore[arg-type]
                         explanations=False)
    assert side.read_bytes() == before
    new = tmp_path / "tiny.synth.new.jsonl"
    assert report.output == new and report.kept_existing == side
    assert [json.loads(line)["text"] for line in new.read_text().splitlines()] == ["Quill Media was founded by Eva Lund."]
    # asked for: --replace overwrites, keeping the file's permissions
    side.chmod(0o640)
    report = S.run_synth(schema, CannedClient([one]), per_relation=1, max_rounds=1,  # type: ignore[arg-type]
                         explanations=False, replace=True)
    assert report.output == side and report.kept_existing is None
    assert len(side.read_text().splitlines()) == 1 and (side.stat().st_mode & 0o777) == 0o640


@pytest.mark.timeout(60)
def test_fsre_synth_with_unusable_answers_exits_1_and_keeps_the_sidecar(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from fake_llm_server import http_server, openai_like

    schema_path = tmp_path / "tiny.yaml"
    schema_path.write_text(SCHEMA, encoding="utf-8")
    side = tmp_path / "tiny.synth.jsonl"
    reviewed = json.dumps({"kind": "example", "relation": "founded_by", "text": "Helix Labs was founded by Omar Haddad.",
                           "head": {"text": "Helix Labs", "start": 0, "end": 10, "type": "ORG"},
                           "tail": {"text": "Omar Haddad", "start": 26, "end": 37, "type": "PERSON"},
                           "model": "m", "prompt_hash": "h"}) + "\n"
    side.write_text(reviewed, encoding="utf-8")
    with http_server(openai_like("I am sorry, I cannot help with that.")) as (url, _):
        out = subprocess.run(
            [sys.executable, "-m", "fsre_cli", "synth", str(schema_path), "--per-relation", "1"],
            capture_output=True, text=True, timeout=50,
            env={**os.environ, "OPENAI_BASE_URL": url, "FSRE_CACHE_DIR": str(tmp_path / "cache"), "NO_COLOR": "1",
                 "COLUMNS": "300"},
        )
    assert out.returncode == 1, out.stderr
    assert "nothing usable came back from the LLM" in out.stderr and "Traceback" not in out.stderr
    assert side.read_text(encoding="utf-8") == reviewed
