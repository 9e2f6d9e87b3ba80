"""Prune: delete the signals whose records are gone from a complete input."""

from __future__ import annotations

from collections.abc import Iterator

from zsync.ledger import Ledger
from zsync.model import ACCEPTED, ADOPTED_HASH, DeleteJob, Emit, Event, EventKind, Job, RunResult
from zsync.plan.options import PlanOptions
from zsync.plan.seen import Seen


def prune(
    ledger: Ledger | None,
    options: PlanOptions,
    seen: Seen,
    result: RunResult,
    emit: Emit,
) -> Iterator[list[Job]]:
    """Delete the signals of this input's sources whose records are gone from it.

    Only signals that came from the same source are considered (the same input file, source
    program or Singer stream, or the same sourceKey): pushing b.json --prune never touches
    what a.json sent."""
    if ledger is None:
        return
    if seen.unreadable:
        _refuse(
            result,
            emit,
            f"{seen.unreadable} input record(s) could not be read, so the input is not known "
            "to be the complete dataset",
        )
        return
    accepted = sorted(ACCEPTED)
    sources = sorted(seen.sources)
    gone = [
        item
        for item in ledger.items.iter_items(accepted, sources=sources)
        if item.public_id and hash(item.external_id) not in seen.ids
    ]
    # Rows adopted from the server that no input record ever matched may be another tool's
    # signals (verify --repair adopts the whole workspace): never pruned.
    adopted = ledger.items.lookup([item.external_id for item in gone])
    gone = [i for i in gone if adopted[i.external_id].payload_hash != ADOPTED_HASH]
    counts = ledger.items.counts_by_status(sources=sources)
    total = sum(counts.get(s, 0) for s in accepted)
    if gone and not options.force and len(gone) > options.prune_max * total:
        _refuse(
            result,
            emit,
            f"{len(gone)} of {total} signals from this source would be deleted, more than "
            f"--prune-max {options.prune_max:.0%}; check the input is complete, or pass --force",
        )
        return
    if ledger.items.has_unsourced():
        emit(
            Event(
                EventKind.WARNING,
                None,
                "prune leaves alone the signals whose source this ledger never recorded "
                "(sent by an older zsync, and not in this input)",
            )
        )
    batch: list[Job] = []
    for item in gone:
        assert item.public_id is not None
        if options.dry_run:
            result.count("would-delete")
            emit(Event(EventKind.WOULD_DELETE, item.external_id, item.public_id))
            continue
        batch.append(DeleteJob(item.external_id, item.public_id))
        if len(batch) >= 200:
            yield batch
            batch = []
    yield batch


def _refuse(result: RunResult, emit: Emit, why: str) -> None:
    message = f"prune refused: {why}"
    result.count("prune-refused")
    result.note_problem(message)
    emit(Event(EventKind.PRUNE_REFUSED, None, message))
