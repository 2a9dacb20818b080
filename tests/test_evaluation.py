"""Metrics against hand-computed cases; `fsre eval` I/O and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fsre_cli.cli.eval import eval_command, make_console, render_report
from fsre_cli.errors import UsageError
from fsre_cli.evaluation import (
    Confusion,
    accuracy,
    best_threshold_f1,
    episode_accuracy,
    is_nota,
    load_triples,
    micro_f1,
    micro_prf,
    normalize_mention,
    score_triples,
    summarize,
)


def rec(doc, rel, h, t, htext="h", ttext="t"):
    return {
        "doc": doc,
        "sentence": 0,
        "relation": rel,
        "head": {"text": htext, "type": "X", "start": h[0], "end": h[1]},
        "tail": {"text": ttext, "type": "X", "start": t[0], "end": t[1]},
    }


GOLD = [
    rec("d1", "A", (0, 5), (10, 15)),
    rec("d1", "A", (20, 25), (30, 35)),
    rec("d2", "B", (0, 3), (5, 8)),
    rec("d2", "NA", (40, 45), (0, 3)),  # NOTA gold: ignored
]
PRED = [
    rec("d1", "A", (0, 5), (10, 15)),
    rec("d1", "A", (0, 5), (10, 15)),  # duplicate: counted once
    rec("d1", "B", (20, 25), (30, 35)),  # right pair, wrong relation
    rec("d2", "C", (40, 45), (50, 55)),  # spurious
    rec("d2", "no_relation", (0, 3), (5, 8)),  # NOTA prediction: ignored (so B is missed)
]


def approx(x):
    return pytest.approx(x, abs=1e-9)


def test_micro_macro_per_relation_and_confusions():
    r = score_triples(PRED, GOLD)
    # pred set {A@p1, B@p2, C@p3}, gold set {A@p1, A@p2, B@p4}: one true positive
    assert (r.micro.tp, r.micro.n_pred, r.micro.n_gold) == (1, 3, 3)
    assert r.micro.precision == approx(1 / 3) and r.micro.recall == approx(1 / 3) and r.micro.f1 == approx(1 / 3)
    a, b, c = r.per_relation["A"], r.per_relation["B"], r.per_relation["C"]
    assert (a.precision, a.recall, a.f1, a.n_gold) == (approx(1.0), approx(0.5), approx(2 / 3), 2)
    assert (b.tp, b.n_pred, b.n_gold, b.f1) == (0, 1, 1, 0.0)
    assert (c.tp, c.n_pred, c.n_gold) == (0, 1, 0)
    # macro over relations with gold support (A, B), not C
    assert r.macro.precision == approx(0.5) and r.macro.recall == approx(0.25) and r.macro.f1 == approx(1 / 3)
    assert set(r.confusions) == {
        Confusion("A", "B", "confused", 1),
        Confusion("(none)", "C", "spurious", 1),
        Confusion("B", "(none)", "missed", 1),
    }
    assert r.counts == {"pred_records": 5, "gold_records": 4, "pred_nota_ignored": 1,
                        "gold_nota_ignored": 1, "pred_duplicates": 1, "gold_duplicates": 0}


def test_micro_differs_from_macro():
    gold = [rec("d", "A", (i, i + 1), (50, 51)) for i in range(9)] + [rec("d", "B", (60, 61), (70, 71))]
    pred = [rec("d", "A", (i, i + 1), (50, 51)) for i in range(9)] + [rec("d", "B", (60, 61), (80, 81))]
    r = score_triples(pred, gold)
    assert r.micro.f1 == approx(0.9)
    assert r.macro.f1 == approx(0.5)
    assert r.confusions[0].kind in ("spurious", "missed")


def test_empty_predictions_empty_gold_and_both():
    r = score_triples([], GOLD)
    assert (r.micro.precision, r.micro.recall, r.micro.f1) == (0.0, 0.0, 0.0)
    assert r.per_relation["A"].n_gold == 2 and r.per_relation["A"].recall == 0.0
    assert sum(c.count for c in r.confusions if c.kind == "missed") == 3
    r = score_triples(PRED, [])
    assert (r.micro.precision, r.micro.recall, r.micro.f1, r.macro.f1) == (0.0, 0.0, 0.0, 0.0)
    assert r.micro.n_pred == 3
    r = score_triples([], [])
    assert r.micro.f1 == 0.0 and r.per_relation == {} and r.confusions == []


def test_perfect_and_duplicate_gold():
    r = score_triples(GOLD[:3], GOLD[:3] + GOLD[:1])
    assert r.micro.f1 == approx(1.0) and r.macro.f1 == approx(1.0)
    assert r.counts["gold_duplicates"] == 1 and r.confusions == []


def test_nota_labels():
    assert all(is_nota(x) for x in ("NA", "na", "no_relation", "None", "NOTA", "", " ", None))
    assert not is_nota("Other") and not is_nota("part-of")
    gold = [rec("d", "NOTA", (0, 1), (2, 3)), rec("d", "", (4, 5), (6, 7))]
    pred = [rec("d", "none", (0, 1), (2, 3))]
    r = score_triples(pred, gold)
    assert r.micro.n_pred == 0 and r.micro.n_gold == 0 and r.per_relation == {}


def test_relaxed_mode_matches_normalised_text():
    assert normalize_mention('  "Bill   GATES," ') == "bill gates"
    assert normalize_mention("(U.S.)") == "u.s"
    assert normalize_mention("...") == ""
    gold = [rec("d", "founded_by", (0, 9), (25, 35), "Microsoft", "Bill Gates")]
    pred = [rec("d", "founded_by", (100, 110), (120, 131), "microsoft,", " Bill  Gates")]
    assert score_triples(pred, gold, mode="exact").micro.f1 == 0.0
    assert score_triples(pred, gold, mode="relaxed").micro.f1 == approx(1.0)
    # relaxed keys collapse two mentions with the same text in a document
    twice = pred + [rec("d", "founded_by", (200, 209), (220, 230), "Microsoft", "Bill Gates")]
    r = score_triples(twice, gold, mode="relaxed")
    assert r.micro.n_pred == 1 and r.counts["pred_duplicates"] == 1
    with pytest.raises(ValueError):
        score_triples(pred, gold, mode="fuzzy")  # type: ignore[arg-type]


def test_missing_fields_are_usage_errors():
    bad = {"doc": "d", "relation": "A", "head": {"start": 0, "end": 1}, "tail": {"start": "2", "end": 3}}
    with pytest.raises(UsageError, match=r"predicted record 1: field 'tail.start' must be an integer"):
        score_triples([bad], [])
    with pytest.raises(UsageError, match=r"gold record 1: field 'head.text'"):
        score_triples([], [bad], mode="relaxed")


def test_label_list_micro_f1_excludes_nota():
    pred = ["A", "NA", "B", "A"]
    gold = ["A", "B", "NA", "NA"]
    prf = micro_prf(pred, gold)
    assert (prf.tp, prf.n_pred, prf.n_gold) == (1, 3, 2)
    assert micro_f1(pred, gold) == approx(0.4)
    assert micro_f1(["NA", "NA"], ["NA", "NA"]) == 0.0
    assert micro_f1(["x", "no_relation"], ["x", "y"], nota="no_relation") == approx(2 / 3)
    assert micro_f1(["x", "none"], ["x", "NA"], nota={"NA", "none"}) == approx(1.0)
    with pytest.raises(ValueError):
        micro_f1(["A"], [])


def test_accuracy_and_summaries():
    assert accuracy(["a", "b", "c", "d"], ["a", "b", "x", "d"]) == approx(0.75)
    assert accuracy([], []) == 0.0
    s = summarize([0.5, 0.7])
    assert s.mean == approx(0.6) and s.std == approx(0.1414213562) and s.n == 2
    assert summarize([]).n == 0 and summarize([0.3]).std == 0.0
    e = episode_accuracy([[1, 2], [1, 1]], [[1, 2], [1, 2]])
    assert e.mean == approx(0.75)


def test_report_json_and_table(capsys):
    r = score_triples(PRED, GOLD)
    d = json.loads(r.to_json())
    assert d["mode"] == "exact" and d["micro"]["tp"] == 1 and d["micro"]["f1"] == 0.3333
    assert d["per_relation"]["A"]["support"] == 2 and set(d["macro"]) == {"precision", "recall", "f1"}
    assert {c["kind"] for c in d["confusions"]} == {"confused", "spurious", "missed"}
    render_report(r, make_console(stderr=True))
    err = capsys.readouterr().err
    assert "micro" in err and "macro" in err and "confused" in err


# --------------------------------------------------------------------------- files and the command
def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_load_triples_errors_point_at_file_and_line(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps(GOLD[0]) + "\n\n{not json\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"p\.jsonl:3: invalid JSON"):
        load_triples(p)
    p.write_text(json.dumps(GOLD[0]) + "\n" + json.dumps({"doc": "d", "relation": "A"}) + "\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"p\.jsonl:2: missing field 'head'"):
        load_triples(p)
    p.write_text(json.dumps({"doc": "d", "head": {}, "tail": {}}) + "\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"p\.jsonl:1: missing field 'relation'"):
        load_triples(p)
    with pytest.raises(UsageError, match="no such file"):
        load_triples(tmp_path / "missing.jsonl")
    with pytest.raises(UsageError) as exc:
        load_triples(tmp_path)
    assert exc.value.exit_code == 2


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_command)

    @app.command("other")
    def _other() -> None:  # a second command keeps `eval` a named sub-command
        pass

    return app


def test_eval_command_json_and_table(tmp_path):
    pred = write_jsonl(tmp_path / "pred.jsonl", PRED)
    gold = write_jsonl(tmp_path / "gold.jsonl", GOLD)
    runner = CliRunner()
    res = runner.invoke(_app(), ["eval", str(pred), str(gold), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["micro"]["n_gold"] == 3
    res = runner.invoke(_app(), ["eval", str(pred), str(gold), "--relaxed"])
    assert res.exit_code == 0, res.output
    assert "relaxed" in res.stdout and "per relation" in res.stdout
    res = runner.invoke(_app(), ["eval", str(pred), str(gold)], env={"NO_COLOR": "1"})
    assert "\x1b[" not in res.stdout
    res = runner.invoke(_app(), ["eval", "-", str(gold), "--json"], input=(tmp_path / "pred.jsonl").read_text())
    assert res.exit_code == 0 and json.loads(res.stdout)["micro"]["tp"] == 1
    res = runner.invoke(_app(), ["eval", str(tmp_path / "nope.jsonl"), str(gold)])
    assert res.exit_code == 2 and "nope.jsonl: no such file" in res.output  # one line, no traceback
    res = runner.invoke(_app(), ["eval", "--help"])
    assert "fsre eval pred.jsonl gold.jsonl" in res.stdout


def test_best_threshold_f1_sweeps_score_groups() -> None:
    def scored(doc, rel, score):
        return {**rec(doc, rel, (0, 1), (2, 3)), "score": score}

    gold = [rec("A", "r1", (0, 1), (2, 3)), rec("B", "r2", (0, 1), (2, 3)), rec("C", "r1", (0, 1), (2, 3))]
    ranked = [scored("A", "r1", 0.9), scored("D", "r1", 0.8), scored("B", "r1", 0.7), scored("C", "r1", 0.6),
              scored("F", "no_relation", 0.95), scored("A", "r1", 0.1)]  # NOTA ignored, a repeat keeps its max
    # thresholds 0.9/0.8/0.7/0.6 keep 1/2/3/4 pairs with 1/1/1/2 correct of 3 gold: F1 0.5, 0.4, 0.33, 4/7
    assert best_threshold_f1(ranked, gold) == (pytest.approx(4 / 7), 0.6)
    # a wrong pair tied at 0.6 comes in with C: 4/8, no longer above the 0.5 at 0.9
    assert best_threshold_f1([*ranked, scored("E", "r2", 0.6)], gold) == (pytest.approx(0.5), 0.9)
    assert best_threshold_f1([scored("D", "r1", 0.5)], gold) == (0.0, None)
    assert best_threshold_f1([], gold) == (0.0, None)


def test_eval_refuses_files_that_share_no_document_and_counts_those_that_do(tmp_path: Path) -> None:
    record = {"relation": "r", "head": {"start": 0, "end": 1, "text": "a"}, "tail": {"start": 2, "end": 3, "text": "b"}}
    pred, gold = tmp_path / "pred.jsonl", tmp_path / "gold.jsonl"
    pred.write_text(json.dumps({**record, "doc": "notes.txt"}) + "\n")
    gold.write_text(json.dumps({**record, "doc": "org-people-1"}) + "\n")
    res = CliRunner().invoke(_app(), ["eval", str(pred), str(gold)])
    assert res.exit_code == 2 and "no document of" in res.output and "'notes.txt'" in res.output
    pred.write_text(json.dumps({**record, "doc": "org-people-1"}) + "\n" + json.dumps({**record, "doc": "x"}) + "\n")
    res = CliRunner().invoke(_app(), ["eval", str(pred), str(gold), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["micro"]["tp"] == 1
    assert "2 predicted, 1 gold, 1 in both" in res.stderr and "1 predicted document(s) are not in" in res.stderr


def test_error_kinds_separate_reversed_wrong_relation_and_nota():
    from fsre_cli.evaluation import error_kinds

    gold = [rec("d", "acquired", (0, 5), (10, 15)), rec("d", "born_in", (20, 25), (30, 35))]
    pred = [
        rec("d", "acquired", (10, 15), (0, 5)),  # read backwards
        rec("d", "employee_of", (20, 25), (30, 35)),  # the pair holds another relation
        rec("d", "founded_by", (30, 35), (20, 25)),  # the reversed pair holds another relation
        rec("d", "born_in", (40, 45), (50, 55)),  # the pair holds none
        rec("d", "acquired", (0, 5), (10, 15)),  # right
    ]
    assert error_kinds(pred, gold) == {"reversed": 1, "wrong relation": 2, "nota as relation": 1, "missed": 1}


def test_reliability_and_ece():
    from fsre_cli.evaluation import reliability

    # scores of 0.95 right half the time, scores of 0.15 never right
    scored = [(0.95, True), (0.95, False), (0.15, False), (0.15, False)]
    r = reliability(scored)
    assert [(b["from"], b["triples"], b["right"]) for b in r.bins] == [(0.1, 2, 0.0), (0.9, 2, 0.5)]
    assert r.ece == approx(0.5 * 0.15 + 0.5 * 0.45)
    assert reliability([(1.0, True)]).bins[0]["to"] == 1.0  # a score of 1 falls in the top bin
    assert reliability([(0.5, True), (0.5, False)]).ece == approx(0.0)  # 0.5 right half the time: calibrated
