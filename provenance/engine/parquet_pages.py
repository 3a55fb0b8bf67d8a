"""The uncompressed size of every page of a Parquet column chunk, read from the page headers
without decompressing anything.

A Parquet page holds whole values, so one 300 MB string is one 300 MB page, which any reader
must decompress whole; a 10 KB zstd file can carry it. The footer gives only a column chunk's
total size, so that a reader can refuse such a page before it inflates, its header has to be
read: pyarrow exposes no page headers, hence this small reader of the Thrift compact protocol
(the encoding of Parquet's `PageHeader`: field 2 `uncompressed_page_size`, field 3
`compressed_page_size`, both i32).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = \
    range(13)
_HEADER_READ = 1 << 16  # page headers are tens of bytes; statistics can make them longer


class PageHeaderError(ValueError):
    """The bytes at a page's offset are not a Parquet page header."""


class _Compact:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise PageHeaderError("a page header runs past the bytes read")
        self.at += 1
        return self.data[self.at - 1]

    def varint(self) -> int:
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise PageHeaderError("a varint longer than 64 bits")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def skip(self, kind: int, depth: int = 0) -> None:
        if depth > 32:
            raise PageHeaderError("a page header nested too deeply")
        if kind in (_TRUE, _FALSE):
            return
        if kind == _BYTE:
            self.byte()
        elif kind in (_I16, _I32, _I64):
            self.varint()
        elif kind == _DOUBLE:
            self.at += 8
        elif kind == _BINARY:
            length = self.varint()  # read before `at` is: `self.at += self.varint()` loses it
            self.at += length
        elif kind in (_LIST, _SET):
            head = self.byte()
            size, element = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            for _ in range(size):
                self.byte() if element in (_TRUE, _FALSE) else self.skip(element, depth + 1)
        elif kind == _MAP:
            size = self.varint()
            types = self.byte() if size else 0
            for _ in range(size):
                self.skip(types >> 4, depth + 1)
                self.skip(types & 0x0F, depth + 1)
        elif kind == _STRUCT:
            self.fields(depth + 1)
        else:
            raise PageHeaderError(f"unknown Thrift type {kind}")

    def fields(self, depth: int = 0, wanted: tuple[int, ...] = ()) -> dict[int, int]:
        """Read a struct's fields to its STOP; return the i32 values of the `wanted` ids."""
        found: dict[int, int] = {}
        last = 0
        while True:
            head = self.byte()
            kind = head & 0x0F
            if kind == _STOP:
                return found
            last = last + (head >> 4) if head >> 4 else self.zigzag()
            if last in wanted and kind == _I32:
                found[last] = self.zigzag()
            else:
                self.skip(kind, depth)


def page_sizes(handle: IO[bytes], start: int, length: int) -> Iterator[tuple[int, int]]:
    """(uncompressed, compressed) size of each page of the column chunk stored in `length` bytes
    from `start` (its dictionary page first, when it has one)."""
    at, end = start, start + length
    while at < end:
        handle.seek(at)
        reader = _Compact(handle.read(_HEADER_READ))
        found = reader.fields(wanted=(2, 3))
        if 2 not in found or 3 not in found or min(found[2], found[3]) < 0:
            raise PageHeaderError(f"no page sizes in the header at byte {at}")
        yield found[2], found[3]
        at += reader.at + found[3]
    if at != end:
        raise PageHeaderError(f"the pages end at byte {at}, the column chunk at {end}")


def largest_page(handle: IO[bytes], start: int, length: int) -> int:
    return max((size for size, _ in page_sizes(handle, start, length)), default=0)
