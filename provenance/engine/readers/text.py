"""Readers of text formats: JSONL, CSV, and a folder of .txt/.md files."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from provenance.engine.canonical import MAX_JSON_DEPTH, json_depth
from provenance.engine.readers.base import (
    FOLDER_SUFFIXES,
    IngestFileError,
    Part,
    Reader,
    Row,
    bounded_lines,
    even_cuts,
    record_meta,
    refuse_binary,
)

_SCAN = 16 << 20  # bytes read at a time when cutting a file into parts


class JsonlReader(Reader):
    def _total(self) -> int:
        refuse_binary(self.path)
        if self.part is not None:
            return self.part.end - self.part.start
        return super()._total()

    def parts(self, pieces: int) -> list[Part]:
        """Byte ranges that start at a line's first byte, about equal in size, with the lines
        before each counted (one pass over the file counting newlines: ~1 s a GB)."""
        size = self.path.stat().st_size
        starts = [0]
        with self.path.open("rb") as handle:
            for k in range(1, pieces):
                handle.seek(max(size * k // pieces - 1, starts[-1]))
                while (chunk := handle.read(1 << 16)) and b"\n" not in chunk:
                    pass
                if not chunk:
                    break
                start = handle.tell() - len(chunk) + chunk.index(b"\n") + 1
                if start >= size:
                    break
                if start > starts[-1]:
                    starts.append(start)
            befores, lines = [], 0
            handle.seek(0)
            for start in starts:  # newlines before each start
                while handle.tell() < start:
                    lines += handle.read(min(_SCAN, start - handle.tell())).count(b"\n")
                befores.append(lines)
        ends = [*starts[1:], size]
        return [Part(s, e, b) for s, e, b in zip(starts, ends, befores, strict=True)]

    def __iter__(self) -> Iterator[Row]:
        name = self.path.name
        part = self.part or Part(0, self.path.stat().st_size)
        # A JSON-escaped line can be up to ~6x its text; leave room before calling it oversized.
        limit = self.max_bytes * 6 + 4096
        with self.path.open("rb") as handle:
            handle.seek(part.start)
            for number, raw, consumed in bounded_lines(handle, limit):
                if self.position >= part.end - part.start:
                    break  # the next part's first line
                self.position = consumed
                number += part.before
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
                                    record_meta(record, self.text_field))


class CsvReader(Reader):
    def _total(self) -> int:
        # Check the header now, so a file without the text column is refused before any job.
        refuse_binary(self.path)
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
            for line_no, raw, consumed in bounded_lines(handle, self.max_bytes + 4096):
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
                                    record_meta(record, self.text_field))
            yield from pending


class FolderReader(Reader):
    unit = "files"

    def parts(self, pieces: int) -> list[Part]:
        """Runs of files (in the listing's sorted order) of about equal bytes."""
        sizes = [file.stat().st_size if file.is_file() else 0 for file in self._list]
        starts = [0, *even_cuts(sizes, pieces)]
        return [Part(s, e) for s, e in zip(starts, [*starts[1:], len(sizes)], strict=True)]

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
        if self.part is not None:
            return self.part.end - self.part.start
        return len(self._list)

    def __iter__(self) -> Iterator[Row]:
        base = self.path.parent if self.path.is_file() else self.path
        part = self.part or Part(0, len(self._list))
        for index, file in enumerate(self._list[part.start:part.end], start=1):
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
