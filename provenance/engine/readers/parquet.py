"""The Parquet reader: record batches, never the whole file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from provenance.engine.readers.base import (
    IngestFileError,
    Part,
    Reader,
    Row,
    even_cuts,
    record_meta,
)


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
        if self.part is not None:
            return self.part_total(self.part)
        return self._file.metadata.num_rows

    def part_total(self, part: Part) -> int:
        return sum(self._group_rows(g) for g in range(part.start, part.end))

    def _group_rows(self, group: int) -> int:
        return int(self._file.metadata.row_group(group).num_rows)

    def parts(self, pieces: int) -> list[Part]:
        """Runs of row groups (a row group is the smallest piece Parquet reads) of about equal
        rows, with the rows before each."""
        rows = [self._group_rows(g) for g in range(self._file.metadata.num_row_groups)]
        starts = [0, *even_cuts(rows, pieces)]
        return [Part(s, e, sum(rows[:s])) for s, e in zip(starts, [*starts[1:], len(rows)],
                                                         strict=True)]

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
        part = self.part or Part(0, self._file.metadata.num_row_groups)
        with self.path.open("rb") as handle:
            for group in range(part.start, part.end):
                size = self._group_rows(group)
                refused = self._oversized(handle, group, columns)
                if refused:
                    first = part.before + self.position + 1
                    self.position += size
                    yield Row(name, first, error=f"row group {group + 1} (rows {first} to "
                                                 f"{part.before + self.position}): {refused}; "
                                                 f"not read")
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
                        row = part.before + self.position
                        if length is not None:
                            yield Row(name, row, error=f"text is {length} bytes, "
                                      f"over the {self.max_bytes}-byte limit")
                            continue
                        yield self._checked(name, row, value,
                                            record_meta(record, self.text_field))

