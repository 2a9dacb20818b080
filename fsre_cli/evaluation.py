"""Scoring: triples (JSONL records of DESIGN.md §1) and label lists (FewRel episodes, QA4RE/TKRE protocol).

`score_triples` compares predicted and gold triples as *sets*:

* **exact** mode: a triple is ``(doc, relation, head.start, head.end, tail.start, tail.end)``;
* **relaxed** mode: a triple is ``(doc, relation, norm(head.text), norm(tail.text))`` where `norm`
  case-folds, collapses runs of whitespace to one space and strips punctuation and whitespace at
  both edges (``' "Bill  Gates," '`` -> ``'bill gates'``). Offsets are ignored, so two mentions
  with the same text in one document count once.

Records whose relation is NOTA-like (``NA``, ``no_relation``, ``none``, ``NOTA``, empty; any case)
are ignored on both sides, and duplicates count once. Micro P/R/F1 pool every triple; macro
P/R/F1 are plain means of the per-relation scores over the relations that have gold support
(a relation only ever predicted, never gold, lowers micro precision and shows in the per-relation
table, but is not averaged into macro). A zero denominator gives 0.0.
"""

from __future__ import annotations

import json
import statistics
import unicodedata
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Collection, Iterable, Literal, Sequence

from fsre_cli.errors import UsageError
from fsre_cli.inputs import read_records

Mode = Literal["exact", "relaxed"]
NOTA_LABELS = frozenset({"na", "no_relation", "none", "nota", ""})
SPURIOUS = "spurious"  # a predicted relation on a pair that has no (further) gold relation
MISSED = "missed"  # a gold relation on a pair with no (further) predicted relation
CONFUSED = "confused"  # same pair, different relation
NO_RELATION = "(none)"


def is_nota(label: str | None) -> bool:
    """True for the labels that mean "no relation" in the formats we read."""
    return label is None or str(label).strip().lower() in NOTA_LABELS


def normalize_mention(text: str) -> str:
    """The relaxed-mode form of a mention: case-folded, whitespace collapsed, edge punctuation stripped."""
    s = " ".join(str(text).casefold().split())
    lo, hi = 0, len(s)
    while lo < hi and (s[lo].isspace() or unicodedata.category(s[lo]).startswith("P")):
        lo += 1
    while hi > lo and (s[hi - 1].isspace() or unicodedata.category(s[hi - 1]).startswith("P")):
        hi -= 1
    return s[lo:hi]


# --------------------------------------------------------------------------- reading records
@dataclass(frozen=True)
class TripleKey:
    """What two triples must share to match; `head`/`tail` are (start, end) or normalised text."""

    doc: str
    relation: str
    head: tuple[int, int] | str
    tail: tuple[int, int] | str

    @property
    def pair(self) -> tuple[str, Any, Any]:
        return (self.doc, self.head, self.tail)


def triple_key(record: dict[str, Any], mode: Mode = "exact") -> TripleKey | None:
    """The match key of one output/gold record, or None when its relation is NOTA-like.

    Raises ValueError naming the missing or malformed field."""
    if not isinstance(record, dict):
        raise ValueError("a record must be a JSON object")
    if "relation" not in record:
        raise ValueError("missing field 'relation'")
    relation = record["relation"]
    if relation is not None and not isinstance(relation, str):
        raise ValueError("'relation' must be a string")
    if is_nota(relation):
        return None
    if "doc" not in record or record["doc"] is None:
        raise ValueError("missing field 'doc'")
    doc = str(record["doc"])
    slots = []
    for slot in ("head", "tail"):
        m = record.get(slot)
        if not isinstance(m, dict):
            raise ValueError(f"missing field '{slot}' (an object with start, end and text)")
        if mode == "exact":
            for f in ("start", "end"):
                v = m.get(f)
                if isinstance(v, bool) or not isinstance(v, int):
                    raise ValueError(f"field '{slot}.{f}' must be an integer offset (got {v!r})")
            slots.append((m["start"], m["end"]))
        else:
            t = m.get("text")
            if not isinstance(t, str):
                raise ValueError(f"field '{slot}.text' must be a string (got {t!r})")
            slots.append(normalize_mention(t))
    return TripleKey(doc, relation.strip(), slots[0], slots[1])


def load_triples(path: str | Path, mode: Mode = "exact") -> list[dict[str, Any]]:
    """Read and validate a JSONL file of triples for `mode`; errors name ``FILE:LINE``."""
    records = []
    for line, rec in read_records(path):
        try:
            triple_key(rec, mode)
        except ValueError as exc:
            raise UsageError(f"{path}:{line}: {exc}") from None
        records.append(rec)
    return records


# --------------------------------------------------------------------------- scores
@dataclass
class PRF:
    precision: float
    recall: float
    f1: float
    tp: int = 0
    n_pred: int = 0
    n_gold: int = 0

    @classmethod
    def from_counts(cls, tp: int, n_pred: int, n_gold: int) -> "PRF":
        p = tp / n_pred if n_pred else 0.0
        r = tp / n_gold if n_gold else 0.0
        return cls(p, r, _f1(p, r), tp, n_pred, n_gold)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class Confusion:
    """How often a gold relation came out as another: `kind` is confused, spurious or missed."""

    gold: str
    pred: str
    kind: str
    count: int


@dataclass
class EvalReport:
    mode: str
    micro: PRF
    macro: PRF  # tp/n_pred/n_gold are the micro totals; P/R/F1 are means over gold relations
    per_relation: dict[str, PRF]  # n_gold is the support
    confusions: list[Confusion]
    counts: dict[str, int] = field(default_factory=dict)  # records read, NOTA and duplicates ignored

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view, stable key order, floats rounded to 4 places."""

        def prf(x: PRF) -> dict[str, Any]:
            d = asdict(x)
            return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}

        per = {}
        for name, s in self.per_relation.items():
            d = prf(s)
            d["support"] = d.pop("n_gold")
            per[name] = d
        return {
            "mode": self.mode,
            "micro": prf(self.micro),
            "macro": {k: v for k, v in prf(self.macro).items() if k in ("precision", "recall", "f1")},
            "per_relation": per,
            "confusions": [asdict(c) for c in self.confusions],
            "counts": dict(self.counts),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def _keys(records: Iterable[dict[str, Any]], mode: Mode, side: str) -> tuple[set[TripleKey], int, int, int]:
    keys: set[TripleKey] = set()
    n = nota = dup = 0
    for i, rec in enumerate(records):
        n += 1
        try:
            key = triple_key(rec, mode)
        except ValueError as exc:
            raise UsageError(f"{side} record {i + 1}: {exc}") from None
        if key is None:
            nota += 1
        elif key in keys:
            dup += 1
        else:
            keys.add(key)
    return keys, n, nota, dup


def best_cut(ranked_scores: Sequence[float], hits: Sequence[bool], n_gold: int) -> tuple[float, int]:
    """Sweep a threshold down scores sorted high to low: the best micro-F1 and the index of the
    last pair it keeps (-1 when none helps). `hits[i]`: pair i's relation is correct. A
    threshold keeps every pair of a tie or none, so only the end of a tie is a cut; an equal
    F1 further down loses to the higher threshold (fewer, surer triples)."""
    best_f1, best_i, tp = 0.0, -1, 0
    for i, (score, hit) in enumerate(zip(ranked_scores, hits)):
        tp += bool(hit)
        if i + 1 < len(ranked_scores) and ranked_scores[i + 1] == score:
            continue
        f1 = 2 * tp / (i + 1 + n_gold) if tp else 0.0
        if f1 > best_f1 + 1e-12:
            best_f1, best_i = f1, i
    return best_f1, best_i


def best_threshold_f1(
    scored: Iterable[dict[str, Any]], gold: Iterable[dict[str, Any]], mode: Mode = "exact"
) -> tuple[float, float | None]:
    """The highest micro-F1 (NOTA excluded) that any score threshold reaches, and that threshold.

    `scored` holds each candidate pair's best relation with its `score`, whether or not the
    scorer kept it. The threshold is tuned on the gold it is scored against, so this is a
    diagnostic, not a result: it measures how well the scores rank pairs, apart from how
    well the model's own threshold was calibrated. (0.0, None) when no threshold finds a
    correct triple."""
    gold_keys, _, _, _ = _keys(gold, mode, "gold")
    best: dict[TripleKey, float] = {}
    for i, rec in enumerate(scored):
        try:
            key = triple_key(rec, mode)
        except ValueError as exc:
            raise UsageError(f"scored record {i + 1}: {exc}") from None
        if key is not None:
            best[key] = max(float(rec["score"]), best.get(key, float("-inf")))
    ranked = sorted(best.items(), key=lambda kv: -kv[1])
    f1, last = best_cut([score for _, score in ranked], [key in gold_keys for key, _ in ranked], len(gold_keys))
    return (f1, ranked[last][1]) if last >= 0 else (0.0, None)


def score_triples(
    pred: Iterable[dict[str, Any]],
    gold: Iterable[dict[str, Any]],
    mode: Mode = "exact",
    top_confusions: int = 10,
) -> EvalReport:
    """Micro/macro P/R/F1, per-relation scores and the most frequent confusions.

    Confusions are counted per entity pair (doc, head, tail): each wrong predicted relation of a
    pair is paired with one missed gold relation of the same pair (both in sorted order) as
    ``confused``; what is left over is ``spurious`` (predicted, no gold) or ``missed`` (gold, not
    predicted)."""
    if mode not in ("exact", "relaxed"):
        raise ValueError(f"mode must be 'exact' or 'relaxed', not {mode!r}")
    pk, n_pred, nota_p, dup_p = _keys(pred, mode, "predicted")
    gk, n_gold, nota_g, dup_g = _keys(gold, mode, "gold")
    tp = pk & gk
    micro = PRF.from_counts(len(tp), len(pk), len(gk))

    n_tp = Counter(k.relation for k in tp)
    n_p = Counter(k.relation for k in pk)
    n_g = Counter(k.relation for k in gk)
    per = {r: PRF.from_counts(n_tp[r], n_p[r], n_g[r]) for r in sorted(set(n_p) | set(n_g))}
    gold_rel = [s for s in per.values() if s.n_gold]
    if gold_rel:
        macro = PRF(
            statistics.fmean(s.precision for s in gold_rel),
            statistics.fmean(s.recall for s in gold_rel),
            statistics.fmean(s.f1 for s in gold_rel),
            micro.tp,
            micro.n_pred,
            micro.n_gold,
        )
    else:
        macro = PRF(0.0, 0.0, 0.0, micro.tp, micro.n_pred, micro.n_gold)

    by_pair_pred: dict[tuple, list[str]] = defaultdict(list)
    by_pair_gold: dict[tuple, list[str]] = defaultdict(list)
    for k in pk - tp:
        by_pair_pred[k.pair].append(k.relation)
    for k in gk - tp:
        by_pair_gold[k.pair].append(k.relation)
    conf: Counter[tuple[str, str, str]] = Counter()
    for pair in set(by_pair_pred) | set(by_pair_gold):
        p = sorted(by_pair_pred.get(pair, []))
        g = sorted(by_pair_gold.get(pair, []))
        for a, b in zip(g, p):
            conf[(a, b, CONFUSED)] += 1
        for b in p[len(g) :]:
            conf[(NO_RELATION, b, SPURIOUS)] += 1
        for a in g[len(p) :]:
            conf[(a, NO_RELATION, MISSED)] += 1
    ranked = sorted(conf.items(), key=lambda kv: (-kv[1], kv[0]))[:top_confusions]
    confusions = [Confusion(g, p, kind, n) for (g, p, kind), n in ranked]
    counts = {
        "pred_records": n_pred,
        "gold_records": n_gold,
        "pred_nota_ignored": nota_p,
        "gold_nota_ignored": nota_g,
        "pred_duplicates": dup_p,
        "gold_duplicates": dup_g,
    }
    return EvalReport(mode, micro, macro, per, confusions, counts)


# --------------------------------------------------------------------------- label lists
def _nota_set(nota: str | Collection[str]) -> frozenset[str]:
    return frozenset([nota] if isinstance(nota, str) else nota)


def micro_prf(
    pred_labels: Sequence[str], gold_labels: Sequence[str], nota: str | Collection[str] = "NA"
) -> PRF:
    """Micro P/R/F1 without NOTA (TACRED scorer, used by TKRE and QA4RE).

    A prediction is a guess when it is not NOTA and correct when it also equals the gold label;
    recall's denominator is the number of non-NOTA gold labels."""
    if len(pred_labels) != len(gold_labels):
        raise ValueError(f"{len(pred_labels)} predictions for {len(gold_labels)} gold labels")
    nset = _nota_set(nota)
    guessed = sum(1 for p in pred_labels if p not in nset)
    gold = sum(1 for g in gold_labels if g not in nset)
    correct = sum(1 for p, g in zip(pred_labels, gold_labels) if p == g and g not in nset)
    return PRF.from_counts(correct, guessed, gold)


def micro_f1(pred_labels: Sequence[str], gold_labels: Sequence[str], nota: str | Collection[str] = "NA") -> float:
    """Micro-F1 excluding NOTA; see `micro_prf`."""
    return micro_prf(pred_labels, gold_labels, nota).f1


def accuracy(pred_labels: Sequence[Any], gold_labels: Sequence[Any]) -> float:
    """Fraction of equal labels (FewRel episode accuracy); 0.0 for no labels."""
    if len(pred_labels) != len(gold_labels):
        raise ValueError(f"{len(pred_labels)} predictions for {len(gold_labels)} gold labels")
    if not gold_labels:
        return 0.0
    return sum(1 for p, g in zip(pred_labels, gold_labels) if p == g) / len(gold_labels)


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation and a normal-approximation 95% interval half-width."""

    mean: float
    std: float
    ci95: float
    n: int


def summarize(values: Sequence[float]) -> Summary:
    """Aggregate per-episode accuracies or per-seed F1s the way papers report them (mean ± ci)."""
    n = len(values)
    if n == 0:
        return Summary(0.0, 0.0, 0.0, 0)
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if n > 1 else 0.0
    return Summary(mean, std, 1.96 * std / n**0.5, n)


def episode_accuracy(
    predictions: Sequence[Sequence[Any]], golds: Sequence[Sequence[Any]]
) -> Summary:
    """Accuracy per episode, summarised over episodes (the FewRel protocol)."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} prediction lists for {len(golds)} episodes")
    return summarize([accuracy(p, g) for p, g in zip(predictions, golds)])


# --------------------------------------------------------------------------- what scores mean
@dataclass(frozen=True)
class Reliability:
    """Expected calibration error and the reliability table of triple scores: per score bin,
    how many triples fell in it, their mean score and the share that were right."""

    ece: float
    bins: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"ece": round(self.ece, 6), "bins": self.bins}


def reliability(scored: Iterable[tuple[float, bool]], edges: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6,
                                                                                  0.7, 0.8, 0.9, 1.0)) -> Reliability:
    """ECE (bins weighted by their share of triples) of `(score, right)` pairs: a score of 0.9
    means something when 90% of the triples scored near it are right."""
    items = list(scored)
    bins: list[dict[str, Any]] = []
    ece = 0.0
    for lo, hi in zip(edges, edges[1:]):
        inside = [(s, c) for s, c in items if lo <= s < hi or (hi == edges[-1] and s == hi)]
        if not inside:
            continue
        mean = statistics.fmean(s for s, _ in inside)
        right = sum(1 for _, c in inside if c) / len(inside)
        ece += len(inside) / len(items) * abs(mean - right)
        bins.append({"from": lo, "to": hi, "triples": len(inside), "mean_score": round(mean, 4),
                     "right": round(right, 4)})
    return Reliability(ece, bins)


ERROR_KINDS = ("reversed", "wrong relation", "nota as relation", "missed")


def error_kinds(pred: Iterable[dict[str, Any]], gold: Iterable[dict[str, Any]], mode: Mode = "exact") -> dict[str, int]:
    """The wrong triples by kind: `reversed` (the gold holds the same relation the other way
    round), `wrong relation` (the pair holds another gold relation, in either direction), `nota
    as relation` (the pair holds none), and `missed` gold triples."""
    pk, *_ = _keys(pred, mode, "predicted")
    gk, *_ = _keys(gold, mode, "gold")
    by_pair: dict[tuple, set[str]] = defaultdict(set)
    for k in gk:
        by_pair[k.pair].add(k.relation)
    out = dict.fromkeys(ERROR_KINDS, 0)
    for k in pk - gk:
        doc, head, tail = k.pair
        backwards = by_pair.get((doc, tail, head), set())
        if k.relation in backwards:
            out["reversed"] += 1
        elif by_pair.get(k.pair) or backwards:
            out["wrong relation"] += 1
        else:
            out["nota as relation"] += 1
    out["missed"] = len(gk - pk)
    return out
