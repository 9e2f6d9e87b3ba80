"""The push planner: input records -> validated bodies -> a diff against the ledger -> jobs.

It runs on the writer thread, reads the ledger one batch at a time (one query per batch,
never per record) and commits each batch's intents before handing the batch's jobs to
the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from zsync.engine import Event, Job, RunResult, SendJob
from zsync.ledger import ACCEPTED, UNSETTLED, Intent, ItemRow, Ledger
from zsync.mapping import Invalid, Prepared, idempotency_key, prepare, problem_to_invalid
from zsync.sources import Problem, Record, read_records

BATCH = 500


@dataclass
class PlanOptions:
    inputs: tuple[str, ...]
    fmt: str | None = None
    derive_external_id: bool = False
    limit: int | None = None
    dry_run: bool = False


def prepared_stream(
    options: PlanOptions, result: RunResult, emit: Callable[[Event], None]
) -> Iterator[Prepared | Invalid]:
    """Every input record, validated; duplicates within this input become Invalid."""
    seen: set[int] = set()  # hashes, not ids: a million ids would not fit the memory target
    for path in options.inputs:
        for item in read_records(path, options.fmt):
            if isinstance(item, Problem):
                yield problem_to_invalid(item)
                continue
            assert isinstance(item, Record)
            prepared = prepare(item, derive_external_id=options.derive_external_id)
            if isinstance(prepared, Prepared):
                key = hash(prepared.external_id)
                if key in seen:
                    yield Invalid(
                        prepared.origin,
                        prepared.external_id,
                        "externalId",
                        f"{prepared.origin}: field 'externalId': duplicate "
                        f"{prepared.external_id!r} (an earlier record in this input has it); "
                        "not sent twice",
                    )
                    continue
                seen.add(key)
                for name in prepared.dropped:
                    count, first = result.dropped_fields.get(name, (0, prepared.origin))
                    result.dropped_fields[name] = (count + 1, first)
            yield prepared


def push_feeder(
    ledger: Ledger | None,
    options: PlanOptions,
    result: RunResult,
    emit: Callable[[Event], None],
    *,
    run_id: int,
) -> Iterator[list[Job]]:
    """Yield the jobs of each input batch after committing their intents."""
    stream = prepared_stream(options, result, emit)
    budget = options.limit
    while True:
        batch: list[Prepared] = []
        invalid: list[Invalid] = []
        for item in stream:
            if isinstance(item, Invalid):
                invalid.append(item)
            else:
                batch.append(item)
            if len(batch) + len(invalid) >= BATCH:
                break
        if not batch and not invalid:
            return
        for bad in invalid:
            kind = "duplicate" if bad.message.endswith("not sent twice") else "invalid"
            result.counts[kind] += 1
            result.note_problem(bad.message)
            emit(Event(kind, bad.external_id, bad.message))
        if ledger is not None and not options.dry_run:
            ledger.record_invalid([(b.external_id, b.origin, b.message) for b in invalid], run_id)
        known = ledger.lookup([p.external_id for p in batch]) if ledger is not None else {}
        jobs: list[Job] = []
        intents: list[Intent] = []
        for prepared in batch:
            decision = decide(prepared, known.get(prepared.external_id))
            if decision in ("unchanged", "changed"):
                result.counts[decision] += 1
                if decision == "changed":
                    emit(
                        Event("changed", prepared.external_id, "content changed since it was sent")
                    )
                    stored = _unsettled_stored(ledger, prepared.external_id)
                    if stored is not None:
                        # The old body may have reached the server: settle it first, with its
                        # own key; the change is picked up once it is accepted.
                        jobs.append(stored)
                continue
            if budget is not None and budget <= 0:
                result.counts["deferred"] += 1
                continue
            if budget is not None:
                budget -= 1
            result.counts["attempted"] += 1
            if options.dry_run:
                emit(Event("would-send", prepared.external_id, prepared.canonical.decode()))
                continue
            key = idempotency_key(prepared.canonical)
            intents.append(
                Intent(
                    prepared.external_id,
                    prepared.payload_hash,
                    prepared.canonical.decode(),
                    key,
                    prepared.origin,
                )
            )
            jobs.append(SendJob(prepared.external_id, prepared.canonical, key))
        if ledger is not None and intents:
            ledger.record_intents(intents, run_id)
        yield jobs


def decide(prepared: Prepared, row: ItemRow | None) -> str:
    """send | unchanged | changed."""
    if row is None or row.status == "invalid":
        return "send"
    if row.payload_hash == prepared.payload_hash:
        return "send" if row.status in UNSETTLED else "unchanged"
    if row.status == "rejected" or row.status == "deleted":
        return "send"  # the earlier body never became a signal (or its signal is gone)
    if row.status in ACCEPTED or row.status in UNSETTLED or row.status == "conflict":
        return "changed"
    return "send"


def _unsettled_stored(ledger: Ledger | None, external_id: str) -> SendJob | None:
    if ledger is None:
        return None
    item = ledger.get_item(external_id)
    if item is None or item["status"] not in UNSETTLED:
        return None
    if not item.get("payload") or not item.get("idempotency_key"):
        return None
    return SendJob(external_id, str(item["payload"]).encode(), str(item["idempotency_key"]))
