"""read -> shape, with the skip path: the stream of bodies (or problems) the planner diffs.

Every input file (JSONL, a JSON array, CSV; with or without a mapping) is first cut into
records as bytes (``zsync.read.raw``) and each record is matched by a hash of its bytes
against the ledger: a record the ledger already holds, accepted, is unchanged and is never
parsed or mapped. The hash covers what else decides the body (the format, a CSV file's
delimiter and header row, the mapping file's content, --derive-external-id), so changing
any of them sends every record down the full path once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from hashlib import blake2b
from itertools import chain

from zsync import read
from zsync.errors import ZsyncError
from zsync.ledger import Ledger
from zsync.model import (
    Idle,
    Invalid,
    Item,
    Prepared,
    Problem,
    Record,
    RunResult,
    Schema,
    StateMessage,
    Status,
)
from zsync.plan.options import PlanOptions
from zsync.plan.seen import Seen
from zsync.read.files import detect_format, open_binary
from zsync.read.jsonl import jsonl_lines, parse_jsonl_line
from zsync.read.raw import RawCsv, RawRecord, Unsure, json_elements, parse_json_element, sniff
from zsync.shape import Shaper
from zsync.shape.canonical import line_hash

BATCH = 500

# Statuses for which decide() calls an identical body "unchanged": a line whose bytes match
# the stored line hash can be skipped without parsing it.
SKIPPABLE = frozenset(
    {Status.SUBMITTED, Status.PROCESSED, Status.FAILED, Status.REJECTED, Status.CONFLICT}
)

Planned = Prepared | Invalid | StateMessage | Idle


@dataclass(frozen=True, slots=True)
class Known:
    """An input line byte-identical to one the ledger already holds, accepted: unchanged."""

    origin: str
    external_id: str


@dataclass(frozen=True, slots=True)
class _Hashed:
    """A parsed record together with the hash of the line it came from."""

    record: Record
    raw_hash: str


def fast_path(options: PlanOptions, ledger: Ledger | None) -> bool:
    """Files only (no stdin, source program or Singer): records can be matched as bytes."""
    spec = options.source
    if ledger is None or spec.source_cmd or spec.singer:
        return False
    return all(p != "-" for p in spec.inputs)


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


def _ordinary(options: PlanOptions, path: str) -> Iterator[Item]:
    return read.read(replace(options.source, inputs=(path,)))


def _raw_items(ledger: Ledger, options: PlanOptions) -> Iterator[Known | _Hashed | Item]:
    """Each file's records as bytes; those the ledger knows, accepted, are not parsed."""
    for path in options.source.inputs:
        kind = _raw_kind(path, options)
        if kind == "jsonl":
            records = (RawRecord(o, r) for o, r in jsonl_lines(path))
            if options.mapping:
                salt = _salt(options, kind)
                yield from _matched(ledger, options, path, records, salt, _parse_line)
            else:  # the line hash of ledgers written before mappings had a skip path
                derive = options.derive_external_id
                hasher = partial(line_hash, derive_external_id=derive)
                yield from _matched(ledger, options, path, records, hasher, _parse_line)
        elif kind == "json":
            salt = _salt(options, kind)
            elements = json_elements(path)
            yield from _matched(ledger, options, path, elements, salt, parse_json_element)
        elif kind == "csv":
            sep = read.csv_delimiter(options.source.delimiter)
            table = RawCsv(path, sep or ("\t" if path.lower().endswith(".tsv") else sniff(path)))
            rows = table.rows()
            first = _peek(rows)  # reads the header row
            if not first:  # no data row, or none the raw reader is sure of
                yield from _ordinary(options, path)
                continue
            salt = _salt(options, kind, table.delimiter.encode() + b"\0" + table.header)
            yield from _matched(ledger, options, path, chain(first, rows), salt, table.parse)
        else:
            yield from _ordinary(options, path)


def _peek(rows: Iterator[RawRecord]) -> list[RawRecord]:
    try:
        return [next(rows)]
    except (StopIteration, Unsure):
        return []


def _parse_line(record: RawRecord) -> Item | None:
    return parse_jsonl_line(record.origin, record.raw)


def _matched(
    ledger: Ledger,
    options: PlanOptions,
    path: str,
    records: Iterator[RawRecord],
    salt: bytes | Callable[[bytes], str],
    parse: Callable[[RawRecord], Item | None],
) -> Iterator[Known | _Hashed | Item]:
    """Batch by batch: look the records' hashes up; parse only what the ledger lacks. When
    the raw reader is unsure where a record ends, the rest of the file is read whole."""
    digest = salt if callable(salt) else partial(_keyed_hash, key=salt)
    done = 0
    unsure = False
    while not unsure:
        chunk, unsure = _take(records, BATCH)
        if not chunk:
            break
        hashes = [digest(r.raw) for r in chunk]
        known = ledger.lookup_raw(hashes)
        for record, raw_hash in zip(chunk, hashes, strict=True):
            hit = known.get(raw_hash)
            if hit is not None and hit[1] in SKIPPABLE:
                yield Known(record.origin, hit[0])
                done += 1
                continue
            try:
                item = parse(record)
            except Unsure:
                unsure = True
                break
            done += 1
            if isinstance(item, Record):
                yield _Hashed(item, raw_hash)
            elif item is not None:
                yield item
    if unsure:
        yield from _skipping(_ordinary(options, path), done)


def _take(records: Iterator[RawRecord], n: int) -> tuple[list[RawRecord], bool]:
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


def _keyed_hash(raw: bytes, key: bytes) -> str:
    return blake2b(raw, digest_size=16, key=key).hexdigest()


def planned_stream(
    ledger: Ledger | None,
    options: PlanOptions,
    shaper: Shaper,
    result: RunResult,
    seen: Seen,
    *,
    bookmark: str | None,
    warn: Callable[[str], None],
) -> Iterator[Planned | Known]:
    """Every input record, shaped; duplicates within this input become Invalid.
    Bookmarks (StateMessage) and pauses (Idle) pass through in their place."""
    items: Iterable[Known | _Hashed | Item]
    if fast_path(options, ledger):
        assert ledger is not None
        items = _raw_items(ledger, options)
    else:
        items = read.read(
            options.source, bookmark=bookmark, state_file=options.state_file, warn=warn
        )
    for item in items:
        if isinstance(item, StateMessage | Idle):
            yield item
            continue
        if isinstance(item, Known):
            result.seen += 1
            yield item if seen.ids.add(hash(item.external_id)) else duplicate(item)
            continue
        raw_hash: str | None = None
        if isinstance(item, _Hashed):
            raw_hash = item.raw_hash
            item = item.record
        shaped = shaper(item)
        if shaped is None:  # a SCHEMA, or a record of an unmapped stream
            continue
        result.seen += 1
        if isinstance(shaped, Invalid):
            if shaped.external_id is None:
                seen.unreadable += 1
            else:
                seen.ids.add(hash(shaped.external_id))
            yield shaped
            continue
        if not seen.ids.add(hash(shaped.external_id)):
            yield duplicate(shaped)
            continue
        if raw_hash is not None:
            shaped = replace(shaped, raw_hash=raw_hash)
        for name in shaped.dropped:
            count, first = result.dropped_fields.get(name, (0, shaped.origin))
            result.dropped_fields[name] = (count + 1, first)
        yield shaped


def duplicate(item: Prepared | Known) -> Invalid:
    origin, external_id = item.origin, item.external_id
    return Invalid(
        origin,
        external_id,
        "externalId",
        f"{origin}: field 'externalId': duplicate {external_id!r} (an earlier record in this "
        "input has it); not sent twice",
    )


def estimate_total(options: PlanOptions) -> int | None:
    """Record count for a progress ETA: newline count of JSONL files; None when not cheap."""
    spec = options.source
    if spec.source_cmd:
        return None
    total = 0
    for path in spec.inputs:
        if path == "-":
            return None
        try:
            if detect_format(path, spec.fmt) != "jsonl":
                return None
            with open_binary(path) as handle:
                while chunk := handle.read(1 << 20):
                    total += chunk.count(b"\n")
        except (OSError, ZsyncError):
            return None
    return total


__all__ = ["BATCH", "SKIPPABLE", "Known", "Planned", "Schema", "planned_stream"]
