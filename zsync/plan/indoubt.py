"""In-doubt sends and conflicts, settled from the server's list before anything is resent.

A create whose answer never came (reset, timeout, a killed run) may or may not have made a
signal. Resending it with the same key is safe only on a server that replays keys or
dedupes identities; until this workspace has shown that (the ledger's ``replay_observed``),
the items are looked up in the server index first (one listing serves them all) and the
signals found are adopted. A conflict is settled the same way. What the list cannot show is
said once, never guessed.

A send in doubt is looked up only after its **doubt horizon**: a request the server received
may still be committing long after the client gave up on it, and a lookup before it is done
finds nothing and resends a duplicate. Until then the item is held: this run neither looks it
up nor resends it (it waits the horizon out when its caller allows, else exits 75).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from zsync.errors import IncompleteListing
from zsync.ledger import Ledger
from zsync.model import (
    TERMINAL,
    Emit,
    Event,
    EventKind,
    Job,
    PollJob,
    RunResult,
    SendJob,
    ServerIndex,
    ServerSignal,
    Status,
    StoredItem,
)
from zsync.shape.canonical import field_hashes


def in_doubt(ledger: Ledger, *, conflicts: bool) -> list[StoredItem]:
    """The items to look up: sends in doubt (unless resends are known safe), conflicts."""
    if ledger.server.replay_observed() is not None:
        return list(ledger.items.iter_items([Status.CONFLICT])) if conflicts else []
    return list(ledger.server.iter_in_doubt(conflicts))


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
    horizon: float = 0.0,
    wait: Callable[[float], bool] | None = None,
) -> list[Job]:
    """Adopt the signals the server holds for ``items``; the jobs that follow them up (polls
    unless the caller polls them itself, and with ``resend_missing`` the resends of items
    the server does not hold). Sends in doubt younger than ``horizon`` seconds are held
    (``result.held``) unless ``wait(seconds)`` waits them out (True once waited)."""
    items = past_horizon(ledger, items, result, emit, horizon, wait)
    if not items:
        return []
    index = load()
    for problem in index.problems:
        emit(Event(EventKind.WARNING, message=f"server list: {problem}"))
    if not index.shows_external_id:
        emit(
            Event(
                EventKind.WARNING,
                message="in-doubt sends and conflicts cannot be looked up (the list shows no "
                "externalId): resent with their own key",
            )
        )
        return _resends(items, result) if resend_missing else []
    find = _finder(ledger, index)
    found = [(item, find(item)) for item in items]
    adopted = [(item.external_id, s) for item, s in found if s is not None]
    missing = [item for item, s in found if s is None]
    ledger.server.settle_found(adopted, run_id, "found")
    jobs: list[Job] = []
    for item, signal in found:
        if signal is None:
            continue
        result.count("adopted")
        if item.status == Status.ERROR and result.counts["error"] > 0:
            result.count("error", -1)  # errored earlier in this run; settled now
        emit(
            Event(EventKind.ADOPTED, item.external_id, f"{signal.public_id} (found on the server)")
        )
        if signal.status in TERMINAL:
            result.count(signal.status)
        elif poll:
            result.count("submitted")
            jobs.append(PollJob(item.external_id, signal.public_id, 0.0))
    unsettled = [i for i in missing if i.status != Status.CONFLICT]
    _say_why(ledger, [i for i in missing if i.status == Status.CONFLICT], emit)
    if unsettled and not index.complete:
        raise IncompleteListing(
            f"{len(unsettled)} send(s) in doubt cannot be checked, so none is resent: "
            + "; ".join(index.problems[-1:])
        )
    if resend_missing:
        jobs.extend(_resends(unsettled, result))
    return jobs


def _finder(ledger: Ledger, index: ServerIndex) -> Callable[[StoredItem], ServerSignal | None]:
    """The signal for an item: by externalId; else, when the list shows some signals without
    one, the one no item claims whose every field equals the body the item sent."""
    anonymous = [s for s in index.by_public_id.values() if s.external_id is None]
    if anonymous:
        claimed = ledger.server.known_public_ids([s.public_id for s in anonymous])
        anonymous = [s for s in anonymous if s.public_id not in claimed]
    taken: set[str] = set()

    def find(item: StoredItem) -> ServerSignal | None:
        signal = index.find(item.external_id)
        if signal is not None or not anonymous or not item.payload:
            return signal
        ours = _content(item.payload)
        for candidate in anonymous:
            if candidate.public_id in taken or not ours:
                continue
            theirs: dict[str, str] = json.loads(candidate.field_hashes)
            if all(theirs.get(k) == h for k, h in ours.items()):
                taken.add(candidate.public_id)
                return dataclasses.replace(candidate, external_id=item.external_id)
        return None

    return find


def _content(payload: str) -> dict[str, str]:
    """Per-field hashes of a body as sent, but its externalId (the list did not show it)."""
    try:
        body = json.loads(payload)
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    hashes: dict[str, str] = json.loads(field_hashes(body))
    hashes.pop("externalId", None)
    return hashes


def past_horizon(
    ledger: Ledger,
    items: Sequence[StoredItem],
    result: RunResult,
    emit: Emit,
    horizon: float,
    wait: Callable[[float], bool] | None,
) -> list[StoredItem]:
    """The items that may be looked up now; the rest go into ``result.held`` (counted
    ``pending``: the run exits 75) with one line saying so."""
    doubtful = [i for i in items if i.status != Status.CONFLICT]  # a 409 was an answer
    now = time.time()
    since = ledger.server.doubt_since([i.external_id for i in doubtful]) if horizon > 0 else {}
    ends: dict[str, float] = {}
    for item in doubtful:
        ext = item.external_id
        end = result.held.get(ext) or _epoch(since.get(ext), now) + horizon
        if horizon > 0 and end > now:
            ends[ext] = end
    if ends and wait is not None and wait(max(ends.values()) - now):
        ends = {}
    for ext in [i.external_id for i in doubtful if i.external_id in result.held]:
        if ext in ends:
            continue
        del result.held[ext]
        result.count("pending", -1)  # waited out: looked up below
    fresh = [ext for ext in ends if ext not in result.held]
    result.held.update(ends)
    result.count("pending", len(fresh))
    if fresh:
        emit(
            Event(
                EventKind.WARNING,
                message=f"{len(fresh)} send(s) in doubt are held for up to "
                f"{_seconds(max(ends.values()) - now)} more (the server may still be committing "
                "them): not looked up or resent by this run; the next run continues",
            )
        )
    return [i for i in items if i.external_id not in ends]


def _seconds(seconds: float) -> str:
    """``42s``; a tenth of a second below ten (``0.3s``, not ``0s``)."""
    return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"


def _epoch(iso: str | None, now: float) -> float:
    """Seconds since the epoch of a ledger time; ``now`` when unknown or unreadable."""
    if not iso:
        return now
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return now


def _resends(items: Sequence[StoredItem], result: RunResult) -> list[Job]:
    jobs: list[Job] = []
    for item in items:
        if item.status == Status.CONFLICT or not item.payload or not item.idempotency_key:
            continue
        if item.status == Status.ERROR and result.counts["error"] > 0:
            result.count("error", -1)  # counted again by its resend's outcome
        result.count("attempted")
        jobs.append(SendJob(item.external_id, item.payload.encode(), item.idempotency_key))
    return jobs


def _say_why(ledger: Ledger, conflicts: Sequence[StoredItem], emit: Emit) -> None:
    """A conflict stays only while the server holds no signal for it: say so, and what the
    409 said."""
    for item in conflicts:
        row = ledger.items.get_item(item.external_id)
        said = str(row.get("last_error") or "no reason given") if row else "no reason given"
        emit(
            Event(
                EventKind.CONFLICT,
                item.external_id,
                f"the server lists no signal with this externalId; resending (the 409 said: "
                f"{said})",
            )
        )
