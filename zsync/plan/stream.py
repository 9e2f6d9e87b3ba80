"""read -> shape, with the skip path: the stream of bodies (or problems) the planner diffs.

A plain JSONL file's lines are first matched by their bytes against the ledger's line
hashes: a line the ledger already holds, accepted, is unchanged and is never parsed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from zsync import read
from zsync.errors import ZsyncError
from zsync.ledger import Ledger
from zsync.model import (
    IDLE,
    Idle,
    Invalid,
    Item,
    Prepared,
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
    """Plain JSONL files, no mapping or source program: lines can be matched as bytes."""
    spec = options.source
    if ledger is None or options.mapping or spec.source_cmd:
        return False
    if spec.fmt not in (None, "jsonl", "ndjson"):
        return False
    try:
        return all(p != "-" and detect_format(p, spec.fmt) == "jsonl" for p in spec.inputs)
    except ZsyncError:
        return False  # the ordinary reader reports it


def _line_hashed_items(
    ledger: Ledger, options: PlanOptions, warn: Callable[[str], None]
) -> Iterator[Known | _Hashed | Item]:
    """JSONL lines; those the ledger knows byte for byte, and accepted, are not parsed."""
    derive = options.derive_external_id
    for path in options.source.inputs:
        for chunk in _chunks(jsonl_lines(path, options.source.max_record_bytes)):
            if chunk is None:
                yield IDLE  # skipping an over-long line: a time budget may end the run
                continue
            hashes = [line_hash(raw, derive) for _, raw in chunk]
            known = ledger.lookup_raw(hashes)
            for (origin, raw), raw_hash in zip(chunk, hashes, strict=True):
                hit = known.get(raw_hash)
                if hit is not None and hit[1] in SKIPPABLE:
                    yield Known(origin, hit[0])
                    continue
                item = parse_jsonl_line(origin, raw, warn=warn)
                if isinstance(item, Record):
                    yield _Hashed(item, raw_hash)
                elif item is not None:
                    yield item


def _chunks(
    lines: Iterator[tuple[str, bytes] | None],
) -> Iterator[list[tuple[str, bytes]] | None]:
    """Up to BATCH lines at a time; a None (the reader is skipping) passes at once."""
    chunk: list[tuple[str, bytes]] = []
    for line in lines:
        if line is None:
            if chunk:
                yield chunk
                chunk = []
            yield None
            continue
        chunk.append(line)
        if len(chunk) >= BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


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
        items = _line_hashed_items(ledger, options, warn)
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
        if path == "-" or not os.path.isfile(path):
            return None  # a pipe or a device (/dev/zero) may never end
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
