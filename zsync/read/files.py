"""Opening input files and telling JSON arrays from JSONL: shared by every file reader.

Every reader opens through :func:`open_binary` (one read-sized buffer, one-line errors), and
a file's format comes from the flag, else its extension, else its first non-blank byte.
"""

from __future__ import annotations

import io
import os
import re
import stat
from typing import Any, BinaryIO

from zsync.errors import InputError, UsageError

# Read size. Records larger than this are handled by growing the read (see _Text.more).
CHUNK = 1 << 16


BOM = b"\xef\xbb\xbf"

# The largest record (a JSONL line, a JSON array element, a CSV line) a reader holds; a
# longer one is that record's problem and is skipped without being kept. Far above any
# real record (the API takes at most ~1 MB of text), far below what exhausts memory.
DEFAULT_MAX_RECORD_BYTES = 16 << 20

# While skipping an over-long record, a reader hands back control (an Idle) every this many
# bytes, so a time budget is honoured even on an endless line.
SKIP_YIELD_BYTES = 1 << 20


class Oversized(bytes):
    """Stands for an input line longer than the limit: the line itself was not kept."""

    limit: int

    def __new__(cls, limit: int) -> Oversized:
        made = super().__new__(cls, b"\0oversized\0")
        made.limit = limit
        return made


def oversized_message(limit: int) -> str:
    """The Problem text of a record longer than ``limit`` bytes."""
    return f"record is longer than {limit:,} bytes (--max-record-bytes); skipped"


_JSON_WS = b" \t\r\n"


_FORMATS = {"json": "json", "jsonl": "jsonl", "ndjson": "jsonl"}


_EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


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
        with open_binary(path) as f:
            return sniff(read_head(f, display(path)))
    peek = getattr(stdin, "peek", None)
    return sniff(peek(CHUNK) if peek is not None else b"")


def is_stream(path: str) -> bool:
    """An input that can be read only once, front to back, as it comes: a pipe, a FIFO,
    ``/dev/stdin``, a process substitution (``<(cmd)``), a character device. It is opened
    once, never mapped into memory and never read ahead (``zsync.read.stream``). Standard
    input given as ``-`` arrives as a stream of its own and is not asked about here."""
    if path == "-":
        return False
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False  # missing or unreadable: the ordinary reader names the problem
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def open_binary(path: str) -> BinaryIO:
    """``path`` opened for reading bytes; InputError naming it and why when it cannot be."""
    try:
        # Closed by the caller (_read closes in its finally). A buffer of one read chunk, not
        # the default 8 KB: lines of transcripts run to kilobytes, and reading them through
        # a small buffer cost about a quarter as much as parsing them.
        return open(path, "rb", buffering=CHUNK)
    except OSError as exc:
        raise InputError(f"{display(path)}: {reason(exc)}") from exc


def reason(exc: OSError) -> str:
    """Why an input could not be opened or read, in a few plain words."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return (exc.strerror or type(exc).__name__).lower()


def display(path: str) -> str:
    """The path as the user gave it, made safe for one-line messages."""
    return path if path.isprintable() else repr(path)[1:-1]


def has_known_extension(path: str) -> bool:
    """The name ends in .json, .jsonl or .ndjson."""
    return path != "-" and any(path.lower().endswith(ext) for ext in _EXTENSIONS)


def read_head(stream: BinaryIO, name: str) -> bytes:
    """Bytes from the start up to the first non-whitespace byte (or the end)."""
    read1 = getattr(stream, "read1", stream.read)
    head = b""
    try:
        while True:
            piece = read1(CHUNK)
            if not piece:
                return head
            head += piece
            body = head[3:] if head.startswith(BOM) else head
            if body.strip(_JSON_WS):
                return head
    except OSError as exc:
        raise InputError(f"{name}: read failed: {reason(exc)}") from exc


def sniff(head: bytes) -> str:
    """json when the first non-blank byte (after a BOM) is ``[``, else jsonl."""
    if head.startswith(BOM):
        head = head[3:]
    return "json" if head.lstrip(_JSON_WS)[:1] == b"[" else "jsonl"


class Prepend(io.RawIOBase):
    """A stream that replays bytes already read before continuing with the original."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        # read1: hand on what a pipe has now rather than wait for a full buffer.
        self._read = getattr(rest, "read1", rest.read)

    def readable(self) -> bool:
        """Always: this stream is read, never written."""
        return True

    def readinto(self, b: Any) -> int:
        """The replayed bytes first, then the original's."""
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._read(len(b))
        b[: len(data)] = data
        return len(data)


_LONE_CR = re.compile(rb"\r(?!\n)")


def lone_cr_as_lf(data: bytes, final: bool) -> tuple[bytes, bytes]:
    """``data`` with every CR that is not part of a CRLF made an LF (same length, CRLF kept),
    and a CR at its very end held back (returned second) unless ``final``: the next piece
    tells whether an LF follows it."""
    if b"\r" not in data:
        return data, b""
    held = b""
    if not final and data.endswith(b"\r"):
        data, held = data[:-1], b"\r"
    return _LONE_CR.sub(b"\n", data), held


class CrAsLf(io.RawIOBase):
    """A stream whose lone CRs read as LFs: ``head`` (bytes already read), then the rest."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._pending, self._held = lone_cr_as_lf(head, False)
        self._read = getattr(rest, "read1", rest.read)
        self._done = False

    def readable(self) -> bool:
        """Always: this stream is read, never written."""
        return True

    def readinto(self, b: Any) -> int:
        """The next bytes, lone CRs made LFs."""
        while not self._pending:
            if self._done:
                return 0
            data = self._read(max(len(b), 1))
            self._done = not data
            self._pending, self._held = lone_cr_as_lf(self._held + data, self._done)
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
