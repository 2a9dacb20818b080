"""Learning from the user's documents: corpus sampling, masking on corpus sentences, the cache key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fsre_cli.corpus import CorpusSentence, corpus_digest, sample_corpus
from fsre_cli.schema import parse_schema
from fsre_cli.spans import Span

ROOT = Path(__file__).resolve().parents[1]

SCHEMA = """\
name: corpus-test
entity_types: {PERSON: [PERSON], ORG: [ORG], PLACE: [GPE, LOC]}
relations:
  works_for:
    description: the person works for the organization
    head: PERSON
    tail: ORG
    examples:
      - {text: "Alice Smith works for Acme Corp in Boston.", head: Alice Smith, tail: Acme Corp}
      - {text: "Bob Jones, an engineer at Globex, lives in Denver.", head: Bob Jones, tail: Globex}
      - {text: "Initech employs Carol White as an analyst.", head: Carol White, tail: Initech}
"""


def _sentence(i: int, *, with_pair: bool = True, verb: str = "joined") -> CorpusSentence:
    name, org = f"Person{i} Smith", f"Company{i}"
    text = f"{name} {verb} {org} last year."
    mentions = [Span(0, len(name), "PERSON", name)]
    if with_pair:
        start = text.index(org)
        mentions.append(Span(start, start + len(org), "ORG", org))
    return CorpusSentence(text, tuple(mentions))


@pytest.fixture(scope="module")
def schema():
    return parse_schema(SCHEMA)


def test_sampling_is_seeded_bounded_in_order_and_keeps_only_sentences_with_a_pair(schema) -> None:
    corpus = [_sentence(i, with_pair=i % 3 != 0) for i in range(300)]  # every third has no candidate pair
    sample = sample_corpus(iter(corpus), schema, 50, seed=1)
    assert len(sample) == 50
    assert all(s.candidate_pairs(schema) for s in sample)
    positions = [corpus.index(s) for s in sample]
    assert positions == sorted(positions)  # corpus order
    assert sample == sample_corpus(corpus, schema, 50, seed=1)
    assert sample != sample_corpus(corpus, schema, 50, seed=2)
    # fewer usable sentences than the limit: all of them
    assert len(sample_corpus(corpus, schema, 1000, seed=1)) == 200
    # the reservoir draws uniformly: late sentences are as likely as early ones
    late = sum(p >= 150 for s in range(20) for p in map(corpus.index, sample_corpus(corpus, schema, 50, seed=s)))
    assert 0.35 < late / (20 * 50) < 0.65


def test_a_corpus_sentence_is_masked_most_between_its_pair(schema) -> None:
    from fsre_cli.tkre.encoder import load_tokenizer, resolve_encoder
    from fsre_cli.tkre.markers import ENTITY, RELATION
    from fsre_cli.tkre.train import corpus_items

    tokenizer = load_tokenizer(resolve_encoder(None))
    items = corpus_items([_sentence(7)], schema, tokenizer, 128, "head", seed=0)
    assert len(items) == 1 and items[0].relation == -1  # no relation label: SCL never reads it
    pair = items[0].pair
    tokens = tokenizer.convert_ids_to_tokens(pair.input_ids)
    between = [t for t, c in zip(tokens, pair.categories) if c == RELATION]
    assert between == ["joined"]
    entity = tokenizer.convert_tokens_to_string([t for t, c in zip(tokens, pair.categories) if c == ENTITY])
    assert "person7 smith" in entity and "company7" in entity


def test_the_corpus_is_part_of_the_cache_key(schema) -> None:
    from fsre_cli.tkre.config import TrainConfig, cache_key

    one, two = [_sentence(1)], [_sentence(2)]
    config = TrainConfig().for_device("cpu")
    plain = cache_key(schema, None, config, "fp")
    keys = {cache_key(schema, None, config, "fp", None, corpus_digest(c)) for c in (one, two)}
    assert len(keys | {plain}) == 3
    # without a corpus the corpus knob changes nothing
    assert cache_key(schema, None, TrainConfig(corpus_steps=30).for_device("cpu"), "fp") == plain
    assert (cache_key(schema, None, TrainConfig(corpus_steps=30).for_device("cpu"), "fp", None, corpus_digest(one))
            != cache_key(schema, None, config, "fp", None, corpus_digest(one)))


def fsre(*args: str, env: dict | None = None):
    full_env = {**os.environ, "FSRE_THREADS": "1", "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "fsre_cli", *args], capture_output=True, text=True, env=full_env,
                          cwd=ROOT, timeout=600)


def test_silver_is_capped_by_the_real_examples_and_above_the_threshold(schema) -> None:
    import torch

    from fsre_cli.tkre.silver import pick_silver

    pairs = [s.candidate_pairs(schema)[0] for s in (_sentence(i) for i in range(10))]
    # [NOTA, works_for]: pairs 0-5 lean to works_for, most confident first; 6-9 are NOTA
    p_rel = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.2, 0.1, 0.05, 0.01])
    probs = torch.stack([1 - p_rel, p_rel], dim=1)
    silver = pick_silver(pairs, probs, schema, {"works_for": 3}, threshold=0.4, nota_per_positive=1)
    positives = [s for s in silver if s.relation]
    assert [s.score for s in positives] == pytest.approx([0.9, 0.8, 0.7])  # never more than the 3 real ones
    negatives = [s for s in silver if s.relation is None]
    assert [s.pair for s in negatives] == pairs[9:6:-1]  # the most confident NOTA pairs, 1 per positive
    assert all(s.instance().group.startswith("silver:") for s in silver)  # never in the held-out slice
    # a low threshold does not let more through than the cap; a high one lets fewer
    assert len([s for s in pick_silver(pairs, probs, schema, {"works_for": 3}, 0.75) if s.relation]) == 2
    assert len([s for s in pick_silver(pairs, probs, schema, {"works_for": 3}, 0.0, ratio=2.0) if s.relation]) == 6


def test_a_silver_file_is_checked_line_by_line(schema, tmp_path: Path) -> None:
    from fsre_cli.errors import UsageError
    from fsre_cli.tkre.silver import SilverPair, read_silver, write_silver

    pair = _sentence(3).candidate_pairs(schema)[0]
    path = tmp_path / "s.silver.jsonl"
    write_silver(path, [SilverPair(pair, "works_for", 0.91, 1), SilverPair(pair, None, 0.5, 1)])
    assert [(s.relation, s.pair) for s in read_silver(path, schema)] == [("works_for", pair), (None, pair)]
    record = json.loads(path.read_text().splitlines()[0])
    record["head"]["start"] += 1
    path.write_text(path.read_text() + json.dumps(record) + "\n")
    with pytest.raises(UsageError, match=r"s\.silver\.jsonl:3: invalid silver line: head offsets"):
        read_silver(path, schema)


@pytest.mark.slow
def test_train_with_a_corpus_and_self_training_end_to_end(tmp_path: Path) -> None:
    """One training covers corpus MSLM, a self-training round, the silver file, the cache and extract."""
    from fsre_cli.schema import load_schema
    from fsre_cli.tkre.config import TrainConfig
    from fsre_cli.tkre.silver import read_silver
    from fsre_cli.tkre.train import corpus_epochs

    assert [corpus_epochs(n, TrainConfig()) for n in (20, 424, 2000, 5000)] == [10, 6, 1, 1]
    schema_file = tmp_path / "s.yaml"
    schema_file.write_text(SCHEMA)
    docs = tmp_path / "docs.jsonl"
    with docs.open("w") as fh:
        for i in range(40):  # worded like the examples, so the model is confident on some; 10 without a pair
            s = _sentence(i, verb="works for", with_pair=i % 4 != 0)
            fh.write(json.dumps({"id": f"d{i}", "text": s.text, "entities": [
                {"start": m.start, "end": m.end, "type": m.type} for m in s.mentions]}) + "\n")
    env = {"FSRE_CACHE_DIR": str(tmp_path / "cache")}
    model = tmp_path / "model"
    args = ["train", str(schema_file), "--epochs", "4", "--mslm-epochs", "1", "--scl-epochs", "1", "--entities",
            "given", "--corpus", str(docs), "--corpus-sentences", "20", "--self-train", "1", "-o", str(model)]
    trained = fsre(*args, env=env)
    assert trained.returncode == 0, trained.stderr
    assert "corpus: 20 sentences" in trained.stderr
    meta = json.loads((model / "fsre.json").read_text())
    assert meta["corpus"]["sentences"] == 20 and meta["config"]["corpus_steps"] == 150
    log = [json.loads(line) for line in (model / "train_log.jsonl").read_text().splitlines()]
    stages = [entry["stage"] for entry in log]
    assert stages.count("corpus") == 20  # 20 sentences, 16 per step: 2 steps an epoch, 10 epochs at most
    assert stages.index("corpus") < stages.index("mslm")
    silver = read_silver(tmp_path / "s.silver.jsonl", load_schema(schema_file))
    positives = [s for s in silver if s.relation]
    assert 1 <= len(positives) <= 3 and len(silver) == 5 * len(positives)  # capped by the 3 examples; 4 NOTA each
    assert meta["config"]["self_train"] == 1 and meta["corpus"]["silver"]["positives"] == len(positives)
    assert any(entry.get("round") == 1 for entry in log)
    (tmp_path / "s.silver.jsonl").unlink()  # a cached model writes its silver again
    again = fsre(*args, env=env)
    assert again.returncode == 0 and "training a model" not in again.stderr
    assert len(read_silver(tmp_path / "s.silver.jsonl")) == len(silver)
    out = fsre("extract", str(docs), "--schema", str(schema_file), "--model", str(model), "--min-score", "0", env=env)
    assert out.returncode == 0, out.stderr
    assert {json.loads(line)["relation"] for line in out.stdout.splitlines()} == {"works_for"}
    checked = fsre("schema", "check", str(schema_file))
    assert checked.returncode == 0 and f"{len(silver)} silver pairs in s.silver.jsonl" in checked.stderr
    with (tmp_path / "s.silver.jsonl").open("a") as fh:
        fh.write(json.dumps({**positives[0].to_record(), "relation": "born_in"}) + "\n")
    broken = fsre("schema", "check", str(schema_file))
    assert broken.returncode == 2 and f"s.silver.jsonl:{len(silver) + 1}: invalid silver line" in broken.stderr
    missing = fsre("train", str(schema_file), "--corpus", str(tmp_path / "nope.txt"), env=env)
    assert missing.returncode == 2 and "nope.txt" in missing.stderr and "Traceback" not in missing.stderr
    for bad, message in ((["--no-pretrain", "--corpus", str(docs)], "--no-pretrain"), (["--self-train", "1"], "--corpus")):
        refused = fsre("train", str(schema_file), *bad, env=env)
        assert refused.returncode == 2 and message in refused.stderr
