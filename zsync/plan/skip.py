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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from hashlib import blake2b
from itertools import chain

from zsync import read
from zsync.errors import ZsyncError
from zsync.ledger import Ledger
from zsync.model import IDLE, Idle, Item, Problem, Record, Status
from zsync.plan.options import PlanOptions
from zsync.read.files import detect_format
from zsync.read.jsonl import jsonl_lines, parse_jsonl_line
from zsync.read.raw import RawCsv, RawRecord, Unsure, json_elements, parse_json_element, sniff
from zsync.shape.canonical import line_hash

BATCH = 500

# Statuses for which decide() calls an identical body "unchanged": a record whose bytes
# match the stored hash can be skipped without parsing it.
SKIPPABLE = frozenset(
    {Status.SUBMITTED, Status.PROCESSED, Status.FAILED, Status.REJECTED, Status.CONFLICT}
)

Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Known:
    """An input record byte-identical to one the ledger already holds, accepted: unchanged."""

    origin: str
    external_id: str
    source: str
    learn_source: bool = False  # the ledger has no source for it yet (an older ledger)


@dataclass(frozen=True, slots=True)
class Hashed:
    """A parsed record together with the hash of the bytes it came from."""

    record: Record
    raw_hash: str


def fast_path(options: PlanOptions, ledger: Ledger | None) -> bool:
    """Files only (no stdin, source program or Singer): records can be matched as bytes."""
    spec = options.source
    if ledger is None or spec.source_cmd or spec.singer:
        return False
    return all(p != "-" for p in spec.inputs)


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


def raw_items(
    ledger: Ledger, options: PlanOptions, path: str, source: str, warn: Warn
) -> Iterator[Known | Hashed | Item]:
    """One file's records as bytes; those the ledger knows, accepted, are not parsed."""
    file = _File(ledger, options, path, source, warn)
    kind = _raw_kind(path, options)
    limit = options.source.max_record_bytes
    if kind == "jsonl":
        lines = jsonl_lines(path, limit)
        records = (None if x is None else RawRecord(*x) for x in lines)
        if options.mapping:
            yield from _matched(file, records, _salt(options, kind), _parse_line(warn))
        else:  # the line hash of ledgers written before mappings had a skip path
            hasher = partial(line_hash, derive_external_id=options.derive_external_id)
            yield from _matched(file, records, hasher, _parse_line(warn))
    elif kind == "json":
        elements = json_elements(path, limit)
        yield from _matched(file, elements, _salt(options, kind), parse_json_element)
    elif kind == "csv":
        sep = read.csv_delimiter(options.source.delimiter)
        table = RawCsv(path, sep or ("\t" if path.lower().endswith(".tsv") else sniff(path)))
        rows = table.rows(limit)
        first = _peek(rows)  # reads the header row
        if not first:  # no data row, or none the raw reader is sure of
            yield from file.ordinary()
            return
        salt = _salt(options, kind, table.delimiter.encode() + b"\0" + table.header)
        yield from _matched(file, chain(first, rows), salt, table.parse)
    else:
        yield from file.ordinary()


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
    h = hashlib.sha256(b"zsync-raw-1\0" + kind.encode() + b"\0" + extra + b"\0")
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


def _parse_line(warn: Warn) -> Callable[[RawRecord], Item | None]:
    def parse(record: RawRecord) -> Item | None:
        return parse_jsonl_line(record.origin, record.raw, warn=warn)

    return parse


def _matched(
    file: _File,
    records: Iterator[RawRecord | None],
    salt: bytes | Callable[[bytes], str],
    parse: Callable[[RawRecord], Item | None],
) -> Iterator[Known | Hashed | Item]:
    """Batch by batch: look the records' hashes up; parse only what the ledger lacks. When
    the raw reader is unsure where a record ends, the rest of the file is read whole."""
    digest = salt if callable(salt) else _keyed_hasher(salt)
    done = 0
    unsure = False
    while not unsure:
        chunk, unsure, idle = _take(records, BATCH)
        if idle and not chunk:
            yield IDLE  # skipping an over-long line: a time budget may end the run
            continue
        if not chunk:
            break
        hashes = [digest(r.raw) for r in chunk]
        known = file.ledger.lookup_raw(hashes)
        for record, raw_hash in zip(chunk, hashes, strict=True):
            hit = known.get(raw_hash)
            if hit is not None and hit[1] in SKIPPABLE:
                yield Known(record.origin, hit[0], hit[2] or file.source, hit[2] is None)
                done += 1
                continue
            try:
                item = parse(record)
            except Unsure:
                unsure = True
                break
            done += 1
            if isinstance(item, Record):
                yield Hashed(item, raw_hash)
            elif item is not None:
                yield item
        if idle:
            yield IDLE
    if unsure:
        yield from _skipping(file.ordinary(), done)


def _take(records: Iterator[RawRecord | None], n: int) -> tuple[list[RawRecord], bool, bool]:
    """Up to ``n`` records; whether the raw reader turned unsure, and whether it paused (a
    None: it is skipping an over-long record) before the chunk was full."""
    chunk: list[RawRecord] = []
    try:
        for record in records:
            if record is None:
                return chunk, False, True
            chunk.append(record)
            if len(chunk) >= n:
                break
    except Unsure:
        return chunk, True, False
    return chunk, False, False


def _skipping(items: Iterator[Item], n: int) -> Iterator[Item]:
    """The ordinary reader's items after the first ``n`` records (already handled)."""
    for item in items:
        if n > 0 and isinstance(item, Record | Problem):
            n -= 1
            continue
        yield item


def _keyed_hasher(key: bytes) -> Callable[[bytes], str]:
    """blake2b keyed with ``key``; the keyed state is made once and copied per record (the
    key's block is not compressed again for each of them)."""
    keyed = blake2b(digest_size=16, key=key)

    def digest(raw: bytes) -> str:
        h = keyed.copy()
        h.update(raw)
        return h.hexdigest()

    return digest


__all__ = ["BATCH", "SKIPPABLE", "Hashed", "Idle", "Known", "fast_path", "raw_items"]
