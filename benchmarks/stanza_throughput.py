"""Throughput of the entity stage (real Stanza pipeline), as JSON on stdout.

    .venv/bin/python benchmarks/stanza_throughput.py                 # generated text, both modes
    .venv/bin/python benchmarks/stanza_throughput.py --text FILE     # your text (documents = paragraphs)

Modes: `ner` runs the tiny offline Stanza NER model (spaCy-backed tokenizer +
BiLSTM-CRF tagger, trained on first use and cached); `split` is the
given-entities path (sentence splitting only). A downloaded Stanza model is
far larger than the tiny one, so `ner` figures are an upper bound for it.
Reports the median sentences/s of several timed runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# run as a plain script from a checkout; the tiny offline NER recipe is test support, in tests/
for _path in (ROOT, ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


def generated_documents(n_sentences: int, per_doc: int, seed: int) -> list[str]:
    """Documents of `per_doc` generated sentences each (held-out seed, same name lists as training)."""
    from tiny_stanza import detokenize, generate_sentences

    sentences = [detokenize([tok for tok, _ in s]) for s in generate_sentences(n_sentences, seed=seed)]
    return [" ".join(sentences[i : i + per_doc]) for i in range(0, len(sentences), per_doc)]


def file_documents(path: Path) -> list[str]:
    """Paragraphs (blank-line separated) of a text file, one document each."""
    text = path.read_text(encoding="utf-8")
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def measure(recognizer, docs, runs: int) -> dict:
    """Warm up (loads the pipeline), then time `runs` full passes over the documents."""
    t0 = time.perf_counter()
    list(recognizer.process(docs[:1]))
    load_s = time.perf_counter() - t0
    seconds, sentences, mentions = [], 0, 0
    for _ in range(runs):
        t0 = time.perf_counter()
        out = list(recognizer.process(docs))
        seconds.append(time.perf_counter() - t0)
        sentences = sum(len(s) for _, s in out)
        mentions = sum(len(x.mentions) for _, s in out for x in s)
    rates = [sentences / s for s in seconds]
    return {
        "sentences": sentences,
        "mentions": mentions,
        "load_and_first_doc_s": round(load_s, 3),
        "seconds": [round(s, 4) for s in seconds],
        "sentences_per_s": round(statistics.median(rates), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", type=Path, help="a UTF-8 text file; paragraphs become documents")
    parser.add_argument("--sentences", type=int, default=400, help="generated sentences (without --text)")
    parser.add_argument("--per-doc", type=int, default=5, help="generated sentences per document")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32, help="documents per Stanza bulk call")
    parser.add_argument("--mode", choices=["ner", "split", "both"], default="both")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".fsre-cache" / "stanza",
                        help="where the tiny model is trained once and reused")
    args = parser.parse_args(argv)

    import stanza
    import torch

    torch.set_num_threads(args.threads)
    from fsre_cli.documents import Document
    from fsre_cli.entities import EntityRecognizer
    from fsre_cli.schema import parse_schema
    from tiny_stanza import cached_tiny_ner

    texts = file_documents(args.text) if args.text else generated_documents(args.sentences, args.per_doc, seed=7)
    schema = parse_schema(
        "name: bench\nentity_types:\n  PERSON: [PERSON]\n  ORG: [ORG]\n  PLACE: [GPE, LOC]\n"
        "relations:\n  works_for:\n    description: works for\n    head: PERSON\n    tail: ORG\n"
    )
    result: dict = {
        "benchmark": "stanza_throughput",
        "text": str(args.text) if args.text else f"generated ({args.sentences} sentences, seed 7)",
        "documents": len(texts),
        "characters": sum(len(t) for t in texts),
        "runs": args.runs,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "stanza": stanza.__version__,
        "torch": torch.__version__,
    }
    if args.mode in ("ner", "both"):
        t0 = time.perf_counter()
        model = cached_tiny_ner(args.cache_dir)
        result["model"] = str(model)
        result["model_ready_s"] = round(time.perf_counter() - t0, 2)
        rec = EntityRecognizer(schema, ner_model_path=model, entities="stanza", batch_size=args.batch_size)
        result["ner"] = measure(rec, [Document(f"d{i}", t) for i, t in enumerate(texts)], args.runs)
    if args.mode in ("split", "both"):
        rec = EntityRecognizer(schema, entities="given", batch_size=args.batch_size)
        result["split"] = measure(rec, [Document(f"d{i}", t, []) for i, t in enumerate(texts)], args.runs)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
