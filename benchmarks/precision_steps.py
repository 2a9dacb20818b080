"""Fine-tuning step and scoring batch time in fp32 and bf16 on this machine, as JSON on stdout.

    .venv/bin/python benchmarks/precision_steps.py                  # CrossRE science K=8 batches, 1 thread
    .venv/bin/python benchmarks/precision_steps.py --steps 30 --threads 2

The batches are the real marked pairs of the 17-relation CrossRE science 8-shot
schema (the one `fsre bench speed` trains on), 16 per training step and 64 per
scoring batch, as `fsre train` and `fsre extract` run them. fp32 and bf16 steps
are interleaved and medians reported, so machine noise hits both alike; the
ratio is what `--precision auto` buys where the hardware has bf16. A whole
training's time and the quality of both precisions are in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per precision (after 2 warm-up steps)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=None, help="data folder (default: $FSRE_DATA, else ../shared/data)")
    args = parser.parse_args()

    import torch

    from fsre_cli.bench.common import data_file, environment
    from fsre_cli.bench.datasets import CROSSRE_DESCRIPTIONS, CROSSRE_TEMPLATES, kshot_schema, load_crossre
    from fsre_cli.tkre.data import build_instances
    from fsre_cli.tkre.encoder import autocast, load_masked_lm, load_tokenizer, native_bf16, resolve_encoder
    from fsre_cli.tkre.markers import mark_pairs
    from fsre_cli.tkre.model import PairClassifier, collate

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    schema = kshot_schema(load_crossre(data_file(args.data, "crossre", "science-train.json")), 8, 0,
                          CROSSRE_DESCRIPTIONS, templates=CROSSRE_TEMPLATES, name="crossre-science-8shot")
    source = resolve_encoder(None)
    tokenizer = load_tokenizer(source)
    classifier = PairClassifier(load_masked_lm(source).base_model, len(schema.relations))
    instances = build_instances(list(schema.examples), schema, seed=0)
    marked = mark_pairs([i.pair for i in instances], tokenizer, 128)
    labels = torch.tensor([list(schema.relations).index(i.label) + 1 if i.label else 0 for i in instances])
    rng = random.Random(0)
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=3e-5)

    def batch(size: int):
        idx = rng.sample(range(len(marked)), size)
        return collate([marked[i] for i in idx], tokenizer.pad_token_id), labels[idx]

    def inputs(b):
        return (b["input_ids"], b["attention_mask"], b["head_index"], b["tail_index"])

    def train_step(precision: str) -> float:
        b, y = batch(16)
        classifier.train()
        start = time.perf_counter()
        with autocast(precision, "cpu"):
            logits = classifier(*inputs(b))
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    @torch.inference_mode()
    def score_batch(precision: str) -> float:
        b, _ = batch(64)
        classifier.eval()
        start = time.perf_counter()
        with autocast(precision, "cpu"):
            classifier(*inputs(b)).float().softmax(-1)
        return time.perf_counter() - start

    result: dict = {"schema": schema.name, "pairs": len(marked), "threads": args.threads, "steps": args.steps,
                    "native_bf16": native_bf16("cpu")}
    for name, fn in (("train_step_16", train_step), ("score_batch_64", score_batch)):
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for _ in range(2):  # warm-up
            fn("fp32"), fn("bf16")
        for _ in range(args.steps):
            for precision in ("fp32", "bf16"):
                times[precision].append(fn(precision))
        med = {p: statistics.median(t) for p, t in times.items()}
        result[name] = {"fp32_seconds": round(med["fp32"], 4), "bf16_seconds": round(med["bf16"], 4),
                        "speedup": round(med["fp32"] / med["bf16"], 2)}
        print(f"{name}: fp32 {med['fp32']:.3f}s, bf16 {med['bf16']:.3f}s, speed-up {med['fp32'] / med['bf16']:.2f}x",
              file=sys.stderr)
    result["environment"] = environment("cpu")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
