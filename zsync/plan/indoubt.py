"""In-doubt sends and conflicts, settled from the server's list before anything is resent.

A create whose answer never came (reset, timeout, a killed run) may or may not have made a
signal. Resending it with the same key is safe only on a server that replays keys or
dedupes identities; until this workspace has shown that (the ledger's ``replay_observed``),
the items are looked up in the server index first (one listing serves them all) and the
signals found are adopted. A conflict is settled the same way. What the list cannot show is
said once, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from zsync.errors import ApiUnavailable
from zsync.ledger import Ledger
from zsync.model import (
    TERMINAL,
    Emit,
    Event,
    Job,
    PollJob,
    RunResult,
    SendJob,
    ServerIndex,
    Status,
    StoredItem,
)


def in_doubt(ledger: Ledger, *, conflicts: bool) -> list[StoredItem]:
    """The items to look up: sends in doubt (unless resends are known safe), conflicts."""
    if ledger.replay_observed() is not None:
        return list(ledger.iter_items([Status.CONFLICT])) if conflicts else []
    return list(ledger.iter_in_doubt(conflicts))


def settle(
    ledger: Ledger,
    items: Sequence[StoredItem],
    load: Callable[[], ServerIndex],
    result: RunResult,
    emit: Emit,
    *,
    run_id: int,
    resend_missing: bool,
    poll: bool = True,
) -> list[Job]:
    """Adopt the signals the server holds for ``items``; the jobs that follow them up (polls
    unless the caller polls them itself, and with ``resend_missing`` the resends of items
    the server does not hold)."""
    if not items:
        return []
    index = load()
    for problem in index.problems:
        emit(Event("warning", message=f"server list: {problem}"))
    if not index.shows_external_id:
        emit(
            Event(
                "warning",
                message="in-doubt sends and conflicts cannot be looked up (the list shows no "
                "externalId): resent with their own key",
            )
        )
        return _resends(items, result) if resend_missing else []
    found = [(item, index.find(item.external_id)) for item in items]
    adopted = [(item.external_id, s) for item, s in found if s is not None]
    missing = [item for item, s in found if s is None]
    ledger.settle_found(adopted, run_id, "found")
    jobs: list[Job] = []
    for item, signal in found:
        if signal is None:
            continue
        result.counts["adopted"] += 1
        if item.status == Status.ERROR and result.counts["error"] > 0:
            result.counts["error"] -= 1  # errored earlier in this run; settled now
        emit(Event("adopted", item.external_id, f"{signal.public_id} (found on the server)"))
        if signal.status in TERMINAL:
            result.counts[signal.status] += 1
        elif poll:
            result.counts["submitted"] += 1
            jobs.append(PollJob(item.external_id, signal.public_id, 0.0))
    unsettled = [i for i in missing if i.status != Status.CONFLICT]
    _say_why(ledger, [i for i in missing if i.status == Status.CONFLICT], emit)
    if unsettled and not index.complete:
        raise ApiUnavailable(
            f"{len(unsettled)} send(s) in doubt cannot be checked, so none is resent: "
            + "; ".join(index.problems[-1:])
        )
    if resend_missing:
        jobs.extend(_resends(unsettled, result))
    return jobs


def _resends(items: Sequence[StoredItem], result: RunResult) -> list[Job]:
    jobs: list[Job] = []
    for item in items:
        if item.status == Status.CONFLICT or not item.payload or not item.idempotency_key:
            continue
        if item.status == Status.ERROR and result.counts["error"] > 0:
            result.counts["error"] -= 1  # counted again by its resend's outcome
        result.counts["attempted"] += 1
        jobs.append(SendJob(item.external_id, item.payload.encode(), item.idempotency_key))
    return jobs


def _say_why(ledger: Ledger, conflicts: Sequence[StoredItem], emit: Emit) -> None:
    """A conflict stays only while the server holds no signal for it: say so, and what the
    409 said."""
    for item in conflicts:
        row = ledger.get_item(item.external_id)
        said = str(row.get("last_error") or "no reason given") if row else "no reason given"
        emit(
            Event(
                "conflict",
                item.external_id,
                f"the server lists no signal with this externalId; resending (the 409 said: "
                f"{said})",
            )
        )
