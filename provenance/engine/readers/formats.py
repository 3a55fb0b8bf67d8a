"""The reader for a file, by its format (given, or detected from the file)."""

from __future__ import annotations

from pathlib import Path

from provenance.engine.readers.base import FORMATS, IngestFileError, Reader, detect_format
from provenance.engine.readers.parquet import ParquetReader
from provenance.engine.readers.text import CsvReader, FolderReader, JsonlReader

READERS: dict[str, type[Reader]] = {
    "jsonl": JsonlReader, "csv": CsvReader, "folder": FolderReader, "parquet": ParquetReader,
}


def open_reader(path: Path, fmt: str | None = None, **options: object) -> Reader:
    fmt = fmt or detect_format(path)
    if fmt not in READERS:
        raise IngestFileError(f"unknown format '{fmt}'; expected one of {', '.join(FORMATS)}")
    return READERS[fmt](path, **options)  # type: ignore[arg-type]
