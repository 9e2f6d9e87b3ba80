"""read -> shape: the stream of bodies (or problems) the planner diffs, input by input.

Files go through the skip path first (``zsync.plan.skip``: records matched by their bytes
against the ledger, parsed only when new or changed); stdin, source programs and Singer are
read whole. Each record is shaped, checked for duplicates within this input, and labelled
with its source (what --prune is scoped to).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import replace

from zsync import read
from zsync.errors import ZsyncError
from zsync.ledger import Ledger
from zsync.model import (
    EventKind,
    Idle,
    Invalid,
    Item,
    Prepared,
    RunResult,
    StateMessage,
    Warn,
)
from zsync.plan.options import PlanOptions
from zsync.plan.seen import Seen
from zsync.plan.skip import (
    SKIPPABLE,
    Hashed,
    Known,
    KnownRun,
    ReadAhead,
    fast_path,
    matched,
)
from zsync.read import sources
from zsync.shape import Shaper

Planned = Prepared | Invalid | StateMessage | Idle


def _inputs(
    ledger: Ledger | None,
    options: PlanOptions,
    bookmark: str | None,
    warn: Warn,
    ahead: ReadAhead | None,
) -> Iterator[tuple[str, Iterable[KnownRun | Hashed | Item]]]:
    """Each input with the name of its source, read the fast way where it can be."""
    fast = fast_path(options, ledger)
    for source in sources(options.source):
        if fast:
            assert ledger is not None
            yield source.name, matched(ledger, options, source, warn, ahead)
        else:
            items = source.records(bookmark=bookmark, state_file=options.state_file, warn=warn)
            yield source.name, items


def planned_stream(
    ledger: Ledger | None,
    options: PlanOptions,
    shaper: Shaper,
    result: RunResult,
    seen: Seen,
    *,
    bookmark: str | None,
    warn: Warn,
    ahead: ReadAhead | None = None,
) -> Iterator[Planned | KnownRun]:
    """Every input record, shaped; duplicates within this input become Invalid; records
    the skip path found unchanged come in runs. Bookmarks (StateMessage) and pauses (Idle)
    pass through in their place."""
    # Singer taps are at-least-once: an identical record sent again is expected there. In a
    # file, the same id twice is reported even with the same body (an export that repeats
    # itself is worth a look).
    resent_ok = options.source.singer
    for source, items in _inputs(ledger, options, bookmark, warn, ahead):
        seen.sources.add(source)
        for item in items:
            if isinstance(item, StateMessage | Idle):
                yield item
            elif isinstance(item, KnownRun):
                yield from _known(item, result, seen, resent_ok)
            else:
                shaped = _shaped(item, shaper, source, result, seen, resent_ok)
                if shaped is not None:
                    yield shaped


def _known(
    run: KnownRun, result: RunResult, seen: Seen, resent_ok: bool
) -> Iterator[KnownRun | Invalid]:
    """A run of unchanged records, less the ids this input already had (duplicates)."""
    result.seen += len(run.items)
    first: list[Known] = []
    for known in run.items:
        seen.sources.add(known.source)
        if _first(seen, known.external_id, None, resent_ok):
            first.append(known)
            continue
        if first:
            yield KnownRun(first)
            first = []
        if not (resent_ok and _repeat(seen, result, known.external_id, None)):
            yield duplicate(known)
    if first:
        yield KnownRun(first)


def _shaped(
    item: Hashed | Item,
    shaper: Shaper,
    source: str,
    result: RunResult,
    seen: Seen,
    resent_ok: bool,
) -> Prepared | Invalid | None:
    """One record through shape, the duplicate check and the notes the run keeps."""
    raw_hash: str | None = None
    if isinstance(item, Hashed):
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
        if not resent_ok:
            return duplicate(shaped)
        if _repeat(seen, result, shaped.external_id, shaped.payload_hash):
            return None
        # Singer: a new version of a record this input had (an upsert); the planner lets the
        # last one win (zsync.plan.upsert)
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
    """A repeat of an id with the same body as its latest occurrence: counted, not sent.
    (A skip-path line matched the ledger byte for byte, so two of them are the same body.)"""
    latest = seen.versions.get(external_id)
    same = latest == body if latest is not None else hash((external_id, body)) in seen.bodies
    if same:
        result.count("repeated")
    elif body is not None:
        seen.versions[external_id] = body  # a new version: the next repeat is of this one
    return same


def duplicate(item: Prepared | Known) -> Invalid:
    """The record is a second one with an externalId this input already had: not sent."""
    origin, external_id = item.origin, item.external_id
    return Invalid(
        origin,
        external_id,
        "externalId",
        f"{origin}: field 'externalId': duplicate {external_id!r} (an earlier record in this "
        "input has it); not sent twice",
        EventKind.DUPLICATE,
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
            if read.Source(spec, path).format != "jsonl":
                return None
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    total += chunk.count(b"\n")
        except (OSError, ZsyncError):
            return None
    return total


__all__ = ["SKIPPABLE", "Known", "KnownRun", "Planned", "planned_stream", "source_of"]
