import csv
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from provenance.engine.readers import (
    MAX_META_BYTES,
    IngestFileError,
    ReadScope,
    detect_format,
    open_reader,
)


def rows_of(path, **opts):
    return list(open_reader(path, **opts))


def test_jsonl_reports_each_bad_line_with_its_number_and_reason(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(
        b'{"text": "good one", "id": "a", "url": "http://x"}\n'
        b"{not json}\n"
        b'{"title": "no text"}\n'
        b'{"text": 42}\n'
        b'["a list"]\n'
        b"\n"
        b'{"text": "bad \xff bytes"}\n'
        b'{"text": "' + b"x" * 200 + b'"}\n'
        b'{"text": "   "}\n'
    )
    rows = rows_of(path, max_bytes=100)
    good = [r for r in rows if r.error is None]
    assert [(r.text, r.meta) for r in good] == [("good one", {"id": "a", "url": "http://x"})]
    assert good[0].meta_dropped is False
    errors = {r.line: r.error for r in rows if r.error}
    assert errors[2].startswith("invalid JSON")
    assert errors[3] == "missing text field 'text'"
    assert errors[4] == "field 'text' is not a string"
    assert errors[5] == "a line must be a JSON object"
    assert 6 not in errors  # blank lines are skipped, not errors
    assert errors[7].startswith("not valid UTF-8")
    assert "over the 100-byte limit" in errors[8]
    assert errors[9] == "text is empty"
    assert all(r.file == "d.jsonl" for r in rows)


def test_jsonl_skips_an_enormous_line_without_reading_it_whole(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"text": "' + b"y" * 500_000 + b'"}\n{"text": "after"}\n')
    rows = rows_of(path, max_bytes=1000)
    assert rows[0].error and "limit" in rows[0].error and rows[0].line == 1
    assert rows[1].text == "after" and rows[1].line == 2


def test_csv_finds_the_text_column_and_numbers_multiline_records(tmp_path):
    path = tmp_path / "d.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "text"])
        writer.writerow(["1", "line one\nline two"])
        writer.writerow(["2"])
        writer.writerow(["3", "third"])
    rows = rows_of(path)
    assert [(r.line, r.text, r.error) for r in rows] == [
        (2, "line one\nline two", None),
        (4, None, "1 fields, the header has 2"),
        (5, "third", None),
    ]


def test_csv_without_the_text_column_is_a_file_error_naming_the_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,body\n1,hello\n")
    with pytest.raises(IngestFileError, match="no column 'text'.*id, body"):
        rows_of(path)


def test_csv_undecodable_line_is_reported_and_the_rest_continues(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text\nfine\n\xff\xfe broken\nalso fine\n")
    rows = rows_of(path)
    assert [(r.line, r.text, r.error is not None) for r in rows] == [
        (2, "fine", False), (3, None, True), (4, "also fine", False)]


def test_folder_reads_txt_and_md_in_a_stable_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.md").write_text("second")
    (tmp_path / "a.txt").write_text("first")
    (tmp_path / "skip.bin").write_bytes(b"\x00")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xff")
    rows = rows_of(tmp_path)
    assert [(r.file, r.text) for r in rows if not r.error] == [("a.txt", "first"),
                                                               ("b/2.md", "second")]
    assert [(r.file, r.line) for r in rows if r.error] == [("bad.txt", None)]


def test_parquet_streams_rows_and_reports_nulls(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["a", None, "c"], "id": ["1", "2", "3"]}), path)
    rows = rows_of(path)
    assert [(r.line, r.text, r.meta.get("id")) for r in rows if not r.error] == [
        (1, "a", "1"), (3, "c", "3")]
    assert [(r.line, r.error) for r in rows if r.error] == [(2, "missing text field 'text'")]


def test_parquet_without_the_text_column_is_a_file_error(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"body": ["a"]}), path)
    with pytest.raises(IngestFileError, match="no column 'text'"):
        open_reader(path)


def test_unknown_suffix_and_missing_path_are_file_errors(tmp_path):
    with pytest.raises(IngestFileError, match="cannot tell the format"):
        detect_format(tmp_path / "x.xlsx")
    with pytest.raises(IngestFileError, match="no such file"):
        open_reader(tmp_path / "missing.jsonl")
    corrupt = tmp_path / "c.parquet"
    corrupt.write_bytes(b"not parquet")
    with pytest.raises(IngestFileError, match="not a readable Parquet"):
        open_reader(corrupt)


def test_progress_position_reaches_the_total(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"t{i}"}) for i in range(50)) + "\n")
    reader = open_reader(path)
    list(reader)
    assert reader.position == reader.total == path.stat().st_size


def test_a_lone_surrogate_is_a_bad_row_not_a_failed_file(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "lone \\ud800 surrogate"}\n{"text": "fine"}\n')
    rows = rows_of(path)
    assert "unpaired surrogate" in rows[0].error and rows[1].text == "fine"


def test_a_csv_field_over_the_limit_is_a_bad_row_and_reading_goes_on(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text\n"' + "z" * 300_000 + '"\nafter\n')
    rows = rows_of(path, max_bytes=1000)
    assert rows[0].error is not None
    assert rows[-1].text == "after"


def test_a_read_scope_lets_the_closer_root_decide(tmp_path):
    state = tmp_path / "state"
    scope = ReadScope(allowed=(tmp_path / "imports", state / "artifacts" / "uploads"),
                      denied=(state,))
    assert scope.refuses(tmp_path / "imports" / "a.txt") is None
    assert scope.refuses(state / "artifacts" / "uploads" / "x" / "a.jsonl") is None
    assert "outside the import folders" in scope.refuses(tmp_path / "elsewhere.txt")
    assert "outside the import folders" in scope.refuses(state / "artifacts" / "model.bin")
    inside = ReadScope(allowed=(tmp_path,), denied=(state,))  # an import folder above the state
    assert "state folder" in inside.refuses(state / "secret_key")
    assert ReadScope().refuses(tmp_path / "anything") is None  # no scope given: the engine alone


def test_a_folder_reader_reports_links_out_of_its_scope_and_special_files(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("kept")
    (folder / "out.txt").symlink_to("/etc/hostname")
    os.mkfifo(folder / "pipe.txt")
    rows = rows_of(folder, scope=ReadScope(allowed=(folder,)))
    assert [(r.file, r.text) for r in rows if r.error is None] == [("a.txt", "kept")]
    assert {r.file: r.error for r in rows if r.error} == {
        "out.txt": "its real path is outside the import folders (a link out of them): not read",
        "pipe.txt": "not a regular file: not read"}


def test_a_deeply_nested_jsonl_line_is_one_bad_row(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"text": "first"}\n'
                    + '{"text": "deep", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
                    + '{"text": "nested but fine", "x": ' + "[" * 30 + "]" * 30 + "}\n"
                    + '{"text": "too deep", "x": ' + "[" * 40 + "]" * 40 + "}\n"
                    + 'null\n{"text": "last"}\n')
    rows = rows_of(path)
    assert [r.text for r in rows if r.error is None] == ["first", "nested but fine", "last"]
    assert [(r.line, r.error) for r in rows if r.error] == [
        (2, "JSON nested deeper than 32 levels (the limit)"),
        (4, "JSON nested deeper than 32 levels (the limit)"),
        (5, "a line must be a JSON object")]


def test_parquet_page_headers_give_each_pages_size_without_decompressing(tmp_path):
    from provenance.engine.parquet_pages import page_sizes

    path = tmp_path / "d.parquet"
    texts = [f"row {i} " + "x" * (i % 700) for i in range(3000)]
    pq.write_table(pa.table({"text": texts}), path, compression="zstd", data_page_size=16_384,
                   write_batch_size=16,
                   use_dictionary=False)
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(0)
    with path.open("rb") as handle:
        sizes = list(page_sizes(handle, chunk.data_page_offset, chunk.total_compressed_size))
    assert len(sizes) > 10  # several pages, each found from the one before
    assert sum(u for u, _ in sizes) <= chunk.total_uncompressed_size
    # the rest is the headers (with their statistics); the pages end where the chunk does
    assert sum(u for u, _ in sizes) > chunk.total_uncompressed_size - 2000 * len(sizes)
    assert max(u for u, _ in sizes) < 3 * 16_384


def test_a_parquet_row_group_with_an_oversized_page_is_refused_and_the_rest_read(tmp_path,
                                                                                monkeypatch):
    from provenance.engine.readers import ParquetReader

    monkeypatch.setattr(ParquetReader, "MIN_PAGE_LIMIT", 4096)
    path = tmp_path / "d.parquet"
    with pq.ParquetWriter(path, pa.schema([("text", pa.string()), ("id", pa.string())]),
                          compression="zstd") as writer:
        writer.write_table(pa.table({"text": ["one", "two"], "id": ["1", "2"]}))
        writer.write_table(pa.table({"text": ["b" * 50_000, "small"], "id": ["3", "4"]}))
        writer.write_table(pa.table({"text": ["three", "c" * 900], "id": ["5", "6"]}))
    rows = rows_of(path, max_bytes=500)
    assert [(r.line, r.text, r.meta["id"]) for r in rows if not r.error] == [
        (1, "one", "1"), (2, "two", "2"), (5, "three", "5")]
    assert [(r.line, r.error) for r in rows if r.error] == [
        (3, "row group 2 (rows 3 to 4): column 'text' has a page of 50013 bytes uncompressed, "
            "over the 4096-byte page limit; not read"),  # its dictionary: both strings
        (6, "text is 900 bytes, over the 500-byte limit")]


BOMB_READ = """
import resource, sys
from pathlib import Path
from provenance.engine.readers import open_reader
reader = open_reader(Path(sys.argv[1]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows = list(reader)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(len(rows), rows[-1].error, grown // 1024)
"""


def test_a_parquet_decompression_bomb_is_refused_before_it_inflates(tmp_path):
    """The outside probe's file: a few KB of zstd holding one 300 MB string grew the worker by
    1.6 GB before the per-document limit applied. Here 120 MB, read in a fresh process whose
    peak memory is measured around the read."""
    import subprocess
    import sys

    path = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"text": ["ok", "a" * (120 << 20)]}), path, compression="zstd")
    assert path.stat().st_size < 100_000
    done = subprocess.run([sys.executable, "-c", BOMB_READ, str(path)], capture_output=True,
                          text=True, check=True, timeout=120)
    count, *error, grown_mb = done.stdout.split()
    assert count == "1" and "over the 33554432-byte page limit; not read" in " ".join(error)
    assert int(grown_mb) < 40, done.stdout  # the string alone would be 120 MB


@pytest.mark.parametrize("content", [
    b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 8,  # a zip archive
    bytes(range(128, 256)) * 40,  # no NUL, but nothing like UTF-8
    '{"text": "utf-16"}\n'.encode("utf-16"),
])
def test_a_binary_file_named_jsonl_or_csv_is_refused_once(tmp_path, content):
    for name in ("data.jsonl", "data.csv"):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(IngestFileError, match="binary file|not UTF-8 text"):
            open_reader(path)


def test_a_stray_byte_stays_one_bad_row_and_json_errors_read_well(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"text": "good"}\n{"text": "caf\xe9"}\n{"text": "tab\there"}\n')
    rows = rows_of(path)
    assert [r.text for r in rows if r.error is None] == ["good"]
    assert [r.error for r in rows if r.error] == [
        "not valid UTF-8 at byte 13", "invalid JSON: Invalid control character at column 14"]


def test_every_field_but_the_text_is_kept_as_json(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "a quotation", "author": "Ada", "tags": ["x", 1],
                                "score": float("nan"), "nested": {"k": "v\u0000"}, "empty": "",
                                "n": None}) + "\n"
                    + json.dumps({"text": "big", "blob": "x" * (MAX_META_BYTES + 1)}) + "\n")
    first, second = rows_of(path)
    assert first.meta == {"author": "Ada", "tags": ["x", 1], "score": None,
                          "nested": {"k": "v"}}
    assert second.text == "big" and second.meta == {} and second.meta_dropped


def test_parquet_and_csv_keep_their_other_columns(tmp_path):
    import datetime

    table = pa.table({"text": ["one"], "when": [datetime.date(2024, 5, 1)], "rank": [3],
                      "raw": [b"\x01\x02"]})
    pq.write_table(table, tmp_path / "d.parquet")
    (row,) = rows_of(tmp_path / "d.parquet")
    assert row.meta == {"when": "2024-05-01", "rank": 3, "raw": "0102"}
    (tmp_path / "d.csv").write_text("text,author,title\nsome text,Ada,On Engines\n")
    (row,) = rows_of(tmp_path / "d.csv")
    assert row.meta == {"author": "Ada", "title": "On Engines"}
