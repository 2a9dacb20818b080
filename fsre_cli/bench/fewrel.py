"""FewRel benchmarks: N-way K-shot prototype episodes, and the TKRE K-shot classification protocol.

Episodes: every instance of the file is embedded ONCE with the bare encoder (`PairEmbedder`,
typed markers, [head; tail] marker states, L2-normalised); an episode is then a few tensor
operations: class prototype = normalised mean of its K support vectors, query -> the prototype
with the highest cosine similarity. Accuracy is averaged over episodes per seed, then mean ± std
over seeds (the seed only changes which episodes are drawn: the encoder is not trained).

TKRE protocol (`tkre_k`): per seed and relation, a fixed random order of its instances gives
`test_per_relation` test instances and, after them, the K training examples (so K=8 ⊂ K=16 and
the test set is the same for every K). All relations form one schema (type ENTITY on both
slots); `train_model` trains on it and each test instance is classified among all relations by
the arg-max (`Prediction.best`, no NOTA). The prototype scorer is scored on the same split.

    from fsre_cli.bench.fewrel import run_fewrel
    result = run_fewrel("val_wiki.json", settings=[(5, 1)], episodes=100, seeds=[0])
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from fsre_cli.bench.common import Stopwatch, aggregate, environment, progress_lines
from fsre_cli.console import NULL_LOG, Log
from fsre_cli.bench.datasets import FEWREL_ENTITY_TYPE, Instance, load_fewrel, redocred_descriptions, sample_episodes
from fsre_cli.documents import Candidate, Mention, Sentence
from fsre_cli.schema import Example, Relation, Schema
from fsre_cli.tkre.markers import PairSpec


def instance_pair(inst: Instance) -> PairSpec:
    """The marker input of a FewRel instance."""
    return PairSpec(inst.text, inst.head.start, inst.head.end, inst.head.type,
                    inst.tail.start, inst.tail.end, inst.tail.type)


def instance_candidate(inst: Instance, relations: Sequence[str], doc_id: str = "fewrel") -> Candidate:
    """A FewRel instance as a pipeline candidate (one sentence, gold head and tail)."""
    sentence = Sentence(doc_id, 0, 0, len(inst.text), inst.text)
    head = Mention(inst.head.start, inst.head.end, inst.head.type, inst.head.text, inst.head.type)
    tail = Mention(inst.tail.start, inst.tail.end, inst.tail.type, inst.tail.text, inst.tail.type)
    sentence.mentions = [head, tail]
    return Candidate(sentence, head, tail, tuple(relations))


class EmbeddingCache:
    """Pair embeddings of every instance of a FewRel file, computed once per run."""

    def __init__(self, data: dict[str, list[Instance]], embedder) -> None:
        self.data = data
        flat = [inst for rel in sorted(data) for inst in data[rel]]
        self.row = {id(inst): i for i, inst in enumerate(flat)}
        start = time.perf_counter()
        self.matrix = embedder.embed([instance_pair(i) for i in flat])
        self.seconds = time.perf_counter() - start
        self.count = len(flat)

    def vectors(self, instances: Sequence[Instance]) -> torch.Tensor:
        return self.matrix[[self.row[id(i)] for i in instances]]


def prototypes(vectors_by_class: Sequence[torch.Tensor]) -> torch.Tensor:
    """Normalised class means, one row per class."""
    return torch.nn.functional.normalize(torch.stack([v.mean(0) for v in vectors_by_class]), dim=-1)


def episode_accuracies(episodes, vectors: Callable[[Sequence[Instance]], torch.Tensor]) -> list[float]:
    """Prototype accuracy of each episode (cosine similarity, arg-max, NOTA queries never right)."""
    out = []
    for ep in episodes:
        protos = prototypes([vectors(s) for s in ep.support])
        pred = (vectors(ep.query) @ protos.T).argmax(dim=1).tolist()
        out.append(sum(ep.relations[p] == g for p, g in zip(pred, ep.labels)) / len(ep.labels))
    return out


def run_episodes(cache: EmbeddingCache, settings: Sequence[tuple[int, int]], episodes: int, n_query: int,
                 seeds: Sequence[int], log: Log = NULL_LOG) -> list[dict[str, Any]]:
    """One row per N-way K-shot setting: accuracy mean ± std over seeds, per-seed detail."""
    rows = []
    for n, k in settings:
        per_seed = []
        for seed in seeds:
            eps = sample_episodes(cache.data, n, k, n_query, episodes, seed)
            accs = episode_accuracies(eps, cache.vectors)
            mean = sum(accs) / len(accs)
            sd = (sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) ** 0.5 if len(accs) > 1 else 0.0
            per_seed.append({"seed": seed, "accuracy": round(mean, 6),
                             "ci95": round(1.96 * sd / len(accs) ** 0.5, 6), "episodes": len(accs)})
            log.debug(f"  {n}-way {k}-shot seed {seed}: {100 * mean:.2f}")
        rows.append({"setting": f"{n}-{k}", "n_way": n, "k_shot": k, "query": n_query,
                     "accuracy": aggregate([p["accuracy"] for p in per_seed]), "per_seed": per_seed})
    return rows


def kshot_split(data: dict[str, list[Instance]], k: int, test_per_relation: int,
                seed: int) -> tuple[dict[str, list[Instance]], dict[str, list[Instance]]]:
    """Per relation: `test_per_relation` test instances, then `k` training ones (nested over k)."""
    train, test = {}, {}
    for rel in sorted(data):
        order = list(range(len(data[rel])))
        random.Random(f"fewrel-split/{seed}/{rel}").shuffle(order)
        if len(order) < test_per_relation + k:
            raise ValueError(f"relation {rel} has {len(order)} instances; {test_per_relation} + {k} needed")
        test[rel] = [data[rel][i] for i in order[:test_per_relation]]
        train[rel] = [data[rel][i] for i in order[test_per_relation:test_per_relation + k]]
    return train, test


def fewrel_schema(train: dict[str, list[Instance]], descriptions: dict[str, str], name: str) -> Schema:
    """A schema with one relation per FewRel pid, type ENTITY on both slots, `train` as examples."""
    t = (FEWREL_ENTITY_TYPE,)
    relations = {}
    for rel, insts in train.items():
        relations[rel] = Relation(rel, descriptions.get(rel, ""), t, t, None,
                                  [Example(rel, i.text, i.head, i.tail, source="kshot") for i in insts])
    return Schema(name=name, language="en", encoder=None, entity_types={FEWREL_ENTITY_TYPE: t},
                  relations=relations, description=name)


def train_config(encoder: str | None, seed: int, quick: bool, **overrides: Any):
    """The benchmark's TrainConfig: the published defaults, or a few epochs with `quick` (CI)."""
    from fsre_cli.tkre.config import TrainConfig

    knobs: dict[str, Any] = {"encoder": encoder, "seed": seed, "use_synthetic": False}
    if quick:
        knobs.update(mslm_epochs=1, scl_epochs=1, epochs=3, min_epochs=1, patience=2)
    knobs.update(overrides)
    return TrainConfig(**knobs)


def run_tkre_protocol(cache: EmbeddingCache, ks: Sequence[int], seeds: Sequence[int], *, test_per_relation: int,
                      descriptions: dict[str, str], encoder: str | None, device: str, batch_size: int,
                      quick: bool, precision: str = "auto", log: Log = NULL_LOG) -> list[dict[str, Any]]:
    """TKRE's K-shot protocol on FewRel relations: all-relation classification accuracy (no NOTA)."""
    from fsre_cli.scorers import build
    from fsre_cli.tkre.train import train_model

    rows = []
    for k in ks:
        per_seed = []
        for seed in seeds:
            train, test = kshot_split(cache.data, k, test_per_relation, seed)
            rels = sorted(train)
            schema = fewrel_schema(train, descriptions, f"fewrel-{len(rels)}way-{k}shot-s{seed}")
            # prototype on the same split, from the cached embeddings
            protos = prototypes([cache.vectors(train[r]) for r in rels])
            test_insts = [i for r in rels for i in test[r]]
            gold = [i.relation for i in test_insts]
            proto_pred = [rels[j] for j in (cache.vectors(test_insts) @ protos.T).argmax(1).tolist()]
            proto_acc = sum(p == g for p, g in zip(proto_pred, gold)) / len(gold)
            log.info(f"fewrel tkre protocol: K={k} seed {seed}: training on {len(schema.examples)} examples "
                     f"({len(rels)} relations){' [quick]' if quick else ''} ...")
            result = train_model(schema, None, train_config(encoder, seed, quick, precision=precision), device=device,
                                 on_progress=progress_lines(log))
            scorer = build(schema, None, method="tkre", artifact=result.artifact, device=device, batch_size=batch_size)
            cands = [instance_candidate(i, rels, f"fewrel-test-{n}") for n, i in enumerate(test_insts)]
            start = time.perf_counter()
            preds = scorer.predict(cands)
            predict_s = time.perf_counter() - start
            tkre_acc = sum(p.best == g for p, g in zip(preds, gold)) / len(gold)
            per_seed.append({"seed": seed, "prototype": round(proto_acc, 6), "tkre": round(tkre_acc, 6),
                             "train_seconds": round(result.seconds, 1),
                             "train_precision": result.artifact.meta["config"]["precision"],
                             "pairs_per_second": round(len(cands) / predict_s, 1) if predict_s else None,
                             "test_instances": len(gold), "train_examples": len(schema.examples)})
            log.info(f"  prototype {100 * proto_acc:.2f}  tkre {100 * tkre_acc:.2f}  (trained in {result.seconds:.0f}s)")
        rows.append({
            "k": k, "relations": len(cache.data), "test_per_relation": test_per_relation, "quick": quick,
            "prototype": aggregate([p["prototype"] for p in per_seed]),
            "tkre": aggregate([p["tkre"] for p in per_seed]),
            "train_seconds": aggregate([p["train_seconds"] for p in per_seed]),
            "per_seed": per_seed,
        })
    return rows


def run_fewrel(
    path: str | Path,
    *,
    settings: Sequence[tuple[int, int]] = ((5, 1), (5, 5), (10, 1), (10, 5)),
    episodes: int = 1000,
    n_query: int = 1,
    seeds: Sequence[int] = (0, 1, 2),
    encoder: str | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    max_per_relation: int | None = None,
    tkre_k: Sequence[int] = (),
    test_per_relation: int = 100,
    quick: bool = False,
    precision: str = "auto",
    pid2name: str | Path | None = None,
    log: Log = NULL_LOG,
) -> dict[str, Any]:
    """Prototype episodes (and optionally the TKRE protocol) on one FewRel file; a JSON-able dict."""
    from fsre_cli.tkre.encoder import resolve_encoder
    from fsre_cli.scorers.prototype import PairEmbedder

    sw = Stopwatch()
    started = time.perf_counter()
    path = Path(path)
    with sw("load"):
        data = load_fewrel(path)
        if max_per_relation:
            data = {r: insts[:max_per_relation] for r, insts in data.items()}
    n_inst = sum(len(v) for v in data.values())
    log.info(f"fewrel: {path.name}: {len(data)} relations, {n_inst} instances; embedding each once ...")
    with sw("load_encoder"):
        embedder = PairEmbedder.load(encoder, device=device, batch_size=batch_size)
    with sw("embed"):
        cache = EmbeddingCache(data, embedder)
    log.info(f"embedded {cache.count} instances in {cache.seconds:.1f}s ({cache.count / max(cache.seconds, 1e-9):.0f}/s)")
    with sw("episodes"):
        rows = run_episodes(cache, settings, episodes, n_query, seeds, log)
    tkre_rows: list[dict[str, Any]] = []
    if tkre_k:
        pid_path = Path(pid2name) if pid2name else path.with_name("pid2name.json")
        descriptions = redocred_descriptions(pid_path, sorted(data)) if pid_path.exists() else {}
        with sw("tkre_protocol"):
            tkre_rows = run_tkre_protocol(cache, tkre_k, seeds, test_per_relation=test_per_relation,
                                          descriptions=descriptions, encoder=encoder, device=device,
                                          batch_size=batch_size, quick=quick, precision=precision, log=log)
    return {
        "benchmark": "fewrel",
        "data": str(path),
        "encoder": resolve_encoder(encoder).name,
        "relations": len(data),
        "instances": n_inst,
        "max_per_relation": max_per_relation,
        "seeds": list(seeds),
        "episodes": episodes,
        "query": n_query,
        "method": "prototype (bare encoder, cosine to normalised class means)",
        "settings": rows,
        "tkre": tkre_rows,
        "timing": {**sw.rounded(), "embed_per_second": round(cache.count / max(cache.seconds, 1e-9), 1),
                   "total": round(time.perf_counter() - started, 2)},
        "environment": environment(device),
    }
