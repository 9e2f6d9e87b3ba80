"""JSONL/NDJSON: one record per line, from a file, a pipe or a source program's stdout.

A line is parsed on its own, so a bad line is that line's problem and reading goes on.
A line ends at LF, CRLF or a lone CR (old Mac exports): a raw CR can only be whitespace
between JSON tokens, never part of a value, so reading it as a line end loses nothing.
The skip path cuts files into lines itself (``zsync.read.raw``) and parses only the lines
it does not recognise, with :func:`parse_jsonl_line`.
"""

from __future__ import annotations

import io
import json
import os
import select
from collections.abc import Iterator
from typing import BinaryIO

from zsync.errors import InputError
from zsync.model import IDLE, Idle, Problem, Record, Warn
from zsync.read.files import (
    BOM,
    CHUNK,
    DEFAULT_MAX_RECORD_BYTES,
    SKIP_YIELD_BYTES,
    CrAsLf,
    Oversized,
    lone_cr_as_lf,
    oversized_message,
    reason,
)
from zsync.read.jsonvalue import (
    NonFinite,
    decoder,
    duplicate_keys,
    duplicates_warning,
    non_finite_at,
    value_error,
)


def _ignore(_message: str) -> None:
    pass


def _lone_cr(line: bytes) -> bool:
    """Does a line from readline() hold a CR that is not its CRLF line end? (A line holds
    no LF but its last byte, so any CR before the last two bytes is a lone one.)"""
    at = line.find(b"\r")
    return at >= 0 and not (at == len(line) - 2 and line[-1] == 10)


def jsonl(
    stream: BinaryIO,
    name: str,
    *,
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    warn: Warn = _ignore,
) -> Iterator[Record | Problem | Idle]:
    """The records of a JSONL stream, a line at a time; an IDLE while an over-long line is
    skipped."""
    for got in _jsonl_lines(stream, name, max_bytes):
        if got is None:
            yield IDLE
        elif (item := parse_jsonl_line(*got, warn=warn)) is not None:
            yield item


def _jsonl_lines(
    stream: BinaryIO, name: str, max_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> Iterator[tuple[str, bytes] | None]:
    """(origin, line) of every non-blank line; an over-long line comes as Oversized, at once,
    and its rest is skipped in pieces, with a None after each SKIP_YIELD_BYTES of it."""
    readline = stream.readline
    lineno = 0
    translated = False
    while True:
        raw = readline(max_bytes + 1)
        if not raw:
            return
        if not translated and _lone_cr(raw):
            # CR line ends: from this line on, read through a stream that makes them LFs.
            readline = io.BufferedReader(CrAsLf(raw, stream), CHUNK).readline
            translated = True
            continue
        lineno += 1
        if lineno == 1 and raw.startswith(BOM):
            raw = raw[3:]
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            yield f"{name}:{lineno}", Oversized(max_bytes)
            skipped = 0
            while True:
                piece = readline(CHUNK)
                if not piece or piece.endswith(b"\n"):
                    break
                skipped += len(piece)
                if skipped >= SKIP_YIELD_BYTES:
                    skipped = 0
                    yield None
            continue
        if raw.strip():
            yield f"{name}:{lineno}", raw


def pipe_lines(
    fd: int,
    name: str,
    idle: float,
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    head: bytes = b"",
) -> Iterator[tuple[str, bytes] | None]:
    """What _jsonl_lines gives for a pipe, each line as soon as it is complete, and None
    whenever nothing arrived for ``idle`` seconds, so the reader can act on a pause (send
    what it holds, notice a stop) instead of waiting inside a read. A line longer than
    ``max_bytes`` comes as Oversized as soon as it is too long; its rest is dropped.
    ``head``: bytes already read from ``fd`` (to tell its format), read first."""
    lineno = 0
    parts: list[bytes] = []  # the line being received, in pieces (one may be megabytes)
    held = 0  # bytes in parts
    skipping = False  # inside an over-long line, already reported
    cr = b""  # a CR that ended the last read: a line end unless an LF comes next
    while True:
        try:
            if head:
                chunk, head = head, b""
            elif not select.select([fd], [], [], idle)[0]:
                yield None
                continue
            else:
                chunk = os.read(fd, CHUNK)
        except BlockingIOError:
            continue  # a device opened without blocking had nothing after all
        except OSError as exc:
            raise InputError(f"{name}: read failed: {reason(exc)}") from exc
        if cr or b"\r" in chunk:
            translated, cr = lone_cr_as_lf(cr + chunk, not chunk)
            if chunk and not translated:
                continue  # only the CR so far
            chunk = translated
        if skipping:
            cut = chunk.find(b"\n")
            if chunk and cut < 0:
                held += len(chunk)
                if held >= SKIP_YIELD_BYTES:
                    held = 0
                    yield None  # a time budget can end the run on an endless line
                continue
            skipping, held = False, 0
            chunk = chunk[cut + 1 :] if chunk else chunk
            if chunk == b"" and cut >= 0:
                continue
        if chunk:
            *complete, rest = chunk.split(b"\n")
            complete = [line + b"\n" for line in complete]  # as a file's lines end
        else:
            complete, rest = [b""], b""  # the end: what is held is the last line
        if complete:
            complete[0] = b"".join(parts) + complete[0]
            parts, held = [], 0
        for raw in complete:
            lineno += 1
            if lineno == 1 and raw.startswith(BOM):
                raw = raw[3:]
            if len(raw) > max_bytes + 1:
                yield f"{name}:{lineno}", Oversized(max_bytes)
            elif raw.strip():
                yield f"{name}:{lineno}", raw
        if not chunk:
            return
        if rest:
            if held + len(rest) > max_bytes:
                lineno += 1
                yield f"{name}:{lineno}", Oversized(max_bytes)
                parts, held, skipping = [], len(rest), True
                continue
            parts.append(rest)
            held += len(rest)


def parse_jsonl_line(origin: str, raw: bytes, *, warn: Warn = _ignore) -> Record | Problem | None:
    """One JSONL line as a Record, or the Problem with it; None for a blank line."""
    if type(raw) is Oversized:
        return Problem(origin, oversized_message(raw.limit))
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        col = len(raw[: exc.start].decode("utf-8")) + 1
        return Problem(origin, f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {col})")
    if not line or line.isspace():
        return None
    try:
        record = Record(origin, decoder.decode(line))
    except json.JSONDecodeError as exc:
        duplicate_keys()  # of a line that is not read: forget them
        if exc.msg.startswith("Unterminated string") or exc.pos >= len(line.rstrip()):
            msg = "invalid JSON: unexpected end of line (is the record cut short?)"
        else:
            msg = f"invalid JSON: {exc.msg}"
        # The line holds no newline but its last character, so the column is the
        # position; an error past the end is shown at the end of the visible text.
        col = min(exc.pos, len(line.rstrip("\r\n"))) + 1
        return Problem(f"{origin}:{col}", msg)
    except RecursionError:
        duplicate_keys()
        return Problem(origin, "nesting deeper than 64 levels")
    except ValueError as exc:
        duplicate_keys()
        if isinstance(exc, NonFinite):
            col = non_finite_at(line, 0) + 1
            return Problem(f"{origin}:{col}", value_error(exc))
        return Problem(origin, value_error(exc))
    if keys := duplicate_keys():
        warn(duplicates_warning(origin, keys))
    return record
