"""The trained-model store: a tiny real artifact (1-layer BERT, the bundled tokenizer),
saved, tampered with, raced and copied. No training."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable

import pytest
import torch

from fsre_cli.errors import FsreError, UsageError
from fsre_cli.schema import parse_schema
from fsre_cli.tkre.artifact import (Artifact, check_compatible, check_model_output, load_artifact,
                                    relation_signature, save_artifact)
from fsre_cli.tkre.model import PairClassifier

pytestmark = pytest.mark.timeout(60)

SCHEMA = """\
name: tiny
entity_types: {PERSON: [PERSON], ORG: [ORG], PLACE: [GPE]}
relations:
  founded_by:
    head: ORG
    tail: PERSON
    examples:
      - {text: "Amazon was founded by Jeff Bezos.", head: Amazon, tail: Jeff Bezos}
  born_in:
    head: PERSON
    tail: PLACE
    examples:
      - {text: "Marie Curie was born in Warsaw.", head: Marie Curie, tail: Warsaw}
"""
WORKTREE = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def schema():
    return parse_schema(SCHEMA)


@pytest.fixture(scope="module")
def tokenizer():
    from fsre_cli.tkre.encoder import load_tokenizer, resolve_encoder

    return load_tokenizer(resolve_encoder(None))


def tiny_artifact(schema, tokenizer, *, threshold: float = 0.3, log: list[dict] | None = None) -> Artifact:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=64)
    relations = list(schema.relations)
    meta = {
        "relations": relations,
        "threshold": threshold,
        "heldout": {"instances": 2, "f1": 0.5, "best_epoch": 1, "scores": [0.1, 0.4]},
        "config": {"max_length": 64, "precision": "fp32"},
        "schema": {"name": schema.name, "hash": schema.content_hash(), "relations": relation_signature(schema)},
        "cache_key": "test",
    }
    classifier = PairClassifier(BertModel(config, add_pooling_layer=False), len(relations)).eval()
    return Artifact(classifier, tokenizer, meta, list(log or []))


@pytest.fixture()
def saved(schema, tokenizer, tmp_path: Path) -> Path:
    return save_artifact(tiny_artifact(schema, tokenizer), tmp_path / "model")


def _logits(artifact: Artifact) -> torch.Tensor:
    ids = torch.tensor([[101, 2000, 2001, 2002, 102]])
    with torch.inference_mode():
        return artifact.classifier(ids, torch.ones_like(ids), torch.tensor([1]), torch.tensor([3]))


def test_round_trip_keeps_weights_meta_and_compatibility(schema, tokenizer, saved: Path) -> None:
    original = tiny_artifact(schema, tokenizer)
    loaded = load_artifact(saved)
    assert torch.allclose(_logits(original), _logits(loaded), atol=1e-6)
    assert loaded.relations == ["founded_by", "born_in"] and loaded.threshold == 0.3
    assert check_compatible(loaded, schema, "m") == []
    with pytest.raises(UsageError, match="other relations"):
        check_compatible(loaded, parse_schema(SCHEMA.replace("born_in", "lives_in")), "m")


# ----------------------------------------------------------------- 1: never delete other data
def test_save_refuses_a_folder_that_holds_other_files(schema, tokenizer, tmp_path: Path) -> None:
    target = tmp_path / "x"
    target.mkdir()
    (target / "notes.txt").write_text("keep\n")
    with pytest.raises(UsageError, match="not empty and not an fsre model") as caught:
        save_artifact(tiny_artifact(schema, tokenizer), target)
    assert str(target) in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(UsageError, match="not empty and not an fsre model"):
        check_model_output(target)  # the cheap check before training says the same
    assert (target / "notes.txt").read_text() == "keep\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # no temporary folder left behind


def test_save_refuses_a_file_and_accepts_an_empty_folder_or_a_model(schema, tokenizer, tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("data")
    with pytest.raises(UsageError, match="not a folder"):
        check_model_output(a_file)
    with pytest.raises(UsageError, match="not a folder"):
        save_artifact(tiny_artifact(schema, tokenizer), a_file)
    assert a_file.read_text() == "data"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_model_output(empty) == empty and check_model_output(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    save_artifact(tiny_artifact(schema, tokenizer), empty)
    assert load_artifact(empty).threshold == 0.3
    # an fsre model is replaced as a whole (its old files go)
    (empty / "stray.txt").write_text("old")
    check_model_output(empty)
    save_artifact(tiny_artifact(schema, tokenizer, threshold=0.7), empty)
    assert load_artifact(empty).threshold == 0.7 and not (empty / "stray.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file"]


def test_a_link_to_a_model_folder_is_kept_and_the_model_replaced_where_it_leads(schema, tokenizer, tmp_path: Path) -> None:
    real = save_artifact(tiny_artifact(schema, tokenizer), tmp_path / "real")
    link = tmp_path / "current"
    link.symlink_to(real, target_is_directory=True)
    assert save_artifact(tiny_artifact(schema, tokenizer, threshold=0.6), link) == link
    assert link.is_symlink() and load_artifact(real).threshold == 0.6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "real"]


def test_save_refuses_a_nan_threshold(schema, tokenizer, tmp_path: Path) -> None:
    with pytest.raises(FsreError, match="threshold"):
        save_artifact(tiny_artifact(schema, tokenizer, threshold=float("nan")), tmp_path / "m")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------- 2: tampered folders
def _edit_meta(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def tamper(directory: Path) -> None:
        meta = json.loads((directory / "fsre.json").read_text())
        change(meta)
        (directory / "fsre.json").write_text(json.dumps(meta))  # writes NaN/Infinity as Python reads them
    return tamper


class _Touch:
    """A pickle that, if ever unpickled, creates a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (self.path.touch, ())


def _pickle_weights(directory: Path) -> None:
    (directory / "model.safetensors").write_bytes(pickle.dumps({"x": _Touch(directory / "PWNED")}))


def _torch_save_weights(directory: Path) -> None:
    torch.save({"head.weight": torch.zeros(3, 64), "trap": _Touch(directory / "PWNED")},
               directory / "model.safetensors")


def _write(relative: str, text: str) -> Callable[[Path], None]:
    return lambda d: (d / relative).write_text(text)


def _remove(relative: str) -> Callable[[Path], None]:
    def tamper(directory: Path) -> None:
        path = directory / relative
        if path.is_dir():
            import shutil

            shutil.rmtree(path)
        else:
            path.unlink()
    return tamper


def _edit_encoder_config(**changes) -> Callable[[Path], None]:
    def tamper(directory: Path) -> None:
        path = directory / "encoder" / "config.json"
        config = json.loads(path.read_text())
        config.update(changes)
        path.write_text(json.dumps(config))
    return tamper


TAMPERINGS = {
    "meta not JSON": (_write("fsre.json", '{"format": 1, "relations": ['), "not valid JSON"),
    "meta a list": (_write("fsre.json", "[1, 2]"), "not a JSON object"),
    "meta missing": (_remove("fsre.json"), "no fsre.json"),
    "format wrong": (_edit_meta(lambda m: m.update(format=99)), "format 99"),
    "relations missing": (_edit_meta(lambda m: m.pop("relations")), "'relations'"),
    "relations shortened": (_edit_meta(lambda m: m.update(relations=["founded_by"])), "lists 1 relations but the classifier has 2"),
    "relations not names": (_edit_meta(lambda m: m.update(relations=[1, 2])), "'relations'"),
    "relations renamed": (_edit_meta(lambda m: m.update(relations=["founded_by", "lives_in"])), "differ"),
    "threshold text": (_edit_meta(lambda m: m.update(threshold="high")), "'threshold'"),
    "threshold NaN": (_edit_meta(lambda m: m.update(threshold=math.nan)), "'threshold'"),
    "threshold inf": (_edit_meta(lambda m: m.update(threshold=math.inf)), "'threshold'"),
    "threshold missing": (_edit_meta(lambda m: m.pop("threshold")), "'threshold'"),
    "schema missing": (_edit_meta(lambda m: m.pop("schema")), "'schema'"),
    "config not object": (_edit_meta(lambda m: m.update(config=[])), "'config'"),
    "max_length text": (_edit_meta(lambda m: m["config"].update(max_length="long")), "max_length"),
    "heldout scores NaN": (_edit_meta(lambda m: m["heldout"].update(scores=[math.nan])), "heldout.scores"),
    "weights missing": (_remove("model.safetensors"), "model.safetensors is missing"),
    "weights a pickle": (_pickle_weights, "not a valid safetensors file"),
    "weights torch.save": (_torch_save_weights, "not a valid safetensors file"),
    "weights truncated": (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:1000]),
                          "not a valid safetensors file"),
    "encoder config missing": (_remove("encoder/config.json"), "encoder/config.json is missing"),
    "encoder config not JSON": (_write("encoder/config.json", "{nope"), "encoder/config.json"),
    "encoder config unknown type": (_edit_encoder_config(model_type="no-such-model"), "encoder/config.json"),
    "encoder config wider": (_edit_encoder_config(hidden_size=64), "do not match"),
    "encoder config huge": (_edit_encoder_config(hidden_size=1 << 20, intermediate_size=1 << 22, num_attention_heads=2), "do not match"),
    "encoder config many layers": (_edit_encoder_config(num_hidden_layers=1_000_000), "does not match"),
    "tokenizer missing": (_remove("tokenizer"), "tokenizer/ is missing"),
    "tokenizer corrupt": (_write("tokenizer/tokenizer.json", "{ not json"), "tokenizer/"),
    "log corrupt": (_write("train_log.jsonl", '{"step": 1}\n{broken\n'), "train_log.jsonl line 2"),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_a_tampered_model_is_refused_with_one_line(name: str, saved: Path) -> None:
    tamper, expected = TAMPERINGS[name]
    tamper(saved)
    with pytest.raises(UsageError) as caught:
        load_artifact(saved)
    message = str(caught.value)
    assert message.startswith(f"{saved}: ") and expected in message and "\n" not in message, message
    assert not (saved / "PWNED").exists()  # nothing was unpickled


def test_a_tampered_model_is_refused_by_the_cli(saved: Path, tmp_path: Path) -> None:
    """Through `fsre extract --model`: exit 2, one line on stderr, no traceback."""
    _edit_meta(lambda m: m.update(threshold=math.nan))(saved)
    (tmp_path / "s.yaml").write_text(SCHEMA)
    doc = {"id": "d1", "text": "Amazon was founded by Jeff Bezos.",
           "entities": [{"start": 0, "end": 6, "type": "ORG"}, {"start": 22, "end": 32, "type": "PERSON"}]}
    (tmp_path / "docs.jsonl").write_text(json.dumps(doc) + "\n")
    env = {**os.environ, "PYTHONPATH": str(WORKTREE), "HF_HUB_OFFLINE": "1", "FSRE_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-m", "fsre_cli", "extract", str(tmp_path / "docs.jsonl"),
                          "--schema", str(tmp_path / "s.yaml"), "--model", str(saved), "--entities", "given"],
                         capture_output=True, text=True, env=env, timeout=50)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert f"{saved}: fsre.json: 'threshold'" in run.stderr


# ----------------------------------------------------------------- 3: concurrent saves
RACER = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from fsre_cli.tkre.artifact import load_artifact, save_artifact

    source, base, sync, me, rounds = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    artifact = load_artifact(source)

    def barrier(step):
        (sync / f"{step}-{me}").touch()
        deadline = time.time() + 30
        while len(list(sync.glob(f"{step}-*"))) < 2:
            if time.time() > deadline:
                sys.exit("the other racer never came")
            time.sleep(0.0005)

    for r in range(rounds):
        barrier(f"fresh{r}")
        save_artifact(artifact, base / f"fresh{r}")   # both write a new target
        barrier(f"shared{r}")
        save_artifact(artifact, base / "shared")      # both replace an existing model (after round 0)
""")


def test_two_processes_saving_the_same_model_both_succeed(saved: Path, tmp_path: Path) -> None:
    rounds = 6
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    base, sync = tmp_path / "out", tmp_path / "sync"
    base.mkdir()
    sync.mkdir()
    env = {**os.environ, "PYTHONPATH": str(WORKTREE), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    racers = [subprocess.Popen([sys.executable, str(script), str(saved), str(base), str(sync), str(i), str(rounds)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]
    results = [p.communicate(timeout=55) for p in racers]
    for process, (_, err) in zip(racers, results):
        assert process.returncode == 0, err[-2000:]
    expected = load_artifact(saved)
    for name in [f"fresh{r}" for r in range(rounds)] + ["shared"]:
        loaded = load_artifact(base / name)
        assert loaded.relations == expected.relations and torch.equal(_logits(loaded), _logits(expected))
    assert sorted(p.name for p in base.iterdir()) == sorted([f"fresh{r}" for r in range(rounds)] + ["shared"])


def test_old_leftovers_of_killed_runs_are_removed_fresh_ones_kept(schema, tokenizer, tmp_path: Path) -> None:
    old = [tmp_path / "model.partial", tmp_path / "model.partial-123-deadbeef", tmp_path / "model.old-123-deadbeef"]
    fresh = tmp_path / "model.partial-456-cafebabe"
    unrelated = tmp_path / "other.partial-1-2"
    for path in old + [fresh, unrelated]:
        path.mkdir()
        (path / "model.safetensors").write_bytes(b"half")
    two_days_ago = time.time() - 2 * 86400
    for path in old + [unrelated]:
        os.utime(path, (two_days_ago, two_days_ago))
    save_artifact(tiny_artifact(schema, tokenizer), tmp_path / "model")
    assert not any(p.exists() for p in old)
    assert fresh.exists() and unrelated.exists() and load_artifact(tmp_path / "model").threshold == 0.3


# ----------------------------------------------------------------- 4: the training log travels
def test_a_copy_of_a_loaded_model_keeps_its_training_log(schema, tokenizer, tmp_path: Path) -> None:
    log = [{"stage": "finetune", "epoch": 1, "loss": 0.5}, {"stage": "finetune", "epoch": 2, "loss": 0.25}]
    cached = save_artifact(tiny_artifact(schema, tokenizer, log=log), tmp_path / "cache" / "key")
    loaded = load_artifact(cached)
    assert loaded.log == log
    copy = save_artifact(loaded, tmp_path / "copy")
    lines = (copy / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == log
