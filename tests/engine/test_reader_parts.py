"""A sharded ingest reads its input in parts: the parts together are the whole input, row for
row, with the whole input's line and row numbers."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from provenance.engine.readers import CsvReader, Part, open_reader


def rows(path, part=None, **opts):
    reader = open_reader(path, part=part, **opts)
    got = list(reader)
    assert reader.position == reader.total  # each part's progress reaches its own total
    return got


def jsonl_with_every_kind_of_line(tmp_path):
    lines = []
    for i in range(300):
        if i % 37 == 0:
            lines.append("{not json")
        elif i % 53 == 0:
            lines.append("")  # blank: skipped, still a line
        elif i % 71 == 0:
            lines.append(json.dumps({"text": "x" * 5000}))  # over the limit below
        else:
            lines.append(json.dumps({"text": f"document {i} " + "word " * (i % 17), "n": i}))
    path = tmp_path / "in.jsonl"
    path.write_bytes(("\r\n".join(lines[:150]) + "\n" + "\n".join(lines[150:])).encode())
    return path


@pytest.mark.parametrize("pieces", [1, 2, 3, 7, 40, 10_000])
def test_jsonl_parts_read_together_are_the_whole_file(tmp_path, pieces):
    path = jsonl_with_every_kind_of_line(tmp_path)
    whole = rows(path, max_bytes=600)
    parts = open_reader(path).parts(pieces)
    assert 1 <= len(parts) <= pieces
    assert parts[0].start == 0 and parts[-1].end == path.stat().st_size
    assert all(a.end == b.start for a, b in zip(parts, parts[1:], strict=False))
    data = path.read_bytes()
    assert all(data[p.start - 1:p.start] == b"\n" for p in parts[1:])  # a line's first byte
    pieced = [row for part in parts for row in rows(path, part, max_bytes=600)]
    assert pieced == whole
    assert {r.line for r in whole if r.error} >= {1, 38, 75}  # the bad lines, numbered


def test_a_folder_is_cut_into_runs_of_files(tmp_path):
    for i in range(23):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"{i:03d}.txt").write_text(f"file {i} " * (i + 1))
    path = tmp_path / "in"
    parts = open_reader(path).parts(4)
    assert len(parts) == 4 and [p.end for p in parts][-1] == 23
    assert [r for p in parts for r in rows(path, p)] == rows(path)


def test_parquet_is_cut_by_row_groups_and_keeps_row_numbers(tmp_path):
    path = tmp_path / "in.parquet"
    texts = [f"row {i}" if i % 9 else None for i in range(100)]
    pq.write_table(pa.table({"text": texts, "n": list(range(100))}), path, row_group_size=15)
    parts = open_reader(path).parts(3)
    assert len(parts) == 3 and parts[1].before == sum(
        pq.ParquetFile(path).metadata.row_group(g).num_rows for g in range(parts[1].start))
    whole = rows(path)
    assert [r for p in parts for r in rows(path, p)] == whole
    assert [r.line for r in whole if r.error] == [i + 1 for i in range(0, 100, 9)]


def test_csv_is_not_cut(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('text\n"a\nb"\nc\n')
    assert CsvReader(path).parts(4) == []


def test_a_part_of_one_line_each(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b"}\n')
    assert open_reader(path).parts(5) == [Part(0, 14, 0), Part(14, 28, 1)]
