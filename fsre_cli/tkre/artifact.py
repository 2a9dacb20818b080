"""Model artifacts: a directory of safetensors weights and JSON metadata.

Loading never unpickles anything, so a model directory received from someone
else cannot run code. Layout:

    model.safetensors   encoder + classifier weights
    encoder/config.json the encoder's architecture (transformers config)
    tokenizer/          the tokenizer (tokenizer.json and friends)
    fsre.json           relations, threshold, schema hash, config, encoder, cache key
    train_log.jsonl     one line per training step/epoch
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path


from fsre_cli.errors import UsageError
from fsre_cli.paths import cache_root
from fsre_cli.schema import Schema
from fsre_cli.tkre.model import PairClassifier

FORMAT = 1


@dataclass
class Artifact:
    classifier: PairClassifier
    tokenizer: object
    meta: dict
    log: list[dict] = field(default_factory=list)

    @property
    def relations(self) -> list[str]:
        return list(self.meta["relations"])

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])


def cached_model_dir(key: str) -> Path:
    return cache_root() / "models" / key


def save_artifact(artifact: Artifact, directory: Path) -> Path:
    """Write to a temporary sibling and rename, so a killed run never leaves half a model."""
    from safetensors.torch import save_file

    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    state = {k: v.detach().cpu().contiguous() for k, v in artifact.classifier.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"))
    artifact.classifier.encoder.config.save_pretrained(tmp / "encoder")
    artifact.tokenizer.save_pretrained(tmp / "tokenizer")
    (tmp / "fsre.json").write_text(json.dumps({"format": FORMAT, **artifact.meta}, indent=2) + "\n")
    with (tmp / "train_log.jsonl").open("w") as fh:
        for entry in artifact.log:
            fh.write(json.dumps(entry) + "\n")
    if directory.exists():
        shutil.rmtree(directory)
    tmp.rename(directory)
    return directory


def load_artifact(directory: Path, device: str = "cpu") -> Artifact:
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from fsre_cli.tkre.encoder import _quiet_transformers

    _quiet_transformers()
    directory = Path(directory)
    meta_path = directory / "fsre.json"
    if not meta_path.exists():
        raise UsageError(f"{directory}: not an fsre model directory (no fsre.json)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise UsageError(f"{directory}: model format {meta.get('format')} is not supported (expected {FORMAT}); retrain")
    config = AutoConfig.from_pretrained(directory / "encoder")
    encoder = AutoModel.from_config(config, add_pooling_layer=False) if config.model_type == "bert" else AutoModel.from_config(config)
    classifier = PairClassifier(encoder, len(meta["relations"]))
    state = load_file(str(directory / "model.safetensors"))
    missing, unexpected = classifier.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise UsageError(f"{directory}: weights do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    classifier.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory / "tokenizer", use_fast=True)
    return Artifact(classifier, tokenizer, meta)


def relation_signature(schema: Schema) -> dict:
    """Each relation's allowed head and tail types: a model can serve a schema only if they match."""
    return {n: {"head": list(r.head_types), "tail": list(r.tail_types)} for n, r in schema.relations.items()}


def check_compatible(artifact: Artifact, schema: Schema, source: str) -> list[str]:
    """Refuse a model trained for other relations; return warnings for milder drift."""
    trained = artifact.meta["schema"]
    if trained["relations"] != relation_signature(schema):
        raise UsageError(
            f"{source} was trained for schema {trained['name']!r} with other relations or types "
            f"({', '.join(trained['relations'])}); train one for this schema: fsre train SCHEMA"
        )
    if trained["hash"] != schema.content_hash():
        return [f"{source} was trained on an earlier version of schema {schema.name!r} (examples changed); retrain to use them"]
    return []
