"""Model artifacts: a directory of safetensors weights and JSON metadata.

Loading never unpickles anything, so a model directory received from someone
else cannot run code; a tampered or damaged one is refused with a one-line
message naming the folder and what is wrong. Layout:

    model.safetensors   encoder + classifier weights
    encoder/config.json the encoder's architecture (transformers config)
    tokenizer/          the tokenizer (tokenizer.json and friends)
    fsre.json           relations, threshold, schema hash, config, encoder, cache key
    train_log.jsonl     one line per training step/epoch
    silver.jsonl        self-training's silver pairs (only a model trained with --self-train)

Saving writes a folder of its own next to the target (`NAME.partial-<pid>-<random>`) and
renames it into place, so a killed run never leaves half a model and concurrent runs never
share a half-written folder. When two runs save to the same new target at once, the first
rename wins and the other run keeps the winner's model (both are complete models for the
same inputs). Saving never deletes a folder that is not an fsre model.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from fsre_cli.errors import FsreError, UsageError
from fsre_cli.formats import FORMATS
from fsre_cli.paths import cache_root
from fsre_cli.schema import Schema
from fsre_cli.tkre.model import PairClassifier
from fsre_cli.tkre.packing import PACKINGS

FORMAT = FORMATS["model"].version


def model_format(meta: dict) -> int:
    """The format a model is written in: 2 for packed passes or a context-reading classifier,
    else 1 (what earlier fsre reads)."""
    config = meta.get("config")
    if not isinstance(config, dict):
        return 1
    return FORMAT if config.get("packing", "pair") != "pair" or config.get("pair_context") else 1
META_FILE = "fsre.json"
WEIGHTS_FILE = "model.safetensors"
LOG_FILE = "train_log.jsonl"
SILVER_FILE = "silver.jsonl"
# temporary folders of killed runs older than this are removed by the next save next to them
STALE_TEMP_SECONDS = 24 * 3600


@dataclass
class Artifact:
    classifier: PairClassifier
    tokenizer: object
    meta: dict
    log: list[dict] = field(default_factory=list)
    directory: Path | None = None  # the folder it was loaded from (derived files such as int8 go there)
    silver: list[dict] = field(default_factory=list)  # self-training's silver pairs (`tkre.silver` records)

    @property
    def relations(self) -> list[str]:
        return list(self.meta["relations"])

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])


def cached_model_dir(key: str) -> Path:
    return cache_root() / "models" / key


def relation_signature(schema: Schema) -> dict:
    """What a model's output layer depends on: each relation's name and argument types."""
    return {n: {"head": list(r.head_types), "tail": list(r.tail_types)} for n, r in schema.relations.items()}


def stored_format(directory: Path) -> object:
    """The format version a model folder says it was written in (None when it says nothing readable)."""
    try:
        meta = json.loads((Path(directory) / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta.get("format") if isinstance(meta, dict) else None


def is_model_dir(directory: Path) -> bool:
    return (Path(directory) / META_FILE).is_file()


def check_model_output(directory: Path) -> Path:
    """Refuse `directory` as a place to save a model unless it is absent, an empty folder or an
    fsre model (which is replaced): saving replaces the whole folder, and other files there
    would be lost. Cheap, so `fsre train -o` can call it before training."""
    directory = Path(directory)
    if not directory.exists() and not directory.is_symlink():
        return directory
    if not directory.is_dir():
        raise UsageError(f"{directory}: exists and is not a folder; give a new or empty folder for the model")
    if is_model_dir(directory):
        return directory
    try:
        empty = next(directory.iterdir(), None) is None
    except OSError as exc:
        raise UsageError(f"{directory}: cannot be read ({exc.strerror}); give another folder for the model") from None
    if not empty:
        raise UsageError(f"{directory}: not empty and not an fsre model (no {META_FILE}); "
                         "refusing to replace it; give a new or empty folder for the model")
    return directory


def save_artifact(artifact: Artifact, directory: Path) -> Path:
    """Write the model into a private temporary sibling and rename it into place. Replaces an
    fsre model already there; refuses any other non-empty folder (see `check_model_output`).
    If another process saves a model to the same new target meanwhile, theirs is kept."""
    from safetensors.torch import save_file

    given = check_model_output(Path(directory))
    problem = _meta_problem(artifact.meta, artifact.classifier.head.out_features - 1)
    if problem:
        raise FsreError(f"cannot save the model to {given}: {problem}")
    # a link to a model folder keeps pointing at it: the model is replaced where the link leads
    directory = given.resolve() if given.is_symlink() else given
    replace = is_model_dir(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(directory)
    tmp = _make_temp_dir(directory, "partial")
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in artifact.classifier.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_FILE))
        artifact.classifier.encoder.config.save_pretrained(tmp / "encoder")
        artifact.tokenizer.save_pretrained(tmp / "tokenizer")
        with (tmp / LOG_FILE).open("w") as fh:
            for entry in artifact.log:
                fh.write(json.dumps(entry) + "\n")
        if artifact.silver:
            with (tmp / SILVER_FILE).open("w", encoding="utf-8") as fh:
                for record in artifact.silver:
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        # written last: a folder holds fsre.json only once everything else is in it
        (tmp / META_FILE).write_text(json.dumps({"format": model_format(artifact.meta), **artifact.meta}, indent=2)
                                     + "\n")
        _install(tmp, directory, replace)
        artifact.directory = directory
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return given


def _make_temp_dir(directory: Path, kind: str) -> Path:
    """A new sibling folder that no other process uses, created with the usual permissions
    (unlike tempfile.mkdtemp's 0700, since it becomes the model folder)."""
    while True:
        tmp = directory.with_name(f"{directory.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            tmp.mkdir()
            return tmp
        except FileExistsError:
            continue


def _remove_stale_temps(directory: Path) -> None:
    """Remove temporary folders that killed runs left next to `directory` more than a day ago
    (a save takes seconds, so none of them is still being written)."""
    prefixes = (directory.name + ".partial", directory.name + ".old-")
    cutoff = time.time() - STALE_TEMP_SECONDS
    try:
        siblings = list(directory.parent.iterdir())
    except OSError:
        return
    for path in siblings:
        if not path.name.startswith(prefixes) or path.name == directory.name:
            continue
        try:
            if path.is_dir() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def _install(tmp: Path, directory: Path, replace: bool) -> None:
    """Rename `tmp` to `directory`. An existing fsre model there is moved aside first when
    `replace`; one that appeared meanwhile (another process won the race) is kept."""
    aside: list[Path] = []
    try:
        for _ in range(20):
            try:
                os.rename(tmp, directory)  # atomic; also replaces an empty folder
                return
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                    raise FsreError(f"cannot save the model to {directory}: {exc.strerror}") from None
            if not is_model_dir(directory):
                # check_model_output passed, so something else was put there meanwhile
                raise UsageError(f"{directory}: not empty and not an fsre model (no {META_FILE}); "
                                 "refusing to replace it; give a new or empty folder for the model")
            if not replace:
                return  # another process saved a model here first: keep theirs
            old = directory.with_name(f"{directory.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
            try:
                os.rename(directory, old)
                aside.append(old)
            except FileNotFoundError:
                pass  # another process moved it aside first
            replace = False  # our replacement is done; whatever lands there next is as new as ours
        raise FsreError(f"cannot save the model to {directory}: other processes keep writing there")
    finally:
        for old in aside:
            shutil.rmtree(old, ignore_errors=True)


def load_artifact(directory: Path, device: str = "cpu") -> Artifact:
    """Load a model folder, refusing (UsageError) one that is incomplete or tampered with:
    every file is checked before it is used, and weights are read only as safetensors."""
    from fsre_cli.tkre.encoder import _quiet_transformers

    _quiet_transformers()
    directory = Path(directory)

    def refuse(problem: str) -> UsageError:
        return UsageError(f"{directory}: {problem}")

    if not directory.is_dir():
        raise refuse("no such model folder" if not directory.exists() else "not a folder")
    meta = _read_meta(directory, refuse)
    weights = _read_weights(directory, refuse)
    head = weights.get("head.weight")
    if head is None or head.dim() != 2:
        raise refuse(f"{WEIGHTS_FILE} has no classifier head (head.weight); not an fsre model")
    problem = _meta_problem(meta, head.shape[0] - 1)
    if problem:
        raise refuse(f"{META_FILE}: {problem}")
    classifier = _build_classifier(directory, weights, len(meta["relations"]), refuse,
                                   context=bool(meta["config"].get("pair_context", False)))
    tokenizer = _load_tokenizer(directory, refuse)
    log = _read_log(directory, refuse)
    silver = _read_log(directory, refuse, SILVER_FILE)
    classifier.to(device).eval()
    return Artifact(classifier, tokenizer, meta, log, directory=directory, silver=silver)


def _read_meta(directory: Path, refuse) -> dict:
    path = directory / META_FILE
    if not path.is_file():
        raise refuse(f"not an fsre model folder (no {META_FILE})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise refuse(f"{META_FILE} cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise refuse(f"{META_FILE} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(meta, dict):
        raise refuse(f"{META_FILE} is not a JSON object")
    version = meta.get("format")
    if type(version) is not int or version not in (FORMAT, *FORMATS["model"].readable):
        raise refuse(f"model format {version!r} is not supported (expected {FORMAT}); retrain")
    if version != model_format(meta):
        raise refuse(f"model format {version} does not match the packing and classifier in its config")
    return meta


def _finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _meta_problem(meta: dict, head_relations: int) -> str | None:
    """What is wrong with a model's metadata for a classifier with `head_relations` outputs
    (NOTA excluded), or None: everything loading, scoring and `check_compatible` rely on."""
    relations = meta.get("relations")
    if not isinstance(relations, list) or not all(isinstance(r, str) and r for r in relations):
        return "'relations' must be a list of relation names"
    if len(set(relations)) != len(relations):
        return "'relations' names a relation twice"
    if len(relations) != head_relations:
        return f"'relations' lists {len(relations)} relations but the classifier has {head_relations}"
    threshold = meta.get("threshold")
    if not _finite_number(threshold) or not 0.0 <= threshold <= 1.0:
        return f"'threshold' must be a number from 0 to 1, not {threshold!r}"
    schema = meta.get("schema")
    if not (isinstance(schema, dict) and isinstance(schema.get("name"), str) and isinstance(schema.get("hash"), str)
            and isinstance(schema.get("relations"), dict)):
        return "'schema' must hold the schema's name, hash and relations"
    for name, types in schema["relations"].items():
        if not (isinstance(types, dict) and all(isinstance(types.get(k), list) for k in ("head", "tail"))):
            return f"'schema' relation {name!r} must list its head and tail types"
    if set(schema["relations"]) != set(relations):
        return "'relations' and the schema's relations differ"
    config = meta.get("config")
    if not isinstance(config, dict):
        return "'config' must be a JSON object"
    max_length = config.get("max_length", 128)
    if type(max_length) is not int or max_length < 1:
        return f"'config.max_length' must be a whole number of tokens, not {max_length!r}"
    if config.get("precision", "fp32") not in ("fp32", "bf16"):
        return f"'config.precision' must be fp32 or bf16, not {config.get('precision')!r}"
    if type(config.get("pair_context", False)) is not bool:
        return f"'config.pair_context' must be true or false, not {config.get('pair_context')!r}"
    if config.get("packing", "pair") not in PACKINGS:
        return f"'config.packing' must be one of {', '.join(PACKINGS)}, not {config.get('packing')!r}"
    heldout = meta.get("heldout", {})
    if not isinstance(heldout, dict):
        return "'heldout' must be a JSON object"
    scores = heldout.get("scores") or []
    if not isinstance(scores, list) or not all(_finite_number(s) and 0.0 <= s <= 1.0 for s in scores):
        return "'heldout.scores' must be a list of scores from 0 to 1"
    return None


def _read_weights(directory: Path, refuse) -> dict:
    """The weights, read only as safetensors: a pickle or torch.save file is refused, never run."""
    from safetensors.torch import load_file

    path = directory / WEIGHTS_FILE
    if not path.is_file():
        raise refuse(f"{WEIGHTS_FILE} is missing; the model is incomplete")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error type (and OSError) on a foreign file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise refuse(f"{WEIGHTS_FILE} is not a valid safetensors file ({first}); "
                     "fsre loads no other weight format (never pickles)") from None


def _build_classifier(directory: Path, weights: dict, num_relations: int, refuse,
                      context: bool = False) -> PairClassifier:
    """The classifier for `encoder/config.json`, checked against the weights' shapes on the
    meta device first, so a config that does not fit them allocates nothing."""
    import torch
    from transformers import AutoConfig, AutoModel

    config_path = directory / "encoder" / "config.json"
    if not config_path.is_file():
        raise refuse("encoder/config.json is missing; the model is incomplete")
    try:
        config = AutoConfig.from_pretrained(directory / "encoder", trust_remote_code=False)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError, JSON errors...
        raise refuse(f"encoder/config.json is not a usable encoder config ({_first_line(exc)})") from None
    layers = getattr(config, "num_hidden_layers", 0)
    if not isinstance(layers, int) or layers > len(weights):
        raise refuse(f"encoder/config.json does not match {WEIGHTS_FILE} ({layers!r} layers)")

    def build() -> PairClassifier:
        kwargs = {"add_pooling_layer": False} if config.model_type == "bert" else {}
        return PairClassifier(AutoModel.from_config(config, trust_remote_code=False, **kwargs), num_relations,
                              context=context)

    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in build().state_dict().items()}
    except Exception as exc:
        raise refuse(f"encoder/config.json is not a usable encoder config ({_first_line(exc)})") from None
    missing = [k for k in shapes if k not in weights and not k.endswith("position_ids")]
    unexpected = [k for k in weights if k not in shapes]
    wrong = [k for k in shapes if k in weights and tuple(weights[k].shape) != shapes[k]]
    if missing or unexpected or wrong:
        raise refuse(f"weights do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]}, "
                     f"wrong shape {wrong[:3]})")
    if any(not v.is_floating_point() for k, v in weights.items() if not k.endswith(("position_ids", "token_type_ids"))):
        raise refuse(f"{WEIGHTS_FILE} holds non-float weights")
    classifier = build()
    classifier.load_state_dict(weights, strict=False)
    return classifier


def _load_tokenizer(directory: Path, refuse):
    from transformers import AutoTokenizer

    path = directory / "tokenizer"
    if not path.is_dir():
        raise refuse("tokenizer/ is missing; the model is incomplete")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True, trust_remote_code=False)
    except Exception as exc:  # OSError, ValueError, the tokenizers library's own errors...
        raise refuse(f"tokenizer/ cannot be loaded ({_first_line(exc)})") from None
    if not getattr(tokenizer, "is_fast", False) or tokenizer.pad_token_id is None:
        raise refuse("tokenizer/ is not a fast tokenizer with a padding token")
    return tokenizer


def _read_log(directory: Path, refuse, name: str = LOG_FILE) -> list[dict]:
    """The training log (or another JSON-lines file of the folder), so that a copy of a cached
    model keeps it."""
    path = directory / name
    if not path.is_file():
        return []
    log = []
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                entry = json.loads(line)
                if not isinstance(entry, dict):
                    raise refuse(f"{name} line {number} is not a JSON object")
                log.append(entry)
    except (OSError, UnicodeDecodeError) as exc:
        raise refuse(f"{name} cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise refuse(f"{name} line {number} is not valid JSON ({exc.msg})") from None
    return log


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


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
