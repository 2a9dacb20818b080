"""Train time of `fsre train --corpus` against the number of corpus sentences (issue 15).

    python benchmarks/corpus_train_time.py --sizes 0,500,1000,2000 --threads 2

Re-DocRED's K = 8 schema (seed 0, the honest protocol, as `fsre bench redocred` builds it) trained
once per size, sequentially, with the default training config (head packing, bf16 where the CPU
has it): size 0 is training without a corpus. The corpus is drawn from every Re-DocRED dev
sentence (gold entities, no relations; the bench's `corpus=N` rows read only the held-out half,
which holds too few sentences for the larger sizes), sampled with the seed like
`--corpus-sentences` samples a user's corpus. The corpus stage is timed from the end of the
stage before it. Prints JSON: per size the sentences used, the corpus stage's steps and seconds,
and the total training seconds. No model is cached, so every size trains from scratch.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,500,1000,2000", help="comma-separated corpus sizes (0: no corpus)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from fsre_cli.bench.common import data_file
    from fsre_cli.bench.datasets import (REDOCRED_TEMPLATES, REDOCRED_TOP20, kshot_schema, load_redocred_sentences,
                                         redocred_descriptions)
    from fsre_cli.bench.labeled import split_documents, unlabelled_corpus
    from fsre_cli.corpus import sample_corpus
    from fsre_cli.tkre.config import TrainConfig
    from fsre_cli.tkre.train import train_model

    path = data_file(None, "redocred", "dev_revised.json")
    sentences = load_redocred_sentences(path, top_relations=20)
    descriptions = redocred_descriptions(path.parent.parent / "fewrel" / "pid2name.json", REDOCRED_TOP20)
    train, _ = split_documents(sentences, 0)
    schema = kshot_schema(train, 8, args.seed, descriptions, templates=REDOCRED_TEMPLATES,
                          name=f"redocred-8shot-s{args.seed}", types="examples", example_entities=True)
    pool = unlabelled_corpus(sentences)  # every dev sentence: this measures time, not quality
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        corpus = sample_corpus(pool, schema, size, args.seed) if size else ()
        stages: dict[str, list[float]] = {}  # stage -> [start, last seen, steps]
        last = [time.perf_counter()]

        def on_progress(stage: str, done: int, total: int) -> None:
            now = time.perf_counter()
            seen = stages.setdefault(stage, [last[0], now, 0])  # a stage starts where the one before ended
            seen[1], seen[2], last[0] = now, total, now

        started = last[0] = time.perf_counter()
        train_model(schema, None, TrainConfig(seed=args.seed), corpus=corpus, on_progress=on_progress)
        total = time.perf_counter() - started
        corpus_stage = stages.get("corpus")
        rows.append({"size": size, "sentences": len(corpus), "corpus_steps": corpus_stage[2] if corpus_stage else 0,
                     "corpus_seconds": round(corpus_stage[1] - corpus_stage[0], 1) if corpus_stage else 0.0,
                     "train_seconds": round(total, 1)})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"examples": len(schema.examples), "relations": len(schema.relations), "threads": args.threads,
                      "pool": len(pool), "machine": platform.processor() or platform.machine(), "rows": rows},
                     indent=2))


if __name__ == "__main__":
    main()
