"""A JSON array of records, streamed: one element at a time over a sliding text buffer.

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

import json
import re
from collections.abc import Callable, Generator, Iterator
from typing import BinaryIO, cast

from zsync.model import IDLE, Idle, Problem, Record
from zsync.read.files import (
    BOM,
    CHUNK,
    DEFAULT_MAX_RECORD_BYTES,
    SKIP_YIELD_BYTES,
    oversized_message,
)
from zsync.read.jsonvalue import (
    NonFinite,
    duplicate_keys,
    duplicates_warning,
    lenient_scan,
    non_finite_at,
    not_utf8,
    scan,
    value_error,
)

# A JSON token cut by the end of the buffer can fail or look complete this close to the
# end ("-Infinity", a number cut after its '.', "\ud83d\ude00"), so such results are
# re-checked after reading more.
_LOOKAHEAD = 16


# Top-level JSON value type by its first character, for "expected an array" messages.
_TOP_LEVEL_TYPES = {"{": "an object", '"': "a string", "t": "a boolean", "f": "a boolean"}
_TOP_LEVEL_TYPES.update(dict.fromkeys("-0123456789", "a number"))
_TOP_LEVEL_TYPES["n"] = "null"


_WS_CHARS = frozenset(" \t\r\n")


# Characters that end a token: an error before one of them is not caused by a cut.
_TOKEN_ENDS = frozenset(' \t\r\n,:[]{}"')


# JSON whitespace, as the json module defines it; a '*' pattern always matches.
_ws = cast(Callable[[str, int], "re.Match[str]"], re.compile(r"[ \t\n\r]*").match)


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
            raw = self.read1(CHUNK) if keep < CHUNK else self.stream.read(keep)
            data = self.carry + raw if self.carry else raw
            self.carry = b""
            if not raw:
                self.exhausted = True
            if not self.started:
                if len(data) < len(BOM) and raw:
                    self.carry = data  # too short to tell whether a BOM starts it
                    continue
                self.started = True
                if data.startswith(BOM):
                    data = data[len(BOM) :]
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


def json_array(
    stream: BinaryIO,
    name: str,
    *,
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    warn: Callable[[str], None] = lambda _m: None,
) -> Iterator[Record | Problem | Idle]:
    """Each element of the JSON array on ``stream``, a Record or its Problem, as it is
    read; elements are named ``name[index]``."""
    # One long loop on purpose (over 60 lines): it runs once per element on the hot path,
    # and its locals (buf, pos, index, final) are shared by every branch; helpers take the
    # rare paths (_skip, _after_array, fatal).
    text = _Text(stream)

    def fatal(pos: int, message: str) -> Problem:
        # An undecodable byte before the point of failure is the likelier cause.
        bad = text.take_bad(pos + 1)
        if bad is not None:
            pos, message = bad[0], not_utf8(bad[1])
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
                value, end = scan(buf, pos)
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
            duplicate_keys()
            # Well formed or not, its end can be found by counting brackets: skip it.
            message = f"nesting deeper than 64 levels (record [{index}])"
            after = yield from _skip(text, name, pos, message)
            if after is None:
                return
            index += 1
            buf, pos, final = text.buf, after, text.exhausted
            continue
        except ValueError as exc:  # NonFinite, or an integer too long to convert
            duplicate_keys()
            # The element is otherwise well formed: report it and carry on after it.
            try:
                _, end = lenient_scan(buf, pos)
            except (ValueError, StopIteration, RecursionError):
                end = -1
            if final or 0 <= end <= len(buf) - _LOOKAHEAD:
                if end < 0:
                    yield fatal(pos, f"{value_error(exc)} (record [{index}])")
                    return
                bad = text.take_bad(end)
                if bad is not None:
                    at, message = bad[0], not_utf8(bad[1])
                else:
                    at = non_finite_at(buf, pos) if isinstance(exc, NonFinite) else pos
                    message = value_error(exc)
                yield Problem(f"{name}:{text.where(at)}", f"{message} (record [{index}])")
                index += 1
                pos = end
                continue
        else:
            if text.bad:
                bad = text.take_bad(end)
                if bad is not None:
                    where = text.where(bad[0])
                    yield Problem(f"{name}:{where}", f"{not_utf8(bad[1])} (record [{index}])")
                    index += 1
                    pos = end
                    continue
            if keys := duplicate_keys():
                warn(duplicates_warning(f"{name}[{index}]", keys))
            if end - pos > max_bytes:  # read whole (a small file), still over the limit
                message = f"{oversized_message(max_bytes)} (record [{index}])"
                yield Problem(f"{name}:{text.where(pos)}", message)
            else:
                yield Record(f"{name}[{index}]", value)
            index += 1
            pos = end
            continue
        # The unit runs past the end of the buffer: read on and parse it again, unless it
        # is already longer than a record may be: then report it and skip it unread.
        duplicate_keys()
        if len(buf) - mark > max_bytes:
            message = f"{oversized_message(max_bytes)} (record [{index}])"
            after = yield from _skip(text, name, _element_start(buf, mark, index), message)
            if after is None:
                return
            index += 1
            buf, pos, final = text.buf, after, text.exhausted
            continue
        final = not text.more(mark)
        buf = text.buf
        pos = 0


def _skip(
    text: _Text, name: str, start: int, message: str
) -> Generator[Problem | Idle, None, int | None]:
    """Report the element at ``buf[start]`` and skip it; where reading goes on (None: the
    input ended inside it)."""
    yield Problem(f"{name}:{text.where(start)}", message)
    end = yield from _skip_element(text, start)
    if end is None:
        return None  # the input ends inside it: nothing follows to read
    text.take_bad(end)
    return end


def _element_start(buf: str, mark: int, index: int) -> int:
    """Where the element of a unit starts: past the separator before it, if any."""
    pos = _ws(buf, mark).end()
    if index and pos < len(buf) and buf[pos] == ",":
        pos = _ws(buf, pos + 1).end()
    return pos


_IN_STRING = re.compile(r'["\\]')
_OUTSIDE = re.compile(r'["\[\]{},]')


def _skip_element(text: _Text, pos: int) -> Generator[Idle, None, int | None]:
    """Find the end of the element at ``buf[pos]`` without keeping it: strings and brackets
    are followed (nothing is parsed), read text is dropped as it is passed, and an Idle is
    handed out every SKIP_YIELD_BYTES so a time budget can end an endless element.
    Returns the position in ``text.buf`` just past the element; None at the end of input."""
    depth, in_string, escaped, passed = 0, False, False, 0
    while True:
        buf, n, i = text.buf, len(text.buf), pos
        if escaped and i < n:
            i, escaped = i + 1, False
        while i < n:
            if in_string:
                m = _IN_STRING.search(buf, i)
                if m is None:
                    i = n
                    break
                i = m.end()
                if m.group() == "\\":
                    if i >= n:
                        escaped = True
                        break
                    i += 1
                    continue
                in_string = False
                if depth == 0:
                    return i
                continue
            m = _OUTSIDE.search(buf, i)
            if m is None:
                i = n
                break
            c, j = m.group(), m.start()
            i = j + 1
            if c == '"':
                in_string = True
            elif c in "[{":
                depth += 1
            elif depth == 0:
                return j  # ',' or a closing bracket ends a scalar (or a broken) element
            elif c != ",":
                depth -= 1
                if depth == 0:
                    return i
        passed += n - pos
        if not text.more(n):
            return None
        pos = 0
        if passed >= SKIP_YIELD_BYTES:
            passed = 0
            yield IDLE


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
