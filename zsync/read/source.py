"""One input, its format decided once: the records it holds, and the same records cut as
bytes for the skip path.

A :class:`Source` is a file, standard input (``-``) or the source program. Its format comes
from ``--format``, else the file's extension, else (a regular file) its first non-blank
byte; standard input and a stream (a pipe, FIFO, ``/dev/stdin``, ``<(cmd)``, a device) can
be read only once, so without a flag or an extension their reader tells the format from the
bytes as they arrive, and nothing reads them beforehand. Every reader is handed the format
decided here, so none decides it again.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from functools import cached_property
from typing import BinaryIO

from zsync.errors import UsageError, ZsyncError
from zsync.model import Idle, Item, Problem, Record, Warn
from zsync.read.command import pipe_records, program_name, run_command
from zsync.read.csvfile import read_csv
from zsync.read.cut import Cut, cut_file
from zsync.read.files import display, is_stream, open_binary, read_head, sniff
from zsync.read.jsonfile import read_records
from zsync.read.singer import singer_messages, state_lines
from zsync.read.spec import FORMATS, InputSpec, csv_delimiter, input_format, input_source
from zsync.read.stream import read_stream

__all__ = ["Source", "sources"]


def _ignore(_message: str) -> None:
    pass


class Source:
    """One input of a push: ``path`` (``-`` for standard input), or the source program
    when ``path`` is None. Its :attr:`format` is decided once, when first asked."""

    def __init__(self, spec: InputSpec, path: str | None = None) -> None:
        self.spec = spec
        self.path = path

    def __repr__(self) -> str:
        # The program's name only: a command line may carry a token.
        shown = self.path if self.path is not None else program_name(self.spec.source_cmd or "")
        return f"Source({shown!r})"

    @cached_property
    def name(self) -> str:
        """The ledger's name for where its records come from (what --prune is scoped to)."""
        return input_source(self.spec, self.path or "")

    @cached_property
    def stream(self) -> bool:
        """Read once, front to back, as it comes: standard input, the source program, a
        pipe, FIFO or device given as a path. Never mapped, never read ahead, never cut."""
        return self.path is None or self.path == "-" or is_stream(self.path)

    @cached_property
    def format(self) -> str | None:
        """csv, singer, json or jsonl; None: a stream whose first bytes will tell (json or
        jsonl). A regular file without a flag or a known extension is opened to read its
        first non-blank byte. UsageError for an unknown ``--format``; InputError for a file
        that cannot be read (not remembered: asked again, it is tried again)."""
        spec, path = self.spec, self.path
        if spec.fmt is not None and spec.fmt not in FORMATS:
            raise UsageError(f"unknown input format {spec.fmt!r}; use json, jsonl or ndjson")
        if path is None:
            return "singer" if spec.singer else "jsonl"
        found = input_format(path, spec.fmt)
        if found is not None or self.stream:
            return found
        with open_binary(path) as handle:
            return sniff(read_head(handle, display(path)))

    def cut(self) -> Cut | None:
        """The records of a regular JSONL, JSON array or CSV file as bytes, each to be parsed
        only when asked (:class:`~zsync.read.Cut`); None when this input is read only the
        ordinary way: a stream, Singer, a file that cannot be read or has no data row."""
        if self.stream or self.spec.singer:
            return None
        assert self.path is not None
        try:
            fmt = self.format
        except ZsyncError:
            return None  # the ordinary reader reports it
        if fmt not in ("json", "jsonl", "csv"):
            return None
        return cut_file(
            self.path,
            fmt,
            self._delimiter() or None,
            self.spec.max_record_bytes,
            self.records,
        )

    def records(
        self,
        *,
        bookmark: str | None = None,
        state_file: str | None = None,
        warn: Warn = _ignore,
    ) -> Iterator[Item]:
        """Every item of this input: Record, Problem, Schema, StateMessage and IDLE (a pipe
        went quiet). A failed source program raises SourceFailed after its last item, so
        everything it emitted is handled first."""
        spec = self.spec
        if self.path is None:
            lines = run_command(
                spec.source_cmd or "",
                bookmark=bookmark,
                state_file=state_file,
                max_bytes=spec.max_record_bytes,
                warn=warn,
            )
            yield from singer_messages(lines, warn) if spec.singer else state_lines(lines)
            return
        items = self._items(self.path, warn)
        yield from singer_messages(items, warn) if spec.singer else items

    def _items(self, path: str, warn: Warn) -> Iterator[Record | Problem | Idle]:
        spec = self.spec
        limit = spec.max_record_bytes
        fmt = self.format
        if path == "-" and fmt in ("jsonl", "singer") and _is_pipe(spec.stdin):
            # `tap | zsync push --input - --format singer`: records as they arrive
            assert spec.stdin is not None
            return pipe_records(spec.stdin.fileno(), "<stdin>", max_bytes=limit, warn=warn)
        if fmt == "csv":
            delimiter = self._delimiter()
            if self.stream and path != "-":
                return read_stream(path, fmt, delimiter=delimiter, max_bytes=limit, warn=warn)
            return read_csv(path, delimiter, stdin=spec.stdin, max_bytes=limit)
        if self.stream and path != "-":  # a pipe, FIFO, <(cmd), /dev/stdin: read as it comes
            return read_stream(path, fmt, max_bytes=limit, warn=warn)
        given = "jsonl" if fmt == "singer" else fmt
        return read_records(path, given, stdin=spec.stdin, max_bytes=limit, warn=warn)

    def _delimiter(self) -> str | None:
        """A CSV input's delimiter: the flag's, a tab for .tsv, else None (detected)."""
        assert self.path is not None
        given = csv_delimiter(self.spec.delimiter)
        return given or ("\t" if self.path.lower().endswith(".tsv") else None)


def sources(spec: InputSpec) -> list[Source]:
    """One :class:`Source` per input, in the order given: the source program, else each
    ``--input``."""
    if spec.source_cmd:
        return [Source(spec)]
    return [Source(spec, path) for path in spec.inputs]


def _is_pipe(stream: BinaryIO | None) -> bool:
    try:
        return stream is not None and stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):  # no file descriptor behind it (a test's stand-in)
        return False
