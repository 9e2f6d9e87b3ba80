"""The bytes of each record of a JSONL, CSV or JSON array file, without parsing them.

For the skip path of a re-run (``zsync.plan.skip``, through :class:`zsync.read.Cut`): a
record whose bytes the ledger already holds, under the same header, mapping and switches,
is unchanged and need not be parsed or mapped. Only the records the ledger does not know
are parsed, one at a time, by the ordinary readers (:meth:`RawCsv.parse`,
:func:`parse_json_element`, the JSONL reader's line parser), so what they accept or refuse
is exactly what a full read accepts or refuses.

Where a record ends is found from its bytes alone: a JSONL record at its line end; a CSV
row at the first line end outside double quotes; a JSON array element at the first ``}``
followed by ``,`` or ``]`` that closes as many braces as the element opened. A match in
the ledger settles the guess: a complete JSON value or CSV row is never a prefix of a
longer one, so bytes equal to a record read before are that record again. A record the
ledger does not know is parsed; when the parse does not give exactly one record (a bad
record, or a guess that cut an element short because a text holds ``},``),
:class:`Unsure` tells the caller to read the rest of the file the ordinary way: never
wrong, only as slow as before. Files are mapped into memory (pages handed back as the
reading moves on) and a record's bytes are a view into the mapping, so nothing is copied;
a CSV row's line number is counted only when its place is asked for (counting lines costs
as much as hashing them, and an unchanged row is never named).
"""

from __future__ import annotations

import contextlib
import io
import mmap
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import cast

from zsync.model import Record
from zsync.read.csvfile import _read_head, _sniff, read_csv
from zsync.read.files import BOM, DEFAULT_MAX_RECORD_BYTES, display, open_binary
from zsync.read.jsonarray import json_array

__all__ = [
    "Place",
    "RawCsv",
    "RawRecord",
    "Unsure",
    "json_elements",
    "jsonl_records",
    "parse_json_element",
    "sniff",
]

_RELEASE = 8 << 20  # bytes read between two hand-backs of pages
# A JSON element's end: '}' then optional whitespace then ',' or ']'.
_OBJECT_END = re.compile(rb"\}[ \t\r\n]*[,\]]")
# A CSV row: a run of anything but quotes and line ends, then quoted sections each followed
# by such a run (a doubled quote inside a field is two sections back to back), up to a line
# end. Possessive, so a row that does not match fails at once instead of backtracking.
_CSV_ROW = re.compile(rb'[^"\n]*+(?:"[^"]*+"[^"\n]*+)*+\n').match
# What bytes.strip() strips: a row starting with anything else holds data.
_SPACE = frozenset(b" \t\n\r\x0b\x0c")
# A CR that is not part of a CRLF: a line end to the JSONL reader, never cut here.
_LONE_CR = cast(
    Callable[[mmap.mmap, int, int], "re.Match[bytes] | None"], re.compile(rb"\r(?!\n)").search
)
# Candidate ends tried for one element before the rest is left to the array reader.
_MAX_TRIES = 64
# JSON whitespace; a '*' pattern always matches.
_WS = cast(Callable[[mmap.mmap, int], "re.Match[bytes]"], re.compile(rb"[ \t\r\n]*").match)


class Unsure(Exception):
    """The raw reader cannot tell where the next record ends; read on the ordinary way."""


@dataclass(slots=True)  # not frozen: made once per record, and frozen costs 2x to make
class RawRecord:
    """One record's bytes (a view into a mapped file, or a copy) and its place: the origin
    the ordinary reader gives it, or a :class:`Place` that works it out when asked."""

    place: str | Place
    raw: bytes | memoryview

    @property
    def origin(self) -> str:
        """Where the record is (``file:line``, ``file[3]``), worked out when asked."""
        return self.place if isinstance(self.place, str) else self.place.origin()


class _Mapped:
    """A file mapped into memory, read-only. Pages already read are handed back now and
    then, so the process's resident size stays flat however large the file (a record held
    longer reads its pages in again from the file when it is used)."""

    def __init__(self, path: str) -> None:
        with open_binary(path) as stream:
            try:
                self.data = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
            except (ValueError, OSError):
                raise Unsure from None  # empty, or not a regular file
        self.view = memoryview(self.data)
        self._released = 0

    def release(self, upto: int) -> None:
        """Every page before ``upto``, each time: pages a record's view read in again since
        (hashed or parsed after the reading moved on) go back too."""
        if upto - self._released >= _RELEASE and hasattr(mmap, "MADV_DONTNEED"):
            self._released = upto - upto % mmap.PAGESIZE
            self.data.madvise(mmap.MADV_DONTNEED, 0, self._released)

    def __enter__(self) -> _Mapped:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.view.release()
        # Records still holding views into it: it is unmapped when the last one goes.
        with contextlib.suppress(BufferError):
            self.data.close()


class _Lines:
    """Line numbers in a mapped file, counted forward only as far as asked."""

    def __init__(self, data: mmap.mmap, name: str) -> None:
        self.data = data
        self.name = name
        self._pos = 0
        self._line = 1

    def origin(self, pos: int) -> str:
        if pos < self._pos:  # asked out of order: count again from the top
            self._pos, self._line = 0, 1
        while self._pos < pos:
            step = min(pos, self._pos + _RELEASE)
            self._line += self.data[self._pos : step].count(b"\n")
            self._pos = step
        return f"{self.name}:{self._line}"


@dataclass(slots=True)
class Place:
    """Where a CSV row starts, named ``FILE:LINE`` only when asked."""

    lines: _Lines
    pos: int

    def origin(self) -> str:
        """``FILE:LINE`` of the row's first line (lines counted now)."""
        return self.lines.origin(self.pos)


# -- CSV -------------------------------------------------------------------------------------


class RawCsv:
    """The rows of one CSV file as bytes: its header row, then each data row."""

    def __init__(self, path: str, delimiter: str) -> None:
        self.path = path
        self.name = path  # as the CSV reader names its origins
        self.delimiter = delimiter
        self.header = b""

    def rows(self, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[RawRecord]:
        """The data rows (the header row is kept in ``header``). A row over ``max_bytes``
        is Unsure: the CSV reader reports it without holding it."""
        with _Mapped(self.path) as mapped:
            yield from self._rows(mapped, max_bytes)

    def _rows(self, mapped: _Mapped, max_bytes: int) -> Iterator[RawRecord]:
        data, view = mapped.data, mapped.view
        lines = _Lines(data, self.name)
        size = len(data)
        pos = len(BOM) if data[: len(BOM)] == BOM else 0
        while pos < size:
            start = pos
            # A row of max_bytes and its line end: the search never looks further.
            found = _CSV_ROW(data, pos, pos + max_bytes + 1)
            if found is not None:
                end = found.end() - 1  # at the line end
            elif size - pos > max_bytes:
                raise Unsure  # over the record size limit: never copied
            elif data[pos:].count(b'"') % 2:
                raise Unsure  # a quoted field never closed: the CSV reader says so
            else:
                end = size  # the last row, without a line end
            pos = end + 1
            if end > start and data[end - 1] == 13:  # b"\r"
                end -= 1
            if (end == start or data[start] in _SPACE) and not self._holds_data(data[start:end]):
                continue  # a blank line
            if not self.header:
                self.header = data[start:end]
                continue
            mapped.release(pos)
            yield RawRecord(Place(lines, start), view[start:end])

    def _holds_data(self, row: bytes) -> bool:
        return bool(row.strip()) or self.delimiter.encode() in row

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


# -- JSONL -----------------------------------------------------------------------------------


def jsonl_records(path: str, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[RawRecord]:
    """The non-blank lines of a JSONL file as bytes (line end included), each named as the
    JSONL reader names it. A line over ``max_bytes`` is Unsure: the JSONL reader reports it
    and skips it in pieces; so is a line ended by a lone CR (the JSONL reader's line end,
    not cut here: such files are rare)."""
    with _Mapped(path) as mapped:
        yield from _lines(mapped, display(path), max_bytes)


def _lines(mapped: _Mapped, name: str, max_bytes: int) -> Iterator[RawRecord]:
    data, view = mapped.data, mapped.view
    size = len(data)
    pos = lineno = checked = 0  # no lone CR before `checked`
    while pos < size:
        lineno += 1
        # As the JSONL reader's readline(max_bytes + 1): the line end may be the byte after.
        found = data.find(b"\n", pos, pos + max_bytes + 1)
        end = found + 1 if found >= 0 else size
        if found < 0 and end - pos > max_bytes:
            raise Unsure  # over the record size limit: never copied
        if end > checked:  # looked for a window ahead at a time: pages are read once
            stop = min(size, max(end, checked + _RELEASE))
            first = data.find(b"\r", checked, stop)  # most files have none: memchr speed
            # One byte more: is there an LF after a CR at the end of the window?
            lone = _LONE_CR(data, first, stop + 1) if first >= 0 else None
            if lone is not None and lone.start() < stop:
                raise Unsure  # a CR that ends a line by itself: the JSONL reader splits there
            checked = stop
        start = pos + len(BOM) if pos == 0 and data[: len(BOM)] == BOM else pos
        pos = end
        if start == end or (data[start] in _SPACE and not data[start:end].strip()):
            continue  # a blank line
        mapped.release(pos)
        yield RawRecord(f"{name}:{lineno}", view[start:end])


# -- JSON arrays -----------------------------------------------------------------------------


def json_elements(path: str, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[RawRecord]:
    """The elements of a JSON array file as bytes, each named as the array reader names it.
    An element over ``max_bytes`` is Unsure: the array reader reports it without holding it."""
    with _Mapped(path) as mapped:
        yield from _elements(mapped, display(path), max_bytes)


def _elements(mapped: _Mapped, name: str, max_bytes: int) -> Iterator[RawRecord]:
    data = mapped.data
    pos = _WS(data, len(BOM) if data[: len(BOM)] == BOM else 0).end()
    if data[pos : pos + 1] != b"[":
        raise Unsure
    pos = _WS(data, pos + 1).end()
    if data[pos : pos + 1] == b"]":
        _rest_blank(data, pos + 1)
        return
    index = 0
    while True:
        if data[pos : pos + 1] != b"{":
            raise Unsure  # not an object, or the end of the file: the array reader says
        end = _object_end(data, pos, max_bytes)
        yield RawRecord(f"{name}[{index}]", mapped.view[pos:end])
        mapped.release(end)
        index += 1
        pos = _WS(data, end).end()  # a ',' or ']' is there: _OBJECT_END saw it
        if data[pos : pos + 1] == b"]":
            _rest_blank(data, pos + 1)
            return
        pos = _WS(data, pos + 1).end()


def _object_end(data: mmap.mmap, pos: int, max_bytes: int) -> int:
    """The end of the object at ``pos``: after the first '}' followed by ',' or ']' that
    closes as many braces as were opened (counted only when there is a nested one)."""
    at = pos
    # Never looked for beyond the size limit (and a little white space after the '}'): an
    # element that does not end there is the array reader's to report.
    stop = pos + max_bytes + 4096
    for _ in range(_MAX_TRIES):
        found = _OBJECT_END.search(data, at, stop)
        if found is None:
            raise Unsure
        end = found.start() + 1
        if end - pos > max_bytes:
            raise Unsure  # over the record size limit: never copied
        if data.find(b"{", pos + 1, end) < 0:
            return end
        block = data[pos:end]
        if block.count(b"{") == block.count(b"}"):
            return end
        at = end
    raise Unsure


def _rest_blank(data: mmap.mmap, pos: int) -> None:
    """Only whitespace may follow the closing ']' (the array reader reports anything else)."""
    if _WS(data, pos).end() < len(data):
        raise Unsure


def parse_json_element(record: RawRecord) -> Record:
    """The element as the array reader reads it; Unsure unless that is exactly one record."""
    items = list(json_array(io.BytesIO(b"[" + record.raw + b"]"), "-"))
    if len(items) != 1 or not isinstance(items[0], Record):
        raise Unsure
    return replace(items[0], origin=record.origin)
