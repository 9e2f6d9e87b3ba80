"""Inputs that are not regular files: a pipe, a FIFO, ``/dev/stdin``, ``<(cmd)``, a device.

Such an input can be read once only, front to back, so it is opened once (never checked by
opening it beforehand, never mapped, never read ahead) and its format, when not given, is
told from the bytes read first, which are then read again as the start of the input.

It is opened without blocking: opening a FIFO otherwise waits inside ``open()`` until a
writer comes, and a Ctrl-C or SIGTERM then only sets the run's stop flag. Instead, until
the first byte (or the end) arrives, an :data:`~zsync.model.IDLE` is handed out every
:data:`~zsync.read.command.IDLE_SECONDS`, so a stop ends the run at once (exit 130). JSONL
is read as a pipe is (lines as they arrive, an IDLE after each quiet spell); a JSON array
or CSV is read with ordinary blocking reads once its first byte has arrived.
"""

from __future__ import annotations

import io
import os
import select
from collections.abc import Generator, Iterator
from typing import BinaryIO

from zsync.errors import InputError
from zsync.model import IDLE, Idle, Problem, Record, Warn
from zsync.read.command import IDLE_SECONDS
from zsync.read.csvfile import read_csv
from zsync.read.files import (
    BOM,
    CHUNK,
    Prepend,
    display,
    reason,
    sniff,
)
from zsync.read.jsonarray import json_array
from zsync.read.jsonl import parse_jsonl_line, pipe_lines

__all__ = ["read_stream"]

_JSON_WS = b" \t\r\n"

Items = Iterator[Record | Problem | Idle]


def read_stream(
    path: str,
    fmt: str | None,
    *,
    delimiter: str | None = None,
    max_bytes: int,
    warn: Warn,
) -> Items:
    """Every item of the stream at ``path``. ``fmt``, as :class:`~zsync.read.Source`
    decided it: csv, json, jsonl (singer reads as jsonl) or None (told here from the first
    non-blank byte)."""
    name = display(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"{name}: {reason(exc)}") from exc
    try:
        yield from _items(fd, name, fmt, delimiter, max_bytes, warn)
    finally:
        os.close(fd)


def _items(
    fd: int, name: str, fmt: str | None, delimiter: str | None, max_bytes: int, warn: Warn
) -> Items:
    if fmt == "csv":
        yield from _arrived(fd, name)
        os.set_blocking(fd, True)
        yield from read_csv("-", delimiter, stdin=_stream(fd, b""), max_bytes=max_bytes, name=name)
        return
    kind = "jsonl" if fmt == "singer" else fmt
    head = b""
    if kind is None:
        head = yield from _head(fd, name)
        kind = sniff(head)
    if kind == "json":
        if not head:
            yield from _arrived(fd, name)
        os.set_blocking(fd, True)
        yield from json_array(_stream(fd, head), name, max_bytes=max_bytes, warn=warn)
        return
    for got in pipe_lines(fd, name, IDLE_SECONDS, max_bytes, head):
        if got is None:
            yield IDLE
        elif (item := parse_jsonl_line(*got, warn=warn)) is not None:
            yield item


def _stream(fd: int, head: bytes) -> BinaryIO:
    """The input from its start: ``head`` (bytes already read), then the rest of ``fd``."""
    rest = io.FileIO(fd, "rb", closefd=False)
    return io.BufferedReader(Prepend(head, rest) if head else rest, buffer_size=CHUNK)


def _arrived(fd: int, name: str) -> Generator[Idle, None, None]:
    """Wait until ``fd`` has a byte or its end (a FIFO: a writer came), an IDLE each
    IDLE_SECONDS meanwhile."""
    try:
        while not select.select([fd], [], [], IDLE_SECONDS)[0]:
            yield IDLE
    except OSError as exc:
        raise InputError(f"{name}: read failed: {reason(exc)}") from exc


def _head(fd: int, name: str) -> Generator[Idle, None, bytes]:
    """Bytes from the start up to the first that is not JSON white space (or the end)."""
    head = b""
    while True:
        yield from _arrived(fd, name)
        try:
            piece = os.read(fd, CHUNK)
        except BlockingIOError:
            continue  # a device that said it was ready had nothing after all
        except OSError as exc:
            raise InputError(f"{name}: read failed: {reason(exc)}") from exc
        head += piece
        body = head[len(BOM) :] if head.startswith(BOM) else head
        if not piece or body.strip(_JSON_WS):
            return head
