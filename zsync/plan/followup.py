"""Jobs read from the ledger, not from an input: what reconcile and retry-failed follow up."""

from __future__ import annotations

from collections.abc import Iterator

from zsync.ledger import Ledger
from zsync.model import UNSETTLED, Job, PollJob, RequeueJob, RunResult, SendJob, Status
from zsync.plan.options import BATCH
from zsync.plan.seen import Seen


def ledger_feeder(
    ledger: Ledger,
    statuses: tuple[str, ...],
    result: RunResult,
    *,
    include_rejected: bool = False,
) -> Iterator[list[Job]]:
    """Resends of unsettled (and conflicting) items with their stored body and key, polls
    of submitted ones (due at once), re-queues of failed ones; read in pages."""
    batch: list[Job] = []
    for item in ledger.items.iter_items(statuses):
        job: Job | None = None
        if (
            item.status in UNSETTLED
            or item.status == Status.CONFLICT
            or (include_rejected and item.status == Status.REJECTED)
        ):
            if item.payload and item.idempotency_key:
                job = SendJob(item.external_id, item.payload.encode(), item.idempotency_key)
                result.count("attempted")
        elif item.status == Status.SUBMITTED and item.public_id:
            job = PollJob(item.external_id, item.public_id, 0.0)
        elif item.status == Status.FAILED and item.public_id:
            job = RequeueJob(item.external_id, item.public_id)
            result.count("attempted")
        if job is not None:
            batch.append(job)
        if len(batch) >= 200:
            yield batch
            batch = []
    yield batch


def earlier_runs(
    ledger: Ledger, seen: Seen, result: RunResult, *, run_id: int, poll: bool
) -> Iterator[list[Job]]:
    """What earlier runs left unsettled, so that a plain re-run of the same push converges:
    intents never confirmed are resent with their stored body and key (a source that resumes
    from its bookmark does not emit them again), and signals still processing are polled."""
    statuses = (Status.PENDING, Status.ERROR) + ((Status.SUBMITTED,) if poll else ())
    batch: list[Job] = []
    for item in ledger.items.iter_items(statuses, before_run=run_id):
        if item.status == Status.SUBMITTED and item.public_id:
            result.count("followed-up")
            result.count("submitted")  # until a poll finds it settled
            batch.append(PollJob(item.external_id, item.public_id, 0.0))
        elif item.status in UNSETTLED and hash(item.external_id) not in seen.ids:
            if not item.payload or not item.idempotency_key:
                continue
            result.count("attempted")
            batch.append(SendJob(item.external_id, item.payload.encode(), item.idempotency_key))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    yield batch
