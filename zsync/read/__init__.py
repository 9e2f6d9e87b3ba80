"""Stage 1, read: where records come from. Files, standard input or a source program;
JSON arrays, JSONL, CSV or Singer messages.

Each input is one :class:`Source` (:func:`sources`), whose format is decided once (the
flag, the extension, else the first non-blank byte) and handed to its reader. It offers
:meth:`Source.records`: :data:`zsync.model.Item` values: a :class:`~zsync.model.Record`
(the parsed value and where it came from), a :class:`~zsync.model.Problem` (what is wrong
there; reading goes on), a Singer :class:`~zsync.model.Schema`, a
:class:`~zsync.model.StateMessage` (a bookmark the source emitted) and
:data:`~zsync.model.IDLE` (a pipe went quiet); and, for a regular file, :meth:`Source.cut`:
the same records as bytes (:class:`Cut`), each parsed only when asked, for the skip path.
:func:`read` is every item of every input. Nothing here knows bodies, mappings or the
ledger. Standard input arrives as ``InputSpec.stdin``; nothing here reaches for
``sys.stdin``.

Modules: ``spec`` (what is asked, refusals, ledger names), ``source`` (one input, its
format decided), ``cut`` and ``raw`` (a file's records as bytes, from a mapping),
``files`` (open, sniff), ``jsonvalue`` (the shared decoder), ``jsonfile``, ``jsonarray``,
``jsonl``, ``csvfile``, ``singer``, ``command`` (source programs), ``stream`` (a pipe,
FIFO or device given as a path: opened once, read as it comes, never mapped).
"""

from __future__ import annotations

from collections.abc import Generator

from zsync.model import Item, Warn
from zsync.read.command import SourceFailed, program_name
from zsync.read.cut import Cut
from zsync.read.files import DEFAULT_MAX_RECORD_BYTES
from zsync.read.raw import Place, RawRecord, Unsure
from zsync.read.source import Source, sources
from zsync.read.spec import (
    FORMATS,
    InputSpec,
    check,
    csv_delimiter,
    input_format,
    input_source,
    source_id,
)

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "FORMATS",
    "Cut",
    "InputSpec",
    "Place",
    "RawRecord",
    "Source",
    "SourceFailed",
    "Unsure",
    "check",
    "csv_delimiter",
    "input_format",
    "input_source",
    "program_name",
    "read",
    "source_id",
    "sources",
]


def read(
    spec: InputSpec,
    *,
    bookmark: str | None = None,
    state_file: str | None = None,
    warn: Warn = lambda _m: None,
) -> Generator[Item, None, None]:
    """Every item of the input(s), input by input (:meth:`Source.records`). A failed source
    program raises SourceFailed after its last item, so everything it emitted is handled
    first."""
    for source in sources(spec):
        yield from source.records(bookmark=bookmark, state_file=state_file, warn=warn)
