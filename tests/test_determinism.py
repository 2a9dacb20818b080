"""A document's triples do not depend on the rest of the run: the same pair gets the same score
alone, beside other pairs, or padded in a batch of longer ones, for the trained scorer and the
prototype alike, and a document's records are the same alone and inside a larger input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsre_cli.documents import Document
from fsre_cli.entities import EntityRecognizer
from fsre_cli.pipeline import extract_triples
from fsre_cli.schema import load_schema
from fsre_cli.tkre.inference import tiles

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "schemas" / "org-people.yaml")


def _documents() -> list[Document]:
    from fsre_cli.inputs import parse_jsonl_document

    lines = (ROOT / "examples" / "org-people.jsonl").read_text().splitlines()
    return [parse_jsonl_document(line, f"d{i}") for i, line in enumerate(lines) if line.strip()]


def test_tiles_have_one_shape_each_and_cover_every_pair_once() -> None:
    lengths = [5, 17, 16, 40, 3, 33, 16, 18, 70]
    seen = []
    for idx, width in tiles(lengths, rows=4, step=16):
        assert len(idx) == 4 and width % 16 == 0
        assert all(lengths[i] <= width for i in idx)
        seen += list(dict.fromkeys(idx))
    assert sorted(seen) == list(range(len(lengths)))


@pytest.fixture(scope="module")
def scorers():
    """tkre over the bundled encoder with an untrained head (in bf16 where the CPU has it, the
    precision where batch effects were largest), and the prototype."""
    from fsre_cli.scorers import build
    from fsre_cli.scorers.tkre import TkreScorer
    from fsre_cli.tkre.artifact import Artifact
    from fsre_cli.tkre.encoder import load_masked_lm, load_tokenizer, native_bf16, resolve_encoder
    from fsre_cli.tkre.model import PairClassifier

    source = resolve_encoder(None)
    classifier = PairClassifier(load_masked_lm(source).base_model, len(SCHEMA.relations)).eval()
    precision = "bf16" if native_bf16("cpu") else "fp32"
    meta = {"relations": list(SCHEMA.relations), "threshold": 0.5,
            "config": {"max_length": 128, "precision": precision}}
    tkre = TkreScorer(Artifact(classifier, load_tokenizer(source), meta), batch_size=16)
    packed_meta = {**meta, "config": {**meta["config"], "packing": "sentence"}}
    packed = TkreScorer(Artifact(classifier, load_tokenizer(source), packed_meta), batch_size=16)
    assert packed.packing == "sentence"
    return {"tkre": tkre, "tkre-packed": packed,
            "prototype": build(SCHEMA, method="prototype", device="cpu", batch_size=16)}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["tkre", "tkre-packed", "prototype"])
def test_a_documents_triples_are_the_same_alone_and_in_a_larger_run(scorers, method: str) -> None:
    scorer = scorers[method]
    recognizer = EntityRecognizer(SCHEMA, entities="given")
    docs = _documents()
    target = docs[1]

    def records(documents, batch_pairs):
        out = []
        for doc, triples in extract_triples(recognizer.process(documents), SCHEMA, scorer, min_score=-1,
                                            batch_pairs=batch_pairs):
            if doc.id == target.id:
                out += [json.dumps(t.to_record()) + repr(t.score) for t in triples]
        return out

    alone = records([target], 512)
    assert alone
    crowd = [Document(f"other{i}", d.text, d.entities) for i in range(3) for d in docs if d.id != target.id]
    assert records(crowd[:2] + [target] + crowd[2:], 512) == alone  # other documents in its batch
    assert records(crowd + [target], 7) == alone  # cut into batches at other places
