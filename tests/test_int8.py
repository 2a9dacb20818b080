"""int8 ONNX Runtime encoder: export, accuracy against fp32 torch, loading errors, reuse."""

from __future__ import annotations

import sys
import time

import onnx
import onnxruntime  # noqa: F401  (CI installs it: a missing install must fail, not skip)
import pytest
import torch

from fsre_cli.errors import FsreError, ModelMissingError, UsageError
from fsre_cli.tkre import int8
from fsre_cli.tkre.encoder import load_masked_lm, load_tokenizer, resolve_encoder
from fsre_cli.tkre.int8 import INT8_FILE, Int8Encoder, ensure_int8, export_int8, require_onnxruntime

torch.set_num_threads(1)

SENTENCES = [
    "Marie Curie was born in Warsaw.",
    "Apple Inc. acquired the startup for two billion dollars in 2019, according to Reuters.",
    "He works at Google.",
    "The Treaty of Versailles was signed in 1919 by Germany and the Allied Powers.",
]


@pytest.fixture(scope="module")
def encoder():
    return load_masked_lm(resolve_encoder(None)).base_model.eval()


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_encoder(None))


@pytest.fixture(scope="module")
def exported(encoder, tmp_path_factory):
    """(path, export seconds, attn implementation before, state_dict before) of one export."""
    before_attn = encoder.config._attn_implementation
    before_state = {k: v.clone() for k, v in encoder.state_dict().items()}
    path = tmp_path_factory.mktemp("int8") / INT8_FILE
    start = time.perf_counter()
    assert export_int8(encoder, path) == path
    seconds = time.perf_counter() - start
    print(f"\nint8 export: {seconds:.1f} s")
    return path, seconds, before_attn, before_state


@pytest.mark.slow
def test_export_writes_onnx_protobuf_and_leaves_encoder_alone(encoder, exported):
    path, _, before_attn, before_state = exported
    assert sorted(p.name for p in path.parent.iterdir()) == [INT8_FILE]  # no temp files left
    head = path.read_bytes()[:2]
    assert head[:1] != b"\x80" and head != b"PK"  # neither a pickle nor a torch zip
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in model.graph.output] == ["last_hidden_state"]
    ops = {n.op_type for n in model.graph.node}
    assert "QAttention" in ops and "MatMulInteger" in ops  # fused attention, int8 weights
    assert encoder.config._attn_implementation == before_attn
    state = encoder.state_dict()
    assert state.keys() == before_state.keys()
    assert all(torch.equal(state[k], v) for k, v in before_state.items())
    assert all(p.dtype == torch.float32 for p in encoder.parameters())


@pytest.mark.slow
def test_int8_matches_fp32_on_real_tokens(encoder, tokenizer, exported):
    path, _, _, _ = exported
    q = Int8Encoder(path)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = encoder(**batch).last_hidden_state
    hidden = q(batch["input_ids"], batch["attention_mask"])
    assert hidden.shape == ref.shape and hidden.dtype == ref.dtype == torch.float32
    real = batch["attention_mask"].bool()
    cos = torch.nn.functional.cosine_similarity(hidden[real], ref[real], dim=-1)
    print(f"\nint8 vs fp32 cosine at real tokens: mean {cos.mean():.4f}, min {cos.min():.4f}")
    assert cos.mean().item() >= 0.95
    # the same input gives bit-identical output
    assert torch.equal(q(batch["input_ids"], batch["attention_mask"]), hidden)


@pytest.mark.slow
def test_a_rows_states_do_not_depend_on_its_batch(tokenizer, exported):
    """Dynamic quantization scales activations per tensor, so a padded batch would make a row
    depend on the others (by up to 0.4); each row runs alone, unpadded, and equals itself alone."""
    q = Int8Encoder(exported[0])
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    hidden = q(batch["input_ids"], batch["attention_mask"])
    for i, sentence in enumerate(SENTENCES):
        one = tokenizer([sentence], return_tensors="pt")
        n = one["input_ids"].shape[1]
        assert torch.equal(q(one["input_ids"], one["attention_mask"])[0], hidden[i, :n])
        assert torch.all(hidden[i, n:] == 0)  # padding positions: never read


def test_missing_file_names_it(tmp_path):
    path = tmp_path / INT8_FILE
    with pytest.raises(ModelMissingError, match=INT8_FILE):
        Int8Encoder(path)


def test_garbage_file_names_it(tmp_path):
    path = tmp_path / INT8_FILE
    path.write_bytes(b"\x80\x04not an onnx model at all" * 10)
    with pytest.raises(UsageError, match=INT8_FILE):
        Int8Encoder(path)


def test_failed_export_leaves_nothing_behind(encoder, tmp_path, monkeypatch):
    def broken_export(module, args, f, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(torch.onnx, "export", broken_export)
    with pytest.raises(FsreError, match="cannot export the encoder to int8 .*exporter broke"):
        export_int8(encoder, tmp_path / INT8_FILE)
    assert list(tmp_path.iterdir()) == []


def test_require_onnxruntime_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(UsageError, match=r"pip install 'fsre\[int8\]'"):
        require_onnxruntime()


@pytest.mark.slow
def test_ensure_int8_reuses_existing_file(encoder, tmp_path, monkeypatch):
    path = tmp_path / "cache" / INT8_FILE
    first = ensure_int8(encoder, path)
    assert isinstance(first, Int8Encoder) and path.is_file()
    mtime = path.stat().st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(int8, "export_int8", no_export)
    second = ensure_int8(encoder, path)
    assert path.stat().st_mtime_ns == mtime
    ids = torch.tensor([[101, 7592, 2088, 102]])
    mask = torch.ones_like(ids)
    assert torch.equal(first(ids, mask), second(ids, mask))


@pytest.fixture(scope="module")
def shipped_packed_model():
    """A quick packed model of the shipped schema (training in packed mode, end to end)."""
    from pathlib import Path

    from fsre_cli.schema import load_schema
    from fsre_cli.tkre.config import TrainConfig
    from fsre_cli.tkre.train import train_model

    root = Path(__file__).resolve().parents[1]
    schema = load_schema(root / "schemas" / "org-people.yaml")
    config = TrainConfig(mslm_epochs=1, scl_epochs=1, epochs=4, min_epochs=2, patience=2, packing="sentence",
                         use_synthetic=False, precision="fp32")
    return schema, train_model(schema, None, config).artifact, root / "examples" / "org-people.jsonl"


@pytest.mark.slow
def test_int8_and_torch_agree_on_the_shipped_example(shipped_packed_model, tmp_path, monkeypatch):
    """Tolerance on a quick model (its scores crowd the threshold; BENCHMARKS.md measures trained
    ones): the same best relation for at least 95% of the pairs, a median best-score change under
    0.02, a threshold decision changes only for pairs within 0.05 of the threshold, and the records'
    offsets are the same either way."""
    from fsre_cli.entities import EntityRecognizer
    from fsre_cli.inputs import parse_jsonl_document
    from fsre_cli.pipeline import extract_triples
    from fsre_cli.scorers.tkre import TkreScorer

    monkeypatch.setenv("FSRE_CACHE_DIR", str(tmp_path / "cache"))
    schema, artifact, docs_path = shipped_packed_model
    assert artifact.meta["config"]["packing"] == "sentence" and artifact.meta["heldout"]["instances"] > 0
    docs = [parse_jsonl_document(line, f"d{i}") for i, line in enumerate(docs_path.read_text().splitlines())
            if line.strip()]
    recognizer = EntityRecognizer(schema, entities="given")

    def records(scorer):
        out = {}
        for doc, triples in extract_triples(recognizer.process(docs), schema, scorer, min_score=0):
            for t in triples:
                out[(doc.id, t.head.start, t.head.end, t.tail.start, t.tail.end)] = (t.relation, t.score)
        return out

    torch_scorer = TkreScorer(artifact)
    int8_scorer = TkreScorer(artifact, quantize="int8")
    assert int8_scorer.encode is not None and (tmp_path / "cache" / "int8").is_dir()  # exported beside the key
    reference, quantized = records(torch_scorer), records(int8_scorer)
    assert reference.keys() == quantized.keys() and len(reference) > 20  # every pair, same offsets
    same = sum(reference[k][0] == quantized[k][0] for k in reference) / len(reference)
    diffs = sorted(abs(reference[k][1] - quantized[k][1]) for k in reference)
    median = diffs[len(diffs) // 2]
    flipped = [k for k in reference
               if (reference[k][1] >= torch_scorer.threshold) != (quantized[k][1] >= torch_scorer.threshold)]
    margin = max((abs(reference[k][1] - torch_scorer.threshold) for k in flipped), default=0.0)
    print(f"\nint8 vs torch on the shipped example: {100 * same:.1f}% same relation, |score diff| median "
          f"{median:.4f}, max {diffs[-1]:.4f}; {len(flipped)} of {len(reference)} threshold decisions change, "
          f"all within {margin:.4f} of the threshold")
    assert same >= 0.95 and median < 0.02
    # only pairs near the threshold can change side
    assert margin < 0.05


def test_a_model_without_a_folder_keeps_its_int8_file_under_its_weights(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from fsre_cli.tkre.int8 import int8_path

    monkeypatch.setenv("FSRE_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
    unsaved = SimpleNamespace(directory=None, meta={}, classifier=SimpleNamespace(encoder=a))
    other = SimpleNamespace(directory=None, meta={}, classifier=SimpleNamespace(encoder=b))
    path = int8_path(unsaved)
    assert path.name == INT8_FILE and path.is_relative_to(tmp_path / "cache" / "int8")
    assert path != int8_path(other) and path == int8_path(unsaved)  # other weights, other file
    saved = SimpleNamespace(directory=tmp_path, meta={}, classifier=SimpleNamespace(encoder=a))
    assert int8_path(saved) == tmp_path / INT8_FILE  # a model folder holds its own
