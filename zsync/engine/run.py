"""Stage 4, engine: jobs from a feeder -> a worker pool (paced, retried) -> outcomes -> ledger.

Threads: the caller's thread owns the ledger and the run's counts, and does all planning
and writing (the writer); worker threads only make HTTP requests and hand back values
(:class:`~zsync.engine.worker.Done`: the :class:`~zsync.model.Outcome` and what its
requests got), which the writer records and counts.
Intents are committed before their request is submitted to a worker, so a crash at any
moment leaves every record either untouched, ``pending`` (resent with the same body and
Idempotency-Key next run) or settled.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from zsync.engine.limiter import CEILING, INITIAL, Limiter
from zsync.engine.pacing import Pacer
from zsync.engine.polls import PollSchedule
from zsync.engine.retry import RetryPolicy
from zsync.engine.worker import ClientFactory, Done, Worker, judge_gone
from zsync.errors import ZsyncError
from zsync.ledger import Ledger
from zsync.model import (
    Emit,
    Event,
    EventKind,
    Job,
    Outcome,
    OutcomeKind,
    PollJob,
    RunOptions,
    RunResult,
    SendJob,
    ignore,
)

_FLUSH_EVERY = 200
_FLUSH_SECONDS = 0.25
_HEARTBEAT_SECONDS = 15.0
_PROGRESS_SECONDS = 0.5
# Outcomes that leave the item submitted: its signal was made (or found), or re-queued.
_SENT = frozenset({OutcomeKind.CREATED, OutcomeKind.REPLAYED, OutcomeKind.ADOPTED})
_QUEUED = frozenset({OutcomeKind.REQUEUED, OutcomeKind.UPDATED})
# Outcomes of a poll that saw processing end.
_POLLED = frozenset({OutcomeKind.PROCESSED, OutcomeKind.FAILED})


class Engine:
    """Runs jobs from a feeder through a worker pool and records their outcomes."""

    def __init__(
        self,
        ledger: Ledger,
        client_factory: ClientFactory,
        options: RunOptions,
        *,
        retry: RetryPolicy | None = None,
        stop_event: threading.Event | None = None,
        emit: Emit = ignore,
        run_id: int,
        result: RunResult,
    ) -> None:
        self.ledger = ledger
        self.options = options
        self.stop = stop_event or threading.Event()
        self.retry = retry or RetryPolicy()
        self.retry.stop_event = self.stop
        rate = options.rate
        if options.delay_ms > 0:
            delay_rate = 1000.0 / options.delay_ms
            rate = min(rate, delay_rate) if rate else delay_rate
        fixed = options.concurrency
        ceiling = fixed or CEILING
        # The pacer only spaces requests; the limiter alone decides how many are in flight
        # (latency, refusals, and the backoff after a 429).
        self.pacer = Pacer(rate=rate, stop_event=self.stop)
        self.limiter = Limiter(adaptive=fixed is None, initial=fixed or INITIAL, ceiling=ceiling)
        self.polls = PollSchedule(first=options.first_poll, longest=options.poll_interval)
        self.emit = emit
        self.run_id = run_id
        self.result = result
        self.worker = Worker(
            client_factory,
            pacer=self.pacer,
            limiter=self.limiter,
            retry=self.retry,
            emit=emit,
            held=result.held,
            workspace=ledger.meta.get("workspace_id"),
            replay_safe=ledger.server.replay_observed() is not None,
        )
        self._poll_deadline = 0.0
        # Creates this run answered with an existing signal (a replay, identity dedupe) not
        # yet seen alive by a poll: a 404 for one is a conflict, not a deletion.
        self._answered_existing: set[str] = set()
        self._buffer: list[Outcome] = []
        self._last_flush = time.monotonic()
        self._last_beat = time.monotonic()
        self._started = time.monotonic()
        self._last_progress = self._started
        # The run loop's state (see run()).
        self._queue: list[Job] = []
        self._feeder_done = False
        self._inflight: dict[Future[Done], Job] = {}
        self._done: queue.SimpleQueue[Future[Done]] = queue.SimpleQueue()
        self._fatal: BaseException | None = None
        self._deadline: float | None = None

    @property
    def limit(self) -> int:
        """How many jobs may be in flight now (the limiter's, at the pacer's rate)."""
        return self.limiter.allowed(self.pacer.current_rate())

    # -- writer side -----------------------------------------------------------------

    def schedule_poll(self, external_id: str, public_id: str, delay: float | None = None) -> None:
        """Poll a signal whose processing was queued just now (``delay`` None), or one
        handed over by a feeder, ``delay`` seconds from now."""
        if not self.options.poll:
            return
        now = time.monotonic()
        if delay is None:
            self.polls.created(external_id, public_id, now)
        else:
            self.polls.add(PollJob(external_id, public_id, delay), now + delay)
        self._poll_deadline = max(self._poll_deadline, now + self.options.poll_seconds)

    def _take(self, job: Job, done: Done) -> None:
        """What a worker handed back: counted here, on the writer's thread, then recorded."""
        self.result.add_requests(done.requests, done.retries)
        if done.fatal is not None:
            self._fatal = self._fatal or done.fatal
            self.stop.set()
            return
        outcome = done.outcome
        if outcome is None:
            return
        if done.polled_alive:
            self._answered_existing.discard(outcome.external_id)
        elif outcome.kind == OutcomeKind.REPLAYED:
            self._answered_existing.add(outcome.external_id)
        if isinstance(job, PollJob):
            self.polls.seen(job, outcome.kind != OutcomeKind.POLLING, time.monotonic())
        self._record(outcome)

    def _record(self, outcome: Outcome) -> None:
        result = self.result
        if outcome.kind == OutcomeKind.POLLING:
            return
        if outcome.kind == OutcomeKind.GONE:
            # Deleted on the server, or (answered with a signal already gone) a conflict.
            ext = outcome.external_id
            answered = ext in self._answered_existing
            self._answered_existing.discard(ext)
            outcome = judge_gone(outcome, answered, self.ledger.items.events_for(ext))
            result.settle_submitted()
        if outcome.kind == "poll-rejected":
            self._buffer.append(outcome)
            return
        if outcome.kind in ("replayed", "adopted") and not self.worker.replay_safe:
            # A resend answered with the original signal: resending is safe here from now on.
            how = "409 naming the signal" if outcome.kind == "adopted" else "replayed create"
            self.ledger.server.note_replay(f"{how}, {outcome.external_id}")
            self.worker.replay_safe = True
        if outcome.kind in _SENT:
            result.count(outcome.kind)
            result.count("submitted")
            if outcome.public_id:
                self.schedule_poll(outcome.external_id, outcome.public_id)
        elif outcome.kind in _QUEUED:
            result.count(outcome.kind)
            result.count("submitted")
            public_id = outcome.public_id
            if public_id is None:
                item = self.ledger.items.get_item(outcome.external_id)
                public_id = str(item["public_id"]) if item and item.get("public_id") else None
            if public_id:
                self.schedule_poll(outcome.external_id, public_id)
        elif outcome.kind == OutcomeKind.DELETED:
            result.count(outcome.kind)
        elif outcome.kind in _POLLED:
            result.count(outcome.kind)
            result.settle_submitted()
        else:
            result.count(outcome.kind)
            result.note_problem(f"{outcome.external_id}: {outcome.kind}: {outcome.detail}")
        self.emit(
            Event(
                EventKind(outcome.kind),
                outcome.external_id,
                outcome.detail or "",
                {
                    "status": outcome.http_status,
                    "run_id": self.run_id,
                    "attempts": outcome.attempts,
                },
            )
        )
        self._buffer.append(outcome)

    def flush(self, force: bool = False) -> None:
        """Write the outcomes recorded so far when the batch is full or old enough (every
        one when ``force``), beat the lease's heartbeat, and show progress."""
        now = time.monotonic()
        if self._buffer and (
            force or len(self._buffer) >= _FLUSH_EVERY or now - self._last_flush >= _FLUSH_SECONDS
        ):
            self.ledger.items.apply_outcomes(self._buffer, self.run_id)
            self.ledger.lease.heartbeat()
            self._buffer = []
            self._last_flush = now
            self._last_beat = now
        elif now - self._last_beat >= _HEARTBEAT_SECONDS:
            self.ledger.lease.heartbeat()
            self._last_beat = now
        self._progress(now)

    def _progress(self, now: float) -> None:
        if now - self._last_progress < _PROGRESS_SECONDS:
            return
        self._last_progress = now
        r = self.result
        self.emit(
            Event(
                EventKind.PROGRESS,
                data={
                    "elapsed": now - self._started,
                    "seen": r.seen,
                    "total": r.total,
                    "counts": dict(r.counts),
                    "retries": r.retries,
                    "throttled": self.pacer.throttled,
                    "inflight": len(self._inflight),
                    "limit": self.limit,
                },
            )
        )

    # -- the run loop ----------------------------------------------------------------

    def run(self, feeder: Iterator[list[Job]]) -> None:
        """Drive jobs from ``feeder`` (which may plan and write intents) to completion."""
        if self.options.max_duration:
            self._deadline = time.monotonic() + self.options.max_duration
        pool = ThreadPoolExecutor(
            max_workers=self.limiter.ceiling, thread_name_prefix="zsync-worker"
        )
        try:
            while True:
                now = time.monotonic()
                self._watch_budgets(now)
                stopping = self.stop.is_set() or self.result.timed_out or self._fatal is not None
                if not stopping:
                    self._fill(pool, feeder, now)
                idle = self._feeder_done and not self._queue and not self._polls_alive(now)
                if not self._inflight and (stopping or idle):
                    break
                self._collect(self._wait(now))
                self.flush()
        except BaseException as exc:
            self._fatal = self._fatal or exc
            self.stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._finish()

    def _watch_budgets(self, now: float) -> None:
        """The time budget (--max-duration) and an API that stopped answering."""
        if self._deadline is not None and now >= self._deadline and not self.result.timed_out:
            self.result.timed_out = True
            self.emit(Event(EventKind.TIMEOUT, message="time budget reached"))
        if self._api_gone(now):
            self.result.api_down = True
            self.stop.set()  # also ends retries in flight
            self.emit(
                Event(
                    EventKind.API_DOWN,
                    message=f"every request failed for {self.retry.budget:g}s; "
                    "stopping, unfinished records stay pending for the next run",
                )
            )

    def _fill(self, pool: ThreadPoolExecutor, feeder: Iterator[list[Job]], now: float) -> None:
        """Start jobs while the limit allows: due polls, queued jobs, then the feeder's next."""
        while len(self._inflight) < self.limit and not self.stop.is_set():
            job = self._next_job(now)
            if job is None and not self._feeder_done and not self._queue:
                try:
                    jobs = next_batch(feeder)
                except StopIteration:
                    self._feeder_done = True
                    jobs = []
                self._queue.extend(reversed(self._take_polls(jobs)))
                self._progress(time.monotonic())
                if self._deadline is not None and time.monotonic() >= self._deadline:
                    return
                if not jobs and self._inflight:
                    return  # nothing new yet (a quiet source): record what finished
                continue
            if job is None:
                return
            future = pool.submit(self.worker.run_job, job)
            self._inflight[future] = job
            future.add_done_callback(self._done.put)

    def _wait(self, now: float) -> set[Future[Done]]:
        timeout = 0.5
        due = self.polls.next_due()
        if due is not None:
            timeout = min(timeout, max(0.0, due - now))
        timeout = max(timeout, 0.005)
        if not self._inflight:
            # Nothing can finish: with only polls ahead, waiting on nothing was a busy loop
            # burning a core until the next one was due.
            self.stop.wait(timeout)
            return set()
        # Finished requests queue themselves (add_done_callback): one queue operation per
        # request, where wait() on every future in flight cost one waiter per future.
        try:
            done = {self._done.get(timeout=timeout)}
        except queue.Empty:
            return set()
        while True:
            try:
                done.add(self._done.get_nowait())
            except queue.Empty:
                return done

    def _collect(self, done: set[Future[Done]]) -> None:
        for fut in done:
            job = self._inflight.pop(fut)
            self._take(job, fut.result())

    def _finish(self) -> None:
        for fut, job in list(self._inflight.items()):
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                finished = fut.result()
                if finished.fatal is None:
                    self._take(job, finished)
                else:
                    self.result.add_requests(finished.requests, finished.retries)
        self.flush(force=True)
        self.worker.close()
        result = self.result
        result.throttled = self.pacer.throttled
        result.concurrency = {
            "adaptive": self.limiter.adaptive,
            "limit_reached": self.limiter.peak,
            "limit_final": self.limit,
        }
        self.emit(
            Event(
                EventKind.CONCURRENCY,
                message=f"limit reached {self.limiter.peak}, {self.limit} at the end"
                + (" (adaptive)" if self.limiter.adaptive else " (fixed)"),
                data=dict(result.concurrency),
            )
        )
        # Jobs never started stay as they are in the ledger (pending/submitted).
        result.count("pending", sum(isinstance(j, SendJob) for j in self._queue))
        fatal = self._fatal
        if fatal is not None and isinstance(fatal, ZsyncError):
            result.fatal = fatal
        if self.stop.is_set() and fatal is None and not result.timed_out and not result.api_down:
            result.interrupted = True

    def _take_polls(self, jobs: list[Job]) -> list[Job]:
        """Polls from a feeder wait in the poll queue until due; the rest run in order."""
        others: list[Job] = []
        for job in jobs:
            if isinstance(job, PollJob):
                self.schedule_poll(job.external_id, job.public_id, delay=job.interval)
            else:
                others.append(job)
        return others

    def _api_gone(self, now: float) -> bool:
        budget = max(self.retry.budget, 1.0)
        return not self.result.api_down and self.worker.health.gone(now, budget)

    def _polls_alive(self, now: float) -> bool:
        if not self.polls:
            return False
        if now > self._poll_deadline:
            self.polls.clear()  # budget spent: the rest stay 'submitted' for reconcile
            return False
        return True

    def _next_job(self, now: float) -> Job | None:
        # Due polls first: they finish work already started.
        if now <= self._poll_deadline:
            job = self.polls.pop_due(now)
            if job is not None:
                return job
        if self._queue:
            return self._queue.pop()
        return None


def next_batch(feeder: Iterator[list[Job]]) -> list[Job]:
    """Feeders yield lists of jobs; an empty list means 'nothing to send in this batch'."""
    return list(next(feeder))
