"""Stage 4, engine: the worker side. One job -> its requests (paced, limited, retried) ->
one :class:`Done`: the :class:`~zsync.model.Outcome`, the answers its requests got, its retries.

Runs on the engine's worker threads and never touches the ledger or the run's counts: the
engine's writer records and counts what comes back. Workers share only thread-safe objects
(the pacer, the limiter, :class:`Health`). Every attempt waits for the pacer's slot, is timed
for the concurrency limiter, and is retried with the same body and Idempotency-Key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from zsync.engine.client import Receipt, ZentrikClient
from zsync.engine.limiter import Change, Limiter
from zsync.engine.pacing import Pacer
from zsync.engine.retry import RetryPolicy
from zsync.errors import (
    ApiError,
    ApiUnavailable,
    AuthError,
    Conflict,
    NotDelivered,
    RateLimited,
    RedirectRefused,
    Rejected,
    TransientError,
    TransportError,
)
from zsync.model import (
    TERMINAL,
    DeleteJob,
    Emit,
    Event,
    EventKind,
    Job,
    Outcome,
    OutcomeKind,
    PollJob,
    RequeueJob,
    SendJob,
    Status,
    UpdateJob,
)

ClientFactory = Callable[[], ZentrikClient]


class _Stopped(Exception):
    """The run is stopping; the job was not (fully) attempted."""


class _InDoubt(ApiError):
    """A create may have reached the server, and this workspace has not shown that a resend
    is answered with the original signal: not resent until the server is checked."""


@dataclass(frozen=True, slots=True)
class Done:
    """What a worker hands back for one job, a value: its outcome (None: the run stopped
    first), the answers its requests got (status codes, ``transport``), the retries it made,
    whether a poll found the signal alive, and an error that ends the run (auth, an API
    that is not there, a redirect)."""

    outcome: Outcome | None
    requests: tuple[str, ...] = ()
    retries: int = 0
    polled_alive: bool = False
    fatal: AuthError | ApiUnavailable | RedirectRefused | None = None


@dataclass(slots=True)
class _Tally:
    """One job's requests, as its worker thread counts them (never shared)."""

    attempts: int = 0
    retries: int = 0
    requests: list[str] = field(default_factory=list)
    polled_alive: bool = False

    def done(self, outcome: Outcome | None, fatal: Any = None) -> Done:
        return Done(outcome, tuple(self.requests), self.retries, self.polled_alive, fatal)


class Health:
    """Whether the API still answers: the last success and the failures since, for noticing
    an API that stopped answering (else every pending record would spend its own full wait
    budget on a dead API). Thread-safe: workers report, the engine asks."""

    def __init__(self) -> None:
        """Healthy as of now."""
        self._lock = threading.Lock()
        self._last_success = time.monotonic()
        self._failures = 0

    def succeeded(self) -> None:
        """A request succeeded."""
        with self._lock:
            self._last_success = time.monotonic()
            self._failures = 0

    def failed(self) -> None:
        """A request failed transiently."""
        with self._lock:
            self._failures += 1

    def gone(self, now: float, budget: float) -> bool:
        """Every request failed for ``budget`` seconds (at least one failed)."""
        with self._lock:
            return self._failures > 0 and now - self._last_success >= budget


class Worker:
    """What the worker threads run; shared by all of them (one HTTP client per thread)."""

    def __init__(
        self,
        client_factory: ClientFactory,
        *,
        pacer: Pacer,
        limiter: Limiter,
        retry: RetryPolicy,
        emit: Emit,
        held: Mapping[str, float] | None = None,
        workspace: str | None = None,
        replay_safe: bool = False,
    ) -> None:
        """Workers for clients from ``client_factory``; ``held``: sends in doubt inside
        their horizon, not sent (read only here; the planner fills it)."""
        self.pacer = pacer
        self.limiter = limiter
        self.retry = retry
        self.held: Mapping[str, float] = {} if held is None else held
        self.emit = emit
        self._factory = client_factory
        self._local = threading.local()
        self._clients: list[ZentrikClient] = []
        self._clients_lock = threading.Lock()
        # The ledger's workspace: every client refuses a receipt that names another one.
        self._workspace = workspace
        # Has this workspace shown that a resend is answered with the original signal? Until
        # it has, a create that may have reached the server is not resent blindly.
        self.replay_safe = replay_safe
        self.health = Health()

    def close(self) -> None:
        """Close every thread's client."""
        for client in self._clients:
            client.close()

    def _client(self) -> ZentrikClient:
        client: ZentrikClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._factory()
            client.workspace_id = self._workspace
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _on_retry(self, tally: _Tally, error: TransientError, attempt: int, wait_s: float) -> None:
        tally.retries += 1
        # The pacer already heard of a 429 from _request; telling it twice doubled the count.
        self.emit(
            Event(
                EventKind.RETRY,
                message=f"{error} (attempt {attempt}, next in {wait_s:.1f}s)",
                data={"status": error.status},
            )
        )

    def _request(self, fn: Callable[[], Any], tally: _Tally) -> Any:
        def attempt() -> Any:
            if not self.pacer.acquire():
                raise _Stopped
            tally.attempts += 1
            rtt: float | None = None
            succeeded = throttled = False
            self.limiter.started()
            sent = time.monotonic()
            try:
                value = fn()
                rtt = time.monotonic() - sent
                succeeded = True
            except ApiError as exc:
                tally.requests.append(str(exc.status or "transport"))
                if isinstance(exc, RateLimited):
                    # The pacer learns the rate from it; the limiter backs off (below).
                    self.pacer.throttle()
                    throttled = True
                if isinstance(exc, TransientError):
                    self.health.failed()
                else:
                    rtt = time.monotonic() - sent  # an answer, if not the one hoped for
                raise
            finally:
                change = self.limiter.finished(rtt, succeeded=succeeded, throttled=throttled)
                self._limit_changed(change)
            self.health.succeeded()
            self.pacer.success()
            return value

        def on_retry(error: TransientError, attempt: int, wait_s: float) -> None:
            self._on_retry(tally, error, attempt, wait_s)

        return self.retry.call(attempt, on_retry=on_retry)

    def _limit_changed(self, change: Change | None) -> None:
        if change is not None:
            self.emit(
                Event(
                    EventKind.CONCURRENCY,
                    message=f"limit {change.old} -> {change.new} ({change.reason})",
                    data={"limit": change.new},
                )
            )

    def run_job(self, job: Job) -> Done:
        """Make the job's requests; what came of them (see :class:`Done`)."""
        tally = _Tally()
        try:
            return tally.done(self._run(job, tally))
        except (AuthError, ApiUnavailable, RedirectRefused) as exc:
            # Fatal for the run (see Engine.run); the item stays as it is, a send pending
            # with its key.
            return tally.done(None, exc)

    def _run(self, job: Job, tally: _Tally) -> Outcome | None:
        try:
            if isinstance(job, SendJob):
                if job.external_id in self.held:
                    return None  # in doubt, inside its horizon: counted pending already
                return self._create(job, tally)
            if isinstance(job, PollJob):
                state = self._request(lambda: self._client().get_signal(job.public_id), tally)
                tally.requests.append("200")
                tally.polled_alive = True
                if state.status in TERMINAL:
                    return Outcome(
                        job.external_id,
                        OutcomeKind(state.status),
                        status=state.status,
                        http_status=200,
                        detail=state.error,
                    )
                return Outcome(job.external_id, OutcomeKind.POLLING, detail=state.status)
            if isinstance(job, DeleteJob):
                self._request(lambda: self._client().delete_signal(job.public_id), tally)
                tally.requests.append("204")
                return Outcome(
                    job.external_id,
                    OutcomeKind.DELETED,
                    status=Status.DELETED,
                    detail=job.public_id,
                    attempts=tally.attempts,
                )
            return self._process(job, tally)
        except _Stopped:
            return None
        except RedirectRefused:
            raise
        except ApiError as exc:
            return _failure(job, exc, tally.attempts)

    def _create(self, job: SendJob, tally: _Tally) -> Outcome:
        receipt: Receipt = self._request(lambda: self._send(job), tally)
        tally.requests.append(str(receipt.http_status))
        fresh = receipt.http_status == 201 and not receipt.replayed
        return Outcome(
            job.external_id,
            OutcomeKind.CREATED if fresh else OutcomeKind.REPLAYED,
            status=Status.SUBMITTED,
            http_status=receipt.http_status,
            public_id=receipt.public_id,
            job_id=receipt.job_id,
            detail=receipt.public_id,
            attempts=tally.attempts,
        )

    def _send(self, job: SendJob) -> Receipt:
        try:
            return self._client().create_signal(job.payload, job.idempotency_key)
        except TransportError as exc:
            if self.replay_safe or isinstance(exc, NotDelivered):
                raise
            raise _InDoubt(f"in doubt ({exc}); checked against the server's list next") from None

    def _process(self, job: UpdateJob | RequeueJob, tally: _Tally) -> Outcome:
        """An update (PATCH, then re-queue) or a bare re-queue of processing."""
        ext = job.external_id
        if isinstance(job, UpdateJob):
            self._request(lambda: self._client().update_signal(job.public_id, job.fields), tally)
            tally.requests.append("200")
        job_id = self._request(lambda: self._client().process_signal(job.public_id), tally)
        tally.requests.append("202")
        if isinstance(job, UpdateJob):
            return Outcome(
                ext,
                OutcomeKind.UPDATED,
                status=Status.SUBMITTED,
                job_id=job_id,
                attempts=tally.attempts,
                detail=f"{job.public_id}: {', '.join(sorted(job.fields))}",
                public_id=job.public_id,
                intent=job.intent,
            )
        return Outcome(
            ext,
            OutcomeKind.REQUEUED,
            status=Status.SUBMITTED,
            job_id=job_id,
            attempts=tally.attempts,
        )


def judge_gone(outcome: Outcome, answered_existing: bool, events: list[dict[str, Any]]) -> Outcome:
    """A signal the server no longer holds (404): ``deleted`` on the server, final. When
    its create was answered with an existing signal (in this run: ``answered_existing``, or
    as the item's ``events`` last say) that nobody has seen alive since, the record is not on
    the server and cannot be created while the server answers with that signal: a
    ``conflict`` saying so."""
    if not answered_existing and not _answered_with_existing(events):
        return outcome
    ext, public_id = outcome.external_id, outcome.public_id
    return Outcome(
        ext,
        OutcomeKind.CONFLICT,
        status=Status.CONFLICT,
        http_status=404,
        detail=f"the server answered its create with {public_id or 'a signal'}, which it "
        "has deleted: the record is not on the server, and the server's dedupe answers "
        "with the deleted signal (change the record's externalId, or have it forgotten)",
        attempts=outcome.attempts,
    )


def _failure(job: Job, exc: ApiError, attempts: int) -> Outcome:
    """The item's fate after a request that did not succeed."""
    ext = job.external_id
    if _gone(job, exc):
        # Gone is final: a poll, update or re-queue of a signal the server no longer holds.
        public_id: str | None = getattr(job, "public_id", None)
        return Outcome(
            ext,
            OutcomeKind.GONE,
            status=Status.DELETED,
            http_status=404,
            public_id=public_id,
            detail=f"{public_id + ': ' if public_id else ''}deleted on the server",
            attempts=attempts,
        )
    if isinstance(job, PollJob):
        # A failed poll changes nothing: the signal is polled again later (or by reconcile).
        transient = isinstance(exc, TransientError)
        kind = OutcomeKind.POLLING if transient else OutcomeKind.POLL_REJECTED
        return Outcome(ext, kind, http_status=exc.status, detail=str(exc))
    if isinstance(exc, Conflict) and exc.public_id and isinstance(job, SendJob):
        # The 409 names the signal that holds this record: adopt it at once.
        return Outcome(
            ext,
            OutcomeKind.ADOPTED,
            status=Status.SUBMITTED,
            http_status=409,
            public_id=exc.public_id,
            detail=f"{exc.public_id} (named by a 409)",
            attempts=attempts,
        )
    if isinstance(exc, Conflict):
        kind = OutcomeKind.CONFLICT  # never retried with a new key; reconcile looks it up
    elif isinstance(exc, Rejected):
        kind = OutcomeKind.REJECTED
    else:
        # Transient beyond the budget or a malformed 2xx (the server may have created the
        # signal): resent with the same body and key by the next run.
        kind = OutcomeKind.ERROR
    # Only a create decides the item's status. An update, re-queue or delete that fails
    # leaves an accepted item accepted (its signal exists): marking it unsettled would make
    # the next run resend its create.
    status = Status(kind) if isinstance(job, SendJob) else None
    return Outcome(
        ext, kind, status=status, http_status=exc.status, detail=str(exc), attempts=attempts
    )


# Events that say a signal was alive (or newly made) when they were written.
_ALIVE = frozenset({"created", "found", "processed", "failed", "updated", "requeued"})


def _answered_with_existing(events: list[dict[str, Any]]) -> bool:
    """Was the item's last word from the server a create answered with an existing signal
    (a replay, identity dedupe, a 409 naming it), not seen alive since?"""
    for event in reversed(events):
        kind = event.get("kind")
        if kind in ("replayed", "adopted") and event.get("http_status") is not None:
            return True  # the engine's outcome of a create (the ledger's own carry none)
        if kind in _ALIVE or kind in ("adopted", "gone", "deleted"):
            return False
    return False


def _gone(job: Job, exc: ApiError) -> bool:
    """A 404 from the API itself (the web front end's is WarmingUp) for an existing signal."""
    return (
        isinstance(exc, Rejected)
        and exc.status == 404
        and isinstance(job, PollJob | UpdateJob | RequeueJob)
    )
