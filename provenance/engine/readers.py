"""Streaming readers for ingest: JSONL, CSV, a folder of .txt/.md files, Parquet.

Each reader yields one `Row` per record, good or bad, and never holds a whole file in memory: lines
are read with a bounded length, CSV is parsed from a line stream, Parquet in record batches. A bad
record becomes a Row with `error` set (file, line and reason); only a file that cannot be read at
all raises `IngestFileError`.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from provenance.engine.canonical import MAX_JSON_DEPTH, json_depth

FORMATS = ("jsonl", "csv", "folder", "parquet")
FOLDER_SUFFIXES = {".txt", ".md", ".markdown"}
MAX_META_BYTES = 64 * 1024  # a record's metadata (its fields other than the text), as JSON


class IngestFileError(ValueError):
    """The input as a whole cannot be read (missing, unknown format, no text column...)."""


@dataclass(frozen=True)
class Row:
    file: str
    line: int | None  # 1-based line (JSONL, CSV), row (Parquet); None for a whole file
    text: str | None = None
    error: str | None = None
    # The record's other fields (author, title, id, url...) as JSON values; {} for a row whose
    # metadata was over MAX_META_BYTES (the text is kept; the job's report counts the row).
    meta: dict[str, object] = field(default_factory=dict)
    meta_dropped: bool = False


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    by_suffix = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
                 ".parquet": "parquet", ".pq": "parquet", ".txt": "folder", ".md": "folder"}
    if suffix not in by_suffix:
        raise IngestFileError(f"{path.name}: cannot tell the format from "
                              f"'{suffix or 'no suffix'}'; give one of {', '.join(FORMATS)}")
    return by_suffix[suffix]


def _depth_under(path: Path, roots: tuple[Path, ...]) -> int:
    """How many parts the closest of `roots` that holds `path` has (0: none holds it)."""
    return max((len(root.parts) for root in roots if path.is_relative_to(root)), default=0)


@dataclass(frozen=True)
class ReadScope:
    """Where a reader may read, by real path (links resolved): under one of `allowed` (empty:
    anywhere) and not under one of `denied`, the closer root deciding when both hold a file (so
    an uploads folder can sit inside a denied state folder, and a denied folder given as the
    input itself stays denied)."""

    allowed: tuple[Path, ...] = ()
    denied: tuple[Path, ...] = ()

    def refuses(self, path: Path) -> str | None:
        real = path.resolve()
        inside = _depth_under(real, self.allowed) if self.allowed else len(real.parts)
        if inside == 0:
            return "its real path is outside the import folders (a link out of them): not read"
        if _depth_under(real, self.denied) >= inside:
            return "its real path is inside Trailmark's state folder: not read"
        return None


class Reader:
    """Iterate rows; `position` / `total` measure progress in `unit`s."""

    unit = "bytes"

    def __init__(self, path: Path, *, text_field: str = "text", max_bytes: int = 1 << 20,
                 scope: ReadScope = ReadScope()) -> None:
        if not path.exists():
            raise IngestFileError(f"{path}: no such file or folder")
        refused = scope.refuses(path)
        if refused:
            raise IngestFileError(f"{path.name}: {refused}")
        self.path = path
        self.text_field = text_field
        self.max_bytes = max_bytes
        self.scope = scope
        self.position = 0
        self.total = self._total()

    def _total(self) -> int:
        return self.path.stat().st_size

    def __iter__(self) -> Iterator[Row]:
        raise NotImplementedError

    def _checked(self, file: str, line: int | None, text: object,
                 meta: dict[str, object]) -> Row:
        if text is None:
            return Row(file, line, error=f"missing text field '{self.text_field}'")
        if not isinstance(text, str):
            return Row(file, line, error=f"field '{self.text_field}' is not a string")
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:  # e.g. "\ud800" in JSON: a lone surrogate
            return Row(file, line, error=f"text is not valid Unicode (unpaired surrogate at "
                                         f"character {exc.start})")
        if size > self.max_bytes:
            return Row(file, line,
                       error=f"text is {size} bytes, over the {self.max_bytes}-byte limit")
        if not text.strip():
            return Row(file, line, error="text is empty")
        if len(json.dumps(meta, ensure_ascii=False).encode()) > MAX_META_BYTES:
            return Row(file, line, text=text, meta={}, meta_dropped=True)
        return Row(file, line, text=text, meta=meta)


SNIFF_BYTES = 8192


def _refuse_binary(path: Path) -> None:
    """A binary file (an archive or a Parquet file renamed .jsonl, say) is refused once, as a
    whole, instead of as one bad row per line: NUL bytes in its first 8 KiB, or mostly bytes
    that are not UTF-8 (a stray byte on one line stays that line's problem)."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if b"\x00" in head:
        raise IngestFileError(f"{path.name}: a binary file (NUL bytes in its first "
                              f"{SNIFF_BYTES} bytes), not {path.suffix.lstrip('.') or 'text'} "
                              f"text (or UTF-16: convert it to UTF-8 first)")
    sample = head.decode("utf-8", errors="replace")
    if sample and sample.count("\ufffd") > len(sample) // 10:
        raise IngestFileError(f"{path.name}: not UTF-8 text (most of its first {SNIFF_BYTES} "
                              f"bytes are not UTF-8): a binary file, or another encoding to "
                              f"convert to UTF-8 first")


def _bounded_lines(handle: IO[bytes], limit: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, bytes or None when over `limit`, bytes consumed so far)."""
    number = 0
    consumed = 0
    while True:
        chunk = handle.readline(limit + 1)
        if not chunk:
            return
        number += 1
        consumed += len(chunk)
        if len(chunk) > limit and not chunk.endswith(b"\n"):
            while chunk and not chunk.endswith(b"\n"):  # skip the rest of an oversized line
                chunk = handle.readline(1 << 20)
                consumed += len(chunk)
            yield number, None, consumed
            continue
        yield number, chunk, consumed


def _jsonable(value: object) -> object:
    """A record's value as JSON: strings without NUL (PostgreSQL cannot store it) or lone
    surrogates, numbers (NaN and infinities as null), lists and objects; anything else (dates,
    decimals, bytes from Parquet) as its text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return _jsonable(value.isoformat() if hasattr(value, "isoformat") else str(value))


def _meta(record: Mapping[str, object], text_field: str) -> dict[str, object]:
    """Every field of the record but its text, as it came (empty ones left out)."""
    return {str(k): _jsonable(v) for k, v in record.items()
            if k != text_field and v not in (None, "")}


class JsonlReader(Reader):
    def _total(self) -> int:
        _refuse_binary(self.path)
        return super()._total()

    def __iter__(self) -> Iterator[Row]:
        name = self.path.name
        # A JSON-escaped line can be up to ~6x its text; leave room before calling it oversized.
        limit = self.max_bytes * 6 + 4096
        with self.path.open("rb") as handle:
            for number, raw, consumed in _bounded_lines(handle, limit):
                self.position = consumed
                if raw is None:
                    yield Row(name, number, error=f"line is over the {limit}-byte limit")
                    continue
                if not raw.strip():
                    continue
                try:
                    decoded = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield Row(name, number, error=f"not valid UTF-8 at byte {exc.start}")
                    continue
                try:
                    record = json.loads(decoded)
                    too_deep = json_depth(record) > MAX_JSON_DEPTH
                except json.JSONDecodeError as exc:
                    # the decoder's own words may end in "at" ("Invalid control character at")
                    reason = exc.msg.removesuffix(" at")
                    yield Row(name, number, error=f"invalid JSON: {reason} at column {exc.colno}")
                    continue
                except RecursionError:  # one line must not fail the whole ingest
                    too_deep = True
                if too_deep:
                    yield Row(name, number, error=f"JSON nested deeper than {MAX_JSON_DEPTH} "
                                                  "levels (the limit)")
                    continue
                if not isinstance(record, dict):
                    yield Row(name, number, error="a line must be a JSON object")
                    continue
                yield self._checked(name, number, record.get(self.text_field),
                                    _meta(record, self.text_field))


class CsvReader(Reader):
    def _total(self) -> int:
        # Check the header now, so a file without the text column is refused before any job.
        _refuse_binary(self.path)
        with self.path.open("rb") as handle:
            first = handle.readline(1 << 20).decode("utf-8-sig", errors="replace")
        header = next(csv.reader([first]), None)
        if header is None:
            raise IngestFileError(f"{self.path.name}: empty CSV file, expected a header row")
        columns = [h.strip() for h in header]
        if self.text_field not in columns:
            raise IngestFileError(f"{self.path.name}: no column '{self.text_field}' in the "
                                  f"header (columns: {', '.join(columns)})")
        return super()._total()

    def __iter__(self) -> Iterator[Row]:
        name = self.path.name
        pending: list[Row] = []
        record_start: list[int] = []  # physical line where the record being parsed began

        def lines(handle: IO[bytes]) -> Iterator[str]:
            for line_no, raw, consumed in _bounded_lines(handle, self.max_bytes + 4096):
                self.position = consumed
                if raw is None:
                    pending.append(Row(name, line_no, error="line is over the size limit"))
                    continue
                try:
                    text = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    pending.append(Row(name, line_no, error=f"not valid UTF-8 at byte {exc.start}"))
                    continue
                if not record_start:
                    record_start.append(line_no)
                yield text

        csv.field_size_limit(max(self.max_bytes * 2, 1 << 17))
        with self.path.open("rb") as handle:
            reader = csv.reader(lines(handle))
            columns = [h.strip() for h in next(reader)]  # checked in _total
            record_start.clear()
            yield from pending
            pending.clear()
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:  # e.g. a field over the size limit
                    start = record_start.pop() if record_start else None
                    yield from pending
                    pending.clear()
                    yield Row(name, start, error=f"malformed CSV record: {exc}")
                    continue
                start = record_start.pop() if record_start else None
                yield from pending
                pending.clear()
                if not any(v.strip() for v in values):
                    continue
                if len(values) != len(columns):
                    yield Row(name, start, error=f"{len(values)} fields, the header has "
                                                  f"{len(columns)}")
                else:
                    record = dict(zip(columns, values, strict=True))
                    yield self._checked(name, start, record.get(self.text_field),
                                    _meta(record, self.text_field))
            yield from pending


class FolderReader(Reader):
    unit = "files"

    def _files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        found = []
        for root, dirs, files in os.walk(self.path):
            dirs.sort()
            found += [Path(root) / f for f in sorted(files)
                      if Path(f).suffix.lower() in FOLDER_SUFFIXES and not f.startswith(".")]
        return found

    def _total(self) -> int:
        self._list = self._files()
        return len(self._list)

    def __iter__(self) -> Iterator[Row]:
        base = self.path.parent if self.path.is_file() else self.path
        for index, file in enumerate(self._list, start=1):
            self.position = index
            name = str(file.relative_to(base))
            # A file may be a link: judge and read what it points to, never follow it out of
            # the import folders (a link to /etc/passwd or to the secret key).
            refused = self.scope.refuses(file)
            if refused:
                yield Row(name, None, error=refused)
                continue
            real = file.resolve()
            if not real.is_file():  # a FIFO or device would block or never end
                yield Row(name, None, error="not a regular file: not read")
                continue
            size = real.stat().st_size
            if size > self.max_bytes:
                yield Row(name, None, error=f"file is {size} bytes, over the "
                                            f"{self.max_bytes}-byte limit")
                continue
            try:
                text = real.read_bytes().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                yield Row(name, None, error=f"not valid UTF-8 at byte {exc.start}")
                continue
            yield self._checked(name, None, text, {"id": name})


class ParquetReader(Reader):
    """Row group by row group, in batches of `BATCH` rows. A page is decompressed whole by any
    Parquet reader and one value never spans pages, so a row group with a page larger than
    `page_limit` (a decompression bomb: a 10 KB file can hold a 300 MB string) is refused from
    its page headers, before anything inflates; a value over `max_bytes` is refused by its
    length before it becomes a Python string."""

    unit = "rows"
    BATCH = 256
    MIN_PAGE_LIMIT = 32 << 20

    def _open(self):  # type: ignore[no-untyped-def]
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            raise IngestFileError(f"{self.path.name}: not a readable Parquet file ({exc})") from exc

    def _total(self) -> int:
        self._file = self._open()
        names = self._file.schema_arrow.names
        if self.text_field not in names:
            raise IngestFileError(f"{self.path.name}: no column '{self.text_field}' "
                                  f"(columns: {', '.join(names)})")
        return self._file.metadata.num_rows

    @property
    def page_limit(self) -> int:
        # Writers cut pages at about 1 MiB; one value of up to max_bytes makes a page of its own.
        return max(8 * self.max_bytes, self.MIN_PAGE_LIMIT)

    def _oversized(self, handle: IO[bytes], group: int, columns: list[str]) -> str | None:
        """Why row group `group` must not be decompressed (None: it may be)."""
        from provenance.engine.parquet_pages import PageHeaderError, largest_page

        meta = self._file.metadata.row_group(group)
        for index in range(meta.num_columns):
            chunk = meta.column(index)
            if chunk.path_in_schema.split(".")[0] not in columns or \
                    chunk.total_uncompressed_size <= self.page_limit:
                continue  # no page can be larger than its whole chunk
            start = chunk.dictionary_page_offset if chunk.has_dictionary_page and \
                chunk.dictionary_page_offset else chunk.data_page_offset
            try:
                largest = largest_page(handle, start, chunk.total_compressed_size)
            except PageHeaderError as exc:
                return f"column '{chunk.path_in_schema}' has unreadable page headers ({exc})"
            if largest > self.page_limit:
                return (f"column '{chunk.path_in_schema}' has a page of {largest} bytes "
                        f"uncompressed, over the {self.page_limit}-byte page limit")
        return None

    def __iter__(self) -> Iterator[Row]:
        import pyarrow as pa
        import pyarrow.compute as pc

        name = self.path.name
        names = self._file.schema_arrow.names
        # The text first, then every other column: a record's metadata is kept (and the page
        # limit guards each column read).
        columns = [self.text_field] + [c for c in names if c != self.text_field]
        with self.path.open("rb") as handle:
            for group in range(self._file.metadata.num_row_groups):
                size = self._file.metadata.row_group(group).num_rows
                refused = self._oversized(handle, group, columns)
                if refused:
                    first, self.position = self.position + 1, self.position + size
                    yield Row(name, first, error=f"row group {group + 1} (rows {first} to "
                                                 f"{self.position}): {refused}; not read")
                    continue
                for batch in self._file.iter_batches(batch_size=self.BATCH, row_groups=[group],
                                                     columns=columns):
                    text = batch.column(0)
                    over: list[int | None] = [None] * batch.num_rows
                    if pa.types.is_string(text.type) or pa.types.is_large_string(text.type):
                        lengths = pc.binary_length(text)
                        too_long = pc.greater(lengths, self.max_bytes)
                        over = pc.if_else(too_long, lengths, None).to_pylist()
                        text = pc.if_else(too_long, None, text)
                    values = text.to_pylist()
                    meta = batch.drop_columns([self.text_field]).to_pylist()
                    for value, length, record in zip(values, over, meta, strict=True):
                        self.position += 1
                        if length is not None:
                            yield Row(name, self.position, error=f"text is {length} bytes, "
                                      f"over the {self.max_bytes}-byte limit")
                            continue
                        yield self._checked(name, self.position, value,
                                            _meta(record, self.text_field))


READERS: dict[str, type[Reader]] = {
    "jsonl": JsonlReader, "csv": CsvReader, "folder": FolderReader, "parquet": ParquetReader,
}


def open_reader(path: Path, fmt: str | None = None, **options: object) -> Reader:
    fmt = fmt or detect_format(path)
    if fmt not in READERS:
        raise IngestFileError(f"unknown format '{fmt}'; expected one of {', '.join(FORMATS)}")
    return READERS[fmt](path, **options)  # type: ignore[arg-type]
