"""Size and load time of an `fsre view` page with 5,000 documents and 50,000 triples, in headless Chromium.

    python benchmarks/view_bench.py --repeat 3
    python benchmarks/view_bench.py --screenshot docs/view.png     # the README's picture

The page is built by `fsre_cli.view` from generated documents (10 triples each). Load time is
from navigation to the first page of documents drawn; filter time is one relation unticked,
which re-counts all 50,000 triples. Medians of `--repeat` fresh pages. Needs Playwright and a
Chromium (`FSRE_CHROMIUM`, else `chromium` on the PATH). `--screenshot` instead extracts the
shipped example (`fsre extract examples/org-people.jsonl --entities given --method prototype`: no
training, seconds), renders those triples over its documents, accepts one and rejects another,
and saves a picture of the page.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def generated(docs: int, per_doc: int):
    from fsre_cli.documents import Document

    records, texts = [], {}
    for d in range(docs):
        text = f"Company{d} was founded by Person{d} and Person{d}b in City{d}; Person{d} works for Company{d}."
        texts[f"doc{d}"] = Document(f"doc{d}", text)

        def at(word: str) -> tuple[int, int]:
            i = text.index(word)
            return i, i + len(word)

        pairs = [(at(f"Company{d}"), at(f"Person{d} ")), (at(f"Company{d}"), at(f"Person{d}b")),
                 (at(f"Person{d} "), at(f"Company{d}")), (at(f"City{d}"), at(f"Company{d}"))]
        for k in range(per_doc):
            (hs, he), (ts, te) = pairs[k % len(pairs)]
            he, te = (he - 1 if text[he - 1] == " " else he), (te - 1 if text[te - 1] == " " else te)
            records.append({"doc": f"doc{d}", "sentence": 0, "relation": f"rel{k}",
                            "head": {"text": text[hs:he], "type": "A", "start": hs, "end": he},
                            "tail": {"text": text[ts:te], "type": "B", "start": ts, "end": te},
                            "score": k / per_doc, "method": "tkre", "evidence": text})
    return records, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--per-doc", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from fsre_cli.view import build_view, render_html, whole_documents

    chromium = os.environ.get("FSRE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium: apt-get install chromium, or set FSRE_CHROMIUM")
    with tempfile.TemporaryDirectory(prefix="fsre-view-") as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        if args.screenshot:
            from fsre_cli.aggregate import read_triples
            from fsre_cli.inputs import InputReport, read_documents

            import subprocess

            triples = Path(tmp) / "triples.jsonl"
            subprocess.run([sys.executable, "-m", "fsre_cli", "extract", "examples/org-people.jsonl", "--schema",
                            "schemas/org-people.yaml", "--entities", "given", "--method", "prototype", "-q",
                            "-o", str(triples)], cwd=ROOT, check=True)
            docs = whole_documents(read_documents([str(ROOT / "examples/org-people.jsonl")], InputReport()))
            pages, _ = build_view(read_triples([str(triples)]), docs)
            out = Path(tmp) / "example.html"
            out.write_text(render_html(pages, "fsre view: the shipped example, --method prototype"), encoding="utf-8")
            page = browser.new_page(viewport={"width": 1200, "height": 760})
            page.goto(out.as_uri())
            page.locator("ul.triples li").nth(4).locator("button.reject").click()  # born_in Priya -> Dundee
            page.locator("ul.triples li").nth(0).locator("button.accept").click()  # founded_by, right
            page.locator("ul.triples li").nth(0).click()
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.screenshot))
            print(f"wrote {args.screenshot}")
            return
        records, texts = generated(args.docs, args.per_doc)
        out = Path(tmp) / "big.html"
        out.write_text(render_html(build_view(records, texts)[0]), encoding="utf-8")
        loads, filters = [], []
        for _ in range(args.repeat):
            page = browser.new_page()
            start = time.perf_counter()
            page.goto(out.as_uri())
            page.wait_for_selector("section.doc")
            loads.append(time.perf_counter() - start)
            start = time.perf_counter()
            page.locator("input.relation-filter[value=rel3]").uncheck()
            page.wait_for_function("document.getElementById('summary').textContent.startsWith('"
                                   f"{len(records) - args.docs} ')")
            filters.append(time.perf_counter() - start)
            page.close()
        browser.close()
        print(json.dumps({"documents": args.docs, "triples": len(records),
                          "page_mib": round(out.stat().st_size / 2**20, 2),
                          "load_seconds_median": round(statistics.median(loads), 2),
                          "filter_seconds_median": round(statistics.median(filters), 3),
                          "repeat": args.repeat, "chromium": chromium}, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
