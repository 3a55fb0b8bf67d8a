"""What every reader shares: the row, the file errors, the read scope, bounded line reading
and the metadata kept beside the text."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

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


@dataclass(frozen=True)
class Part:
    """A contiguous piece of one input, read by one shard of a sharded ingest: [start, end) in
    the reader's split unit (bytes of a JSONL file, files of a folder, row groups of a Parquet
    file), and the lines or rows that come before it, so that its rows keep the whole input's
    line numbers in reports and occurrences."""

    start: int
    end: int
    before: int = 0


def even_cuts(weights: list[int], pieces: int) -> list[int]:
    """Indices that cut a sequence of weights into at most `pieces` contiguous runs of about
    equal weight (each run non-empty): the start index of every run after the first."""
    total = sum(weights)
    cuts: list[int] = []
    running = 0
    for index, weight in enumerate(weights):
        if index and running >= total * (len(cuts) + 1) / pieces and len(cuts) < pieces - 1:
            cuts.append(index)
        running += weight
    return cuts


class Reader:
    """Iterate rows; `position` / `total` measure progress in `unit`s. With a `part`, only
    that piece of the input is read (see `parts`)."""

    unit = "bytes"

    def __init__(self, path: Path, *, text_field: str = "text", max_bytes: int = 1 << 20,
                 scope: ReadScope = ReadScope(), part: Part | None = None) -> None:
        if not path.exists():
            raise IngestFileError(f"{path}: no such file or folder")
        refused = scope.refuses(path)
        if refused:
            raise IngestFileError(f"{path.name}: {refused}")
        self.path = path
        self.text_field = text_field
        self.max_bytes = max_bytes
        self.scope = scope
        self.part = part
        self.position = 0
        self.total = self._total()

    def _total(self) -> int:
        return self.path.stat().st_size

    def parts(self, pieces: int) -> list[Part]:
        """The whole input cut into at most `pieces` parts that shards can read at once, in
        order; [] when this format cannot be cut (CSV: a quoted field may hold a newline, so
        no byte offset is known to start a record without parsing everything before it)."""
        return []

    def part_total(self, part: Part) -> int:
        """A part's own `total`, in `unit`s."""
        return part.end - part.start

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


def refuse_binary(path: Path) -> None:
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


def bounded_lines(handle: IO[bytes], limit: int) -> Iterator[tuple[int, bytes | None, int]]:
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


def record_meta(record: Mapping[str, object], text_field: str) -> dict[str, object]:
    """Every field of the record but its text, as it came (empty ones left out)."""
    return {str(k): _jsonable(v) for k, v in record.items()
            if k != text_field and v not in (None, "")}
