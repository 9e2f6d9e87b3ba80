"""Stage 4, engine: the worker side. One job -> its requests (paced, limited, retried) ->
one :class:`~zsync.model.Outcome`.

Runs on the engine's worker threads and never touches the ledger: the engine's writer
records what comes back. Every attempt waits for the pacer's slot, is timed for the
concurrency limiter, and is retried with the same body and Idempotency-Key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from zsync.engine.client import Receipt, ZentrikClient
from zsync.engine.limiter import Change, Limiter
from zsync.engine.pacing import Pacer
from zsync.engine.retry import RetryPolicy
from zsync.errors import (
    ApiError,
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
    Job,
    Outcome,
    PollJob,
    RequeueJob,
    RunResult,
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


class Worker:
    """What the worker threads run; shared by all of them (one HTTP client per thread)."""

    def __init__(
        self,
        client_factory: ClientFactory,
        *,
        pacer: Pacer,
        limiter: Limiter,
        retry: RetryPolicy,
        result: RunResult,
        emit: Emit,
        workspace: str | None = None,
        replay_safe: bool = False,
    ) -> None:
        self.pacer = pacer
        self.limiter = limiter
        self.retry = retry
        self.result = result
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
        # For noticing an API that stopped answering: without this, every pending record
        # would spend its own full wait budget on a dead API.
        self.last_success = time.monotonic()
        self.failures_since_success = 0
        # Creates this run answered with an existing signal (a replay, identity dedupe, a
        # 409 naming it) not yet seen alive: a 404 for one is a conflict, not a deletion.
        self._answered_existing: set[str] = set()

    def close(self) -> None:
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

    def _on_retry(self, error: TransientError, attempt: int, wait_s: float) -> None:
        self.result.retries += 1
        # The pacer already heard of a 429 from _request; telling it twice doubled the count.
        self.emit(
            Event(
                "retry",
                message=f"{error} (attempt {attempt}, next in {wait_s:.1f}s)",
                data={"status": error.status},
            )
        )

    def _request(self, fn: Callable[[], Any], counter: list[int]) -> Any:
        def attempt() -> Any:
            if not self.pacer.acquire():
                raise _Stopped
            counter[0] += 1
            rtt: float | None = None
            succeeded = throttled = False
            self.limiter.started()
            sent = time.monotonic()
            try:
                value = fn()
                rtt = time.monotonic() - sent
                succeeded = True
            except ApiError as exc:
                self.result.requests[str(exc.status or "transport")] += 1
                if isinstance(exc, RateLimited):
                    # The pacer learns the rate from it; the limiter backs off (below).
                    self.pacer.throttle()
                    throttled = True
                if isinstance(exc, TransientError):
                    self.failures_since_success += 1
                else:
                    rtt = time.monotonic() - sent  # an answer, if not the one hoped for
                raise
            finally:
                change = self.limiter.finished(rtt, succeeded=succeeded, throttled=throttled)
                self._limit_changed(change)
            self.last_success = time.monotonic()
            self.failures_since_success = 0
            self.pacer.success()
            return value

        return self.retry.call(attempt, on_retry=self._on_retry)

    def _limit_changed(self, change: Change | None) -> None:
        if change is not None:
            self.emit(
                Event(
                    "concurrency",
                    message=f"limit {change.old} -> {change.new} ({change.reason})",
                    data={"limit": change.new},
                )
            )

    def run_job(self, job: Job) -> Outcome | None:
        """Make the job's requests; its Outcome, or None when the run stopped first."""
        counter = [0]
        try:
            if isinstance(job, SendJob):
                if job.external_id in self.result.held:
                    return None  # in doubt, inside its horizon: counted pending already
                return self._create(job, counter)
            if isinstance(job, PollJob):
                state = self._request(lambda: self._client().get_signal(job.public_id), counter)
                self.result.requests["200"] += 1
                self._answered_existing.discard(job.external_id)
                if state.status in TERMINAL:
                    return Outcome(
                        job.external_id,
                        state.status,
                        status=state.status,
                        http_status=200,
                        detail=state.error,
                    )
                return Outcome(job.external_id, "polling", detail=state.status)
            if isinstance(job, DeleteJob):
                self._request(lambda: self._client().delete_signal(job.public_id), counter)
                self.result.requests["204"] += 1
                return Outcome(
                    job.external_id,
                    "deleted",
                    status=Status.DELETED,
                    detail=job.public_id,
                    attempts=counter[0],
                )
            return self._process(job, counter)
        except _Stopped:
            return None
        except RedirectRefused:
            raise  # fatal for the run (see Engine.run); the item stays pending with its key
        except ApiError as exc:
            return _failure(job, exc, counter[0])

    def _create(self, job: SendJob, counter: list[int]) -> Outcome:
        receipt: Receipt = self._request(lambda: self._send(job), counter)
        self.result.requests[str(receipt.http_status)] += 1
        fresh = receipt.http_status == 201 and not receipt.replayed
        if not fresh:
            self._answered_existing.add(job.external_id)
        return Outcome(
            job.external_id,
            "created" if fresh else "replayed",
            status=Status.SUBMITTED,
            http_status=receipt.http_status,
            public_id=receipt.public_id,
            job_id=receipt.job_id,
            detail=receipt.public_id,
            attempts=counter[0],
        )

    def judge_gone(self, outcome: Outcome, events: list[dict[str, Any]]) -> Outcome:
        """A signal the server no longer holds (404): ``deleted`` on the server, final. When
        its create was answered with an existing signal (in this run, or as the item's
        ``events`` last say) that nobody has seen alive since, the record is not on the
        server and cannot be created while the server answers with that signal: a
        ``conflict`` saying so."""
        ext = outcome.external_id
        if ext not in self._answered_existing and not _answered_with_existing(events):
            return outcome
        self._answered_existing.discard(ext)
        public_id = outcome.public_id
        return Outcome(
            ext,
            "conflict",
            status=Status.CONFLICT,
            http_status=404,
            detail=f"the server answered its create with {public_id or 'a signal'}, which it "
            "has deleted: the record is not on the server, and the server's dedupe answers "
            "with the deleted signal (change the record's externalId, or have it forgotten)",
            attempts=outcome.attempts,
        )

    def _send(self, job: SendJob) -> Receipt:
        try:
            return self._client().create_signal(job.payload, job.idempotency_key)
        except TransportError as exc:
            if self.replay_safe or isinstance(exc, NotDelivered):
                raise
            raise _InDoubt(f"in doubt ({exc}); checked against the server's list next") from None

    def _process(self, job: UpdateJob | RequeueJob, counter: list[int]) -> Outcome:
        """An update (PATCH, then re-queue) or a bare re-queue of processing."""
        ext = job.external_id
        if isinstance(job, UpdateJob):
            self._request(lambda: self._client().update_signal(job.public_id, job.fields), counter)
            self.result.requests["200"] += 1
        job_id = self._request(lambda: self._client().process_signal(job.public_id), counter)
        self.result.requests["202"] += 1
        if isinstance(job, UpdateJob):
            return Outcome(
                ext,
                "updated",
                status=Status.SUBMITTED,
                job_id=job_id,
                attempts=counter[0],
                detail=f"{job.public_id}: {', '.join(sorted(job.fields))}",
                public_id=job.public_id,
                intent=job.intent,
            )
        return Outcome(ext, "requeued", status=Status.SUBMITTED, job_id=job_id, attempts=counter[0])


def _failure(job: Job, exc: ApiError, attempts: int) -> Outcome:
    """The item's fate after a request that did not succeed."""
    ext = job.external_id
    if _gone(job, exc):
        # Gone is final: a poll, update or re-queue of a signal the server no longer holds.
        public_id: str | None = getattr(job, "public_id", None)
        return Outcome(
            ext,
            "gone",
            status=Status.DELETED,
            http_status=404,
            public_id=public_id,
            detail=f"{public_id + ': ' if public_id else ''}deleted on the server",
            attempts=attempts,
        )
    if isinstance(job, PollJob):
        # A failed poll changes nothing: the signal is polled again later (or by reconcile).
        kind = "polling" if isinstance(exc, TransientError) else "poll-rejected"
        return Outcome(ext, kind, http_status=exc.status, detail=str(exc))
    if isinstance(exc, Conflict) and exc.public_id and isinstance(job, SendJob):
        # The 409 names the signal that holds this record: adopt it at once.
        return Outcome(
            ext,
            "adopted",
            status=Status.SUBMITTED,
            http_status=409,
            public_id=exc.public_id,
            detail=f"{exc.public_id} (named by a 409)",
            attempts=attempts,
        )
    if isinstance(exc, Conflict):
        kind = "conflict"  # never retried with a new key; reconcile looks it up
    elif isinstance(exc, Rejected):
        kind = "rejected"
    else:
        # Transient beyond the budget or a malformed 2xx (the server may have created the
        # signal): resent with the same body and key by the next run.
        kind = "error"
    # Only a create decides the item's status. An update, re-queue or delete that fails
    # leaves an accepted item accepted (its signal exists): marking it unsettled would make
    # the next run resend its create.
    status = kind if isinstance(job, SendJob) else None
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
