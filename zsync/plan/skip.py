"""The skip path: records matched by their bytes against the ledger before any parsing.

Every input file (JSONL, a JSON array, CSV; with or without a mapping) is first cut into
records as bytes (``zsync.read.raw``) and each record is matched by a hash of its bytes
against the ledger: a record the ledger already holds, accepted, is unchanged and is never
parsed or mapped. The hash covers what else decides the body (the format, a CSV file's
delimiter and header row, the mapping file's content, --derive-external-id), so changing
any of them sends every record down the full path once. Where the raw reader cannot be
sure where a record ends (or a record is over the size limit), the rest of the file goes
through the ordinary reader: never wrong, at worst as slow as before.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import NamedTuple

from zsync import read
from zsync.errors import ZsyncError
from zsync.ledger import Ledger
from zsync.model import Item, Problem, Record, Status, Warn
from zsync.plan.options import BATCH, PlanOptions
from zsync.read.files import detect_format, is_stream
from zsync.read.jsonl import parse_jsonl_line
from zsync.read.raw import (
    Place,
    RawCsv,
    RawRecord,
    Unsure,
    json_elements,
    jsonl_records,
    parse_json_element,
    sniff,
)
from zsync.shape.canonical import salted_hasher

# How far ReadAhead may go (a hash, a name and a view each: about 20 MB for 50,000).
AHEAD_RECORDS = 50_000

# Statuses for which decide() calls an identical body "unchanged": a record whose bytes
# match the stored hash can be skipped without parsing it.
SKIPPABLE = frozenset(
    {Status.SUBMITTED, Status.PROCESSED, Status.FAILED, Status.REJECTED, Status.CONFLICT}
)


@dataclass(slots=True)  # not frozen: one per unchanged record, and frozen costs 2x to make
class Known:
    """An input record byte-identical to one the ledger already holds, accepted: unchanged."""

    place: str | Place  # named only when asked: an unchanged record is rarely named
    external_id: str
    source: str
    learn_source: bool = False  # the ledger has no source for it yet (an older ledger)

    @property
    def origin(self) -> str:
        return self.place if isinstance(self.place, str) else self.place.origin()


class KnownRun(NamedTuple):
    """Consecutive Known records, handed on together: an unchanged file is mostly these,
    and each stage then takes a run in one step instead of a record at a time."""

    items: list[Known]


@dataclass(frozen=True, slots=True)
class Hashed:
    """A parsed record together with the hash of the bytes it came from."""

    record: Record
    raw_hash: str


def _files_only(options: PlanOptions) -> bool:
    """No stdin, source program or Singer: records can be cut from files as bytes."""
    spec = options.source
    return not (spec.source_cmd or spec.singer or "-" in spec.inputs)


def fast_path(options: PlanOptions, ledger: Ledger | None) -> bool:
    """Files only, and a ledger to match their records against."""
    return ledger is not None and _files_only(options)


def read_ahead(options: PlanOptions) -> ReadAhead | None:
    """A ReadAhead for a push whose inputs take the skip path; None for any other."""
    return ReadAhead(options) if options.source.inputs and _files_only(options) else None


@dataclass
class _File:
    """One input file on the skip path: where its records go, and what decides their body."""

    ledger: Ledger
    options: PlanOptions
    path: str
    source: str
    warn: Warn

    def ordinary(self) -> Iterator[Item]:
        one = replace(self.options.source, inputs=(self.path,))
        return read.read(one, warn=self.warn)


class Chunk(NamedTuple):
    """Up to BATCH records as bytes, with their hashes. ``unsure``: after them, the raw
    reader could not tell where the next record ends."""

    records: list[RawRecord]
    hashes: list[str]
    unsure: bool


@dataclass
class Cut:
    """One input file cut into records as bytes, each hashed. Touches no ledger, so it can
    run ahead while the ledger is being checked (:class:`ReadAhead`); chunks taken then are
    handed out first."""

    path: str
    records: Iterator[RawRecord]
    digest: Callable[[bytes | memoryview], str]
    parse: Callable[[RawRecord, Warn], Item | None]
    early: deque[Chunk] = field(default_factory=deque)

    def take(self) -> Chunk:
        """The next chunk: one read ahead, else one read now."""
        return self.early.popleft() if self.early else self.read()

    def read(self) -> Chunk:
        records, unsure = _take(self.records, BATCH)
        digest = self.digest
        return Chunk(records, [digest(r.raw) for r in records], unsure)


def cut(options: PlanOptions, path: str) -> Cut | None:
    """``path`` cut into records as bytes; None when it is read whole the ordinary way (as
    is a pipe, FIFO or device: it can be read only once, and only the ordinary way)."""
    if is_stream(path):
        return None
    kind = _raw_kind(path, options)
    limit = options.source.max_record_bytes
    if kind == "jsonl":
        records = jsonl_records(path, limit)
        return Cut(path, records, salted_hasher(_salt(options, kind)), _parse_line)
    if kind == "json":
        elements = json_elements(path, limit)
        return Cut(path, elements, salted_hasher(_salt(options, kind)), _parse_element)
    if kind == "csv":
        sep = read.csv_delimiter(options.source.delimiter)
        table = RawCsv(path, sep or ("\t" if path.lower().endswith(".tsv") else sniff(path)))
        rows = table.rows(limit)
        first = _peek(rows)  # reads the header row
        if not first:  # no data row, or none the raw reader is sure of
            return None
        salt = _salt(options, kind, table.delimiter.encode() + b"\0" + table.header)
        return Cut(path, chain(first, rows), salted_hasher(salt), lambda r, _warn: table.parse(r))
    return None


class ReadAhead:
    """The first input file cut and hashed while the ledger's integrity is checked (the
    check reads the whole ledger on another thread; this reads the input meanwhile). It
    reads no ledger, so nothing it does can be stale; it holds hashes and views into the
    mapped file, not copies. Any failure here drops what was read ahead: the file is then
    read as if this had never run."""

    def __init__(self, options: PlanOptions) -> None:
        self.options = options
        self._cut: Cut | None = None

    def __call__(self, done: Callable[[], bool]) -> None:
        """Read ahead until ``done()`` (the check has finished) or the bounds are reached."""
        if done() or not self.options.source.inputs:
            return
        try:
            self._cut = cut(self.options, self.options.source.inputs[0])
            n = 0
            while self._cut is not None and n < AHEAD_RECORDS:
                chunk = self._cut.read()
                self._cut.early.append(chunk)
                n += len(chunk.records)
                if chunk.unsure or not chunk.records or done():
                    break
        except Exception:  # read again the ordinary way, which reports it
            self._cut = None

    def take(self, path: str) -> Cut | None:
        """What was read ahead of ``path``, once."""
        if self._cut is None or self._cut.path != path:
            return None
        taken, self._cut = self._cut, None
        return taken


def raw_items(
    ledger: Ledger,
    options: PlanOptions,
    path: str,
    source: str,
    warn: Warn,
    ahead: ReadAhead | None = None,
) -> Iterator[KnownRun | Hashed | Item]:
    """One file's records as bytes; those the ledger knows, accepted, are not parsed."""
    file = _File(ledger, options, path, source, warn)
    taken = ahead.take(path) if ahead is not None else None
    records = taken if taken is not None else cut(options, path)
    if records is None:
        yield from file.ordinary()
    else:
        yield from _matched(file, records)


def _raw_kind(path: str, options: PlanOptions) -> str | None:
    """jsonl, json or csv: how the records of ``path`` are cut into bytes; None: read it whole."""
    spec = options.source
    try:
        if read.input_format(path, spec.fmt) == "csv":
            return "csv"
        return detect_format(path, spec.fmt)
    except ZsyncError:
        return None  # the ordinary reader reports it


def _salt(options: PlanOptions, kind: str, extra: bytes = b"") -> bytes:
    """Everything besides a record's bytes that decides its body: the input format (and a
    CSV file's delimiter and header row), the mapping file's content, the switches."""
    h = hashlib.sha256(b"zsync-raw-2\0" + kind.encode() + b"\0" + extra + b"\0")
    h.update(b"derive" if options.derive_external_id else b"given")
    if options.mapping:
        with open(options.mapping, "rb") as mapping:
            h.update(hashlib.sha256(mapping.read()).digest())
    return h.digest()


def _peek(rows: Iterator[RawRecord]) -> list[RawRecord]:
    try:
        return [next(rows)]
    except (StopIteration, Unsure):
        return []


def _parse_line(record: RawRecord, warn: Warn) -> Item | None:
    return parse_jsonl_line(record.origin, bytes(record.raw), warn=warn)


def _parse_element(record: RawRecord, _warn: Warn) -> Item | None:
    return parse_json_element(record)


def _matched(file: _File, records: Cut) -> Iterator[KnownRun | Hashed | Item]:
    """Batch by batch: look the records' hashes up; parse only what the ledger lacks. When
    the raw reader is unsure where a record ends, the rest of the file is read whole."""
    done = 0
    unsure = False
    while not unsure:
        chunk, hashes, unsure = records.take()
        if not chunk:
            break
        known = file.ledger.items.lookup_raw(hashes)
        run: list[Known] = []
        for record, raw_hash in zip(chunk, hashes, strict=True):
            hit = known.get(raw_hash)
            if hit is not None and hit[2] in SKIPPABLE:
                run.append(Known(record.place, hit[1], hit[3] or file.source, hit[3] is None))
                continue
            if run:
                yield KnownRun(run)
                done, run = done + len(run), []
            try:
                item = records.parse(record, file.warn)
            except Unsure:
                unsure = True
                break
            done += 1
            if isinstance(item, Record):
                yield Hashed(item, raw_hash)
            elif item is not None:
                yield item
        if run:
            yield KnownRun(run)
            done += len(run)
    if unsure:
        yield from _skipping(file.ordinary(), done)


def _take(records: Iterator[RawRecord], n: int) -> tuple[list[RawRecord], bool]:
    """Up to ``n`` records, and whether the raw reader turned unsure after them."""
    chunk: list[RawRecord] = []
    try:
        for record in records:
            chunk.append(record)
            if len(chunk) >= n:
                break
    except Unsure:
        return chunk, True
    return chunk, False


def _skipping(items: Iterator[Item], n: int) -> Iterator[Item]:
    """The ordinary reader's items after the first ``n`` records (already handled)."""
    for item in items:
        if n > 0 and isinstance(item, Record | Problem):
            n -= 1
            continue
        yield item


__all__ = [
    "SKIPPABLE",
    "Cut",
    "Hashed",
    "Known",
    "KnownRun",
    "ReadAhead",
    "cut",
    "fast_path",
    "raw_items",
    "read_ahead",
]
