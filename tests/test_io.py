"""Input readers (all forms, bad files, chunking) and the triple writer (flush, resume)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from fsre_cli.documents import Mention, Triple
from fsre_cli.errors import UsageError
from fsre_cli.inputs import InputReport, StreamFeed, expand_paths, read_documents
from fsre_cli.outputs import TripleWriter


def _read(sources, **kw):
    report = InputReport()
    warnings: list[str] = []
    docs = list(read_documents(sources, report, warn=warnings.append, **kw))
    return docs, report, warnings


def test_text_files_directories_and_globs(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Alpha text.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("Beta text.")
    (tmp_path / "sub" / "c.md").write_text("Gamma text.")
    paths = expand_paths([str(tmp_path)])
    assert [Path(p).name for p in paths] == ["a.txt", "b.txt"]
    assert [Path(p).name for p in expand_paths([str(tmp_path)], glob="*.md")] == ["c.md"]
    docs, report, _ = _read(paths)
    assert [d.text for d in docs] == ["Alpha text.", "Beta text."]
    assert docs[0].id == paths[0] and report.documents == 2 and not report.skipped


def test_files_from_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Alpha.")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'a.txt'}\n\n")
    assert expand_paths([], files_from=str(listing)) == [str(tmp_path / "a.txt")]
    assert expand_paths([], files_from="-", stdin=io.StringIO(f"{tmp_path / 'a.txt'}\n")) == [str(tmp_path / "a.txt")]
    docs, _, _ = _read(["-"], stdin=io.StringIO("Plain text from stdin.\nSecond line."))
    assert docs[0].id == "-" and docs[0].text == "Plain text from stdin.\nSecond line."
    docs, _, _ = _read(["-"], stdin=io.StringIO('{"id": "d1", "text": "From JSONL."}\n'))
    assert docs[0].id == "d1" and docs[0].text == "From JSONL."
    with pytest.raises(UsageError, match="--files-from"):
        expand_paths([], files_from=str(tmp_path / "missing.txt"))


def _pipe_feed(pause_seconds: float) -> tuple[StreamFeed, "io.TextIOWrapper"]:
    import os

    read_fd, write_fd = os.pipe()
    writer = open(write_fd, "w", encoding="utf-8")
    return StreamFeed(open(read_fd, encoding="utf-8"), pause_seconds=pause_seconds), writer


def _next_within(iterator, seconds: float = 10.0):
    """next(iterator), failing the test instead of hanging when it blocks."""
    import queue
    import threading

    box: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: box.put(next(iterator, None)), daemon=True).start()
    try:
        return box.get(timeout=seconds)
    except queue.Empty:
        pytest.fail(f"no item within {seconds} s: the reader waits for input that is not coming")


def test_stream_feed_tells_a_pause_from_waiting_lines() -> None:
    feed, writer = _pipe_feed(pause_seconds=0.05)
    lines = iter(feed)
    writer.write("a\nb\n")
    writer.flush()
    assert _next_within(lines) == "a\n" and _next_within(lines) == "b\n"
    assert feed.paused()  # nothing more came
    feed.pause_seconds = 10.0
    writer.write("c\n")
    writer.flush()
    assert not feed.paused()  # the line arrived within the grace period and is kept
    assert _next_within(lines) == "c\n"
    writer.close()
    assert _next_within(lines) is None and not feed.paused()


def test_text_from_a_stream_is_cut_where_the_stream_pauses() -> None:
    feed, writer = _pipe_feed(pause_seconds=0.1)
    docs = read_documents(["-"], InputReport(), stdin=feed)
    writer.write("Ada works at Acme.\nShe lives in Paris.\n")
    writer.flush()
    first = _next_within(docs)
    assert (first.id, first.text, first.offset) == ("-", "Ada works at Acme.\nShe lives in Paris.\n", 0)
    assert not first.final  # the stream may go on
    writer.write("Bob joined Initech.\n")
    writer.close()
    second = _next_within(docs)
    assert (second.id, second.text, second.offset) == ("-", "Bob joined Initech.\n", len(first.text))
    assert second.final  # the stream ended
    assert _next_within(docs) is None


def test_jsonl_documents_with_entities_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(
        '{"id": "d1", "text": "Microsoft was founded by Bill Gates.", '
        '"entities": [{"start": 0, "end": 9, "type": "ORG"}, {"start": 25, "end": 35, "type": "PERSON"}]}\n'
        "not json\n"
        '{"text": "No id here."}\n'
        '{"id": "d4", "text": "x", "entities": [{"start": 0}]}\n'
        '{"id": "d5", "text": "   "}\n'
    )
    docs, report, warnings = _read([str(path)])
    assert [d.id for d in docs] == ["d1", f"{path}:3"]
    assert docs[0].entities[1].type == "PERSON" and docs[1].entities is None
    reasons = dict(report.skipped)
    assert "invalid JSON" in reasons[f"{path}:2"]
    assert 'needs integer "start", "end"' in reasons[f"{path}:4"]
    assert reasons[f"{path}:5"] == "empty text"
    assert len(warnings) == 3 and all(w.startswith("skipping ") for w in warnings)


@pytest.mark.parametrize(
    "content,reason",
    [(b"", "empty"), (b"  \n\n", "empty"), (b"\x00\x01binary", "binary file"), (b"caf\xe9 latin-1", "not UTF-8")],
)
def test_bad_files_are_skipped_with_a_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    good = tmp_path / "good.txt"
    good.write_text("Fine.")
    docs, report, warnings = _read([str(bad), str(good), str(tmp_path / "missing.txt")])
    assert [d.text for d in docs] == ["Fine."]
    assert reason in report.skipped[0][1] and str(bad) in warnings[0]
    assert report.skipped[1] == (str(tmp_path / "missing.txt"), "no such file")


def test_large_files_arrive_in_chunks_with_offsets(tmp_path: Path) -> None:
    paragraphs = [f"Paragraph {i} talks about Company {i} and Person {i}." for i in range(200)]
    text = "\n\n".join(paragraphs) + "\n"
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8")
    docs, report, _ = _read([str(path)], chunk_chars=500)
    assert len(docs) > 10 and report.documents == 1
    assert "".join(d.text for d in docs) == text
    for d in docs:
        assert text[d.offset : d.offset + len(d.text)] == d.text
        assert d.text.endswith("\n")  # cut at paragraph boundaries, never inside a sentence
    assert [d.final for d in docs] == [False] * (len(docs) - 1) + [True]  # only the last chunk ends the file


def test_a_file_ending_in_blank_text_still_ends_with_a_final_chunk(tmp_path: Path) -> None:
    text = "Ada works at Acme.\n\n" * 30 + "\n" * 600  # the blank tail is cut off after the last real chunk
    path = tmp_path / "tail.txt"
    path.write_text(text, encoding="utf-8")
    docs, report, _ = _read([str(path)], chunk_chars=500)
    assert report.documents == 1 and [d.final for d in docs] == [False] * (len(docs) - 1) + [True]
    assert docs[-1].text == "" and docs[-1].offset == len(text)  # an empty chunk closes the document
    assert "".join(d.text for d in docs).strip() == text.strip()


def _triple(doc: str, start: int = 0) -> Triple:
    head = Mention(start, start + 9, "ORG", "Microsoft")
    tail = Mention(start + 25, start + 35, "PERSON", "Bill Gates")
    return Triple(doc, 0, "founded_by", head, tail, 0.9, "tkre", "Microsoft was founded by Bill Gates.")


def test_records_have_the_documented_shape() -> None:
    record = _triple("d1").to_record()
    assert list(record) == ["doc", "sentence", "relation", "head", "tail", "score", "method", "evidence"]
    assert record["head"] == {"text": "Microsoft", "type": "ORG", "start": 0, "end": 9}


def test_resume_skips_finished_documents_and_drops_cut_ones(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    writer = TripleWriter(out)
    writer.write([_triple("d1")])
    writer.finish_document("d1")
    writer.write([_triple("d2")])  # d2 never finished: a kill mid-document
    writer.close()
    with out.open("a") as fh:
        fh.write('{"doc": "d3", "trunc')  # a half-written line
    resumed = TripleWriter(out, resume=True)
    assert resumed.is_done("d1") and not resumed.is_done("d2")
    resumed.write([_triple("d2")])
    resumed.finish_document("d2")
    resumed.close()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["doc"] for r in lines] == ["d1", "d2"]
    with pytest.raises(UsageError, match="--resume needs --output"):
        TripleWriter(None, resume=True)
