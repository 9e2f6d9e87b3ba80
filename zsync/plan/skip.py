"""The skip path: records matched by their bytes against the ledger before any parsing.

Every input file (JSONL, a JSON array, CSV; with or without a mapping) is cut into records
as bytes by its :class:`~zsync.read.Source` (:meth:`~zsync.read.Source.cut`), and each
record is matched here by a hash of its bytes against the ledger: a record the ledger
already holds, accepted, is unchanged and is never parsed or mapped. The hash covers what
else decides the body (the cut's context: the format, a CSV file's delimiter and header
row; the mapping file's content; --derive-external-id), so changing any of them sends every
record down the full path once. Where the cut cannot be sure where a record ends (or a
record is over the size limit), the rest of the file is read the ordinary way: never
wrong, at worst as slow as before.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from zsync import read
from zsync.ledger import Ledger
from zsync.model import Item, Record, Status, Warn
from zsync.plan.options import BATCH, PlanOptions
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

    place: str | read.Place  # named only when asked: an unchanged record is rarely named
    external_id: str
    source: str
    learn_source: bool = False  # the ledger has no source for it yet (an older ledger)

    @property
    def origin(self) -> str:
        """Where the record is (``file:line``, ``file[3]``), worked out when asked."""
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


class Chunk(NamedTuple):
    """Up to BATCH records as bytes, with their hashes. ``unsure``: after them, the cut
    could not tell where the next record ends."""

    records: list[read.RawRecord]
    hashes: list[str]
    unsure: bool


@dataclass
class HashedCut:
    """One input file's cut, each record hashed. Touches no ledger, so it can run ahead
    while the ledger is being checked (:class:`ReadAhead`); chunks taken then are handed
    out first."""

    cut: read.Cut
    digest: Callable[[bytes | memoryview], str]
    early: deque[Chunk] = field(default_factory=deque)

    def take(self) -> Chunk:
        """The next chunk: one read ahead, else one read now."""
        return self.early.popleft() if self.early else self.read()

    def read(self) -> Chunk:
        """The next chunk from the file."""
        records, unsure = self.cut.take(BATCH)
        digest = self.digest
        return Chunk(records, [digest(r.raw) for r in records], unsure)


def hashed(options: PlanOptions, source: read.Source) -> HashedCut | None:
    """``source`` cut into records as bytes, each hashed as the ledger keeps it; None when
    it is read only the ordinary way (see :meth:`zsync.read.Source.cut`)."""
    cut = source.cut()
    if cut is None:
        return None
    return HashedCut(cut, salted_hasher(_salt(options, cut.context)))


class ReadAhead:
    """The first input file cut and hashed while the ledger's integrity is checked (the
    check reads the whole ledger on another thread; this reads the input meanwhile). It
    reads no ledger, so nothing it does can be stale; it holds hashes and views into the
    mapped file, not copies. Any failure here drops what was read ahead: the file is then
    read as if this had never run."""

    def __init__(self, options: PlanOptions) -> None:
        self.options = options
        self._cut: HashedCut | None = None

    def __call__(self, done: Callable[[], bool]) -> None:
        """Read ahead until ``done()`` (the check has finished) or the bounds are reached."""
        if done() or not self.options.source.inputs:
            return
        try:
            first = read.Source(self.options.source, self.options.source.inputs[0])
            self._cut = hashed(self.options, first)
            n = 0
            while self._cut is not None and n < AHEAD_RECORDS:
                chunk = self._cut.read()
                self._cut.early.append(chunk)
                n += len(chunk.records)
                if chunk.unsure or not chunk.records or done():
                    break
        except Exception:  # read again the ordinary way, which reports it
            self._cut = None

    def take(self, path: str) -> HashedCut | None:
        """What was read ahead of ``path``, once."""
        if self._cut is None or self._cut.cut.path != path:
            return None
        taken, self._cut = self._cut, None
        return taken


def matched(
    ledger: Ledger,
    options: PlanOptions,
    source: read.Source,
    warn: Warn,
    ahead: ReadAhead | None = None,
) -> Iterator[KnownRun | Hashed | Item]:
    """One input's records: as bytes, where it can be cut, and those the ledger knows,
    accepted, are not parsed; else every item the ordinary way."""
    taken = ahead.take(source.path or "") if ahead is not None else None
    records = taken if taken is not None else hashed(options, source)
    if records is None:
        yield from source.records(warn=warn)
    else:
        yield from _matched(ledger, source.name, records, warn)


def _salt(options: PlanOptions, context: bytes) -> bytes:
    """Everything besides a record's bytes that decides its body: the cut's context (the
    input format, a CSV file's delimiter and header row), the mapping file's content, the
    switches."""
    h = hashlib.sha256(b"zsync-raw-2\0" + context + b"\0")
    h.update(b"derive" if options.derive_external_id else b"given")
    if options.mapping:
        with open(options.mapping, "rb") as mapping:
            h.update(hashlib.sha256(mapping.read()).digest())
    return h.digest()


def _matched(
    ledger: Ledger, source: str, records: HashedCut, warn: Warn
) -> Iterator[KnownRun | Hashed | Item]:
    """Batch by batch: look the records' hashes up; parse only what the ledger lacks. When
    the cut is unsure where a record ends, the rest of the file is read whole."""
    cut = records.cut
    done = 0
    unsure = False
    while not unsure:
        chunk, hashes, unsure = records.take()
        if not chunk:
            break
        known = ledger.items.lookup_raw(hashes)
        run: list[Known] = []
        for record, raw_hash in zip(chunk, hashes, strict=True):
            hit = known.get(raw_hash)
            if hit is not None and hit[2] in SKIPPABLE:
                run.append(Known(record.place, hit[1], hit[3] or source, hit[3] is None))
                continue
            if run:
                yield KnownRun(run)
                done, run = done + len(run), []
            try:
                item = cut.parse(record, warn)
            except read.Unsure:
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
        yield from cut.rest(done, warn)


__all__ = [
    "SKIPPABLE",
    "Chunk",
    "Hashed",
    "HashedCut",
    "Known",
    "KnownRun",
    "ReadAhead",
    "fast_path",
    "hashed",
    "matched",
    "read_ahead",
]
