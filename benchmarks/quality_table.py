"""Markdown tables for BENCHMARKS.md from `fsre bench crossre|redocred --out FILE.json` results.

Per dataset and method: F1 (mean ± std over seeds) under each tkre decision rule scored on the
same model (threshold = the calibrated one; nota = the best relation when it beats NOTA;
relation = per-relation thresholds where the held-out slice had enough pairs), the dev-tuned
ceiling, ECE, and the summed error kinds. Then, where a dataset has more than one row, each row
against the dataset's first (its base): F1 and the paired per-seed difference, train seconds,
and for `review=N` rows what the simulated reviewer decided and F1 on the test sentences that
held no reviewed triple, before and after.

    python benchmarks/quality_table.py runs/honest-a.json runs/honest-b.json
    python benchmarks/quality_table.py --base "tkre[packing=head,review=50]" runs/review-*.json

`--base ROW` pairs every row against that row instead of the dataset's first (datasets without it
are left out of the paired table).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict


def _ms(values: list[float]) -> str:
    if not values:
        return "—"
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def rows(paths: list[str]) -> list[dict]:
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            runs += [r for r in json.load(f)["runs"] if "skipped" not in r]
    return runs


def table(runs: list[dict]) -> str:
    by: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        by[(r["dataset"], r["k"], r["variant"])].append(r)
    out = ["| dataset | K | method | F1 (threshold) | P | R | F1 (nota) | F1 (relation) | F1 dev-tuned | ECE | "
           "reversed / wrong rel. / NOTA as rel. / missed | seeds |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    means: dict[tuple, list[list[float]]] = defaultdict(lambda: [[], [], [], []])
    for (dataset, k, variant), rs in by.items():
        rule = lambda name: [r["rules"][name]["f1"] for r in rs if "rules" in r]  # noqa: E731
        errors = [sum(r["errors"][kind] for r in rs) for kind in ("reversed", "wrong relation", "nota as relation",
                                                                   "missed")] if all("errors" in r for r in rs) else None
        ece = [r["reliability"]["ece"] for r in rs if "reliability" in r]
        out.append(f"| {dataset} | {k} | {variant} | **{_ms([r['f1'] for r in rs])}** | "
                   f"{_ms([r['precision'] for r in rs])} | {_ms([r['recall'] for r in rs])} | {_ms(rule('nota'))} | "
                   f"{_ms(rule('relation'))} | {_ms([r['best_threshold_f1'] for r in rs if 'best_threshold_f1' in r])} | "
                   f"{f'{statistics.fmean(ece):.3f}' if ece else '—'} | "
                   f"{' / '.join(map(str, errors)) if errors else '—'} | {len(rs)} |")
        m = means[(k, variant)]
        m[0].append(statistics.fmean(r["f1"] for r in rs))
        if rule("nota"):
            m[1].append(statistics.fmean(rule("nota")))
            m[2].append(statistics.fmean(rule("relation")))
        m[3].append(statistics.fmean(r["best_threshold_f1"] for r in rs if "best_threshold_f1" in r)
                    if any("best_threshold_f1" in r for r in rs) else 0.0)
    if len({d for d, _, _ in by}) > 1:
        for (k, variant), (f1, nota, rel, ceiling) in means.items():
            fmt = lambda v: f"{100 * statistics.fmean(v):.1f}" if v else "—"  # noqa: E731
            out.append(f"| **mean of {len(f1)} datasets** | {k} | {variant} | **{fmt(f1)}** | | | {fmt(nota)} | "
                       f"{fmt(rel)} | {fmt(ceiling)} | | | |")
    return "\n".join(out)


def paired_table(runs: list[dict], base_row: str | None = None) -> str:
    """Each row against its dataset's first row (or `base_row`), seed by seed (paired differences)."""
    order: dict[str, list[str]] = defaultdict(list)
    cell: dict[tuple, dict] = {}
    for r in runs:
        if r["variant"] not in order[r["dataset"]]:
            order[r["dataset"]].append(r["variant"])
        cell[(r["dataset"], r["k"], r["variant"], r["seed"])] = r
    out = ["| dataset | K | row | F1 | base F1 | difference (paired) | train s | reviewed: accepted / rejected / "
           "relabelled | F1 on unreviewed sentences, before → after | seeds |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    means: dict[tuple, list[float]] = defaultdict(list)
    for dataset, variants in order.items():
        if base_row is not None and base_row not in variants:
            continue
        base = base_row if base_row is not None else variants[0]
        for variant in [v for v in variants if v != base]:
            for k in sorted({key[1] for key in cell if key[0] == dataset and key[2] == variant}):
                pairs = [(cell[key], cell.get((dataset, k, base, key[3]))) for key in cell
                         if key[:3] == (dataset, k, variant)]
                pairs = [(r, b) for r, b in pairs if b is not None]
                if not pairs:
                    continue
                diff = [r["f1"] - b["f1"] for r, b in pairs]
                reviews = [r["review"] for r, _ in pairs if "review" in r]
                decided = (" / ".join(str(sum(v[name] for v in reviews)) for name in ("accept", "reject", "relation"))
                           if reviews else "—")
                unreviewed = (f"{_ms([v['f1_unreviewed_before'] for v in reviews])} → "
                              f"{_ms([v['f1_unreviewed'] for v in reviews])}" if reviews else "—")
                seconds = [r["train_seconds"] for r, _ in pairs if r.get("train_seconds")]
                out.append(f"| {dataset} | {k} | {variant} | {_ms([r['f1'] for r, _ in pairs])} | "
                           f"{_ms([b['f1'] for _, b in pairs])} | **{_ms(diff)}** | "
                           f"{f'{statistics.median(seconds):.0f}' if seconds else '—'} | {decided} | {unreviewed} | "
                           f"{len(pairs)} |")
                means[(k, variant)].append(statistics.fmean(diff))
    if len({dataset for dataset in order if base_row is None or base_row in order[dataset]}) > 1:
        for (k, variant), diffs in means.items():
            out.append(f"| **mean of {len(diffs)} datasets** | {k} | {variant} | | | "
                       f"**{100 * statistics.fmean(diffs):+.1f}** | | | | |")
    return "\n".join(out) if len(out) > 2 else ""


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    base_row = None
    if argv[0] == "--base":
        if len(argv) < 3:
            print("--base ROW needs a row name and at least one file", file=sys.stderr)
            return 2
        base_row, argv = argv[1], argv[2:]
    runs = rows(argv)
    print(table(runs))
    paired = paired_table(runs, base_row)
    if paired:
        print()
        print(paired)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
