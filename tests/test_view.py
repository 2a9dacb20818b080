"""`fsre view`: the page's data, its escaping, and the page itself in a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fsre_cli.documents import Document
from fsre_cli.view import build_view, page_data, render_html

ROOT = Path(__file__).resolve().parents[1]
TEXT = ('Acme <b>Corp</b> was founded by Ann Lee in Oslo. "</script><script>window.pwned=1</script>" '
        "said Bo Ek, who works for Acme <b>Corp</b>.")


def span(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    return start, start + len(needle)


def record(doc: str, relation: str, head: tuple[int, int, str], tail: tuple[int, int, str], score: float,
           text: str = TEXT, sentence: int = 0, evidence: str | None = None) -> dict:
    return {"doc": doc, "sentence": sentence, "relation": relation,
            "head": {"text": text[head[0]:head[1]], "type": head[2], "start": head[0], "end": head[1]},
            "tail": {"text": text[tail[0]:tail[1]], "type": tail[2], "start": tail[0], "end": tail[1]},
            "score": score, "method": "tkre", "evidence": evidence if evidence is not None else text}


def triples() -> list[dict]:
    acme = (*span(TEXT, "Acme <b>Corp</b>"), "ORG")
    acme2 = (*span(TEXT, "Acme <b>Corp</b>", 1), "ORG")
    return [record("d1", "founded_by", acme, (*span(TEXT, "Ann Lee"), "PERSON"), 0.91),
            record("d1", "located_in", acme, (*span(TEXT, "Oslo"), "PLACE"), 0.12),
            record("d1", "works_for", (*span(TEXT, "Bo Ek"), "PERSON"), acme2, 0.55, sentence=1)]


def test_highlights_are_the_records_offsets_and_mentions_are_shared() -> None:
    docs, warnings = build_view(triples(), {"d1": Document("d1", TEXT)})
    assert warnings == [] and len(docs) == 1
    data = page_data(docs, "t")["docs"][0]
    for t in data["triples"]:
        (hs, he, _), (ts, te, _) = data["mentions"][t["head"]], data["mentions"][t["tail"]]
        assert TEXT[hs:he] == t["head_text"] and TEXT[ts:te] == t["tail_text"]
    assert len(data["mentions"]) == 5  # the first Acme heads two triples: one mention
    # a record whose offsets do not match the document is listed, without a highlight, and said
    wrong = [{**triples()[0], "head": {**triples()[0]["head"], "start": 1}}]
    docs, warnings = build_view(wrong, {"d1": Document("d1", TEXT)})
    assert docs[0].triples[0]["head"] is None and "do not cover" in warnings[0]


def test_without_documents_the_evidence_sentence_is_the_text() -> None:
    sentence = "Later, Bo Ek said Bo Ek works for Acme."
    base = 500  # the sentence's offset in its document
    rec = record("d9", "works_for", (base + 18, base + 23, "PERSON"), (base + 34, base + 38, "ORG"), 0.7,
                 text=" " * base + sentence, evidence=sentence)
    (doc,), _ = build_view([rec])
    data = page_data([doc], "t")["docs"][0]
    (hs, he, _), (ts, te, _) = data["mentions"][data["triples"][0]["head"]], data["mentions"][data["triples"][0]["tail"]]
    assert data["evidence"] and (hs, he, ts, te) == (18, 23, 34, 38)  # the second "Bo Ek": its distance fits


def test_document_text_cannot_end_the_script_it_is_embedded_in() -> None:
    page = render_html(build_view(triples(), {"d1": Document("d1", TEXT)})[0])
    assert "</script><script>window.pwned" not in page and page.count("<script") == 2
    assert "http://" not in page and "https://" not in page  # nothing is fetched


def chromium_path() -> str | None:
    return os.environ.get("FSRE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None:
        if os.environ.get("FSRE_REQUIRE_BROWSER"):
            pytest.fail("FSRE_REQUIRE_BROWSER is set but no chromium was found (apt-get install chromium)")
        pytest.skip("no chromium (apt-get install chromium; README, Tests)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


def fsre(*args: str):
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "fsre_cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


@pytest.mark.slow
def test_the_page_in_a_real_browser_highlights_filters_and_escapes(browser, tmp_path: Path) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps({"id": "d1", "text": TEXT}) + "\n")
    trip = tmp_path / "triples.jsonl"
    trip.write_text("".join(json.dumps(r) + "\n" for r in triples()))
    out = tmp_path / "view.html"
    made = fsre("view", str(trip), "--docs", str(docs), "-o", str(out), "--schema", str(tmp_path / "s.yaml"))
    assert made.returncode == 0, made.stderr
    assert "3 triples in 1 documents" in made.stderr
    page = browser.new_page(viewport={"width": 1200, "height": 700})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri())
    items = page.locator("ul.triples li")
    assert items.count() == 3
    for i, expected in enumerate(triples()):
        items.nth(i).click()
        assert "".join(page.locator(".sel-head").all_text_contents()) == expected["head"]["text"]
        assert "".join(page.locator(".sel-tail").all_text_contents()) == expected["tail"]["text"]
    text = page.locator(".doc .text").inner_text()
    assert "Acme <b>Corp</b>" in text and "</script><script>window.pwned=1</script>" in text  # shown, not run
    assert page.evaluate("window.pwned") is None and errors == []
    page.screenshot(path=str(tmp_path / "view.png"))
    assert (tmp_path / "view.png").stat().st_size > 10_000
    # filters: a relation unticked, a minimum score, entity text
    page.locator("input.relation-filter[value=founded_by]").uncheck()
    assert [li.get_attribute("data-relation") for li in items.all()] == ["located_in", "works_for"]
    assert page.locator("#count-works_for").inner_text() == " (1)"
    page.fill("#minscore", "0.5")
    assert [li.get_attribute("data-relation") for li in items.all()] == ["works_for"]
    page.fill("#minscore", "")
    page.fill("#search", "oslo")
    assert [li.get_attribute("data-relation") for li in items.all()] == ["located_in"]
    page.fill("#search", "nobody")
    assert items.count() == 0 and page.locator("#summary").inner_text() == "0 triples in 0 documents"
    # review buttons: decisions download as the review file `fsre review` writes, which training reads
    page.fill("#search", "")
    page.locator("input.relation-filter[value=founded_by]").check()
    items.nth(0).locator("button.accept").click()
    items.nth(2).locator("button.reject").click()
    items.nth(1).locator("button.accept").click()
    items.nth(1).locator("button.accept").click()  # pressed again: taken back
    assert page.locator("#download").inner_text() == "download review file (2)"
    with page.expect_download() as download:
        page.locator("#download").click()
    assert download.value.suggested_filename == "s.review.jsonl"
    saved = tmp_path / "s.review.jsonl"
    download.value.save_as(saved)
    from fsre_cli.review import parse_decision

    decisions = [parse_decision(json.loads(line)) for line in saved.read_text().splitlines()]
    assert [(d.decision, d.relation, d.head.text, d.tail.text) for d in decisions] == [
        ("accept", "founded_by", "Acme <b>Corp</b>", "Ann Lee"), ("reject", "works_for", "Bo Ek", "Acme <b>Corp</b>")]
    assert decisions[1].key == ("d1", 1, tuple(span(TEXT, "Bo Ek")), tuple(span(TEXT, "Acme <b>Corp</b>", 1)))


@pytest.mark.slow
def test_a_page_of_5000_documents_and_50000_triples_opens_quickly(browser, tmp_path: Path) -> None:
    records = []
    for d in range(5000):
        text = f"Company{d} was founded by Person{d} and Person{d}b in City{d}; Person{d} works for Company{d}."
        org, p1, p2, city = (span(text, f"Company{d}"), span(text, f"Person{d}"), span(text, f"Person{d}b"),
                             span(text, f"City{d}"))
        for k in range(10):
            head, tail = [(org, p1), (org, p2), (p1, org), (p2, org), (org, city)][k % 5]
            records.append(record(f"doc{d}", f"rel{k}", (*head, "ORG"), (*tail, "PERSON"), k / 10, text=text))
    docs = {r["doc"]: Document(r["doc"], r["evidence"]) for r in records}
    out = tmp_path / "big.html"
    out.write_text(render_html(build_view(records, docs)[0]), encoding="utf-8")
    page = browser.new_page()
    start = time.perf_counter()
    page.goto(out.as_uri())
    page.wait_for_selector("section.doc")
    opened = time.perf_counter() - start
    assert page.locator("section.doc").count() == 20  # a page at a time
    assert page.locator("#summary").inner_text() == "50000 triples in 5000 documents"
    start = time.perf_counter()
    page.locator("input.relation-filter[value=rel3]").uncheck()  # a filter goes over all 50,000
    page.mouse.wheel(0, 3000)
    refiltered = time.perf_counter() - start
    assert page.locator("#summary").inner_text() == "45000 triples in 5000 documents"
    assert opened < 20 and refiltered < 5, (opened, refiltered)
