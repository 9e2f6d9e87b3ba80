"""Stage 1, read: where records come from. Files, standard input or a source program;
JSON arrays, JSONL, CSV or Singer messages.

:func:`read` yields :data:`zsync.model.Item` values: a :class:`~zsync.model.Record` (the
parsed value and where it came from), a :class:`~zsync.model.Problem` (what is wrong there;
reading goes on), a Singer :class:`~zsync.model.Schema`, a :class:`~zsync.model.StateMessage`
(a bookmark the source emitted) and :data:`~zsync.model.IDLE` (a pipe went quiet). Nothing
here knows bodies, mappings or the ledger. Standard input arrives as ``InputSpec.stdin``;
nothing in this package reaches for ``sys.stdin``.

Modules: ``files`` (open, sniff), ``jsonvalue`` (the shared decoder), ``jsonfile``,
``jsonarray``, ``jsonl``, ``csvfile``, ``singer``, ``command`` (source programs), ``stream``
(a pipe, FIFO or device given as a path: opened once, read as it comes, never mapped).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from zsync.errors import InputError, UsageError
from zsync.model import Idle, Item, Problem, Record, Warn
from zsync.read.command import SourceFailed, check_command, pipe_records, program_name, run_command
from zsync.read.csvfile import read_csv
from zsync.read.files import DEFAULT_MAX_RECORD_BYTES, display, is_stream, open_binary
from zsync.read.jsonfile import read_records
from zsync.read.singer import singer_messages, state_lines
from zsync.read.stream import read_stream

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "FORMATS",
    "InputSpec",
    "SourceFailed",
    "check",
    "csv_delimiter",
    "input_format",
    "input_source",
    "program_name",
    "read",
    "source_id",
]

FORMATS = ("json", "jsonl", "ndjson", "csv", "singer")


@dataclass(frozen=True)
class InputSpec:
    """Where the records come from and how they are written."""

    inputs: tuple[str, ...] = ()
    fmt: str | None = None
    delimiter: str | None = None  # CSV; detected when None
    source_cmd: str | None = None  # a program whose stdout is the input
    stdin: BinaryIO | None = None  # what "-" reads; the CLI hands in its standard input
    # a longer record (line, array element, CSV line) is that record's problem, skipped
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES

    @property
    def singer(self) -> bool:
        return self.fmt == "singer"


def input_format(path: str, fmt: str | None) -> str | None:
    """csv, singer, jsonl, json; None: json or jsonl, decided when the file is read."""
    if fmt is not None:
        return "jsonl" if fmt == "ndjson" else fmt
    if path.lower().endswith((".csv", ".tsv")):
        return "csv"
    return None


def csv_delimiter(given: str | None) -> str | None:
    if given is None:
        return None
    return "\t" if given.lower() in ("tab", "\\t") else given


def source_id(spec: InputSpec) -> str | None:
    """The ledger's name for a source that keeps a bookmark; None for plain files.

    A source program is identified by its command line exactly as given (stored as a hash:
    a command line may carry a token), a Singer file by its absolute path, Singer on stdin
    by "stdin" (one per ledger).
    """
    if spec.source_cmd:
        digest = hashlib.sha256(spec.source_cmd.encode()).hexdigest()[:16]
        return f"cmd:{program_name(spec.source_cmd)}:{digest}"
    if spec.singer and spec.inputs:
        path = spec.inputs[0]
        return "stdin" if path == "-" else f"file:{os.path.abspath(path)}"
    return None


def input_source(spec: InputSpec, path: str) -> str:
    """The ledger's name for where the records of one input come from (what --prune is
    scoped to): the source program or Singer stream, else the file's absolute path."""
    sid = source_id(spec)
    if sid is not None:
        return sid
    return "stdin" if path == "-" else f"file:{os.path.abspath(path)}"


def check(spec: InputSpec) -> None:
    """Refuse inputs that cannot work, before anything is opened or sent (exit 2)."""
    if spec.source_cmd and spec.inputs:
        raise UsageError("give --input or --source-cmd, not both")
    if not spec.source_cmd and not spec.inputs:
        raise UsageError("give --input FILE (- for stdin) or --source-cmd COMMAND")
    if spec.source_cmd:
        if spec.fmt not in (None, "jsonl", "ndjson", "singer"):
            raise UsageError("a --source-cmd writes JSONL (or --format singer) on its stdout")
        check_command(spec.source_cmd)
    if spec.singer and len(spec.inputs) > 1:
        raise UsageError("--format singer reads one input (one stream of Singer messages)")
    if spec.max_record_bytes < 1:
        raise UsageError("--max-record-bytes must be at least 1")
    if spec.delimiter is not None:
        if {input_format(p, spec.fmt) for p in spec.inputs} != {"csv"}:
            raise UsageError("--delimiter is for CSV input (a .csv/.tsv file or --format csv)")
        if len(csv_delimiter(spec.delimiter) or "") != 1:
            raise UsageError("--delimiter must be one character (or 'tab')")
    for path in spec.inputs:
        if path != "-":
            _check_readable(path)


def read(
    spec: InputSpec,
    *,
    bookmark: str | None = None,
    state_file: str | None = None,
    warn: Warn = lambda _m: None,
) -> Generator[Item, None, None]:
    """Every item of the input(s). A failed source program raises SourceFailed after its
    last item, so everything it emitted is handled first."""
    limit = spec.max_record_bytes
    if spec.source_cmd:
        lines = run_command(
            spec.source_cmd,
            bookmark=bookmark,
            state_file=state_file,
            max_bytes=limit,
            warn=warn,
        )
        yield from singer_messages(lines, warn) if spec.singer else state_lines(lines)
        return
    for path in spec.inputs:
        fmt = input_format(path, spec.fmt)
        items: Iterable[Record | Problem | Idle]
        if path == "-" and fmt in ("jsonl", "singer") and _is_pipe(spec.stdin):
            # `tap | zsync push --input - --format singer`: records as they arrive
            assert spec.stdin is not None
            items = pipe_records(spec.stdin.fileno(), "<stdin>", max_bytes=limit, warn=warn)
        elif fmt == "csv":
            delimiter = csv_delimiter(spec.delimiter) or (
                "\t" if path.lower().endswith(".tsv") else None
            )
            if is_stream(path):
                items = read_stream(path, fmt, delimiter=delimiter, max_bytes=limit, warn=warn)
            else:
                items = read_csv(path, delimiter, stdin=spec.stdin, max_bytes=limit)
        elif is_stream(path):  # a pipe, FIFO, <(cmd), /dev/stdin, device: read once, as it comes
            items = read_stream(path, fmt, max_bytes=limit, warn=warn)
        else:
            given = "jsonl" if fmt == "singer" else spec.fmt
            items = read_records(path, given, stdin=spec.stdin, max_bytes=limit, warn=warn)
        yield from singer_messages(items, warn) if fmt == "singer" else items


def _check_readable(path: str) -> None:
    """A missing or unreadable input is a usage error, found before any ledger is opened.
    A stream is not opened to find out: opening a FIFO waits for its writer, and a writer
    whose reader came and went fails."""
    if is_stream(path):
        if not os.access(path, os.R_OK):
            raise UsageError(f"--input {display(path)}: permission denied")
        return
    try:
        open_binary(path).close()
    except InputError as exc:
        raise UsageError(f"--input {exc}") from None


def _is_pipe(stream: BinaryIO | None) -> bool:
    try:
        return stream is not None and stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):  # no file descriptor behind it (a test's stand-in)
        return False
