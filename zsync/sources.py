"""Input readers: a JSON array (streamed) or JSONL/NDJSON, from a file or stdin.

Every item comes out as a :class:`Record` (parsed JSON value + where it came from) or a
:class:`Problem` (what is wrong + where); a bad item never stops the good ones unless the
reader cannot find the next item after it (a syntax error inside a JSON array).

Why JSON arrays are parsed with the standard library and not ijson: ijson (yajl2_c) keeps a
prefix string per nesting level, so memory grows with depth squared (30,000 ``[`` took
2 GB; 100,000 was killed), and it reports no line or column, so finding an error meant
re-reading the input, which stdin cannot do. ``json``'s C scanner, applied to one array
element at a time over a sliding text buffer, parses small records as fast as
ijson.items (about 480k/s here, before building Record objects), gives exact positions,
raises RecursionError instead of eating memory, and lets NaN/Infinity be refused with a
clear message.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from zsync.errors import InputError, UsageError

__all__ = [
    "Problem",
    "Record",
    "detect_format",
    "jsonl_lines",
    "parse_jsonl_line",
    "read_records",
]

# Read size. Records larger than this are handled by growing the read (see _Text.more).
_CHUNK = 1 << 16
# A JSON token cut by the end of the buffer can fail or look complete this close to the
# end ("-Infinity", a number cut after its '.', "\ud83d\ude00"), so such results are
# re-checked after reading more.
_LOOKAHEAD = 16
_BOM_BYTES = b"\xef\xbb\xbf"
_JSON_WS = b" \t\r\n"

_FORMATS = {"json": "json", "jsonl": "jsonl", "ndjson": "jsonl"}
_EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}

# Top-level JSON value type by its first character, for "expected an array" messages.
_TOP_LEVEL_TYPES = {"{": "an object", '"': "a string", "t": "a boolean", "f": "a boolean"}
_TOP_LEVEL_TYPES.update(dict.fromkeys("-0123456789", "a number"))
_TOP_LEVEL_TYPES["n"] = "null"

# Only used on the error path, to point at a NaN/Infinity outside of strings.
_NON_FINITE = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)', re.S)

_WS_CHARS = frozenset(" \t\r\n")
# Characters that end a token: an error before one of them is not caused by a cut.
_TOKEN_ENDS = frozenset(' \t\r\n,:[]{}"')

# JSON whitespace, as the json module defines it; a '*' pattern always matches.
_ws = cast(Callable[[str, int], "re.Match[str]"], re.compile(r"[ \t\n\r]*").match)


@dataclass(frozen=True, slots=True)
class Record:
    origin: str  # "in.jsonl:12" (1-based line), "in.json[3]" (0-based index), "<stdin>:4"
    data: Any  # the parsed JSON value; mapping checks that it is an object


@dataclass(frozen=True, slots=True)
class Problem:
    origin: str  # "in.json:3:17" (line:column when known), "in.jsonl:5"
    message: str  # one line, without the origin


class _NonFinite(ValueError):
    """NaN/Infinity in the input: Python's json accepts them, JSON and the API do not."""


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(name)


_decoder = json.JSONDecoder(parse_constant=_refuse_constant)
_Scanner = Callable[[str, int], tuple[Any, int]]
# scan_once parses one value at an index (raw_decode minus its overhead); typeshed omits it.
_scan: _Scanner = _decoder.scan_once  # type: ignore[attr-defined]
# Parses what _decoder refuses, only to find where the refused element ends so reading
# can continue after it.
_lenient_scan: _Scanner = json.JSONDecoder(  # type: ignore[attr-defined]
    parse_constant=lambda _n: None, parse_int=float
).scan_once


def detect_format(path: str, fmt: str | None, *, stdin: BinaryIO | None = None) -> str:
    """ "json" or "jsonl": ``fmt`` if given, else the extension, else the first byte.

    Sniffing stdin only peeks when the stream can (a BufferedReader); read_records
    itself sniffs without consuming anything, so prefer letting it decide.
    """
    if fmt is not None:
        try:
            return _FORMATS[fmt.lower()]
        except KeyError:
            raise UsageError(f"unknown input format {fmt!r}; use json, jsonl or ndjson") from None
    if path != "-":
        for ext, found in _EXTENSIONS.items():
            if path.lower().endswith(ext):
                return found
        with _open(path) as f:
            return _sniff(_head(f, _display(path)))
    stream = stdin if stdin is not None else sys.stdin.buffer
    peek = getattr(stream, "peek", None)
    return _sniff(peek(_CHUNK) if peek is not None else b"")


def read_records(
    path: str,
    fmt: str | None = None,
    *,
    stdin: BinaryIO | None = None,
    name: str = "<stdin>",
) -> Iterator[Record | Problem]:
    """Stream the records of one input.

    Raises InputError at once when the file cannot be opened (or UsageError for an
    unknown ``fmt``); reading itself starts, and the file is held open, only while the
    records are being iterated, so an iterator that is never used leaks nothing.
    ``name`` is what origins call stdin (a source program's name when it is its pipe).
    """
    if fmt is not None:
        detect_format(path, fmt)
    if path == "-":
        return _read(name, None, stdin if stdin is not None else sys.stdin.buffer, fmt)
    _open(path).close()
    return _read(_display(path), path, None, fmt)


def _read(
    name: str, path: str | None, stream: BinaryIO | None, fmt: str | None
) -> Iterator[Record | Problem]:
    owned = _open(path) if path is not None else None
    try:
        source = owned if owned is not None else cast(BinaryIO, stream)
        if fmt is not None or (path is not None and _has_known_extension(path)):
            found = detect_format(path or "-", fmt)
        else:
            # Sniff without losing what was read: the bytes go back in front of the stream.
            head = _head(source, name)
            found = _sniff(head)
            source = io.BufferedReader(_Prepend(head, source), buffer_size=_CHUNK)
        reader = _json_array if found == "json" else _jsonl
        yield from reader(source, name)
    except OSError as exc:
        raise InputError(f"{name}: read failed: {_reason(exc)}") from exc
    finally:
        if owned is not None:
            owned.close()


# -- JSON array ---------------------------------------------------------------------------


class _Text:
    """Decoded text of a byte stream, read on demand, with the bookkeeping that turns a
    position in the buffer back into a line and column of the file.

    Bytes that are not UTF-8 become U+FFFD and their positions are kept in ``bad``, so
    the reader can blame the one record that holds them and go on with the next.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        # read1 returns what a pipe has now instead of waiting for a full chunk, so
        # records from a slow producer are not held back.
        self.read1 = getattr(stream, "read1", stream.read)
        self.buf = ""
        self.offset = 0  # characters dropped before buf[0]
        self.line = 1  # of buf[0]
        self.col = 1  # of buf[0], in characters
        self.carry = b""  # bytes held back: a UTF-8 sequence cut by the end of a read
        self.bad: list[tuple[int, int]] = []  # (offset, byte value) of undecodable bytes
        self.exhausted = False  # end of input: no text will follow buf
        self.started = False

    def more(self, keep_from: int) -> bool:
        """Drop ``buf[:keep_from]`` and append the next piece; False at the end of input.

        Reads at least as much as is kept, so a record far larger than one chunk costs a
        logarithmic number of re-parses, not one per chunk.
        """
        self._advance(keep_from)
        while not self.exhausted:
            keep = len(self.buf)
            raw = self.read1(_CHUNK) if keep < _CHUNK else self.stream.read(keep)
            data = self.carry + raw if self.carry else raw
            self.carry = b""
            if not raw:
                self.exhausted = True
            if not self.started:
                if len(data) < len(_BOM_BYTES) and raw:
                    self.carry = data  # too short to tell whether a BOM starts it
                    continue
                self.started = True
                if data.startswith(_BOM_BYTES):
                    data = data[len(_BOM_BYTES) :]
            text = self._decode(data)
            if text:
                self.buf += text
                return True
        return False

    def _decode(self, data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        view = memoryview(data)
        parts: list[str] = []
        at = self.offset + len(self.buf)
        i = 0
        while i < len(data):
            try:
                parts.append(str(view[i:], "utf-8"))
                break
            except UnicodeDecodeError as exc:
                good = str(view[i : i + exc.start], "utf-8")
                parts.append(good)
                at += len(good)
                cut = exc.reason == "unexpected end of data" and i + exc.end == len(data)
                if cut and not self.exhausted:
                    self.carry = bytes(view[i + exc.start :])
                    break
                self.bad.append((at, data[i + exc.start]))
                parts.append("\ufffd")
                at += 1
                i += exc.end
        return "".join(parts)

    def _advance(self, n: int) -> None:
        if n <= 0:
            return
        buf = self.buf
        newlines = buf.count("\n", 0, n)
        if newlines:
            self.line += newlines
            self.col = n - buf.rfind("\n", 0, n)
        else:
            self.col += n
        self.offset += n
        self.buf = buf[n:]

    def where(self, pos: int) -> str:
        """line:column of ``buf[pos]``."""
        buf = self.buf
        newlines = buf.count("\n", 0, pos)
        if newlines:
            line, col = self.line + newlines, pos - buf.rfind("\n", 0, pos)
        else:
            line, col = self.line, self.col + pos
        return f"{line}:{col}"

    def take_bad(self, before: int) -> tuple[int, int] | None:
        """The first undecodable byte before ``buf[before]`` (as a buf position and byte),
        forgetting all of them up to there."""
        bad = self.bad
        limit = self.offset + before
        if not bad or bad[0][0] >= limit:
            return None
        first = bad[0]
        n = 1
        while n < len(bad) and bad[n][0] < limit:
            n += 1
        del bad[:n]
        return first[0] - self.offset, first[1]


class _NeedMore(Exception):
    pass


def _json_array(stream: BinaryIO, name: str) -> Iterator[Record | Problem]:
    text = _Text(stream)

    def fatal(pos: int, message: str) -> Problem:
        # An undecodable byte before the point of failure is the likelier cause.
        bad = text.take_bad(pos + 1)
        if bad is not None:
            pos, message = bad[0], _not_utf8(bad[1])
        return Problem(f"{name}:{text.where(pos)}", message)

    # Up to the opening '['.
    text.more(0)
    pos = _ws(text.buf, 0).end()
    while pos >= len(text.buf):
        if not text.more(pos):
            yield Problem(name, "file is empty")
            return
        pos = _ws(text.buf, 0).end()
    if text.buf[pos] != "[":
        yield fatal(pos, _not_an_array(text.buf, pos))
        return

    buf = text.buf
    pos += 1
    index = 0
    final = text.exhausted
    while True:
        # One unit = the separator before an element + the element. If the buffer ends
        # inside a unit, the unit is parsed again from `mark` once more text is in.
        mark = pos
        try:
            if pos >= len(buf):
                raise _NeedMore
            c = buf[pos]
            if c in _WS_CHARS:  # usually not: ',' follows the element directly
                pos = _ws(buf, pos).end()
                if pos >= len(buf):
                    raise _NeedMore
                c = buf[pos]
            if c == "]":
                yield from _after_array(text, pos + 1, fatal)
                return
            if index:
                if c != ",":
                    message = f"invalid JSON: Expecting ',' delimiter (after record [{index - 1}])"
                    yield fatal(pos, message)
                    return
                pos = _ws(buf, pos + 1).end()
            if not final and len(buf) - pos < _LOOKAHEAD:
                raise _NeedMore
            try:
                value, end = _scan(buf, pos)
            except StopIteration as exc:
                raise json.JSONDecodeError("Expecting value", buf, exc.value) from None
            if not final and end > len(buf) - _LOOKAHEAD:
                raise _NeedMore
        except _NeedMore:
            if final:
                yield fatal(len(buf), _end_message(text, index, mark))
                return
        except json.JSONDecodeError as exc:
            if not _cut(buf, exc):
                yield fatal(exc.pos, f"invalid JSON: {exc.msg} (record [{index}])")
                return
            if final:
                yield fatal(len(buf), _end_message(text, index, mark))
                return
        except RecursionError:
            yield fatal(pos, f"nesting deeper than 64 levels (record [{index}]); cannot read on")
            return
        except ValueError as exc:  # _NonFinite, or an integer too long to convert
            # The element is otherwise well formed: report it and carry on after it.
            try:
                _, end = _lenient_scan(buf, pos)
            except (ValueError, StopIteration, RecursionError):
                end = -1
            if final or 0 <= end <= len(buf) - _LOOKAHEAD:
                if end < 0:
                    yield fatal(pos, f"{_value_error(exc)} (record [{index}])")
                    return
                bad = text.take_bad(end)
                if bad is not None:
                    at, message = bad[0], _not_utf8(bad[1])
                else:
                    at = _non_finite_at(buf, pos) if isinstance(exc, _NonFinite) else pos
                    message = _value_error(exc)
                yield Problem(f"{name}:{text.where(at)}", f"{message} (record [{index}])")
                index += 1
                pos = end
                continue
        else:
            if text.bad:
                bad = text.take_bad(end)
                if bad is not None:
                    where = text.where(bad[0])
                    yield Problem(f"{name}:{where}", f"{_not_utf8(bad[1])} (record [{index}])")
                    index += 1
                    pos = end
                    continue
            yield Record(f"{name}[{index}]", value)
            index += 1
            pos = end
            continue
        # The unit runs past the end of the buffer: read on and parse it again.
        final = not text.more(mark)
        buf = text.buf
        pos = 0


def _after_array(text: _Text, pos: int, fatal: Callable[[int, str], Problem]) -> Iterator[Problem]:
    """After the closing ']' only whitespace may follow."""
    while True:
        pos = _ws(text.buf, pos).end()
        if pos < len(text.buf):
            yield fatal(pos, "invalid JSON: extra data after the closing ']'")
            return
        if not text.more(pos):
            return
        pos = 0


def _cut(buf: str, exc: json.JSONDecodeError) -> bool:
    """Could this error be the end of the buffer cutting a token, rather than bad JSON?"""
    if exc.msg.startswith("Unterminated string"):
        return True
    if exc.pos < len(buf) - _LOOKAHEAD:
        return False
    return not any(c in _TOKEN_ENDS for c in buf[exc.pos :])


def _end_message(text: _Text, index: int, mark: int) -> str:
    if _ws(text.buf, mark).end() >= len(text.buf):
        return "unexpected end of file (the array is not closed)"
    return f"unexpected end of file (record [{index}] is incomplete)"


def _not_an_array(buf: str, pos: int) -> str:
    kind = _TOP_LEVEL_TYPES.get(buf[pos])
    if kind == "an object":
        return (
            "top-level value is an object; expected an array of records"
            " (for one object per line use the jsonl format)"
        )
    if kind is not None:
        return f"top-level value is {kind}; expected an array of records"
    for word in ("NaN", "Infinity"):
        if buf.startswith(word, pos):
            return f"{word} is not valid JSON"
    return "invalid JSON: Expecting value (the file should hold an array of records)"


def _non_finite_at(buf: str, pos: int) -> int:
    for m in _NON_FINITE.finditer(buf, pos):
        if m.group(1):
            return m.start(1)
    return pos


def _value_error(exc: ValueError) -> str:
    if isinstance(exc, _NonFinite):
        return f"{exc.args[0].lstrip('-')} is not valid JSON (use null or a string)"
    if "integer string conversion" in str(exc):
        return "number has too many digits (over 4300)"
    return f"invalid JSON: {str(exc).splitlines()[0]}"


# -- JSONL --------------------------------------------------------------------------------


def _jsonl(stream: BinaryIO, name: str) -> Iterator[Record | Problem]:
    for origin, raw in _jsonl_lines(stream, name):
        item = parse_jsonl_line(origin, raw)
        if item is not None:
            yield item


def _jsonl_lines(stream: BinaryIO, name: str) -> Iterator[tuple[str, bytes]]:
    for lineno, raw in enumerate(stream, start=1):
        if lineno == 1 and raw.startswith(_BOM_BYTES):
            raw = raw[3:]
        if raw.strip():
            yield f"{name}:{lineno}", raw


def pipe_lines(fd: int, name: str, idle: float) -> Iterator[tuple[str, bytes] | None]:
    """What _jsonl_lines gives for a pipe, each line as soon as it is complete, and None
    whenever nothing arrived for ``idle`` seconds, so the reader can act on a pause (send
    what it holds, notice a stop) instead of waiting inside a read."""
    lineno = 0
    parts: list[bytes] = []  # the line being received, in pieces (one may be megabytes)
    while True:
        try:
            if not select.select([fd], [], [], idle)[0]:
                yield None
                continue
            chunk = os.read(fd, _CHUNK)
        except OSError as exc:
            raise InputError(f"{name}: read failed: {_reason(exc)}") from exc
        if chunk:
            *complete, rest = chunk.split(b"\n")
            complete = [line + b"\n" for line in complete]  # as a file's lines end
        else:
            complete, rest = [b""], b""  # the end: what is held is the last line
        if complete:
            complete[0] = b"".join(parts) + complete[0]
            parts = []
        for raw in complete:
            lineno += 1
            if lineno == 1 and raw.startswith(_BOM_BYTES):
                raw = raw[3:]
            if raw.strip():
                yield f"{name}:{lineno}", raw
        if not chunk:
            return
        if rest:
            parts.append(rest)


def jsonl_lines(path: str) -> Iterator[tuple[str, bytes]]:
    """(origin, raw bytes) of every non-blank line of a JSONL file, unparsed: the skip path
    recognises an unchanged line by its bytes before paying for parsing it."""
    name = _display(path)
    owned = _open(path)
    try:
        yield from _jsonl_lines(owned, name)
    except OSError as exc:
        raise InputError(f"{name}: read failed: {_reason(exc)}") from exc
    finally:
        owned.close()


def parse_jsonl_line(origin: str, raw: bytes) -> Record | Problem | None:
    """One JSONL line as a Record, or the Problem with it; None for a blank line."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        col = len(raw[: exc.start].decode("utf-8")) + 1
        return Problem(origin, f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {col})")
    if not line or line.isspace():
        return None
    try:
        return Record(origin, _decoder.decode(line))
    except json.JSONDecodeError as exc:
        if exc.msg.startswith("Unterminated string") or exc.pos >= len(line.rstrip()):
            msg = "invalid JSON: unexpected end of line (is the record cut short?)"
        else:
            msg = f"invalid JSON: {exc.msg}"
        # The line holds no newline but its last character, so the column is the
        # position; an error past the end is shown at the end of the visible text.
        col = min(exc.pos, len(line.rstrip("\r\n"))) + 1
        return Problem(f"{origin}:{col}", msg)
    except RecursionError:
        return Problem(origin, "nesting deeper than 64 levels")
    except ValueError as exc:
        if isinstance(exc, _NonFinite):
            col = _non_finite_at(line, 0) + 1
            return Problem(f"{origin}:{col}", _value_error(exc))
        return Problem(origin, _value_error(exc))


# -- opening and sniffing -----------------------------------------------------------------


def _not_utf8(byte: int) -> str:
    return f"not UTF-8 (byte 0x{byte:02x})"


def _open(path: str) -> BinaryIO:
    try:
        # Closed by the caller (_read closes in its finally). A buffer of one read chunk, not
        # the default 8 KB: lines of transcripts run to kilobytes, and reading them through
        # a small buffer cost about a quarter as much as parsing them.
        return open(path, "rb", buffering=_CHUNK)
    except OSError as exc:
        raise InputError(f"{_display(path)}: {_reason(exc)}") from exc


def _reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return (exc.strerror or type(exc).__name__).lower()


def _display(path: str) -> str:
    """The path as the user gave it, made safe for one-line messages."""
    return path if path.isprintable() else repr(path)[1:-1]


def _has_known_extension(path: str) -> bool:
    return path != "-" and any(path.lower().endswith(ext) for ext in _EXTENSIONS)


def _head(stream: BinaryIO, name: str) -> bytes:
    """Bytes from the start up to the first non-whitespace byte (or the end)."""
    read1 = getattr(stream, "read1", stream.read)
    head = b""
    try:
        while True:
            piece = read1(_CHUNK)
            if not piece:
                return head
            head += piece
            body = head[3:] if head.startswith(_BOM_BYTES) else head
            if body.strip(_JSON_WS):
                return head
    except OSError as exc:
        raise InputError(f"{name}: read failed: {_reason(exc)}") from exc


def _sniff(head: bytes) -> str:
    if head.startswith(_BOM_BYTES):
        head = head[3:]
    return "json" if head.lstrip(_JSON_WS)[:1] == b"[" else "jsonl"


class _Prepend(io.RawIOBase):
    """A stream that replays bytes already read before continuing with the original."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        # read1: hand on what a pipe has now rather than wait for a full buffer.
        self._read = getattr(rest, "read1", rest.read)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._read(len(b))
        b[: len(data)] = data
        return len(data)
