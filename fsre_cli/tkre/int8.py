"""int8 CPU inference of the encoder through ONNX Runtime.

bf16 (torch autocast) is the faster choice where the CPU computes bfloat16 natively (AVX512-BF16,
AMX); int8 is for CPUs without it, where bf16 is emulated and slower than fp32. The encoder is
exported to ONNX with the legacy exporter from an eager-attention copy (so ONNX Runtime's BERT
optimizer can fuse Attention), optimized, and its weights quantized to int8 per channel.
ONNX files are protobuf, loaded without pickle.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import inspect
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch

from fsre_cli.errors import FsreError, ModelMissingError, UsageError

INT8_FILE = "encoder.int8.onnx"
_AXES = {0: "batch", 1: "seq"}


def require_onnxruntime() -> None:
    """A usage error saying how to install them when onnxruntime or onnx is missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise UsageError("--quantize int8 needs onnxruntime and onnx: pip install 'fsre[int8]'") from None


def cpu_only(device: str) -> str:
    """"cpu" for `device` auto or cpu; a usage error for cuda (int8 runs on ONNX Runtime's CPU)."""
    if device not in ("auto", "cpu"):
        raise UsageError("--quantize int8 runs on the CPU; use --device cpu (a GPU is faster without it)")
    return "cpu"


class _LastHidden(torch.nn.Module):
    """(input_ids, attention_mask) -> last_hidden_state, the signature that is exported."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _eager_copy(encoder: torch.nn.Module) -> torch.nn.Module:
    """An fp32 CPU eval copy of `encoder` with eager attention; the caller's module is untouched."""
    model = copy.deepcopy(encoder).to(device="cpu", dtype=torch.float32).eval()
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    else:
        model.config._attn_implementation = "eager"
    return model


@contextlib.contextmanager
def _quiet():
    """No exporter warnings and no ORT optimizer/quantizer logging on stderr."""
    loggers = [logging.getLogger(name) for name in ("onnxruntime", "onnx", "root")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def export_int8(encoder: torch.nn.Module, path: Path) -> Path:
    """Export `encoder` to an int8 ONNX file at `path` (written atomically). Returns `path`."""
    require_onnxruntime()
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = _eager_copy(encoder)
    config = model.config
    vocab = int(getattr(config, "vocab_size", 1000))
    input_ids = torch.randint(0, min(vocab, 1000), (2, 8), generator=torch.Generator().manual_seed(0))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = 0
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    try:
        fp32, opt, int8 = work / "fp32.onnx", work / "opt.onnx", work / "int8.onnx"
        with _quiet(), torch.no_grad():
            torch.onnx.export(
                _LastHidden(model).eval(), (input_ids, attention_mask), str(fp32),
                opset_version=17, **legacy,
                input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": _AXES, "attention_mask": _AXES, "last_hidden_state": _AXES},
            )
            optimized = optimize_model(
                str(fp32), model_type="bert",
                num_heads=int(config.num_attention_heads), hidden_size=int(config.hidden_size),
            )
            optimized.save_model_to_file(str(opt))
            quantize_dynamic(
                str(opt), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        os.replace(int8, path)
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        raise FsreError(f"cannot export the encoder to int8 at {path}: {(str(exc).splitlines() or [type(exc).__name__])[0]}"
                        " (int8 export supports BERT-family encoders; run without --quantize)") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


class Int8Encoder:
    """An int8 ONNX encoder: called like the torch one, returns last_hidden_state (float32).

    Each sequence runs alone and unpadded: dynamic quantization picks one activation scale per
    tensor, so in a padded batch a sequence's states would depend on the other sequences and on
    the padding (by up to 0.4 here). Alone, a pair's score depends on its own tokens only, as in
    torch's fixed-shape tiles. Padding positions of the result are zeros (never read)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        require_onnxruntime()
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelMissingError(f"int8 encoder file {self.path} is missing; run again to export it")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise UsageError(f"int8 encoder file {self.path} is not a valid ONNX model ({first[:200]}); delete it "
                             "and run again to export it anew") from None

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        ids = input_ids.detach().cpu().to(torch.int64)
        mask = attention_mask.detach().cpu().to(torch.int64)
        out: torch.Tensor | None = None
        done: dict[bytes, torch.Tensor] = {}  # fixed-shape tiles repeat rows: run each once
        for row in range(ids.size(0)):
            n = int(mask[row].sum())
            tokens = ids[row, :n]
            key = tokens.numpy().tobytes()
            if key not in done:
                (hidden,) = self.session.run(["last_hidden_state"], {"input_ids": tokens[None].numpy(),
                                                                     "attention_mask": mask[row, :n][None].numpy()})
                done[key] = torch.from_numpy(hidden[0]).float()
            if out is None:
                out = torch.zeros((ids.size(0), ids.size(1), done[key].size(-1)))
            out[row, :n] = done[key]
        return out if out is not None else torch.zeros((0, ids.size(1), 0))


def ensure_int8(encoder: torch.nn.Module, path: Path) -> Int8Encoder:
    """The int8 encoder at `path`, exported from `encoder` first if the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        export_int8(encoder, path)
    return Int8Encoder(path)


def weights_digest(encoder: torch.nn.Module) -> str:
    """A SHA-256 of the encoder's weights: names the int8 file of a model without a folder."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:24]


def int8_path(artifact) -> Path:
    """Where a model's int8 encoder lives: in its model folder when it has one that can be
    written (a folder's weights never change: a retrained model is a new folder), else in the
    model cache under a digest of the encoder's weights."""
    from fsre_cli.paths import cache_root

    directory = getattr(artifact, "directory", None)
    if directory is not None:
        inside = Path(directory) / INT8_FILE
        if inside.exists() or os.access(directory, os.W_OK):
            return inside
    return cache_root() / "int8" / weights_digest(artifact.classifier.encoder) / INT8_FILE


def load_for(artifact, log=None) -> Int8Encoder:
    """The int8 encoder of a trained model, exported on first use (a few seconds)."""
    require_onnxruntime()
    path = int8_path(artifact)
    if not path.exists() and log is not None:
        log.info(f"exporting the encoder to int8 once: {path}")
    return ensure_int8(artifact.classifier.encoder, path)
