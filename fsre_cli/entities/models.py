"""Stanza model management: where models live, downloading and listing them, what to say when they are missing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from fsre_cli.errors import FsreError, UsageError

ENV_STANZA_DIR = "FSRE_STANZA_DIR"

# Processors `fsre models download` fetches; Stanza adds mwt (and the NER model's
# pretrain/charlm dependencies) itself where the language needs them.
DOWNLOAD_PROCESSORS = "tokenize,ner"

# Enough for Stanza to build a pipeline of processor *variants* (the spaCy
# tokenizer) and of models given by path, without any downloaded package.
MINIMAL_RESOURCES: dict[str, Any] = {"en": {"lang_name": "English", "packages": {}, "tokenize": {"default": {}}}}


def write_minimal_resources(directory: str | Path) -> Path:
    """Write the minimal resources.json into `directory` and return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "resources.json"
    path.write_text(json.dumps(MINIMAL_RESOURCES), encoding="utf-8")
    return path


def resolve_stanza_dir(stanza_dir: str | os.PathLike[str] | None = None) -> str:
    """The Stanza model directory: the argument, else $FSRE_STANZA_DIR, else Stanza's own default."""
    if stanza_dir:
        return os.path.expanduser(os.fspath(stanza_dir))
    env = os.environ.get(ENV_STANZA_DIR)
    if env:
        return os.path.expanduser(env)
    from stanza.resources.common import DEFAULT_MODEL_DIR

    return DEFAULT_MODEL_DIR


def _dir_option(stanza_dir: str | None) -> str:
    return f" --stanza-dir {stanza_dir}" if stanza_dir else ""


def missing_models_message(lang: str, directory: str, detail: str, explicit_dir: str | None = None) -> str:
    """One sentence: what is missing and the exact fix."""
    return (
        f"Stanza models for language '{lang}' are not installed ({detail}): run "
        f"`fsre models download --lang {lang}{_dir_option(explicit_dir)}`, or point --stanza-dir DIR "
        f"(or {ENV_STANZA_DIR}) at a directory that has them. Offline, give the entities yourself: JSONL "
        "documents with `entities` and --entities given need no NER model."
    )


def ner_model_files(ner_model_path: str | None, lang: str, stanza_dir: str) -> list[tuple[str, int, int]] | None:
    """Path, size and modification time of every file the NER pipeline loads from (a
    re-downloaded or retrained model changes them), or None when there are none."""
    paths = [Path(ner_model_path)] if ner_model_path else []
    if not (ner_model_path and lang == "en"):  # else Stanza's tokenizer is loaded too
        root = Path(stanza_dir)
        lang_dir = root / lang
        if not (root / "resources.json").is_file() or not lang_dir.is_dir():
            return None
        paths += [root / "resources.json"] + sorted(p for p in lang_dir.rglob("*") if p.is_file())
    files = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            return None
        files.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns))
    return files


_DOWNLOAD_SCRIPT = r"""
import json, sys
lang, model_dir, processors, result_path, resources_url = sys.argv[1:6]
result = {"ok": True}
try:
    import stanza
    kwargs = {"resources_url": resources_url} if resources_url else {}
    stanza.download(lang, model_dir=model_dir, processors=processors, logging_level="INFO", **kwargs)
except Exception as exc:  # reported to the parent, which turns it into one clear message
    kind = type(exc).__name__
    try:
        import requests
        if isinstance(exc, requests.exceptions.RequestException):
            kind = "network"
    except ImportError:
        pass
    if type(exc).__name__ == "UnknownLanguageError":
        kind = "unknown-language"
    result = {"ok": False, "kind": kind, "error": str(exc)[:800]}
with open(result_path, "w", encoding="utf-8") as f:
    json.dump(result, f)
"""


def download_models(
    lang: str = "en",
    stanza_dir: str | None = None,
    timeout: float = 300.0,
    *,
    resources_url: str | None = None,
) -> list[dict[str, Any]]:
    """Download the Stanza models entity recognition needs, giving up after `timeout` seconds.

    Stanza's own download has no timeout and can hang on a dead network, so it
    runs in a child process that is killed when time runs out. Progress goes to
    stderr. `resources_url` selects a mirror of Stanza's resources. Returns the
    installed models (see `list_models`).
    """
    directory = resolve_stanza_dir(stanza_dir)
    with tempfile.TemporaryDirectory(prefix="fsre-download-") as tmp:
        result_path = Path(tmp) / "result.json"
        cmd = [sys.executable, "-c", _DOWNLOAD_SCRIPT, lang, directory, DOWNLOAD_PROCESSORS,
               str(result_path), resources_url or ""]
        try:
            # stdout is data-only in fsre: the child's stdout is captured, its stderr (progress) passes through
            subprocess.run(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise FsreError(
                f"downloading Stanza models for '{lang}' into {directory} did not finish within {timeout:g} s; "
                "check the network (HTTPS_PROXY) and retry with a longer --timeout, or copy an installed "
                f"model directory and use --stanza-dir DIR / {ENV_STANZA_DIR}"
            ) from None
        try:
            result = json.loads(result_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result = {"ok": False, "kind": "crash", "error": "the download process exited without a result"}
    if not result["ok"]:
        kind, error = result["kind"], result["error"]
        if kind == "unknown-language":
            raise UsageError(f"Stanza has no models for language '{lang}'") from None
        if kind == "network":
            reason = re.search(r"\[Errno -?\d+\][^'\")]*|Read timed out|Name or service not known", error)
            raise FsreError(
                f"cannot download Stanza models for '{lang}': the model server is unreachable "
                f"({reason.group(0).strip() if reason else error[:200]}); "
                f"check the network (HTTPS_PROXY), or copy an installed model directory and use "
                f"--stanza-dir DIR / {ENV_STANZA_DIR}"
            ) from None
        raise FsreError(f"downloading Stanza models for '{lang}' into {directory} failed: {kind}: {error}") from None
    return list_models(directory)


def list_models(stanza_dir: str | None = None) -> list[dict[str, Any]]:
    """Installed Stanza models (`DIR/LANG/PROCESSOR/PACKAGE.pt`): language, processor, package, path, size."""
    root = Path(resolve_stanza_dir(stanza_dir))
    models: list[dict[str, Any]] = []
    if not root.is_dir():
        return models
    for lang_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for proc_dir in sorted(p for p in lang_dir.iterdir() if p.is_dir()):
            for f in sorted(proc_dir.glob("*.pt")):
                models.append({
                    "language": lang_dir.name,
                    "processor": proc_dir.name,
                    "package": f.stem,
                    "path": str(f),
                    "size": f.stat().st_size,
                })
    return models
