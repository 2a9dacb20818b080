"""Hostile input and output: bad bytes, BOMs, surrogates, odd ids, bad numbers, huge lines, full disks."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fsre_cli.documents import Mention, Triple
from fsre_cli.errors import FsreError, UsageError
from fsre_cli.inputs import InputReport, StreamFeed, expand_paths, read_documents
from fsre_cli.outputs import TripleWriter

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[1]


def _read(sources, **kw):
    report = InputReport()
    warnings: list[str] = []
    docs = list(read_documents(sources, report, warn=warnings.append, **kw))
    return docs, report, warnings


def _stdin(data: bytes) -> io.TextIOWrapper:
    """A stream like sys.stdin: text on top of bytes."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")


def _triple(doc: str) -> Triple:
    head = Mention(0, 9, "ORG", "Microsoft")
    tail = Mention(25, 35, "PERSON", "Bill Gates")
    return Triple(doc, 0, "founded_by", head, tail, 0.9, "tkre", "Microsoft was founded by Bill Gates.")


# ----------------------------------------------------------------------------- decoding


def test_one_bad_byte_in_jsonl_skips_that_line_and_keeps_all_others(tmp_path: Path) -> None:
    lines = [json.dumps({"id": f"d{i}", "text": f"Company {i} hired Person {i}."}).encode() for i in range(1, 2901)]
    lines[1499] = b'{"id": "d1500", "text": "caf\xe9 latin-1"}'
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    docs, report, warnings = _read([str(path)])
    assert len(docs) == 2899 and report.documents == 2899
    assert [d.id for d in docs[1498:1500]] == ["d1499", "d1501"]
    assert len(report.skipped) == 1
    source, reason = report.skipped[0]
    assert source == f"{path}:1500" and "not UTF-8" in reason and "0xe9" in reason
    assert warnings == [f"skipping {path}:1500: {reason}"]


def test_a_byte_order_mark_is_accepted_at_file_and_stdin_start(tmp_path: Path) -> None:
    bom = b"\xef\xbb\xbf"
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_bytes(bom + b'{"id": "d1", "text": "First."}\n{"id": "d2", "text": "Second."}\n')
    docs, report, _ = _read([str(jsonl)])
    assert [d.id for d in docs] == ["d1", "d2"] and not report.skipped
    text = tmp_path / "a.txt"
    text.write_bytes(bom + b"Plain text.")
    docs, _, _ = _read([str(text)])
    assert docs[0].text == "Plain text."
    docs, report, _ = _read(["-"], stdin=_stdin(bom + b'{"id": "s1", "text": "From stdin."}\n'))
    assert [d.id for d in docs] == ["s1"] and not report.skipped  # sniffed as JSONL despite the BOM
    docs, _, _ = _read(["-"], stdin=_stdin(bom + b"Stdin text."))
    assert docs[0].text == "Stdin text."


def test_a_lone_surrogate_in_text_or_id_skips_the_line(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "d1", "text": "bad \\ud800 text"}\n'
                    '{"id": "\\udfff", "text": "Fine text."}\n'
                    '{"id": "d3", "text": "Good text."}\n', encoding="utf-8")
    docs, report, _ = _read([str(path)])
    assert [d.id for d in docs] == ["d3"]
    reasons = dict(report.skipped)
    assert '"text" has a lone surrogate U+D800' in reasons[f"{path}:1"]
    assert '"id" has a lone surrogate U+DFFF' in reasons[f"{path}:2"]


def test_latin1_on_stdin_warns_instead_of_crashing() -> None:
    docs, report, warnings = _read(["-"], stdin=_stdin(b"Ada works at Acme.\ncaf\xe9 au lait.\nLast line.\n"))
    assert "".join(d.text for d in docs) == "Ada works at Acme.\ncaf\ufffd au lait.\nLast line.\n"
    assert len(warnings) == 1 and warnings[0].startswith("<stdin>:2: not UTF-8 (byte 0xe9")
    docs, report, _ = _read(["-"], stdin=_stdin(b'{"id": "a", "text": "A."}\n{"id": "b\xe9", "text": "B."}\n'
                                                  b'{"id": "c", "text": "C."}\n'))
    assert [d.id for d in docs] == ["a", "c"] and report.skipped[0][0] == "<stdin>:2"


def test_a_text_file_that_is_not_utf8_is_skipped_whole_even_past_the_first_chunk(tmp_path: Path) -> None:
    path = tmp_path / "late.txt"
    path.write_bytes(("Ada works at Acme.\n\n" * 2000).encode() + b"caf\xe9\n")
    docs, report, _ = _read([str(path)], chunk_chars=500)
    assert docs == [] and report.documents == 0
    assert report.skipped[0][0] == str(path) and "not UTF-8 text (byte 40003" in report.skipped[0][1]


def test_latin1_on_real_stdin_has_no_traceback() -> None:
    env = {**os.environ, "FSRE_THREADS": "1", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        from fsre_cli.inputs import InputReport, StreamFeed, read_documents
        from fsre_cli.console import Log
        docs = list(read_documents(["-"], InputReport(), warn=Log().warn, stdin=StreamFeed(sys.stdin)))
        print(len(docs), ascii(docs[0].text))
    """)], input=b"caf\xe9 au lait.\n", capture_output=True, env=env, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr and b"<stdin>:1: not UTF-8" in proc.stderr
    assert proc.stdout.decode().strip() == "1 'caf\\ufffd au lait.\\n'"


# ----------------------------------------------------------------------------- ids


def test_a_newline_in_an_id_is_one_entry_in_the_progress_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    writer = TripleWriter(out)
    ids = ["a\nb", "c", '"quoted"', "cr\rlf"]
    for doc_id in ids:
        writer.write([_triple(doc_id)])
        writer.finish_document(doc_id)
    writer.close()
    # an ordinary id stays as it is (the format older versions read); the others are JSON strings
    assert (tmp_path / "out.jsonl.progress").read_text() == '"a\\nb"\nc\n"\\"quoted\\""\n"cr\\rlf"\n'
    resumed = TripleWriter(out, resume=True)
    resumed.close()
    assert resumed.done == set(ids)  # not {"a", "b", ...}: "a" and "b" were never processed
    assert [json.loads(line)["doc"] for line in out.read_text().splitlines()] == ids


def test_an_old_plain_progress_file_still_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps(_triple("d1").to_record()) + "\n" + json.dumps(_triple("d2").to_record()) + "\n")
    (tmp_path / "out.jsonl.progress").write_text('d1\n"d2\n')  # the old format: ids as they are
    resumed = TripleWriter(out, resume=True)
    resumed.close()
    assert resumed.done == {"d1", '"d2'}
    assert [json.loads(line)["doc"] for line in out.read_text().splitlines()] == ["d1"]


def test_a_repeated_id_is_named_once(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    big = "Ada works at Acme. " * 100
    path.write_text("\n".join(json.dumps(r) for r in [
        {"id": "big", "text": big}, {"id": "d1", "text": "One."}, {"id": "d1", "text": "Two."},
        {"id": "d1", "text": "Three."}]) + "\n")
    docs, report, warnings = _read([str(path)], chunk_chars=200)
    assert sum(d.id == "big" for d in docs) > 5  # chunks of one document share its id: no warning
    assert len(warnings) == 1 and warnings[0].startswith(f'{path}:3: document id "d1" repeats')
    text = tmp_path / "a.txt"
    text.write_text("Alpha.")
    _, _, warnings = _read([str(text), str(text)])
    assert len(warnings) == 1 and str(text) in warnings[0]


def test_files_from_with_odd_bytes_and_names(tmp_path: Path) -> None:
    odd = os.fsencode(tmp_path) + b"/caf\xe9.txt"
    with open(odd, "wb") as fh:
        fh.write(b"Ada works at Acme.")
    listing = tmp_path / "list.txt"
    listing.write_bytes(odd + b"\n" + b"x" * 5000 + b"\n")
    paths = expand_paths([], files_from=str(listing))
    assert len(paths) == 2
    docs, report, _ = _read(paths)
    assert len(docs) == 1 and docs[0].id.endswith("caf\\xe9.txt")
    assert "too long" in report.skipped[0][1]
    writer = TripleWriter(tmp_path / "out.jsonl")  # the id can be written
    writer.write([_triple(docs[0].id)])
    writer.close()
    stdin_list = _stdin(odd + b"\n")
    assert expand_paths([], files_from="-", stdin=stdin_list) == [os.fsdecode(odd)]


# ----------------------------------------------------------------------------- outputs


def test_a_full_device_is_a_one_line_error_and_gets_no_progress_file(tmp_path: Path) -> None:
    full, null = tmp_path / "full", tmp_path / "null"  # links, so that a failing run litters tmp_path, not /dev
    full.symlink_to("/dev/full")
    null.symlink_to("/dev/null")
    writer = TripleWriter(full)
    with pytest.raises(FsreError, match=f"^cannot write {full}: no space left on device$"):
        writer.write([_triple("d1")])
    writer.close()
    writer = TripleWriter(null)
    writer.write([_triple("d1")])
    writer.finish_document("d1")
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "null"]  # no .progress beside a device
    with pytest.raises(UsageError, match=f"--resume needs a regular output file; {null} is a character device"):
        TripleWriter(null, resume=True)


def test_a_disk_full_mid_run_leaves_only_whole_lines(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse writes past a size, as a full disk would."""
    out = tmp_path / "out.jsonl"
    script = textwrap.dedent(f"""
        import resource, signal, sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from fsre_cli.documents import Mention, Triple
        from fsre_cli.errors import FsreError
        from fsre_cli.outputs import TripleWriter
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (5000, 5000))
        writer = TripleWriter(Path({str(out)!r}))
        m = Mention(0, 3, "PERSON", "Ada")
        try:
            for i in range(1000):
                writer.write([Triple(f"d{{i}}", j, "r", m, m, 0.5, "tkre", "Ada.") for j in range(3)])
                writer.finish_document(f"d{{i}}")
        except FsreError as exc:
            print(exc)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"cannot write {out}: file too large")
    data = out.read_bytes()
    assert 4000 < len(data) <= 5000 and data.endswith(b"\n")
    records = [json.loads(line) for line in data.splitlines()]
    assert len(records) % 3 == 0  # each document's lines were written whole or not at all


def test_output_into_a_missing_directory_or_onto_a_directory_fails_before_work(tmp_path: Path) -> None:
    from fsre_cli.outputs import check_output_path

    with pytest.raises(UsageError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "out.jsonl")
    with pytest.raises(UsageError, match="is a directory"):
        check_output_path(tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        TripleWriter(tmp_path / "nope" / "out.jsonl")
    with pytest.raises(UsageError, match="is a directory"):
        TripleWriter(tmp_path)
    assert check_output_path(tmp_path / "new.jsonl") is True
    assert check_output_path(Path("/dev/null")) is False


# ----------------------------------------------------------------------------- chunking


def _check_chunks(docs, text: str, limit: int) -> None:
    assert len(docs) > 1 and [d.final for d in docs] == [False] * (len(docs) - 1) + [True]
    assert "".join(d.text for d in docs) == text
    for d in docs:
        assert len(d.text) <= limit
        assert text[d.offset : d.offset + len(d.text)] == d.text


def test_a_multi_megabyte_single_line_is_cut_at_sentence_ends(tmp_path: Path) -> None:
    from fsre_cli.inputs import CHUNK_CHARS

    line = "".join(f"Company {i} hired Person {i} in City {i}. " for i in range(120_000))  # ~5 MB, no newline
    path = tmp_path / "line.txt"
    path.write_text(line)
    docs, report, _ = _read([str(path)])
    assert report.documents == 1
    _check_chunks(docs, line, CHUNK_CHARS)
    assert all(d.text.endswith(". ") for d in docs)  # cut after a sentence, never inside one
    docs, _, _ = _read(["-"], stdin=_stdin(line.encode()))
    _check_chunks(docs, line, CHUNK_CHARS)


def test_a_line_without_any_break_is_cut_hard_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("x" * 2500)
    docs, _, _ = _read([str(path)], chunk_chars=1000)
    assert [len(d.text) for d in docs] == [1000, 1000, 500]
    docs, _, _ = _read(["-"], stdin=_stdin(b"x" * 2500), chunk_chars=1000)  # a line of a stream too
    assert [len(d.text) for d in docs] == [1000, 1000, 500]
    path.write_text("words " * 500)
    docs, _, _ = _read([str(path)], chunk_chars=1000)
    _check_chunks(docs, "words " * 500, 1000)
    assert all(d.text.endswith(" ") for d in docs)  # after a word, not inside one


def test_a_long_jsonl_text_arrives_in_chunks_with_its_entities(tmp_path: Path) -> None:
    sentence = "Ada Lovelace works at Acme Corp in London. "
    text = sentence * 2000  # 86,000 characters
    entities = []
    for i in range(0, len(text), len(sentence)):
        entities += [{"start": i, "end": i + 12, "type": "PERSON"}, {"start": i + 22, "end": i + 31, "type": "ORG"}]
    entities.append({"start": 5, "end": len(sentence) * 3 - 2, "type": "LONG"})  # crosses the first natural cuts
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"id": "big", "text": text, "entities": entities}) + "\n")
    limit = 10_000
    docs, report, _ = _read([str(path)], chunk_chars=limit)
    assert report.documents == 1 and {d.id for d in docs} == {"big"}
    _check_chunks(docs, text, limit)
    seen = []
    for d in docs:
        for e in d.entities:
            assert 0 <= e.start < e.end <= len(d.text)
            seen.append((e.start + d.offset, e.end + d.offset, e.type))
    assert sorted(seen) == sorted((e["start"], e["end"], e["type"]) for e in entities)  # none lost, none cut


def test_an_entity_longer_than_a_chunk_is_kept_whole(tmp_path: Path) -> None:
    text = "A" * 3000 + " tail."
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"id": "l", "text": text, "entities": [{"start": 0, "end": 3000, "type": "X"}]}))
    docs, _, _ = _read([str(path)], chunk_chars=1000)
    assert docs[0].text == "A" * 3000 and docs[0].entities[0].end == 3000
    assert "".join(d.text for d in docs) == text


# ----------------------------------------------------------------------------- numbers and spans


@pytest.mark.parametrize("line,reason", [
    ('{"id": "d", "text": "Ada.", "entities": [{"start": 0, "end": 1e400, "type": "P"}]}',
     "entities[0].end must be a JSON integer, not Infinity"),
    ('{"id": "d", "text": "Ada.", "entities": [{"start": "0", "end": 3, "type": "P"}]}',
     'entities[0].start must be a JSON integer, not "0"'),
    ('{"id": "d", "text": "Ada Lovelace.", "entities": [{"start": 0, "end": 3.9, "type": "P"}]}',
     "entities[0].end must be a JSON integer, not 3.9"),
    ('{"id": "d", "text": "Ada.", "entities": [{"start": false, "end": true, "type": "P"}]}',
     "entities[0].start must be a JSON integer, not false"),
    ('{"id": "d", "text": "Ada.", "entities": [{"start": 0, "end": 3, "type": 7}]}',
     "entities[0].type must be a string, not 7"),
    ('[' * 100_000 + ']' * 100_000, "invalid JSON (nested too deeply)"),
    ('{"id": "d7", "text": "Ada.", "entities": [{"start": 0, "end": 3, "type": "P"}, '
     '{"start": 0, "end": 1, "type": "P"}, {"start": 1, "end": 2, "type": "P"}, {"start": 3, "end": 1, "type": "P"}]}',
     'document "d7": entity 3 [3, 1) ends before it starts'),
    ('{"id": "d", "text": "Ada.", "entities": [{"start": -1, "end": 3, "type": "P"}]}',
     'document "d": entity 0 [-1, 3) starts before the text'),
    ('{"id": "d", "text": "Ada.", "entities": [{"start": 2, "end": 40, "type": "P"}]}',
     'document "d": entity 0 [2, 40) ends after the text (length 4)'),
    ('{"id": "d", "text": "Ada.", "entities": [{"start": 2, "end": 2, "type": "P"}]}',
     'document "d": entity 0 [2, 2) is empty'),
    ('{"id": "d", "text": "Ada  x", "entities": [{"start": 3, "end": 5, "type": "P"}]}',
     'document "d": entity 0 [3, 5) covers only whitespace'),
    ('{"id": [1], "text": "Ada."}', '"id" must be a string or an integer, not [1]'),
])
def test_bad_numbers_and_spans_skip_the_line_with_a_reason(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "ok1", "text": "Fine."}\n' + line + '\n{"id": "ok3", "text": "Fine."}\n')
    docs, report, _ = _read([str(path)])
    assert [d.id for d in docs] == ["ok1", "ok3"]
    assert report.skipped[0][0] == f"{path}:2" and report.skipped[0][1].startswith(reason)


def test_entity_problem_is_reusable() -> None:
    from fsre_cli.documents import EntitySpan, entity_problem

    assert entity_problem("Ada works.", EntitySpan(0, 3, "P"), 0) is None
    assert entity_problem("Ada works.", (120, 95), 3) == "entity 3 [120, 95) ends before it starts"
    assert entity_problem("Ada works.", EntitySpan(3, 4, "P"), 1) == "entity 1 [3, 4) covers only whitespace"


def test_the_cli_on_a_bad_line_and_a_full_disk_says_one_line_each(tmp_path: Path) -> None:
    from test_cli import DOC, SCHEMA  # tests/ is on sys.path (no __init__.py)

    (tmp_path / "s.yaml").write_text(SCHEMA)
    docs = tmp_path / "docs.jsonl"
    docs.write_bytes(json.dumps(DOC).encode() + b'\n{"id": "bad", "text": "caf\xe9"}\n'
                     + json.dumps({**DOC, "id": "d3"}).encode() + b"\n")
    full = tmp_path / "full"
    full.symlink_to("/dev/full")
    env = {**os.environ, "FSRE_THREADS": "1", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "fsre_cli", "extract", str(docs), "--schema", str(tmp_path / "s.yaml"),
                           "--method", "prototype", "--min-score", "-1", "-o", str(full)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"skipping {docs}:2: not UTF-8 (byte 0xe9" in proc.stderr
    assert f"error: cannot write {full}: no space left on device" in proc.stderr
    assert not (tmp_path / "full.progress").exists()


def test_resume_without_a_progress_file_refuses_instead_of_emptying_the_output(tmp_path: Path) -> None:
    from fsre_cli.errors import UsageError
    from fsre_cli.outputs import TripleWriter

    out = tmp_path / "out.jsonl"
    out.write_text('{"doc": "d1", "relation": "r"}\n')
    with pytest.raises(UsageError, match="progress is missing"):
        TripleWriter(out, resume=True)
    assert out.read_text() == '{"doc": "d1", "relation": "r"}\n'
