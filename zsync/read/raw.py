"""The bytes of each record of a CSV file or a JSON array file, without parsing them.

For the skip path of a re-run (``zsync.plan.stream``): a record whose bytes the ledger
already holds, under the same header, mapping and switches, is unchanged and need not be
parsed or mapped. Only the records the ledger does not know are parsed, one at a time, by
the ordinary readers (:func:`parse_csv_row`, :func:`parse_json_element`), so what they
accept or refuse is exactly what a full read accepts or refuses.

Where a record ends is found from its bytes alone: a CSV row at the first line end outside
double quotes; a JSON array element at the first ``}`` followed by ``,`` or ``]`` with an
even number of unescaped quotes before it. A match in the ledger settles the guess: a
complete JSON value or CSV row is never a prefix of a longer one, so bytes equal to a record
read before are that record again. A record the ledger does not know is parsed; when the
parse does not give exactly one record (a bad record, or a guess that cut an element),
:class:`Unsure` tells the caller to read the rest of the file the ordinary way.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import cast

from zsync.model import Record
from zsync.read.csvfile import _read_head, _sniff, read_csv
from zsync.read.files import BOM, CHUNK, display, open_binary
from zsync.read.jsonarray import json_array

__all__ = ["RawCsv", "RawRecord", "Unsure", "json_elements", "parse_json_element", "sniff"]

_READ = 16 * CHUNK
# A JSON element's end: '}' then optional whitespace then ',' or ']'.
_OBJECT_END = re.compile(rb"\}[ \t\r\n]*[,\]]")
# JSON whitespace; a '*' pattern always matches.
_WS = cast(Callable[[bytes, int], "re.Match[bytes]"], re.compile(rb"[ \t\r\n]*").match)


class Unsure(Exception):
    """The raw reader cannot tell where the next record ends; read on the ordinary way."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    origin: str
    raw: bytes


class _Buffer:
    """A byte window over a file that grows on demand and drops what was consumed."""

    def __init__(self, path: str) -> None:
        self.stream = open_binary(path)
        self.data = b""
        self.eof = False

    def more(self, keep_from: int) -> bool:
        """Drop ``data[:keep_from]`` and read more; False at the end of the file."""
        self.data = self.data[keep_from:]
        if self.eof:
            return False
        piece = self.stream.read(max(_READ, len(self.data)))
        if not piece:
            self.eof = True
            return False
        self.data += piece
        return True

    def close(self) -> None:
        self.stream.close()


# -- CSV -------------------------------------------------------------------------------------


class RawCsv:
    """The rows of one CSV file as bytes: its header row, then each data row."""

    def __init__(self, path: str, delimiter: str) -> None:
        self.path = path
        self.name = path  # as the CSV reader names its origins
        self.delimiter = delimiter
        self.header = b""

    def rows(self) -> Iterator[RawRecord]:
        buf = _Buffer(self.path)
        try:
            yield from self._rows(buf)
        finally:
            buf.close()

    def _rows(self, buf: _Buffer) -> Iterator[RawRecord]:
        line = 1
        pos = 0
        first = True
        while True:
            end = _row_end(buf.data, pos)
            if end < 0:
                if buf.more(pos):
                    pos = 0
                    continue
                if pos >= len(buf.data):
                    return
                if buf.data.count(b'"', pos) % 2:
                    raise Unsure  # a quoted field never closed: the CSV reader says so
                end = len(buf.data)
            raw = buf.data[pos:end]
            if first and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            first = False
            start = line
            line += raw.count(b"\n") + (end < len(buf.data))
            pos = end + 1
            row = raw[:-1] if raw.endswith(b"\r") else raw
            if not row.strip() and self.delimiter.encode() not in row:
                continue  # a blank line
            if not self.header:
                self.header = row
                continue
            yield RawRecord(f"{self.name}:{start}", row)

    def parse(self, record: RawRecord) -> Record:
        """The row as the CSV reader reads it; Unsure unless that is exactly one record."""
        text = self.header + b"\n" + record.raw + b"\n"
        items = list(read_csv("-", self.delimiter, stdin=io.BytesIO(text)))
        if len(items) != 1 or not isinstance(items[0], Record):
            raise Unsure
        return replace(items[0], origin=record.origin)


def sniff(path: str) -> str:
    """The delimiter the CSV reader detects in this file (from its first 64 KiB)."""
    with open_binary(path) as stream:
        head = _read_head(stream)
    return _sniff(head[len(BOM) :] if head.startswith(BOM) else head)


def _row_end(data: bytes, pos: int) -> int:
    """Index of the line end that ends the CSV row starting at ``pos``; -1 if not in data."""
    while True:
        newline = data.find(b"\n", pos)
        if newline < 0:
            return -1
        quote = data.find(b'"', pos, newline)
        if quote < 0:
            return newline
        # Inside quotes up to the closing one; a doubled quote is a quote inside.
        pos = quote + 1
        while True:
            quote = data.find(b'"', pos)
            if quote < 0:
                return -1
            if data[quote + 1 : quote + 2] == b'"':
                pos = quote + 2
                continue
            if quote + 1 == len(data):
                return -1  # cannot tell a closing quote from a doubled one yet
            pos = quote + 1
            break


# -- JSON arrays -----------------------------------------------------------------------------


def json_elements(path: str) -> Iterator[RawRecord]:
    """The elements of a JSON array file as bytes, each named as the array reader names it."""
    buf = _Buffer(path)
    try:
        yield from _elements(buf, display(path))
    finally:
        buf.close()


def _elements(buf: _Buffer, name: str) -> Iterator[RawRecord]:
    buf.more(0)
    pos = _skip_ws(buf, len(BOM) if buf.data.startswith(BOM) else 0)
    if buf.data[pos : pos + 1] != b"[":
        raise Unsure
    pos = _skip_ws(buf, pos + 1)
    if buf.data[pos : pos + 1] == b"]":
        _rest_blank(buf, pos + 1)
        return
    index = 0
    while True:
        if buf.data[pos : pos + 1] != b"{":
            raise Unsure  # not an object: the array reader says what it is
        end = _element_end(buf.data, pos)
        if end < 0:
            if not buf.more(pos):
                raise Unsure
            pos = 0
            continue
        yield RawRecord(f"{name}[{index}]", buf.data[pos:end])
        index += 1
        pos = _WS(buf.data, end).end()  # a ',' or ']' is there: see _element_end
        if buf.data[pos : pos + 1] == b"]":
            _rest_blank(buf, pos + 1)
            return
        pos = _skip_ws(buf, pos + 1)


def _skip_ws(buf: _Buffer, pos: int) -> int:
    """The position of the next byte that is not JSON whitespace, reading on as needed."""
    while True:
        pos = _WS(buf.data, pos).end()
        if pos < len(buf.data):
            return pos
        if not buf.more(pos):
            raise Unsure  # the end of the file inside the array
        pos = 0


def _rest_blank(buf: _Buffer, pos: int) -> None:
    """Only whitespace may follow the closing ']' (the array reader reports anything else)."""
    while True:
        pos = _WS(buf.data, pos).end()
        if pos < len(buf.data):
            raise Unsure
        if not buf.more(pos):
            return
        pos = 0


def _element_end(data: bytes, pos: int) -> int:
    """The end of the object starting at ``pos``: after the first '}' that is followed by
    ',' or ']' and has an even number of unescaped quotes before it; -1 if not in data."""
    at = pos
    while True:
        found = _OBJECT_END.search(data, at)
        if found is None:
            return -1
        end = found.start() + 1
        quotes = data.count(b'"', pos, end) - data.count(b'\\"', pos, end)
        if quotes % 2 == 0:
            return end
        at = end


def parse_json_element(record: RawRecord) -> Record:
    """The element as the array reader reads it; Unsure unless that is exactly one record."""
    items = list(json_array(io.BytesIO(b"[" + record.raw + b"]"), "-"))
    if len(items) != 1 or not isinstance(items[0], Record):
        raise Unsure
    return replace(items[0], origin=record.origin)
