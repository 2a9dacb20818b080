"""`fsre aggregate`: triples become facts; normalisation, counts, evidence caps, streaming."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from fsre_cli.aggregate import aggregate_triples, normalise, read_triples
from fsre_cli.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]


def triple(doc: str, sentence: int, head: str, tail: str, score: float, relation: str = "founded_by",
           start: int = 0) -> dict:
    return {"doc": doc, "sentence": sentence, "relation": relation,
            "head": {"text": head, "type": "ORG", "start": start, "end": start + len(head)},
            "tail": {"text": tail, "type": "PERSON", "start": start + 20, "end": start + 20 + len(tail)},
            "score": score, "method": "tkre", "evidence": "..."}


def test_normalisation_joins_spellings_of_one_entity() -> None:
    assert normalise("Microsoft's") == normalise("MICROSOFT") == normalise(" “Microsoft,” ") == "microsoft"
    assert normalise("Bill  Gates") == "bill gates" and normalise("ＭＩＴ") == "mit"
    assert normalise("James'") == "james" and normalise("Apple Inc.") == "apple inc"
    assert normalise("...") == "..."  # nothing left: the text itself, never an empty key


def test_facts_count_mentions_documents_and_sentences_by_corpus_and_by_document() -> None:
    records = [triple("a", 0, "Microsoft", "Bill Gates", 0.9), triple("a", 0, "Microsoft", "Bill Gates", 0.4, start=50),
               triple("a", 2, "Microsoft's", "bill gates", 0.5), triple("b", 1, "MICROSOFT", "Bill Gates", 0.7),
               triple("b", 1, "Apple", "Steve Jobs", 0.8), triple("b", 1, "Microsoft", "Bill Gates", 0.6, "ceo_of")]
    (founded, apple, ceo) = aggregate_triples(records, by="corpus")
    assert (founded.relation, founded.mentions, founded.documents, founded.sentences) == ("founded_by", 4, 2, 3)
    assert founded.record()["head"] == {"text": "Microsoft", "normalised": "microsoft", "type": "ORG"}
    assert founded.max_score == 0.9 and founded.mean_score == pytest.approx(0.625)
    assert (apple.head.norm, apple.mentions) == ("apple", 1) and (ceo.relation, ceo.mentions) == ("ceo_of", 1)
    per_doc = {(f.doc, f.relation, f.head.norm): f.mentions for f in aggregate_triples(records, by="document")}
    assert per_doc == {("a", "founded_by", "microsoft"): 3, ("b", "founded_by", "microsoft"): 1,
                       ("b", "founded_by", "apple"): 1, ("b", "ceo_of", "microsoft"): 1}
    assert [f.head.norm for f in aggregate_triples(records, min_count=2)] == ["microsoft"]
    kept = aggregate_triples(records, min_score=0.55)
    assert kept[0].mentions == 2 and {f.head.norm for f in kept} == {"microsoft", "apple"}
    with pytest.raises(UsageError, match="--by must be one of document, corpus"):
        aggregate_triples(records, by="sentence")


def test_evidence_keeps_the_best_scored_mentions_up_to_the_cap() -> None:
    records = [triple(f"d{i}", 0, "Microsoft", "Bill Gates", score) for i, score in
               enumerate([0.2, 0.9, 0.5, 0.95, 0.1, 0.6])]
    (fact,) = aggregate_triples(records, max_evidence=3)
    evidence = fact.record()["evidence"]
    assert [e["score"] for e in evidence] == [0.95, 0.9, 0.6]
    assert evidence[0] == {"doc": "d3", "sentence": 0, "head": [0, 9], "tail": [20, 30], "score": 0.95}
    (none,) = aggregate_triples(records, max_evidence=0)
    assert none.record()["evidence"] == [] and none.mentions == 6


def test_memory_grows_with_the_facts_not_with_the_input() -> None:
    def stream(n: int):
        for i in range(n):
            yield triple(f"doc{i // 10}", i % 10, f"Company{i % 3}", "Bill Gates", (i % 97) / 97)

    def peak(n: int) -> int:
        tracemalloc.start()
        facts = aggregate_triples(stream(n))
        peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(facts) == 3 and sum(f.mentions for f in facts) == n
        return peak_bytes

    small, large = peak(2_000), peak(40_000)
    assert large < small * 1.5 + 200_000  # 20x the input, about the same memory


def test_folders_of_shards_and_bad_lines(tmp_path: Path) -> None:
    shards = tmp_path / "out"
    shards.mkdir()
    (shards / "part-00000.jsonl").write_text(json.dumps(triple("a", 0, "Microsoft", "Bill Gates", 0.9)) + "\n")
    (shards / "part-00001.jsonl").write_text("\n" + json.dumps(triple("b", 0, "Microsoft", "Bill Gates", 0.8)) + "\n")
    (shards / "manifest.jsonl").write_text('{"shard": "part-00000.jsonl"}\n')  # not triples: not read
    (fact,) = aggregate_triples(read_triples([str(shards)]))
    assert fact.mentions == 2 and fact.documents == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(triple("a", 0, "X", "Y", 0.5)) + "\n" + '{"doc": "a", "relation": "r"}\n')
    with pytest.raises(UsageError, match=r"bad\.jsonl:2: not a triple record: no 'sentence'"):
        list(read_triples([str(bad)]))
    bad.write_text("{not json\n")
    with pytest.raises(UsageError, match=r"bad\.jsonl:1: not JSON"):
        list(read_triples([str(bad)]))
    with pytest.raises(UsageError, match="no such file"):
        list(read_triples([str(tmp_path / "missing.jsonl")]))


def fsre(*args: str, stdin: str | None = None):
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "fsre_cli", *args], input=stdin, capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_the_command_reads_stdin_and_writes_jsonl_or_csv(tmp_path: Path) -> None:
    lines = "".join(json.dumps(r) + "\n" for r in [triple("a", 0, "Microsoft", "Bill Gates", 0.9),
                                                     triple("b", 3, "Microsoft's", "Bill Gates", 0.7)])
    out = fsre("aggregate", "--min-count", "2", stdin=lines)
    assert out.returncode == 0, out.stderr
    (record,) = map(json.loads, out.stdout.splitlines())
    assert record["mentions"] == 2 and record["documents"] == 2 and record["tail"]["text"] == "Bill Gates"
    assert "1 facts from 2 triples" in out.stderr
    csv_out = fsre("aggregate", "-", "--by", "document", "--format", "csv", stdin=lines)
    rows = csv_out.stdout.splitlines()
    assert rows[0].startswith("doc,relation,head,head_type,tail") and len(rows) == 3
    assert rows[2].startswith("b,founded_by,Microsoft's,ORG,Bill Gates,PERSON,1,1,1,0.7,0.7,b#3")
    bad = fsre("aggregate", "--format", "xml", stdin=lines)
    assert bad.returncode == 2 and "--format must be jsonl or csv" in bad.stderr
    broken = fsre("aggregate", stdin="[1, 2]\n")
    assert broken.returncode == 2 and "<stdin>:1: not a triple record" in broken.stderr
    assert "Traceback" not in broken.stderr
