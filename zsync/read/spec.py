"""What a push is asked to read (:class:`InputSpec`), the names the ledger gives its inputs,
and the refusals that come before any input is opened."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import BinaryIO

from zsync.errors import InputError, UsageError
from zsync.read.command import check_command, program_name
from zsync.read.files import DEFAULT_MAX_RECORD_BYTES, display, is_stream, open_binary

__all__ = [
    "FORMATS",
    "InputSpec",
    "check",
    "csv_delimiter",
    "input_format",
    "input_source",
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
        """The input is a stream of Singer messages (``--format singer``)."""
        return self.fmt == "singer"


def input_format(path: str, fmt: str | None) -> str | None:
    """What the flag or the name alone says: csv, singer, json, jsonl; None: the first bytes
    tell (:attr:`zsync.read.Source.format` reads them). Nothing is opened."""
    if fmt is not None:
        return "jsonl" if fmt == "ndjson" else fmt
    if path == "-":
        return None
    name = path.lower()
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith(".json"):
        return "json"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    return None


def csv_delimiter(given: str | None) -> str | None:
    """The --delimiter as one character ("tab" and "\\t" are a tab); None: detected."""
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
