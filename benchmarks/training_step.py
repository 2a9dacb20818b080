"""Fine-tuning step time with the model's SDPA or eager attention, and foreach or fused AdamW.

    python benchmarks/training_step.py --threads 2 --rounds 3

One epoch of fine-tuning steps (CrossRE science, K = 8, seed 0, the head packing, bf16 where
the CPU has it, dropout on as in training) per setting, the four settings interleaved in each
round; medians of the rounds. Every setting starts from the same weights, so each times the
same batches. What `fsre train` uses on a CPU is eager attention and fused AdamW
(`tkre.encoder.training_attention`, `tkre.encoder.adamw`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import random
import statistics
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--packed-batch", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from fsre_cli.bench.common import data_file
    from fsre_cli.bench.datasets import CROSSRE_DESCRIPTIONS, CROSSRE_TEMPLATES, kshot_schema, load_crossre
    from fsre_cli.tkre.config import TrainConfig
    from fsre_cli.tkre.data import build_instances, split_heldout
    from fsre_cli.tkre.encoder import (autocast, load_masked_lm, load_tokenizer, pick_precision, resolve_encoder,
                                       training_attention)
    from fsre_cli.tkre.model import PairClassifier, collate, length_grouped_batches, pair_reads
    from fsre_cli.tkre.packing import encode_pairs
    from fsre_cli.tkre.train import excluded_ids, label_ids, pair_loss, training_examples

    schema = kshot_schema(load_crossre(data_file(None, "crossre", "science-train.json")), 8, 0, CROSSRE_DESCRIPTIONS,
                          templates=CROSSRE_TEMPLATES, name="crossre-science-8shot")
    config = TrainConfig(packing="head")
    precision = pick_precision("auto", "cpu")
    source = resolve_encoder(None)
    tokenizer = load_tokenizer(source)
    base = PairClassifier(load_masked_lm(source).base_model, len(schema.relations))
    examples = training_examples(schema, None, config)
    train, _ = split_heldout(build_instances(examples, schema, seed=0, negatives_per_example=None), 0.2, 0)
    encoded = encode_pairs([i.pair for i in train], tokenizer, config.max_length, "head")
    labels, excluded = torch.tensor(label_ids(train, schema)), torch.tensor(excluded_ids(train, schema))
    batches = list(length_grouped_batches(encoded.lengths, args.packed_batch, random.Random(0)))

    def epoch(eager: bool, fused: bool) -> float:
        model = copy.deepcopy(base).train()
        optimizer = torch.optim.AdamW([{"params": model.encoder.parameters(), "lr": 3e-5},
                                       {"params": model.head.parameters(), "lr": 1e-3}], lr=3e-5, fused=fused)
        start = time.perf_counter()
        with training_attention(model.encoder, "cpu") if eager else contextlib.nullcontext():
            for idx in batches:
                batch = collate([encoded.sequences[i] for i in idx], tokenizer.pad_token_id)
                read, where = pair_reads(encoded, idx)
                with autocast(precision, "cpu"):
                    logits = model(batch["input_ids"], batch["attention_mask"], where["head_index"],
                                   where["tail_index"], where["rows"])
                loss = pair_loss(logits, labels[read], excluded[read])
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
        return time.perf_counter() - start

    settings = [("sdpa", False), ("sdpa", True), ("eager", False), ("eager", True)]
    times: dict[str, list[float]] = {f"{a}+{'fused' if f else 'foreach'}": [] for a, f in settings}
    epoch(True, True)  # warm-up: first-call allocations and kernel selection
    for _ in range(args.rounds):
        for attention, fused in settings:
            times[f"{attention}+{'fused' if fused else 'foreach'}"].append(epoch(attention == "eager", fused))
    medians = {k: round(statistics.median(v), 2) for k, v in times.items()}
    reference = medians["sdpa+foreach"]
    print(json.dumps({"steps_per_epoch": len(batches), "passes": len(encoded.sequences), "precision": precision,
                      "threads": args.threads, "rounds": args.rounds, "epoch_seconds": medians,
                      "speedup_over_sdpa_foreach": {k: round(reference / v, 2) for k, v in medians.items()}},
                     indent=2))


if __name__ == "__main__":
    main()
