"""`fsre bench`: tiny end-to-end runs on files in the exact dataset formats (mechanics, not wisdom)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsre_cli.bench.common import aggregate, default_data_dir, parse_ints, parse_settings, subsample
from fsre_cli.bench.labeled import (
    LLMAccess,
    RunContext,
    Variant,
    build_test_set,
    evaluate,
    run_cell,
    split_documents,
    summarize_rows,
    variants,
)
from fsre_cli.cli import app
from fsre_cli.console import NULL_LOG
from fsre_cli.bench.datasets import CROSSRE_DESCRIPTIONS, LabeledSentence, kshot_schema, load_crossre, load_fewrel
from fsre_cli.errors import UsageError
from fsre_cli.schema import Span
from fsre_cli.scorers.base import Prediction

runner = CliRunner()

# --------------------------------------------------------------------------- tiny data files
FEWREL_TEMPLATES = {
    "P1": "{h} was founded by {t} in the spring .",
    "P2": "{h} was born in the city of {t} .",
    "P3": "{h} is a member of the band {t} .",
    "P4": "{h} plays the position of {t} for his club .",
    "P5": "{h} flows into the {t} near the border .",
    "P6": "{h} was directed by {t} last year .",
}
NAMES = ["Alpha Corp", "Anna Berg", "Oslo", "Red Lake", "Tom Hill", "Nile", "Kim Lee", "Beta Works", "Lima", "Sam Roe",
         "Gamma Ltd", "Rhine"]


def write_fewrel(path: Path, per_relation: int = 6) -> Path:
    rng = random.Random(0)
    data = {}
    for rel, template in FEWREL_TEMPLATES.items():
        items = []
        for _ in range(per_relation):
            h, t = rng.sample(NAMES, 2)
            text = template.format(h=h, t=t)
            tokens = text.split()
            hs = tokens.index(h.split()[0])
            ts = len(text[: text.index(t, len(h))].split())
            items.append({"tokens": tokens, "h": [h, "Q1", [list(range(hs, hs + len(h.split())))]],
                          "t": [t, "Q2", [list(range(ts, ts + len(t.split())))]]})
        data[rel] = items
    path.write_text(json.dumps(data))
    return path


CROSSRE_LINES = [
    # (tokens, ner, relations)
    ("Apple was founded by Steve Jobs in Cupertino .", [(0, 0, "organisation"), (4, 5, "person"), (7, 7, "location")],
     [(0, 0, 4, 5, "origin"), (0, 0, 7, 7, "physical")]),
    ("Microsoft was started by Bill Gates in Albuquerque .", [(0, 0, "organisation"), (4, 5, "person"), (7, 7, "location")],
     [(0, 0, 4, 5, "origin"), (0, 0, 7, 7, "physical")]),
    ("Angela Merkel leads the CDU in Berlin .", [(0, 1, "person"), (4, 4, "organisation"), (6, 6, "location")],
     [(0, 1, 4, 4, "role"), (4, 4, 6, 6, "physical")]),
    ("Boris Johnson led the Conservative Party in London .", [(0, 1, "person"), (4, 5, "organisation"), (7, 7, "location")],
     [(0, 1, 4, 5, "role"), (4, 5, 7, 7, "physical")]),
    ("Oracle was created by Larry Ellison near Santa Clara .", [(0, 0, "organisation"), (4, 5, "person"), (7, 8, "location")],
     [(0, 0, 4, 5, "origin")]),
    ("Emmanuel Macron heads the party En Marche in Paris .", [(0, 1, "person"), (5, 6, "organisation"), (8, 8, "location")],
     [(0, 1, 5, 6, "role"), (5, 6, 8, 8, "physical")]),
    ("Larry Page founded Google in Menlo Park .", [(0, 1, "person"), (3, 3, "organisation"), (5, 6, "location")],
     [(3, 3, 0, 1, "origin"), (3, 3, 5, 6, "physical")]),
    ("Theresa May leads the Tory Party in Maidenhead .", [(0, 1, "person"), (4, 5, "organisation"), (7, 7, "location")],
     [(0, 1, 4, 5, "role"), (4, 5, 7, 7, "physical")]),
]


def write_crossre(folder: Path, domain: str = "news") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in (("train", CROSSRE_LINES[:4]), ("dev", CROSSRE_LINES[4:])):
        with (folder / f"{domain}-{split}.json").open("w") as fh:
            for i, (text, ner, rels) in enumerate(lines):
                fh.write(json.dumps({"doc_key": f"{domain}-{split}-{i}", "sentence": text.split(),
                                     "ner": [list(n) for n in ner],
                                     "relations": [list(r) + ["", False, False] for r in rels]}) + "\n")
    return folder


def invoke_json(args: list[str]) -> dict:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- helpers
def test_parsers_and_aggregate():
    assert parse_ints("0, 1,2", "--seeds") == [0, 1, 2]
    assert parse_ints("", "--tkre-k") == []
    assert parse_settings("5-1,10-5") == [(5, 1), (10, 5)]
    with pytest.raises(UsageError):
        parse_settings("5x1")
    with pytest.raises(UsageError):
        parse_ints("a,b", "--k")
    assert aggregate([0.5]) == {"mean": 0.5, "std": 0.0, "n": 1}
    agg = aggregate([0.2, 0.4])
    assert agg["mean"] == pytest.approx(0.3) and agg["std"] == pytest.approx(0.141421, abs=1e-5)
    items = list(range(100))
    assert subsample(items, 10, 0) == subsample(items, 10, 0) == sorted(subsample(items, 10, 0))
    assert subsample(items, 10, 0) != subsample(items, 10, 1)
    assert subsample(items, None, 0) == items


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FSRE_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("FSRE_DATA")
    assert default_data_dir() == Path(__file__).resolve().parents[1].parent / "shared" / "data"


def test_missing_data_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["bench", "fewrel", "--data", str(tmp_path / "nope.json")])
    assert result.exit_code == 2  # a usage error: one line, no traceback
    assert "no such file" in result.output


# --------------------------------------------------------------------------- FewRel
def test_fewrel_bench_end_to_end_and_reproducible(tmp_path):
    data = write_fewrel(tmp_path / "val_tiny.json")
    assert sum(len(v) for v in load_fewrel(data).values()) == 36
    out = tmp_path / "fewrel.json"
    args = ["bench", "fewrel", "--data", str(data), "--episodes", "20", "--settings", "5-1,3-2",
            "--device", "cpu", "--threads", "1", "-q"]
    first = invoke_json(args + ["--seeds", "0", "--out", str(out)])
    assert json.loads(out.read_text()) == first
    assert first["benchmark"] == "fewrel" and first["instances"] == 36 and first["seeds"] == [0]
    assert [r["setting"] for r in first["settings"]] == ["5-1", "3-2"]
    for row in first["settings"]:
        assert set(row) >= {"setting", "n_way", "k_shot", "accuracy", "per_seed"}
        assert 0.0 <= row["accuracy"]["mean"] <= 1.0 and row["accuracy"]["n"] == 1
        assert row["per_seed"][0]["episodes"] == 20
    assert first["tkre"] == []
    assert first["timing"]["embed"] >= 0 and first["environment"]["threads"] == 1
    # same seed, same episodes, same accuracies; another seed draws other episodes
    second = invoke_json(args + ["--seeds", "0"])
    assert [r["per_seed"] for r in second["settings"]] == [r["per_seed"] for r in first["settings"]]
    other = invoke_json(args + ["--seeds", "7,8"])
    assert other["seeds"] == [7, 8] and all(r["accuracy"]["n"] == 2 for r in other["settings"])


def test_fewrel_episode_sampling_is_seeded(tmp_path):
    import torch

    from fsre_cli.bench.fewrel import EmbeddingCache, run_episodes

    keys = ["founded", "born", "member", "position", "flows", "directed"]

    class OracleEmbedder:  # one-hot of the relation's key word: prototypes classify perfectly
        def embed(self, pairs):
            idx = [next(i for i, k in enumerate(keys) if k in p.text.split()) for p in pairs]
            return torch.nn.functional.one_hot(torch.tensor(idx), len(keys)).float()

    data = load_fewrel(write_fewrel(tmp_path / "val_tiny.json"))
    cache = EmbeddingCache(data, OracleEmbedder())
    assert cache.count == 36
    a = run_episodes(cache, [(3, 1), (5, 2)], 15, 2, [0, 1])
    assert a == run_episodes(cache, [(3, 1), (5, 2)], 15, 2, [0, 1])
    assert [r["accuracy"] for r in a] == [{"mean": 1.0, "std": 0.0, "n": 2}] * 2
    assert a[0]["per_seed"][0]["ci95"] == 0.0


def test_fewrel_kshot_split_is_nested_and_disjoint(tmp_path):
    from fsre_cli.bench.fewrel import fewrel_schema, kshot_split

    data = load_fewrel(write_fewrel(tmp_path / "val_tiny.json"))
    tr2, te2 = kshot_split(data, 2, 3, seed=0)
    tr1, te1 = kshot_split(data, 1, 3, seed=0)
    for rel in data:
        assert te1[rel] == te2[rel] and len(te2[rel]) == 3
        assert tr1[rel] == tr2[rel][:1]
        assert not set(map(id, tr2[rel])) & set(map(id, te2[rel]))
    schema = fewrel_schema(tr2, {"P1": "founded by"}, "t")
    assert len(schema.examples) == 12 and schema.relations_for("ENTITY", "ENTITY") == tuple(sorted(data))
    with pytest.raises(ValueError):
        kshot_split(data, 5, 3, seed=0)


# --------------------------------------------------------------------------- CrossRE
def test_crossre_bench_end_to_end(tmp_path):
    folder = write_crossre(tmp_path / "crossre")
    res = invoke_json(["bench", "crossre", "--data", str(folder), "--domains", "news", "--k", "2",
                       "--methods", "prototype", "--seeds", "0", "--max-sentences", "3", "--device", "cpu",
                       "--threads", "1", "--no-local-llm", "-q"])
    assert res["benchmark"] == "crossre" and res["domains"] == ["news"] and res["ks"] == [2]
    test = res["test_sets"]["news"]
    assert test["sentences"] == 3 and 5 <= test["gold_triples"] <= 6  # 3 of the 4 dev sentences
    assert test["candidates"] <= test["pairs"]
    assert test["nota_candidates"] == test["candidates"] - test["gold_pairs_among_candidates"]
    (row,) = res["summary"]
    assert row["variant"] == "prototype" and row["seeds"] == [0]
    for key in ("f1", "precision", "recall"):
        assert 0.0 <= row[key]["mean"] <= 1.0
    assert row["pairs_per_second"]["mean"] > 0
    (run,) = res["runs"]
    assert run["gold"] == test["gold_triples"] and run["pairs"] == test["candidates"] and run["examples"] >= 3
    assert 0 <= run["tp"] <= min(run["predicted"], run["gold"])
    # the prototype keeps a pair when its best score reaches its threshold, one of those the sweep tries
    assert run["f1"] <= run["best_threshold_f1"] <= 1.0
    assert row["best_threshold_f1"]["mean"] == run["best_threshold_f1"]


class OracleScorer:
    """Predicts the gold label of every candidate (NOTA where there is none)."""

    method = "oracle"
    decides_by_threshold = False

    def run_summary(self):
        return {}

    def __init__(self, sentences, wrong: bool = False):
        self.gold = {}
        for s in sentences:
            for h, t, r in s.relations:
                a, b = s.mentions[h], s.mentions[t]
                self.gold[(s.id, a.start, a.end, b.start, b.end)] = r
        self.wrong = wrong

    def predict(self, candidates):
        out = []
        for c in candidates:
            r = self.gold.get((c.sentence.doc_id, c.head.start, c.head.end, c.tail.start, c.tail.end))
            if self.wrong:
                r = next(x for x in c.relations if x != r) if len(c.relations) > 1 else None
            out.append(Prediction(r, 1.0 if r else 0.0, r or c.relations[0], 1.0))
        return out


def _toy_sentences(tmp_path):
    folder = write_crossre(tmp_path / "crossre")
    return load_crossre(folder / "news-train.json"), load_crossre(folder / "news-dev.json")


def test_test_set_and_scoring_are_consistent(tmp_path):
    train, dev = _toy_sentences(tmp_path)
    schema = kshot_schema(train, 2, 0, CROSSRE_DESCRIPTIONS)
    test = build_test_set(dev, schema)
    assert len(test.gold) == 7
    perfect = evaluate(OracleScorer(dev), test)
    # gold pairs whose types the schema does not allow can never be predicted: recall < 1 then
    reachable = test.describe()["gold_pairs_among_candidates"]
    assert perfect["precision"] == 1.0 and perfect["tp"] == reachable
    assert perfect["recall"] == pytest.approx(reachable / 7)
    wrong = evaluate(OracleScorer(dev, wrong=True), test)
    assert wrong["tp"] == 0 and wrong["f1"] == 0.0
    # ignored pairs (Re-DocRED "ignore" mode) leave both sides
    s = dev[0]
    s.ignored = {(s.relations[0][0], s.relations[0][1])}
    s.relations = s.relations[1:]
    assert len(build_test_set(dev, schema).gold) == 6


def test_llm_rows_are_skipped_with_a_note(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    train, dev = _toy_sentences(tmp_path)
    schema = kshot_schema(train, 2, 0, CROSSRE_DESCRIPTIONS)
    ctx = RunContext(None, "cpu", 8, True, 2, NULL_LOG, LLMAccess(NULL_LOG, allow_local=False))
    rows = run_cell(schema, build_test_set(dev, schema), 0,
                    [v for v in variants(["qa4re", "cascade"], True) if v.needs_llm], ctx)
    assert [r["variant"] for r in rows] == ["qa4re", "cascade", "ablation:+synthetic", "ablation:full"]
    assert all("OPENAI_BASE_URL" in r["skipped"] for r in rows)
    assert len(ctx.notes) == 4
    summary = summarize_rows([{"dataset": "d", "k": 2, **r} for r in rows], ("dataset", "k", "variant"))
    assert all(s["seeds"] == [] and s["skipped"] for s in summary)


def test_variants_share_models():
    names = [v.name for v in variants(["prototype", "tkre"], True)]
    assert names[:2] == ["prototype", "tkre"] and "ablation:full" in names
    v = {x.name: x for x in variants([], True)}
    assert dict(v["ablation:+scl"].train) == {"pretrain": True, "scl": True}
    assert v["ablation:+synthetic"].synthetic and v["ablation:+synthetic"].needs_llm
    assert not Variant("tkre", "tkre").needs_llm


def test_redocred_split_by_document():
    sents = [LabeledSentence(f"redocred-{d}-{s}", "a b", [Span(0, 1, "PER", "a"), Span(2, 3, "ORG", "b")], [])
             for d in range(10) for s in range(3)]
    train, test = split_documents(sents, 0)
    docs = lambda xs: {x.id.rsplit("-", 1)[0] for x in xs}  # noqa: E731
    assert len(docs(train)) == 5 and not docs(train) & docs(test) and len(train) + len(test) == 30
    assert split_documents(sents, 0) == (train, test)


# --------------------------------------------------------------------------- speed
@pytest.fixture(scope="module")
def untrained_scorer():
    """A TkreScorer over the bundled encoder and an untrained head (speed mechanics only)."""
    from fsre_cli.schema import load_schema
    from fsre_cli.tkre.artifact import Artifact
    from fsre_cli.tkre.encoder import load_masked_lm, load_tokenizer, resolve_encoder
    from fsre_cli.tkre.model import PairClassifier
    from fsre_cli.scorers.tkre import TkreScorer

    schema = load_schema(Path(__file__).parents[1] / "schemas" / "org-people.yaml")
    source = resolve_encoder(None)
    classifier = PairClassifier(load_masked_lm(source).base_model, len(schema.relations)).eval()
    meta = {"relations": list(schema.relations), "threshold": 0.5, "config": {"max_length": 128}}
    return schema, TkreScorer(Artifact(classifier, load_tokenizer(source), meta), batch_size=16)


def test_speed_throughput_mechanics(untrained_scorer):
    from fsre_cli.bench.speed import bare_batches, measure_throughput, read_input

    schema, scorer = untrained_scorer
    docs = read_input(Path(__file__).parents[1] / "examples" / "org-people.jsonl")[:1]
    res = measure_throughput(schema, scorer, docs, repeat=1, min_pairs=1, device="cpu")
    assert res["copies"] == 1 and res["candidate_pairs"] > 0
    assert res["batches"] >= -(-res["candidate_pairs"] // 16)  # batches never exceed batch_size
    assert res["pipeline_pairs_per_second"] > 0 and res["bare_encoder_pairs_per_second"] > 0
    assert res["ratio"] == pytest.approx(res["bare_seconds"][0] / res["pipeline_seconds"][0], rel=1e-2)
    batches = bare_batches(scorer, [[]])
    assert batches == []


# --------------------------------------------------------------------------- training / LLM paths
@pytest.mark.slow
def test_fewrel_tkre_protocol_quick(tmp_path):
    from fsre_cli.bench.fewrel import run_fewrel

    data = write_fewrel(tmp_path / "val_tiny.json")
    res = run_fewrel(data, settings=[(3, 1)], episodes=5, seeds=[0], tkre_k=[1], test_per_relation=2, quick=True,
                     batch_size=16)
    (row,) = res["tkre"]
    assert row["k"] == 1 and row["relations"] == 6 and row["quick"] is True
    assert 0.0 <= row["tkre"]["mean"] <= 1.0 and 0.0 <= row["prototype"]["mean"] <= 1.0
    (seed_row,) = row["per_seed"]
    assert seed_row["test_instances"] == 12 and seed_row["train_examples"] == 6 and seed_row["train_seconds"] > 0


@pytest.mark.slow
@pytest.mark.llm
def test_qa4re_row_with_an_llm(tmp_path):
    """QA4RE through the bench with $OPENAI_BASE_URL, else the embedded local server."""
    import os

    from fsre_cli.bench.datasets import CROSSRE_TEMPLATES
    from fsre_cli.errors import ModelMissingError

    if not os.environ.get("OPENAI_BASE_URL"):
        pytest.importorskip("llama_cpp")
        from fsre_cli.llm.server import default_gguf

        try:
            default_gguf()
        except ModelMissingError as exc:
            pytest.skip(str(exc))
    train, dev = _toy_sentences(tmp_path)
    schema = kshot_schema(train, 2, 0, CROSSRE_DESCRIPTIONS, templates=CROSSRE_TEMPLATES)
    test = build_test_set(dev[:2], schema)
    ctx = RunContext(None, "cpu", 8, True, 2, NULL_LOG, LLMAccess(NULL_LOG), cascade_route=1.0)
    try:
        row, cascade = run_cell(schema, test, 0, [Variant("qa4re", "qa4re"), Variant("cascade", "cascade")], ctx)
    finally:
        ctx.llm.close()
    assert "skipped" not in row, row
    assert row["pairs"] == len(test.candidates) > 0 and 0.0 <= row["f1"] <= 1.0
    assert row["predicted"] <= row["pairs"] and 0 < row["llm_requests"] <= row["pairs"]
    # the cascade's band is calibrated on the model's held-out scores and reported with its routed share
    assert "skipped" not in cascade, cascade
    low, high = cascade["band"]
    assert 0.0 <= low <= high <= 1.0 and low - 1e-4 <= cascade["threshold"] <= high + 1e-4
    assert "held-out" in cascade["band_source"]
    assert cascade["routed_fraction"] == pytest.approx(cascade["routed_to_llm"] / cascade["pairs"], abs=1e-4)
    # timed cold: the qa4re row just asked the same questions, yet routed pairs are asked again
    assert cascade["llm_requests"] <= cascade["routed_to_llm"]
    assert (cascade["llm_requests"] > 0) == (cascade["routed_to_llm"] > 0)


@pytest.mark.slow
def test_speed_peak_memory_subprocess(untrained_scorer, tmp_path):
    from fsre_cli.bench.speed import measure_rss, read_input
    from fsre_cli.tkre.artifact import save_artifact
    from fsre_cli.tkre.artifact import relation_signature as _relation_signature

    schema, scorer = untrained_scorer
    artifact = scorer.artifact
    artifact.meta.update({"schema": {"name": schema.name, "hash": schema.content_hash(),
                                     "relations": _relation_signature(schema)}})
    model_dir = save_artifact(artifact, tmp_path / "model")
    docs = read_input(Path(__file__).parents[1] / "examples" / "org-people.jsonl")[:1]
    res = measure_rss(schema.path, docs, model_dir, batch_size=16)
    assert "error" not in res, res
    assert 100 < res["peak_rss_mib"] < 8000 and res["documents"] == 1


def test_prototype_embeddings_are_cached_across_cells(tmp_path):
    """Test pairs are embedded once per run; later cells report no speed figure for them."""
    import torch

    from fsre_cli.bench.labeled import CachingEmbedder

    class CountingEmbedder:
        class encoder:  # noqa: N801 - mimics PairEmbedder.encoder.config
            class config:  # noqa: N801
                hidden_size = 2

        def __init__(self):
            self.calls = 0

        def embed(self, pairs):
            self.calls += len(pairs)
            return torch.nn.functional.normalize(torch.tensor([[float(p.head_start + 1), float(p.tail_start + 1),
                                                                1.0, float(len(p.text))] for p in pairs]), dim=-1)

    train, dev = _toy_sentences(tmp_path)
    inner = CountingEmbedder()
    ctx = RunContext(None, "cpu", 8, True, 2, NULL_LOG, LLMAccess(NULL_LOG, allow_local=False))
    ctx.embedder = CachingEmbedder(inner)
    rows = []
    for seed in (0, 1):
        schema = kshot_schema(train, 2, seed, CROSSRE_DESCRIPTIONS)
        rows += run_cell(schema, build_test_set(dev, schema), seed, [Variant("prototype", "prototype")], ctx)
    assert rows[0]["pairs_per_second"] > 0 and "cached_embeddings" not in rows[0]
    assert rows[1]["pairs_per_second"] is None and rows[1]["cached_embeddings"] is True
    assert inner.calls == ctx.embedder.misses == len(ctx.embedder.cache)
    assert rows[0]["pairs"] == rows[1]["pairs"] and 0.0 <= rows[1]["f1"] <= 1.0
    summary = summarize_rows([{"dataset": "d", "k": 2, **r} for r in rows], ("dataset", "k", "variant"))
    assert summary[0]["pairs_per_second"]["n"] == 1 and summary[0]["f1"]["n"] == 2


def test_shipped_schema_protocol_scores_evidence_sentences_only(tmp_path):
    """The shipped-schema benchmark: gold only in a triple's evidence sentences, a related pair
    elsewhere left out of scoring, Wikidata properties mapped (some reversed), other types dropped."""
    from fsre_cli.bench.shipped import load_sentences, precision_at_recall

    doc = {
        "title": "t",
        "sents": [["Ann", "Lee", "founded", "Acme", "in", "Oslo", "."],
                  ["Acme", "is", "led", "by", "Ann", "Lee", "since", "2001", "."]],
        "vertexSet": [
            [{"name": "Ann Lee", "pos": [0, 2], "sent_id": 0, "type": "PER"},
             {"name": "Ann Lee", "pos": [4, 6], "sent_id": 1, "type": "PER"}],
            [{"name": "Acme", "pos": [3, 4], "sent_id": 0, "type": "ORG"},
             {"name": "Acme", "pos": [0, 1], "sent_id": 1, "type": "ORG"}],
            [{"name": "Oslo", "pos": [5, 6], "sent_id": 0, "type": "LOC"}],
            [{"name": "2001", "pos": [7, 8], "sent_id": 1, "type": "TIME"}],
        ],
        "labels": [
            {"h": 1, "t": 0, "r": "P112", "evidence": [0]},  # founded by: Acme -> Ann Lee, said in sentence 0
            {"h": 1, "t": 0, "r": "P169", "evidence": [1]},  # CEO: Acme -> Ann Lee, i.e. ceo_of(Ann Lee, Acme)
            {"h": 1, "t": 2, "r": "P159", "evidence": []},  # headquarters: no evidence sentence
            {"h": 0, "t": 3, "r": "P569", "evidence": [1]},  # a TIME entity and an unmapped property
        ],
    }
    path = tmp_path / "dev.json"
    path.write_text(json.dumps([doc]))
    sentences, gold, unscored = load_sentences(path)
    assert [s.doc_id for s in sentences] == ["redocred-0-0", "redocred-0-1"]
    assert [m.type for m in sentences[1].mentions] == ["ORG", "PERSON"]  # the TIME mention is not an entity here
    triples = {(g["doc"], g["relation"], g["head"]["text"], g["tail"]["text"]) for g in gold}
    assert triples == {("redocred-0-0", "founded_by", "Acme", "Ann Lee"), ("redocred-0-1", "ceo_of", "Ann Lee", "Acme")}
    s0 = sentences[0].text
    assert s0.startswith("Ann Lee founded Acme")
    # founded_by holds in the document but sentence 1 is no evidence for it: its pair there is not scored;
    # headquartered_in has no evidence at all: not scored in sentence 0
    s1 = sentences[1].text
    assert ("redocred-0-1", 0, 4, s1.index("Ann Lee"), s1.index("Ann Lee") + 7) in unscored
    assert ("redocred-0-0", 0, 7, s0.index("Acme"), s0.index("Acme") + 4) in unscored  # ceo_of: not in sentence 0
    assert len(unscored) == 3
    assert ("redocred-0-0", s0.index("Acme"), s0.index("Acme") + 4, s0.index("Oslo"), s0.index("Oslo") + 4) in unscored
    assert precision_at_recall([(0.9, True), (0.8, False), (0.7, True), (0.1, False)], 2, 0.5) == 1.0
    assert precision_at_recall([(0.9, False), (0.8, True)], 2, 1.0) is None


def test_tkre_variants_parse_training_knobs():
    from fsre_cli.bench.common import parse_train_variants
    from fsre_cli.bench.labeled import variants
    from fsre_cli.errors import UsageError

    parsed = parse_train_variants("statements=true;heldout=0,epochs=20")
    assert parsed == [("tkre[statements=true]", (("statements", True),)),
                      ("tkre[heldout=0,epochs=20]", (("heldout", 0.0), ("epochs", 20)))]
    rows = variants(["tkre"], False, parsed)
    assert [(v.name, v.kind) for v in rows] == [("tkre", "tkre"), ("tkre[statements=true]", "tkre"),
                                                ("tkre[heldout=0,epochs=20]", "tkre")]
    for bad in ("colour=red", "epochs=many", "statements=maybe", "seed=3", "heldout"):
        with pytest.raises(UsageError):
            parse_train_variants(bad)
    assert parse_train_variants(None) == [] and parse_train_variants(" ; ") == []
    assert parse_train_variants("corpus=500") == [("tkre[corpus=500]", (("corpus", 500),))]


@pytest.mark.slow
def test_a_corpus_row_pretrains_on_the_unlabelled_train_and_dev_sentences(tmp_path, monkeypatch):
    monkeypatch.setenv("FSRE_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_crossre(tmp_path / "crossre")
    res = invoke_json(["bench", "crossre", "--data", str(folder), "--domains", "news", "--k", "2", "--methods=",
                       "--tkre-variants", "corpus=3", "--seeds", "0", "--device", "cpu", "--threads", "1",
                       "--quick", "--cache-models", "--no-local-llm", "-q"])
    (row,) = res["summary"]
    assert row["variant"] == "tkre[corpus=3]"
    metas = [json.loads(p.read_text()) for p in (tmp_path / "cache" / "models").glob("*/fsre.json")]
    assert [m["corpus"]["sentences"] for m in metas] == [3]
    (log,) = [[json.loads(line)["stage"] for line in p.read_text().splitlines()]
              for p in (tmp_path / "cache" / "models").glob("*/train_log.jsonl")]
    assert log[0] == "corpus"


def test_shipped_schema_counts_a_subsidiary_stated_both_ways_once(tmp_path):
    from fsre_cli.bench.shipped import load_sentences

    doc = {"title": "t", "sents": [["YouTube", "is", "owned", "by", "Google", "."]],
           "vertexSet": [[{"name": "YouTube", "pos": [0, 1], "sent_id": 0, "type": "ORG"}],
                         [{"name": "Google", "pos": [4, 5], "sent_id": 0, "type": "ORG"}]],
           "labels": [{"h": 0, "t": 1, "r": "P749", "evidence": [0]},  # parent organization: YouTube -> Google
                      {"h": 1, "t": 0, "r": "P355", "evidence": [0]}]}  # subsidiary: Google -> YouTube (reversed)
    path = tmp_path / "dev.json"
    path.write_text(json.dumps([doc]))
    _, gold, unscored = load_sentences(path)
    assert [(g["relation"], g["head"]["text"], g["tail"]["text"]) for g in gold] == [("subsidiary_of", "YouTube", "Google")]
    assert unscored == set()


@pytest.mark.slow
def test_modes_benchmark_runs_every_mode_on_the_same_candidates(tmp_path, monkeypatch):
    from fsre_cli.bench.modes import agreement, parse_mode, run_modes
    from fsre_cli.errors import UsageError

    monkeypatch.setenv("FSRE_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_crossre(tmp_path / "crossre")
    res = run_modes(["crossre-news"], ["pair", "sentence", "sentence+int8"], data=folder, k=2, repeat=1,
                    quick=True, rss=True, batch_size=16)
    (case,) = res["cases"]
    assert case["candidate_pairs"] > 0 and set(case["modes"]) == {"pair", "sentence", "sentence+int8"}
    for mode, row in case["modes"].items():
        assert row["pairs_per_second"] > 0 and row["bare_encoder_pairs_per_second"] > 0
        assert row["memory"]["peak_rss_mib"] > 100, row["memory"]
    assert case["modes"]["pair"]["speedup_vs_pair_pipeline"] == 1.0
    # packed: fewer encoder batches for the same pairs; int8 is compared pair by pair with the same model
    assert case["modes"]["sentence"]["encoder_batches"] <= case["modes"]["pair"]["encoder_batches"]
    agree = case["modes"]["sentence+int8"]["agreement_with_sentence"]
    assert agree["pairs"] == case["candidate_pairs"] and 0.0 <= agree["same_decision"] <= 1.0
    assert parse_mode("pair+int8") == ("pair", "int8")
    with pytest.raises(UsageError, match="--modes"):
        parse_mode("document")
    assert agreement([("a", 0.5), (None, 0.1)], [("a", 0.6), ("a", 0.2)])["same_decision"] == 0.5


# --------------------------------------------------------------------------- the simulated reviewer
class FixedScorer:
    """Scores each candidate by its place in the list: the first candidate nearest the threshold."""

    method = "tkre"
    threshold = 0.5

    def predict(self, candidates):
        return [Prediction(c.relations[0], 0.5 + 0.01 * i, c.relations[0], 0.5 + 0.01 * i)
                for i, c in enumerate(candidates)]


def test_the_simulated_reviewer_decides_by_the_gold_in_review_order_and_teaches_through_the_schema(tmp_path):
    from fsre_cli.bench.reviewer import reviewed_docs, simulate_review, without_docs

    folder = write_crossre(tmp_path / "crossre")
    train, dev = load_crossre(folder / "news-train.json"), load_crossre(folder / "news-dev.json")
    schema = kshot_schema(train, 2, 0, CROSSRE_DESCRIPTIONS, name="news")
    test = build_test_set(dev, schema)
    gold = {(g["doc"], g["head"]["start"], g["tail"]["start"]): g["relation"] for g in test.gold}
    reviewed, info = simulate_review(schema, FixedScorer(), test, 5)
    assert info["reviewed"] == 5 == len(reviewed.review) and info["emitted"] == len(test.candidates)
    assert info["accept"] + info["reject"] + info["relation"] == 5
    # uncertain first: the five candidates scored nearest the threshold, in that order
    assert [d.key[2:] for d in reviewed.review] == [((c.head.start, c.head.end), (c.tail.start, c.tail.end))
                                                    for c in test.candidates[:5]]
    for d, c in zip(reviewed.review, test.candidates):
        truth = gold.get((c.sentence.doc_id, c.head.start, c.tail.start))
        expected = ("accept" if truth == c.relations[0] else
                    "relation" if truth is not None and truth in c.relations else "reject")
        assert d.decision == expected and (d.relation == truth if expected != "reject" else True)
    assert schema.review == [] and len(reviewed.examples) > len(schema.examples)
    assert len(reviewed.negatives) > len(schema.negatives)  # the fixture's first pairs include NOTA ones
    assert reviewed.content_hash() != schema.content_hash()
    rest = without_docs(test, reviewed_docs(reviewed))
    assert rest.candidates and all(c.sentence.doc_id not in reviewed_docs(reviewed) for c in rest.candidates)
    assert {g["doc"] for g in rest.gold} <= {s.id for s in rest.sentences}
    assert simulate_review(schema, FixedScorer(), test, 0)[0].review == []


class HalfBelowScorer(FixedScorer):
    """Even candidates above the threshold, odd ones below it (NOTA, with their best relation)."""

    def predict(self, candidates):
        out = []
        for i, c in enumerate(candidates):
            score = 0.5 + 0.01 * (i // 2 + 1) * (1 if i % 2 == 0 else -1)
            out.append(Prediction(c.relations[0] if score >= 0.5 else None, score, c.relations[0], score))
        return out


def test_the_simulated_reviewer_below_the_threshold_sees_nota_pairs_nearest_it_too(tmp_path):
    from fsre_cli.bench.reviewer import simulate_review

    folder = write_crossre(tmp_path / "crossre")
    schema = kshot_schema(load_crossre(folder / "news-train.json"), 2, 0, CROSSRE_DESCRIPTIONS, name="news")
    test = build_test_set(load_crossre(folder / "news-dev.json"), schema)
    assert len(test.candidates) >= 4
    above, info = simulate_review(schema, HalfBelowScorer(), test, 4)
    keys = [((c.head.start, c.head.end), (c.tail.start, c.tail.end)) for c in test.candidates]
    assert not info["below_threshold"] and info["shown"] == info["emitted"] == (len(test.candidates) + 1) // 2
    assert info["reviewed"] == 4 and [d.key[2:] for d in above.review] == [keys[0], keys[2], keys[4], keys[6]]
    both, info = simulate_review(schema, HalfBelowScorer(), test, 4, below_threshold=True)
    assert info["below_threshold"] and info["shown"] == len(test.candidates)
    # nearest the threshold on either side: the first pair above it and the first below it, ...
    assert [d.key[2:] for d in both.review] == keys[:4]
    assert both.review[1].predicted == test.candidates[1].relations[0]  # a NOTA pair, shown with its best relation


@pytest.mark.slow
def test_corpus_and_review_rows_train_and_score_their_own_models(tmp_path, monkeypatch):
    """Rows that differ only in bench knobs (corpus, review) share a TrainConfig: each must still
    be scored with its own model, not the first row's scores. The quick models trained on the tiny
    fixture emit nothing at their calibrated threshold, so calibration is pinned at 0 (every pair's
    best relation is emitted) to give the reviewer triples to decide."""
    import fsre_cli.tkre.train

    monkeypatch.setenv("FSRE_CACHE_DIR", str(tmp_path / "cache"))
    calibrate = fsre_cli.tkre.train.calibrate
    monkeypatch.setattr(fsre_cli.tkre.train, "calibrate", lambda *a, **kw: (0.0, *calibrate(*a, **kw)[1:]))
    folder = write_crossre(tmp_path / "crossre")
    res = invoke_json(["bench", "crossre", "--data", str(folder), "--domains", "news", "--k", "2", "--methods=",
                       "--tkre-variants", "epochs=3;epochs=3,corpus=3;epochs=3,review=4", "--seeds", "0",
                       "--device", "cpu", "--threads", "1", "--quick", "--cache-models", "--no-local-llm", "-q"])
    rows = {r["variant"]: r for r in res["runs"]}
    models = [rows[f"tkre[{v}]"]["model"] for v in ("epochs=3", "epochs=3,corpus=3", "epochs=3,review=4")]
    assert len(set(models)) == 3 and all(models)
    review = rows["tkre[epochs=3,review=4]"]["review"]
    assert review["reviewed"] == min(4, review["emitted"]) > 0
    assert review["accept"] + review["reject"] + review["relation"] == review["reviewed"]
    assert 0 <= review["f1_unreviewed"] <= 1 and review["unreviewed_sentences"] < 4
    (summary,) = [s for s in res["summary"] if s["variant"] == "tkre[epochs=3,review=4]"]
    assert summary["review"]["reviewed"]["mean"] == review["reviewed"]
    assert len(list((tmp_path / "cache" / "models").glob("*/fsre.json"))) == 3
