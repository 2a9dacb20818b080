"""A tiny, real Stanza NER model trained offline in seconds.

No model hub is reachable on development and CI machines, yet the entity stage
must be exercised with a real Stanza pipeline. This module writes a few hundred
template sentences with PERSON / ORG / GPE names in Stanza's JSON NER format and
trains Stanza's own BiLSTM-CRF tagger on them (no pretrained embeddings, no
charlm), so tests, the throughput benchmark and offline demos share one recipe.
The model memorises its name lists; it is a stand-in for mechanics, not accuracy.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from fsre_cli.errors import FsreError

MODEL_NAME = "tiny_ner.pt"
LABELS = ("PERSON", "ORG", "GPE")

PERSONS = [
    "Alice Smith", "Bob Jones", "Maria Garcia", "John Miller", "Wei Chen", "Anna Petrova",
    "Carlos Mendes", "Fatima Khan", "Hiroshi Tanaka", "Olga Ivanova", "David Brown", "Chloé Dubois",
    "Ahmed Hassan", "Laura Rossi", "Peter Novak", "Sarah Connor", "Noah Williams", "Emma Johansson",
    "Ravi Patel", "José Álvarez",
]
ORGS = [
    "Acme Corp", "Globex", "Initech", "Umbrella Inc", "Stark Industries", "Wayne Enterprises",
    "Hooli", "Cyberdyne Systems", "Soylent", "Vandelay Industries", "Tyrell Corporation", "Aperture Labs",
    "Massive Dynamic", "Pied Piper",
]
GPES = [
    "Paris", "London", "Tokyo", "Berlin", "Canada", "New York", "São Paulo", "Madrid", "Nairobi",
    "Sydney", "Toronto", "Mumbai", "Oslo", "Lima", "Seoul", "Zürich",
]

# {P}erson, {O}rganisation, {G}eo-political entity; tokens are separated by spaces
TEMPLATES = [
    "{P} works for {O} in {G} .",
    "{O} hired {P} last year .",
    "{P} was born in {G} .",
    "{O} was founded by {P} in 1998 .",
    "{P} , the chief executive of {O} , lives in {G} .",
    "The headquarters of {O} are in {G} .",
    "{P} met {P} in {G} on Monday .",
    "According to {P} , {O} will open an office in {G} .",
    "{O} 's new office in {G} employs 300 people .",
    "In 2010 , {P} moved from {G} to {G} .",
    "{P} joined {O} after leaving {O} .",
    "Shares of {O} rose after {P} spoke in {G} .",
    "She said that {P} grew up in {G} .",
    "The mayor of {G} thanked {O} for the donation .",
    "{P} and {P} started {O} together .",
    "“ We are proud , ” said {P} of {O} .",
    "Reporters in {G} asked {P} about {O} .",
    "( {O} ) is based in {G} .",
]

_SLOTS = {"{P}": ("PERSON", PERSONS), "{O}": ("ORG", ORGS), "{G}": ("GPE", GPES)}


def generate_sentences(n: int, seed: int = 0) -> list[list[tuple[str, str]]]:
    """`n` template sentences as (token, BIO tag) lists; deterministic for a seed."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(n):
        sentence: list[tuple[str, str]] = []
        for word in rng.choice(TEMPLATES).split():
            if word in _SLOTS:
                label, names = _SLOTS[word]
                for i, part in enumerate(rng.choice(names).split()):
                    sentence.append((part, ("B-" if i == 0 else "I-") + label))
            else:
                sentence.append((word, "O"))
        sentences.append(sentence)
    return sentences


_NO_SPACE_BEFORE = {".", ",", "'s", ")", "”", "?", "!", ":", ";"}
_NO_SPACE_AFTER = {"(", "“"}


def detokenize(tokens: list[str]) -> str:
    """Plain text for generated tokens (`Paris .` -> `Paris.`), for benchmark documents."""
    out = ""
    for tok in tokens:
        if out and tok not in _NO_SPACE_BEFORE and out[-1] not in _NO_SPACE_AFTER:
            out += " "
        out += tok
    return out


def _write_stanza_json(path: Path, sentences: list[list[tuple[str, str]]]) -> None:
    data = [[{"text": tok, "ner": tag} for tok, tag in sent] for sent in sentences]
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def train_tiny_ner(
    out_dir: Path,
    *,
    max_steps: int = 100,
    seed: int = 1234,
    train_sentences: int = 400,
    timeout: float = 600.0,
) -> Path:
    """Train the tiny NER model into `out_dir` (plus a minimal resources.json); return the model path.

    Training runs in a subprocess with one torch/OpenMP thread: Stanza's trainer
    configures logging and global RNG state, which must not leak into the caller.
    """
    from fsre_cli.entities import write_minimal_resources

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_file, dev_file = out_dir / "train.json", out_dir / "dev.json"
    _write_stanza_json(train_file, generate_sentences(train_sentences, seed=seed))
    _write_stanza_json(dev_file, generate_sentences(40, seed=seed + 1))
    write_minimal_resources(out_dir)
    args = [
        "--mode", "train", "--cpu", "--no_pretrain", "--word_emb_dim", "50",
        "--train_file", str(train_file), "--eval_file", str(dev_file),
        "--max_steps", str(max_steps), "--optim", "adam", "--lr", "0.01",
        "--shorthand", "en_tiny", "--save_dir", str(out_dir), "--save_name", MODEL_NAME,
        # no charlm (default off); a smaller LSTM keeps training and inference fast
        "--hidden_dim", "128", "--char_hidden_dim", "64", "--char_emb_dim", "32",
        "--eval_interval", str(max_steps + 1),  # no dev evaluation: the final model is saved
        "--seed", str(seed),
    ]
    code = (
        "import sys, torch; torch.set_num_threads(1); "
        "from stanza.models import ner_tagger; ner_tagger.main(sys.argv[1:])"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            env=env, capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise FsreError(f"training the tiny Stanza NER model took longer than {timeout:g} s") from None
    model = out_dir / MODEL_NAME
    if proc.returncode != 0 or not model.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise FsreError(f"training the tiny Stanza NER model failed (exit {proc.returncode}):\n{tail}")
    return model


def recipe_hash(**kwargs) -> str:
    """Identifies everything that determines the tiny model: this file, the Stanza version, the options."""
    import stanza

    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(stanza.__version__.encode())
    digest.update(json.dumps(kwargs, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def cached_tiny_ner(cache_root: Path, **kwargs) -> Path:
    """The tiny model under `cache_root/tiny-ner-<recipe hash>/`, trained on first use.

    Trains into a temporary sibling and renames it into place, so concurrent
    runs never see a half-written model.
    """
    cache_root = Path(cache_root)
    target = cache_root / f"tiny-ner-{recipe_hash(**kwargs)}"
    model = target / MODEL_NAME
    if model.is_file() and (target / "resources.json").is_file():
        return model
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-ner-", dir=cache_root))
    try:
        train_tiny_ner(tmp, **kwargs)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race
            if not model.is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return model
