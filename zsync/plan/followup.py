"""Jobs read from the ledger, not from an input: what reconcile and retry-failed follow up."""

from __future__ import annotations

from collections.abc import Iterator

from zsync.ledger import Ledger
from zsync.model import UNSETTLED, Job, PollJob, RequeueJob, RunResult, SendJob, Status


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
    for item in ledger.iter_items(statuses):
        job: Job | None = None
        if (
            item.status in UNSETTLED
            or item.status == Status.CONFLICT
            or (include_rejected and item.status == Status.REJECTED)
        ):
            if item.payload and item.idempotency_key:
                job = SendJob(item.external_id, item.payload.encode(), item.idempotency_key)
                result.counts["attempted"] += 1
        elif item.status == Status.SUBMITTED and item.public_id:
            job = PollJob(item.external_id, item.public_id, 0.0)
        elif item.status == Status.FAILED and item.public_id:
            job = RequeueJob(item.external_id, item.public_id)
            result.counts["attempted"] += 1
        if job is not None:
            batch.append(job)
        if len(batch) >= 200:
            yield batch
            batch = []
    yield batch
