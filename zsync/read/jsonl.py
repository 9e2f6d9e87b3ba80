"""JSONL/NDJSON: one record per line, from a file, a pipe or a source program's stdout.

A line is parsed on its own, so a bad line is that line's problem and reading goes on.
:func:`jsonl_lines` hands out the raw bytes of each line, for the skip path that recognises
an unchanged line before paying for parsing it.
"""

from __future__ import annotations

import json
import os
import select
from collections.abc import Iterator
from typing import BinaryIO

from zsync.errors import InputError
from zsync.model import Problem, Record
from zsync.read.files import BOM, CHUNK, display, open_binary, reason
from zsync.read.jsonvalue import NonFinite, decoder, non_finite_at, value_error


def jsonl(stream: BinaryIO, name: str) -> Iterator[Record | Problem]:
    for origin, raw in _jsonl_lines(stream, name):
        item = parse_jsonl_line(origin, raw)
        if item is not None:
            yield item


def _jsonl_lines(stream: BinaryIO, name: str) -> Iterator[tuple[str, bytes]]:
    for lineno, raw in enumerate(stream, start=1):
        if lineno == 1 and raw.startswith(BOM):
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
            chunk = os.read(fd, CHUNK)
        except OSError as exc:
            raise InputError(f"{name}: read failed: {reason(exc)}") from exc
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
            if lineno == 1 and raw.startswith(BOM):
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
    name = display(path)
    owned = open_binary(path)
    try:
        yield from _jsonl_lines(owned, name)
    except OSError as exc:
        raise InputError(f"{name}: read failed: {reason(exc)}") from exc
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
        return Record(origin, decoder.decode(line))
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
        if isinstance(exc, NonFinite):
            col = non_finite_at(line, 0) + 1
            return Problem(f"{origin}:{col}", value_error(exc))
        return Problem(origin, value_error(exc))
