"""One JSON or JSONL input (a file or a stream): the format by flag, extension or first byte."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import BinaryIO, cast

from zsync.errors import InputError
from zsync.model import Idle, Problem, Record
from zsync.read.files import (
    CHUNK,
    DEFAULT_MAX_RECORD_BYTES,
    Prepend,
    detect_format,
    display,
    has_known_extension,
    open_binary,
    read_head,
    reason,
    sniff,
)
from zsync.read.jsonarray import json_array
from zsync.read.jsonl import jsonl


def read_records(
    path: str,
    fmt: str | None = None,
    *,
    stdin: BinaryIO | None = None,
    name: str = "<stdin>",
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    warn: Callable[[str], None] = lambda _m: None,
) -> Iterator[Record | Problem | Idle]:
    """Stream the records of one input.

    ``fmt``: json or jsonl (ndjson), as :class:`~zsync.read.Source` decided it; None: the
    extension, else the first non-blank byte, read without losing it. Raises InputError at
    once when the file cannot be opened (or UsageError for an unknown ``fmt``); reading
    itself starts, and the file is held open, only while the records are being iterated,
    so an iterator that is never used leaks nothing. ``name`` is what origins call stdin
    (a source program's name when it is its pipe).
    """
    if fmt is not None or has_known_extension(path):
        fmt = detect_format(path, fmt)  # the flag or the extension: nothing is opened
    if path == "-":
        if stdin is None:
            raise InputError(f"{name}: no standard input to read")
        return _read(name, None, stdin, fmt, max_bytes, warn)
    open_binary(path).close()
    return _read(display(path), path, None, fmt, max_bytes, warn)


def _read(
    name: str,
    path: str | None,
    stream: BinaryIO | None,
    fmt: str | None,
    max_bytes: int,
    warn: Callable[[str], None],
) -> Iterator[Record | Problem | Idle]:
    owned = open_binary(path) if path is not None else None
    try:
        source = owned if owned is not None else cast(BinaryIO, stream)
        if fmt is None:
            # Sniff without losing what was read: the bytes go back in front of the stream.
            head = read_head(source, name)
            fmt = sniff(head)
            source = io.BufferedReader(Prepend(head, source), buffer_size=CHUNK)
        reader = json_array if fmt == "json" else jsonl
        yield from reader(source, name, max_bytes=max_bytes, warn=warn)
    except OSError as exc:
        raise InputError(f"{name}: read failed: {reason(exc)}") from exc
    finally:
        if owned is not None:
            owned.close()
