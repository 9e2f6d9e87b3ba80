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
    StateMessage,
    Status,
)
from zsync.plan.options import PlanOptions
from zsync.plan.seen import Seen
from zsync.read import InputSpec
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
Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Known:
    """An input line byte-identical to one the ledger already holds, accepted: unchanged."""

    origin: str
    external_id: str
    source: str
    learn_source: bool = False  # the ledger has no source for it yet (an older ledger)


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
    ledger: Ledger, options: PlanOptions, path: str, source: str, warn: Warn
) -> Iterator[Known | _Hashed | Item]:
    """JSONL lines; those the ledger knows byte for byte, and accepted, are not parsed."""
    derive = options.derive_external_id
    for chunk in _chunks(jsonl_lines(path, options.source.max_record_bytes)):
        if chunk is None:
            yield IDLE  # skipping an over-long line: a time budget may end the run
            continue
        hashes = [line_hash(raw, derive) for _, raw in chunk]
        known = ledger.lookup_raw(hashes)
        for (origin, raw), raw_hash in zip(chunk, hashes, strict=True):
            hit = known.get(raw_hash)
            if hit is not None and hit[1] in SKIPPABLE:
                yield Known(origin, hit[0], hit[2] or source, hit[2] is None)
                continue
            item = parse_jsonl_line(origin, raw, warn=warn)
            if isinstance(item, Record):
                yield _Hashed(item, raw_hash)
            elif item is not None:
                yield item


def _inputs(
    ledger: Ledger | None, options: PlanOptions, bookmark: str | None, warn: Warn
) -> Iterator[tuple[str, Iterable[Known | _Hashed | Item]]]:
    """Each input with the name of its source, read the fast way where it can be."""
    spec = options.source
    if spec.source_cmd:
        yield read.input_source(spec, ""), _read(spec, options, bookmark, warn)
        return
    fast = ledger is not None and fast_path(options, ledger)
    for path in spec.inputs:
        source = read.input_source(spec, path)
        if fast:
            assert ledger is not None
            yield source, _line_hashed_items(ledger, options, path, source, warn)
        else:
            one = replace(spec, inputs=(path,))
            yield source, _read(one, options, bookmark, warn)


def _read(
    spec: InputSpec, options: PlanOptions, bookmark: str | None, warn: Warn
) -> Iterator[Item]:
    return read.read(spec, bookmark=bookmark, state_file=options.state_file, warn=warn)


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
    warn: Warn,
) -> Iterator[Planned | Known]:
    """Every input record, shaped; duplicates within this input become Invalid.
    Bookmarks (StateMessage) and pauses (Idle) pass through in their place."""
    # Singer taps are at-least-once: an identical record sent again is expected there. In a
    # file, the same id twice is reported even with the same body (an export that repeats
    # itself is worth a look).
    resent_ok = options.source.singer
    for source, items in _inputs(ledger, options, bookmark, warn):
        seen.sources.add(source)
        for item in items:
            if isinstance(item, StateMessage | Idle):
                yield item
            elif isinstance(item, Known):
                result.seen += 1
                seen.sources.add(item.source)
                if _first(seen, item.external_id, None, resent_ok):
                    yield item
                elif not (resent_ok and _repeat(seen, result, item.external_id, None)):
                    yield duplicate(item)
            else:
                shaped = _shaped(item, shaper, source, result, seen, resent_ok)
                if shaped is not None:
                    yield shaped


def _shaped(
    item: _Hashed | Item,
    shaper: Shaper,
    source: str,
    result: RunResult,
    seen: Seen,
    resent_ok: bool,
) -> Prepared | Invalid | None:
    """One record through shape, the duplicate check and the notes the run keeps."""
    raw_hash: str | None = None
    if isinstance(item, _Hashed):
        raw_hash = item.raw_hash
        item = item.record
    assert not isinstance(item, StateMessage | Idle)
    shaped = shaper(item)
    if shaped is None:  # a SCHEMA, or a record of an unmapped stream
        return None
    result.seen += 1
    if isinstance(shaped, Invalid):
        if shaped.external_id is None:
            seen.unreadable += 1
        else:
            seen.ids.add(hash(shaped.external_id))
        return shaped
    if not _first(seen, shaped.external_id, shaped.payload_hash, resent_ok):
        if resent_ok and _repeat(seen, result, shaped.external_id, shaped.payload_hash):
            return None
        return duplicate(shaped)
    source = source_of(shaped, source)
    seen.sources.add(source)
    shaped = replace(shaped, raw_hash=raw_hash, source=source)
    for name in shaped.dropped:
        count, first = result.dropped_fields.get(name, (0, shaped.origin))
        result.dropped_fields[name] = (count + 1, first)
    return shaped


def source_of(prepared: Prepared, input_source: str) -> str:
    """A record's source: the sourceKey it carries (the server's own namespace, which
    survives a renamed file), else the input it was read from."""
    key = prepared.body.get("sourceKey")
    return f"sourceKey:{key}" if isinstance(key, str) and key else input_source


def _first(seen: Seen, external_id: str, body: str | None, keep_body: bool) -> bool:
    """Note the first occurrence of an id in this input; False if it was seen before."""
    if not seen.ids.add(hash(external_id)):
        return False
    if keep_body:  # 16 more bytes a record, only where repeats are allowed
        seen.bodies.add(hash((external_id, body)))
    return True


def _repeat(seen: Seen, result: RunResult, external_id: str, body: str | None) -> bool:
    """A repeat of an id with the same body as its first occurrence: counted, not sent.
    (A skip-path line matched the ledger byte for byte, so two of them are the same body.)"""
    if hash((external_id, body)) not in seen.bodies:
        return False
    result.counts["repeated"] += 1
    return True


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


__all__ = ["BATCH", "SKIPPABLE", "Known", "Planned", "planned_stream", "source_of"]
