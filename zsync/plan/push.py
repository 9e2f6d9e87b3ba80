"""Push planning: shaped records -> a diff against the ledger -> jobs, one batch at a time.

It runs on the writer thread, reads the ledger once per batch (never per record) and
commits each batch's intents before handing the batch's jobs to the engine. A bookmark is
saved only after the batch holding the records before it is committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

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
from zsync.plan.decide import (
    Decision,
    Learned,
    plan_one,
    raw_hashes_to_learn,
    sources_to_learn,
)
from zsync.plan.followup import earlier_runs
from zsync.plan.options import BATCH, PlanOptions
from zsync.plan.prune import prune
from zsync.plan.seen import Seen
from zsync.plan.skip import ReadAhead
from zsync.plan.stream import Known, KnownRun, Planned, planned_stream
from zsync.plan.upsert import Upserts
from zsync.read import SourceFailed

# A batch also closes once it has been open this long, so records from a slow source are
# sent (and a Ctrl-C is acted on) without waiting for a full batch.
BATCH_SECONDS = 1.0


@dataclass
class _Batch:
    """One batch of the input as the planner takes it in."""

    prepared: list[Prepared] = field(default_factory=list)
    invalid: list[Invalid] = field(default_factory=list)
    unchanged: list[Known] = field(default_factory=list)
    state: StateMessage | None = None  # the bookmark that closed the batch
    idle: bool = False  # the source went quiet
    superseded: int = 0  # earlier versions replaced by a later one in this batch
    failure: SourceFailed | None = None  # the source program failed after this batch
    # Singer upserts: where each identity sits in ``prepared``; a later version takes its place
    index: dict[str, int] | None = None

    @property
    def empty(self) -> bool:
        return not self.prepared and not self.invalid and self.state is None


def push_feeder(
    ledger: Ledger | None,
    options: PlanOptions,
    result: RunResult,
    emit: Emit,
    *,
    mappings: shape.MappingFile | None,
    run_id: int,
    ahead: ReadAhead | None = None,
    vouch: Callable[[], None] | None = None,
) -> Iterator[list[Job]]:
    """Yield the jobs of each input batch after committing their intents; then what earlier
    runs left unsettled, then prune's deletes. ``vouch`` is called (once) before the first
    batch that holds records the ledger does not know: the ledger's trust check, which may
    adopt signals for them.

    A bookmark from the source (StateMessage) is saved only after the batch holding the
    records before it is committed, so a crash never leaves a bookmark ahead of them.
    """
    seen = Seen()
    bookmark = Bookmark(ledger, options, emit)
    shaper = shape.Shaper(
        mappings,
        derive_external_id=options.derive_external_id,
        warn=bookmark.emit_warning,
        singer=options.singer_body(),
    )
    stream = planned_stream(
        ledger,
        options,
        shaper,
        result,
        seen,
        bookmark=bookmark.saved,
        warn=bookmark.emit_warning,
        ahead=ahead,
    )
    planner = _Planner(ledger, options, result, emit, run_id, bookmark, vouch=vouch)
    if options.source.singer:
        planner.upserts = Upserts(options.on_change)
    while True:
        batch = _take(stream, upsert=planner.upserts is not None)
        result.count("unchanged", len(batch.unchanged))
        if batch.empty:
            if batch.idle:
                yield []  # the source is quiet: the engine records and polls meanwhile
            elif batch.unchanged:
                planner.learn_sources(batch)
            elif batch.failure is None:
                break
        else:
            yield planner.plan(batch)
        if batch.failure is not None:
            result.fatal = batch.failure
            return
    if planner.upserts is not None:
        for last in planner.upserts.last_versions(ledger, result, emit):
            yield planner.plan(_Batch(prepared=last)) if last else []
        if planner.upserts.state_held and not bookmark.held and bookmark.writes:
            bookmark.emit_warning(
                "bookmark not advanced past a record that changed in this run; the next run "
                "reads the source again from the last saved bookmark"
            )
    if ledger is not None and not options.dry_run:
        yield from earlier_runs(ledger, seen, result, run_id=run_id, poll=options.follow_up)
    if options.prune:
        yield from prune(ledger, options, seen, result, emit)


def _take(stream: Iterator[Planned | KnownRun], *, upsert: bool = False) -> _Batch:
    """Records until the batch is full, a bookmark or a pause closes it, or it has been open
    for BATCH_SECONDS. With ``upsert`` (Singer) a record takes the place of an earlier
    version of it in the batch, which is superseded."""
    batch = _Batch(index={} if upsert else None)
    closes = time.monotonic() + BATCH_SECONDS
    try:
        for item in stream:
            if isinstance(item, Idle):
                batch.idle = True
                break
            if isinstance(item, StateMessage):
                # Close the batch here, however small: a source may pause for minutes after a
                # STATE, and its records and bookmark must not wait in memory. (A tap that
                # sends STATE after every record still plans ~5,000 records/s.)
                batch.state = item
                break
            if isinstance(item, KnownRun):
                batch.unchanged += item.items
            elif isinstance(item, Invalid):
                batch.invalid.append(item)
            elif batch.index is not None:
                _upsert(batch, item)
            else:
                batch.prepared.append(item)
            n = len(batch.prepared) + len(batch.invalid) + len(batch.unchanged)
            # The clock is read every 16 records: a slow source is still sent within about a
            # second, and the skip path does not pay a clock read per record.
            if n >= BATCH or (not n & 15 and time.monotonic() >= closes):
                break
    except SourceFailed as exc:
        batch.failure = exc  # after this batch, which holds the last records it emitted
    return batch


def _upsert(batch: _Batch, prepared: Prepared) -> None:
    assert batch.index is not None
    at = batch.index.get(prepared.external_id)
    if at is None:
        batch.index[prepared.external_id] = len(batch.prepared)
        batch.prepared.append(prepared)
    else:
        batch.prepared[at] = prepared
        batch.superseded += 1


@dataclass
class _Planner:
    """Diffs each batch against the ledger, commits its intents, then saves its bookmark."""

    ledger: Ledger | None
    options: PlanOptions
    result: RunResult
    emit: Emit
    run_id: int
    bookmark: Bookmark
    budget: int | None = None  # what is left of --limit
    upserts: Upserts | None = None  # Singer: the last version of a record wins
    vouch: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.budget = self.options.limit
        self.writes = self.ledger is not None and not self.options.dry_run
        # Rows from before the ledger kept sources learn theirs as their records pass by.
        self.learning = (
            self.writes and self.ledger is not None and self.ledger.items.has_unsourced()
        )

    def plan(self, batch: _Batch) -> list[Job]:
        ledger, options, result = self.ledger, self.options, self.result
        _report_invalid(ledger, options, batch.invalid, result, self.emit, self.run_id)
        ids = [p.external_id for p in batch.prepared]
        known = ledger.items.lookup(ids) if ledger is not None else {}
        if self.vouch is not None and self.writes and ledger is not None:
            fresh = [i for i in ids if i not in known or known[i].status == Status.DELETED]
            if fresh:
                vouch, self.vouch = self.vouch, None
                vouch()
                known = ledger.items.lookup(ids)
        jobs: list[Job] = []
        intents: list[Intent] = []
        adopted: list[Learned] = []  # rows adopted from the server
        deferred, changed = result.counts["deferred"], result.counts["changed"]
        upserts = self.upserts
        result.count("superseded", batch.superseded)
        for prepared in batch.prepared:
            row = known.get(prepared.external_id)
            if upserts is not None and upserts.hold(prepared, row, result):
                continue
            decision = plan_one(ledger, options, prepared, row, self.budget)
            job = self.take(decision, intents, adopted)
            if job is not None:
                jobs.append(job)
                if upserts is not None and isinstance(job, SendJob):
                    upserts.created.add(hash(prepared.external_id))
        if self.writes and ledger is not None:
            if intents:
                ledger.items.record_intents(intents, self.run_id)
            ledger.items.set_raw_hashes(raw_hashes_to_learn(batch.prepared, known))
            ledger.server.learn_adopted(adopted)
            if self.learning:
                ledger.items.set_sources(sources_to_learn(batch.prepared, known))
        self.learn_sources(batch)
        # Records this batch did not record (an update is recorded only when it succeeds):
        # a bookmark after them would skip them for good.
        self.bookmark.batch_closed(
            result.counts["deferred"] > deferred
            or (options.on_change != "skip" and result.counts["changed"] > changed)
            or any(isinstance(job, UpdateJob) for job in jobs)
        )
        if batch.state is not None and (upserts is None or upserts.passes(batch.state)):
            self.bookmark.save(batch.state)
        return jobs

    def take(self, decision: Decision, intents: list[Intent], adopted: list[Learned]) -> Job | None:
        """Count, show and keep what ``plan_one`` decided for a record; its job."""
        if decision.spends and self.budget is not None:
            self.budget -= 1
        for kind in decision.counts:
            self.result.count(kind)
        if decision.event is not None:
            self.emit(decision.event)
        if decision.intent is not None:
            intents.append(decision.intent)
        if decision.learned is not None:
            adopted.append(decision.learned)
        return decision.job

    def learn_sources(self, batch: _Batch) -> None:
        if self.learning and self.ledger is not None:
            pairs = [(k.external_id, k.source) for k in batch.unchanged if k.learn_source]
            self.ledger.items.set_sources(pairs)


def _report_invalid(
    ledger: Ledger | None,
    options: PlanOptions,
    invalid: list[Invalid],
    result: RunResult,
    emit: Emit,
    run_id: int,
) -> None:
    for bad in invalid:
        kind = bad.kind
        result.count(kind)
        result.note_problem(bad.message)
        emit(Event(kind, bad.external_id, bad.message, {"run_id": run_id}))
    if ledger is not None and not options.dry_run and invalid:
        ledger.items.record_invalid([(b.external_id, b.origin, b.message) for b in invalid], run_id)
