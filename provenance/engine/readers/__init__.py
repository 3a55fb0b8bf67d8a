"""Streaming readers for ingest: JSONL, CSV, a folder of .txt/.md files, Parquet.

Each reader yields one `Row` per record, good or bad, and never holds a whole file in memory: lines
are read with a bounded length, CSV is parsed from a line stream, Parquet in record batches. A bad
record becomes a Row with `error` set (file, line and reason); only a file that cannot be read at
all raises `IngestFileError`.
"""

from __future__ import annotations

from provenance.engine.readers.base import (
    FOLDER_SUFFIXES,
    FORMATS,
    MAX_META_BYTES,
    SNIFF_BYTES,
    IngestFileError,
    Part,
    Reader,
    ReadScope,
    Row,
    bounded_lines,
    detect_format,
    record_meta,
    refuse_binary,
)
from provenance.engine.readers.formats import (
    READERS,
    open_reader,
)
from provenance.engine.readers.parquet import (
    ParquetReader,
)
from provenance.engine.readers.text import (
    CsvReader,
    FolderReader,
    JsonlReader,
)

__all__ = [
    "CsvReader",
    "FOLDER_SUFFIXES",
    "FORMATS",
    "FolderReader",
    "IngestFileError",
    "JsonlReader",
    "MAX_META_BYTES",
    "ParquetReader",
    "Part",
    "READERS",
    "ReadScope",
    "Reader",
    "Row",
    "SNIFF_BYTES",
    "bounded_lines",
    "detect_format",
    "record_meta",
    "open_reader",
    "refuse_binary",
]
