"""The push planner: input records -> validated bodies -> a diff against the ledger -> jobs.

It runs on the writer thread, reads the ledger one batch at a time (one query per batch,
never per record) and commits each batch's intents before handing the batch's jobs to
the engine.
"""

from __future__ import annotations

import hashlib
import json
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from hashlib import blake2b
from itertools import islice
from typing import Any

from zsync import inputs
from zsync.engine import DeleteJob, Event, Job, RunResult, SendJob, UpdateJob
from zsync.errors import ZsyncError
from zsync.inputs import StateMessage
from zsync.ledger import ACCEPTED, UNSETTLED, Intent, ItemRow, Ledger
from zsync.mapping import (
    Invalid,
    Prepared,
    canonical_json,
    idempotency_key,
    prepare,
    problem_to_invalid,
)
from zsync.sources import Problem, Record, detect_format, jsonl_lines, parse_jsonl_line

BATCH = 500
# A batch also closes once it has been open this long, so records from a slow source are
# sent (and a Ctrl-C is acted on) without waiting for a full batch.
BATCH_SECONDS = 1.0
ON_CHANGE = ("update", "skip", "resend")


@dataclass
class PlanOptions:
    inputs: tuple[str, ...]
    fmt: str | None = None
    derive_external_id: bool = False
    limit: int | None = None
    dry_run: bool = False
    on_change: str = "update"
    prune: bool = False
    prune_max: float = 0.10
    force: bool = False
    mapping: str | None = None  # a mapping file (TOML); required for CSV
    delimiter: str | None = None  # CSV; detected when None
    source_cmd: str | None = None  # a program whose stdout is the input
    state_file: str | None = None  # kept equal to the saved bookmark (for Singer taps)
    ignore_bookmark: bool = False  # start the source from scratch


class IdSet:
    """A set of hash() values at 8 to 16 bytes each; a set of ints costs about 70.

    Open addressing with linear probing in an array that is at most half full. 0 marks an
    empty slot, so a hash of 0 is stored as 1 (one more way two ids can collide).
    """

    __slots__ = ("_mask", "_slots", "_used")

    def __init__(self) -> None:
        self._slots = array("q", [0]) * 1024
        self._mask = 1023
        self._used = 0

    def __len__(self) -> int:
        return self._used

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        key = key or 1
        slots, mask = self._slots, self._mask
        i = key & mask
        while True:
            found = slots[i]
            if found == key:
                return True
            if not found:
                return False
            i = (i + 1) & mask

    def add(self, key: int) -> bool:
        """Add ``key``; False when it was there already."""
        key = key or 1
        slots, mask = self._slots, self._mask
        i = key & mask
        while True:
            found = slots[i]
            if found == key:
                return False
            if not found:
                break
            i = (i + 1) & mask
        slots[i] = key
        self._used += 1
        if self._used * 2 > mask:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._slots
        self._slots = slots = array("q", [0]) * (2 * len(old))
        self._mask = mask = len(slots) - 1
        for key in old:
            if key:
                i = key & mask
                while slots[i]:
                    i = (i + 1) & mask
                slots[i] = key


@dataclass
class _Seen:
    """What this input contained, for duplicate detection and prune."""

    # hash() values, not ids: a million ids would not fit the memory target. A collision can
    # only make prune keep a record, never delete one.
    ids: IdSet = field(default_factory=IdSet)
    unreadable: int = 0  # records whose externalId could not be read: prune must not run


def field_hashes(body: dict[str, Any]) -> str:
    return json.dumps(
        {k: hashlib.sha256(canonical_json(v)).hexdigest()[:16] for k, v in body.items()},
        sort_keys=True,
        separators=(",", ":"),
    )


# Statuses for which decide() calls an identical body "unchanged": a line whose bytes match
# the stored line hash can be skipped without parsing it.
_SKIPPABLE = frozenset({"submitted", "processed", "failed", "rejected", "conflict"})


@dataclass(frozen=True, slots=True)
class _Known:
    """An input line byte-identical to one the ledger already holds, accepted: unchanged."""

    origin: str
    external_id: str


@dataclass(frozen=True, slots=True)
class _Hashed:
    """A parsed record together with the hash of the line it came from."""

    record: Record
    raw_hash: str


def _fast_path(options: PlanOptions, ledger: Ledger | None) -> bool:
    """Plain JSONL files, no mapping or source program: lines can be matched as bytes."""
    if ledger is None or options.mapping or options.source_cmd:
        return False
    if options.fmt not in (None, "jsonl", "ndjson"):
        return False
    try:
        return all(p != "-" and detect_format(p, options.fmt) == "jsonl" for p in options.inputs)
    except ZsyncError:
        return False  # the ordinary reader reports it


def line_hash(raw: bytes, derive_external_id: bool = False) -> str:
    """The ledger's hash of one input line. It covers what else decides the body (the
    --derive-external-id switch); bump the version if prepare() ever changes its output."""
    person = b"zsync-l1-d1" if derive_external_id else b"zsync-l1-d0"
    return blake2b(raw, digest_size=16, person=person).hexdigest()


def _line_hashed_items(
    ledger: Ledger, options: PlanOptions
) -> Iterator[_Known | _Hashed | Problem]:
    """JSONL lines; those the ledger knows byte for byte, and accepted, are not parsed."""
    derive = options.derive_external_id
    for path in options.inputs:
        lines = jsonl_lines(path)
        while chunk := list(islice(lines, BATCH)):
            hashes = [line_hash(raw, derive) for _, raw in chunk]
            known = ledger.lookup_raw(hashes)
            for (origin, raw), raw_hash in zip(chunk, hashes, strict=True):
                hit = known.get(raw_hash)
                if hit is not None and hit[1] in _SKIPPABLE:
                    yield _Known(origin, hit[0])
                    continue
                item = parse_jsonl_line(origin, raw)
                if isinstance(item, Record):
                    yield _Hashed(item, raw_hash)
                elif item is not None:
                    yield item


def prepared_stream(
    options: PlanOptions,
    result: RunResult,
    seen: _Seen,
    items: Iterable[inputs.Item | _Known | _Hashed] | None = None,
) -> Iterator[Prepared | Invalid | StateMessage | inputs.Idle | _Known]:
    """Every input record, validated; duplicates within this input become Invalid.
    Bookmarks (StateMessage) pass through in their place."""
    for item in inputs.read(options) if items is None else items:
        if isinstance(item, StateMessage | inputs.Idle):
            yield item
            continue
        result.seen += 1
        raw_hash: str | None = None
        if isinstance(item, _Known):
            if seen.ids.add(hash(item.external_id)):
                yield item
            else:
                yield _duplicate(item.origin, item.external_id)
            continue
        if isinstance(item, _Hashed):
            raw_hash = item.raw_hash
            item = item.record
        if isinstance(item, Problem):
            seen.unreadable += 1
            yield problem_to_invalid(item)
            continue
        if isinstance(item, Invalid):  # the mapping file could not map it
            prepared: Prepared | Invalid = item
        else:
            prepared = prepare(item, derive_external_id=options.derive_external_id)
        if isinstance(prepared, Invalid):
            if prepared.external_id is None:
                seen.unreadable += 1
            else:
                seen.ids.add(hash(prepared.external_id))
            yield prepared
            continue
        if not seen.ids.add(hash(prepared.external_id)):
            yield _duplicate(prepared.origin, prepared.external_id)
            continue
        if raw_hash is not None:
            prepared = replace(prepared, raw_hash=raw_hash)
        for name in prepared.dropped:
            count, first = result.dropped_fields.get(name, (0, prepared.origin))
            result.dropped_fields[name] = (count + 1, first)
        yield prepared


def _duplicate(origin: str, external_id: str) -> Invalid:
    return Invalid(
        origin,
        external_id,
        "externalId",
        f"{origin}: field 'externalId': duplicate {external_id!r} (an earlier record in this "
        "input has it); not sent twice",
    )


def push_feeder(
    ledger: Ledger | None,
    options: PlanOptions,
    result: RunResult,
    emit: Callable[[Event], None],
    *,
    run_id: int,
) -> Iterator[list[Job]]:
    """Yield the jobs of each input batch after committing their intents.

    A bookmark from the source (StateMessage) is saved only after the batch holding the
    records before it is committed, so a crash never leaves a bookmark ahead of them.
    """
    seen = _Seen()
    bookmark = inputs.Bookmark(ledger, options, emit)
    items: Iterable[inputs.Item | _Known | _Hashed]
    if _fast_path(options, ledger):
        assert ledger is not None
        items = _line_hashed_items(ledger, options)
    else:
        items = inputs.read(options, bookmark=bookmark.saved, warn=bookmark.emit_warning)
    stream = prepared_stream(options, result, seen, items)
    budget = [options.limit]
    failure: inputs.SourceFailed | None = None
    while True:
        batch: list[Prepared] = []
        invalid: list[Invalid] = []
        state: StateMessage | None = None
        unchanged = 0
        idle = False
        closes = time.monotonic() + BATCH_SECONDS
        try:
            for item in stream:
                if isinstance(item, inputs.Idle):
                    idle = True
                    break
                if isinstance(item, StateMessage):
                    # Close the batch here, however small: a source may pause for minutes
                    # after a STATE, and its records and bookmark must not wait in memory.
                    # (A tap that sends STATE after every record still plans ~5,000
                    # records/s, faster than any API it fetches from.)
                    state = item
                    break
                if isinstance(item, _Known):
                    unchanged += 1
                elif isinstance(item, Invalid):
                    invalid.append(item)
                else:
                    batch.append(item)
                n = len(batch) + len(invalid) + unchanged
                # The clock is read every 16 records: a slow source is still sent within
                # about a second, and the skip path does not pay a clock read per record.
                if n >= BATCH or (not n & 15 and time.monotonic() >= closes):
                    break
        except inputs.SourceFailed as exc:
            failure = exc  # after this batch, which holds the last records it emitted
        result.counts["unchanged"] += unchanged
        if not batch and not invalid and state is None:
            if idle:
                yield []  # the source is quiet: the engine records and polls meanwhile
            elif not unchanged:
                break
            continue
        _report_invalid(ledger, options, invalid, result, emit, run_id)
        known = ledger.lookup([p.external_id for p in batch]) if ledger is not None else {}
        jobs: list[Job] = []
        intents: list[Intent] = []
        deferred, changed = result.counts["deferred"], result.counts["changed"]
        for prepared in batch:
            job = _plan_one(
                ledger,
                options,
                prepared,
                known.get(prepared.external_id),
                result,
                emit,
                budget,
                intents,
            )
            if job is not None:
                jobs.append(job)
        if ledger is not None and intents and not options.dry_run:
            ledger.record_intents(intents, run_id)
        if ledger is not None and not options.dry_run:
            ledger.set_raw_hashes(_line_hashes_to_learn(batch, known))
        # Records this batch did not record (an update is recorded only when it succeeds):
        # a bookmark after them would skip them for good.
        bookmark.batch_closed(
            result.counts["deferred"] > deferred
            or (options.on_change != "skip" and result.counts["changed"] > changed)
            or any(isinstance(job, UpdateJob) for job in jobs)
        )
        if state is not None:
            bookmark.save(state)
        yield jobs
    if failure is not None:
        result.fatal = failure
        return
    if bookmark.key is not None and ledger is not None and not options.dry_run:
        yield from _leftovers(ledger, seen, result)
    if options.prune:
        yield from _prune(ledger, options, seen, result, emit)


def _leftovers(ledger: Ledger, seen: _Seen, result: RunResult) -> Iterator[list[Job]]:
    """Unfinished items of earlier runs that this input did not hold again: a source that
    resumes from its bookmark does not emit them twice, yet they must still be sent."""
    batch: list[Job] = []
    for item in ledger.iter_items(("pending", "error")):
        if hash(item.external_id) in seen.ids or not item.payload or not item.idempotency_key:
            continue
        result.counts["attempted"] += 1
        batch.append(SendJob(item.external_id, item.payload.encode(), item.idempotency_key))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    yield batch


def _report_invalid(
    ledger: Ledger | None,
    options: PlanOptions,
    invalid: list[Invalid],
    result: RunResult,
    emit: Callable[[Event], None],
    run_id: int,
) -> None:
    for bad in invalid:
        kind = "duplicate" if bad.message.endswith("not sent twice") else "invalid"
        result.counts[kind] += 1
        result.note_problem(bad.message)
        emit(Event(kind, bad.external_id, bad.message))
    if ledger is not None and not options.dry_run and invalid:
        ledger.record_invalid([(b.external_id, b.origin, b.message) for b in invalid], run_id)


def _intent(prepared: Prepared, nonce: str = "") -> Intent:
    return Intent(
        prepared.external_id,
        prepared.payload_hash,
        prepared.canonical.decode(),
        idempotency_key(prepared.canonical, nonce),
        prepared.origin,
        field_hashes(prepared.body),
        prepared.raw_hash,
    )


def _plan_one(
    ledger: Ledger | None,
    options: PlanOptions,
    prepared: Prepared,
    row: ItemRow | None,
    result: RunResult,
    emit: Callable[[Event], None],
    budget: list[int | None],
    intents: list[Intent],
) -> Job | None:
    decision = decide(prepared, row)
    if decision == "unchanged":
        result.counts["unchanged"] += 1
        return None
    if decision == "changed":
        stored = _unsettled_stored(ledger, prepared.external_id)
        if stored is not None:
            # The old body may have reached the server: settle it first, with its own key;
            # the change is picked up by the run after it is accepted.
            result.counts["changed"] += 1
            emit(Event("changed", prepared.external_id, "changed while unsettled: settling first"))
            return stored
        if options.on_change == "skip" or row is None or not row.public_id:
            result.counts["changed"] += 1
            emit(Event("changed", prepared.external_id, "content changed since it was sent"))
            return None
    if budget[0] is not None:
        if budget[0] <= 0:
            result.counts["deferred"] += 1
            return None
        budget[0] -= 1
    result.counts["attempted"] += 1
    if decision == "changed" and options.on_change == "update":
        assert row is not None and row.public_id is not None
        fields = _changed_fields(ledger, prepared)
        if options.dry_run:
            emit(Event("would-update", prepared.external_id, json.dumps(fields, sort_keys=True)))
            return None
        return UpdateJob(prepared.external_id, row.public_id, fields, _intent(prepared))
    if options.dry_run:
        emit(Event("would-send", prepared.external_id, prepared.canonical.decode()))
        return None
    # A deliberate resend of changed content needs a key the server has not seen.
    nonce = f"resend:{row.public_id}" if decision == "changed" and row is not None else ""
    intent = _intent(prepared, nonce)
    intents.append(intent)
    return SendJob(prepared.external_id, prepared.canonical, intent.idempotency_key)


def _line_hashes_to_learn(
    batch: list[Prepared], known: dict[str, ItemRow]
) -> list[tuple[str, str]]:
    """Unchanged items whose line hash the ledger lacks (older ledgers, other formats)."""
    pairs = []
    for p in batch:
        row = known.get(p.external_id)
        if (
            p.raw_hash is not None
            and row is not None
            and row.raw_hash != p.raw_hash
            and row.payload_hash == p.payload_hash
            and row.status in _SKIPPABLE
        ):
            pairs.append((p.external_id, p.raw_hash))
    return pairs


def decide(prepared: Prepared, row: ItemRow | None) -> str:
    """send | unchanged | changed."""
    if row is None or row.status == "invalid":
        return "send"
    if row.payload_hash == prepared.payload_hash:
        return "send" if row.status in UNSETTLED else "unchanged"
    if row.status in ("rejected", "deleted"):
        return "send"  # the earlier body never became a signal (or its signal is gone)
    if row.status in ACCEPTED or row.status in UNSETTLED or row.status == "conflict":
        return "changed"
    return "send"


def _changed_fields(ledger: Ledger | None, prepared: Prepared) -> dict[str, Any]:
    """The fields whose value differs from the body the server last accepted."""
    item = ledger.get_item(prepared.external_id) if ledger is not None else None
    old_raw = item.get("field_hashes") if item else None
    if not old_raw:
        return dict(prepared.body)  # no record of the old fields: send them all
    old: dict[str, str] = json.loads(old_raw)
    new: dict[str, str] = json.loads(field_hashes(prepared.body))
    fields = {k: prepared.body[k] for k, h in new.items() if old.get(k) != h}
    fields.update({k: None for k in old if k not in new})
    return fields


def _unsettled_stored(ledger: Ledger | None, external_id: str) -> SendJob | None:
    if ledger is None:
        return None
    item = ledger.get_item(external_id)
    if item is None or item["status"] not in UNSETTLED:
        return None
    if not item.get("payload") or not item.get("idempotency_key"):
        return None
    return SendJob(external_id, str(item["payload"]).encode(), str(item["idempotency_key"]))


def _prune(
    ledger: Ledger | None,
    options: PlanOptions,
    seen: _Seen,
    result: RunResult,
    emit: Callable[[Event], None],
) -> Iterator[list[Job]]:
    """Delete signals this ledger created whose records are gone from the complete input."""
    if ledger is None:
        return
    if seen.unreadable:
        message = (
            f"prune refused: {seen.unreadable} input record(s) could not be read, so the input "
            "is not known to be the complete dataset"
        )
        result.counts["prune-refused"] += 1
        result.note_problem(message)
        emit(Event("prune-refused", None, message))
        return
    accepted = [s for s in ("submitted", "processed", "failed")]
    gone = [
        item
        for item in ledger.iter_items(accepted)
        if item.public_id and hash(item.external_id) not in seen.ids
    ]
    total = sum(ledger.counts_by_status().get(s, 0) for s in accepted)
    if gone and not options.force and len(gone) > options.prune_max * total:
        message = (
            f"prune refused: {len(gone)} of {total} signals would be deleted, more than "
            f"--prune-max {options.prune_max:.0%}; check the input is complete, or pass --force"
        )
        result.counts["prune-refused"] += 1
        result.note_problem(message)
        emit(Event("prune-refused", None, message))
        return
    batch: list[Job] = []
    for item in gone:
        assert item.public_id is not None
        if options.dry_run:
            result.counts["would-delete"] += 1
            emit(Event("would-delete", item.external_id, item.public_id))
            continue
        batch.append(DeleteJob(item.external_id, item.public_id))
        if len(batch) >= 200:
            yield batch
            batch = []
    yield batch


def estimate_total(inputs: tuple[str, ...], fmt: str | None) -> int | None:
    """Record count for a progress ETA: newline count of JSONL files; None when not cheap."""
    from zsync.sources import detect_format

    total = 0
    for path in inputs:
        if path == "-":
            return None
        try:
            if detect_format(path, fmt) != "jsonl":
                return None
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    total += chunk.count(b"\n")
        except (OSError, ZsyncError):
            return None
    return total
