"""Push planning: shaped records -> a diff against the ledger -> jobs, one batch at a time.

It runs on the writer thread, reads the ledger once per batch (never per record) and
commits each batch's intents before handing the batch's jobs to the engine. A bookmark is
saved only after the batch holding the records before it is committed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from zsync import shape
from zsync.ledger import Ledger
from zsync.model import (
    Emit,
    Event,
    Idle,
    Intent,
    Invalid,
    Job,
    Prepared,
    RunResult,
    SendJob,
    StateMessage,
    Status,
    UpdateJob,
)
from zsync.plan.bookmark import Bookmark
from zsync.plan.decide import line_hashes_to_learn, plan_one
from zsync.plan.options import PlanOptions
from zsync.plan.prune import prune
from zsync.plan.seen import Seen
from zsync.plan.stream import BATCH, Known, planned_stream
from zsync.read import SourceFailed

# A batch also closes once it has been open this long, so records from a slow source are
# sent (and a Ctrl-C is acted on) without waiting for a full batch.
BATCH_SECONDS = 1.0


def push_feeder(
    ledger: Ledger | None,
    options: PlanOptions,
    result: RunResult,
    emit: Emit,
    *,
    mappings: shape.MappingFile | None,
    run_id: int,
) -> Iterator[list[Job]]:
    """Yield the jobs of each input batch after committing their intents.

    A bookmark from the source (StateMessage) is saved only after the batch holding the
    records before it is committed, so a crash never leaves a bookmark ahead of them.
    """
    seen = Seen()
    bookmark = Bookmark(ledger, options, emit)
    shaper = shape.Shaper(
        mappings,
        derive_external_id=options.derive_external_id,
        warn=bookmark.emit_warning,
    )
    stream = planned_stream(
        ledger, options, shaper, result, seen, bookmark=bookmark.saved, warn=bookmark.emit_warning
    )
    budget = [options.limit]
    failure: SourceFailed | None = None
    while True:
        batch: list[Prepared] = []
        invalid: list[Invalid] = []
        state: StateMessage | None = None
        unchanged = 0
        idle = False
        closes = time.monotonic() + BATCH_SECONDS
        try:
            for item in stream:
                if isinstance(item, Idle):
                    idle = True
                    break
                if isinstance(item, StateMessage):
                    # Close the batch here, however small: a source may pause for minutes
                    # after a STATE, and its records and bookmark must not wait in memory.
                    # (A tap that sends STATE after every record still plans ~5,000
                    # records/s, faster than any API it fetches from.)
                    state = item
                    break
                if isinstance(item, Known):
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
        except SourceFailed as exc:
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
        learned: list[tuple[str, str, str, str | None]] = []
        deferred, changed = result.counts["deferred"], result.counts["changed"]
        for prepared in batch:
            job = plan_one(
                ledger,
                options,
                prepared,
                known.get(prepared.external_id),
                result,
                emit,
                budget,
                intents,
                learned,
            )
            if job is not None:
                jobs.append(job)
        if ledger is not None and intents and not options.dry_run:
            ledger.record_intents(intents, run_id)
        if ledger is not None and not options.dry_run:
            ledger.set_raw_hashes(line_hashes_to_learn(batch, known))
            ledger.learn_adopted(learned)
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
        yield from prune(ledger, options, seen, result, emit)


def _leftovers(ledger: Ledger, seen: Seen, result: RunResult) -> Iterator[list[Job]]:
    """Unfinished items of earlier runs that this input did not hold again: a source that
    resumes from its bookmark does not emit them twice, yet they must still be sent."""
    batch: list[Job] = []
    for item in ledger.iter_items((Status.PENDING, Status.ERROR)):
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
    emit: Emit,
    run_id: int,
) -> None:
    for bad in invalid:
        kind = "duplicate" if bad.message.endswith("not sent twice") else "invalid"
        result.counts[kind] += 1
        result.note_problem(bad.message)
        emit(Event(kind, bad.external_id, bad.message))
    if ledger is not None and not options.dry_run and invalid:
        ledger.record_invalid([(b.external_id, b.origin, b.message) for b in invalid], run_id)
