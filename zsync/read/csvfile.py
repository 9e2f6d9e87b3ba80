"""CSV input: a header row, then one record (a flat dict of strings) per row.

The delimiter is detected from the first 64 KiB unless given; UTF-8 with or without a BOM;
quoted fields may span lines (a record's origin is the line its row starts on); a file whose
lines end in a lone CR is read as if they ended in LF. A row that
is ragged, badly quoted or not UTF-8 becomes a :class:`Problem` for that row and the rest
go on. Values stay strings: a mapping file turns them into a body.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import BinaryIO

from zsync.errors import InputError
from zsync.model import IDLE, Idle, Problem, Record
from zsync.read.files import (
    BOM,
    CHUNK,
    DEFAULT_MAX_RECORD_BYTES,
    SKIP_YIELD_BYTES,
    CrAsLf,
    open_binary,
    oversized_message,
)

__all__ = ["read_csv"]

_SNIFF_BYTES = 1 << 16
_DELIMITERS = ",;\t|"
# The csv module refuses fields over 128 KiB by default; a long call transcript in one cell
# is normal input (mapping.MAX_TEXT_CHARS bounds what is finally sent).
_FIELD_LIMIT = 16 << 20


def read_csv(
    path: str,
    delimiter: str | None = None,
    *,
    stdin: BinaryIO | None = None,
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    name: str = "<stdin>",
) -> Iterator[Record | Problem | Idle]:
    """Stream the rows of one CSV input as records; InputError at once if it cannot be opened.
    ``name`` is what origins call ``stdin`` (the stream's path when it is not standard input)."""
    if path == "-":
        if stdin is None:
            raise InputError(f"{name}: no standard input to read")
        return _rows(name, stdin, delimiter, max_bytes)
    open_binary(path).close()  # fail now, not at the first read
    return _from_file(path, delimiter, max_bytes)


def _from_file(
    path: str, delimiter: str | None, max_bytes: int
) -> Iterator[Record | Problem | Idle]:
    with open_binary(path) as stream:
        yield from _rows(path, stream, delimiter, max_bytes)


class _Lines:
    """Decoded lines (line ends kept, as csv wants) with their count and the undecodable
    bytes, so a bad byte is blamed on its row only."""

    def __init__(self, head: bytes, stream: BinaryIO, max_bytes: int) -> None:
        self.head = head
        self.stream = stream
        self.max_bytes = max_bytes
        self.count = 0
        self.bad: dict[int, int] = {}  # line number -> first undecodable byte
        self.oversized: set[int] = set()  # numbers of lines longer than max_bytes
        self.skipping = False  # the rest of an over-long line is still to be skipped

    def __iter__(self) -> Iterator[str]:
        pending = b""
        for raw in self._raw():
            if not raw.endswith(b"\n"):
                pending += raw
                if len(pending) > self.max_bytes:
                    # Too long to keep: the row is reported (_records), the rest skipped.
                    pending = b""
                    self.skipping = True
                    yield self._oversized()
                    while self.skipping:
                        self.skip_some()
                continue
            line, pending = pending + raw, b""
            # A whole line can still be too long when it came in the sniffed head.
            yield self._decode(line) if len(line) <= self.max_bytes + 1 else self._oversized()
        if pending:
            yield self._decode(pending)

    def _oversized(self) -> str:
        """Stands in for an over-long line: an empty line, remembered by its number."""
        self.count += 1
        self.oversized.add(self.count)
        return "\n"

    def _raw(self) -> Iterator[bytes]:
        yield from _split(self.head)
        readline = self.stream.readline
        while raw := readline(self.max_bytes + 1):
            yield raw

    def skip_some(self) -> None:
        """Skip up to SKIP_YIELD_BYTES more of an over-long line; done at its end."""
        passed = 0
        while passed < SKIP_YIELD_BYTES:
            piece = self.stream.readline(CHUNK)
            if not piece or piece.endswith(b"\n"):
                self.skipping = False
                return
            passed += len(piece)

    def _decode(self, raw: bytes) -> str:
        self.count += 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.bad[self.count] = raw[exc.start]
            return raw.decode("utf-8", "replace")


def _split(data: bytes) -> list[bytes]:
    """Split on b"\\n" only (splitlines would also split on a bare \\r inside a field)."""
    parts = data.split(b"\n")
    out = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def _rows(
    name: str, stream: BinaryIO, delimiter: str | None, max_bytes: int
) -> Iterator[Record | Problem | Idle]:
    try:
        head = _read_head(stream)
        if head.startswith(BOM):
            head = head[len(BOM) :]
        if not head.strip():
            yield Problem(name, "file is empty (a CSV input needs a header row)")
            return
        if b"\n" not in head and b"\r" in head[:-1]:
            # CR line ends (an old Mac export): read as LFs, a CR in a quoted field too.
            stream = io.BufferedReader(CrAsLf(head, stream), CHUNK)
            head = _read_head(stream)
        sep = delimiter or _sniff(head)
        lines = _Lines(head, stream, max_bytes)
        if csv.field_size_limit() < _FIELD_LIMIT:
            csv.field_size_limit(_FIELD_LIMIT)
        reader = csv.reader(iter(lines), delimiter=sep, strict=True)
        yield from _records(name, reader, lines, sep)
    except OSError as exc:
        raise InputError(f"{name}: read failed: {exc.strerror or exc}") from exc


def _records(
    name: str, reader: Iterator[list[str]], lines: _Lines, sep: str
) -> Iterator[Record | Problem | Idle]:
    # The header row and the data rows share one loop (and its line accounting).
    header: list[str] | None = None
    names: list[tuple[int, str]] = []  # (column, name) of the columns that have a name
    start = 1
    while True:
        while lines.skipping:  # the rest of an over-long line, a piece at a time
            lines.skip_some()
            yield IDLE  # a time budget is honoured even on an endless line
        start = lines.count + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield Problem(f"{name}:{start}", _csv_error(exc, lines.count, start))
            if header is None:
                return
            continue
        if lines.oversized:
            lines.oversized.clear()
            yield Problem(f"{name}:{start}", oversized_message(lines.max_bytes))
            if header is None:
                return
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line
        bad = _bad_byte(lines, start)
        if header is None:
            if bad is not None:
                yield Problem(f"{name}:{start}", f"header row is not UTF-8 (byte 0x{bad:02x})")
                return
            header = [h.strip() for h in row]
            seen: set[str] = set()
            for i, h in enumerate(header):
                if not h:
                    continue  # an unnamed column (a trailing separator) is not read
                if h in seen:
                    yield Problem(f"{name}:{start}", f"header names column {h!r} twice")
                    return
                seen.add(h)
                names.append((i, h))
            if not names:
                yield Problem(f"{name}:{start}", "header row has no column names")
                return
            continue
        origin = f"{name}:{start}"
        if bad is not None:
            yield Problem(origin, f"not UTF-8 (byte 0x{bad:02x})")
            continue
        if len(row) != len(header) and not (
            len(row) > len(header) and not any(f.strip() for f in row[len(header) :])
        ):
            shown = "tab" if sep == "\t" else repr(sep)
            yield Problem(
                origin,
                f"row has {len(row)} fields; the header has {len(header)} (delimiter {shown})",
            )
            continue
        yield Record(origin, {h: row[i] for i, h in names})


def _bad_byte(lines: _Lines, start: int) -> int | None:
    if not lines.bad:
        return None
    found = None
    for number in sorted(lines.bad):  # only lines read so far: up to the end of this row
        byte = lines.bad.pop(number)
        if number >= start and found is None:
            found = byte
    return found


def _csv_error(exc: csv.Error, end: int, start: int) -> str:
    text = str(exc)
    if "unexpected end of data" in text:
        return "a quoted field is never closed (the rest of the input was read into it)"
    if "larger than field limit" in text:
        return f"a field is longer than {_FIELD_LIMIT:,} characters"
    where = f" (line {end})" if end != start else ""
    return f"bad CSV quoting{where}: {text}"


def _read_head(stream: BinaryIO) -> bytes:
    read1 = getattr(stream, "read1", stream.read)
    head = b""
    while len(head) < _SNIFF_BYTES:
        piece = read1(_SNIFF_BYTES - len(head))
        if not piece:
            break
        head += piece
    return head


def _sniff(head: bytes) -> str:
    """The delimiter of the sample (complete lines only); ',' when it cannot be told."""
    cut = head.rfind(b"\n")
    sample = (head[:cut] if cut > 0 else head).decode("utf-8", "replace")
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return ","
