"""Singer upserts: within a run the last record for an identity wins.

A Singer tap may send a key again with new content in one run (log-based replication,
inclusive bookmarks). Three places let the last version win without letting a bookmark
pass a version that is not recorded:

- the stream (``plan.stream``) passes a new version on instead of calling it a duplicate;
  a version equal to the latest one is a repeat, counted and dropped;
- within a batch (records up to the next STATE), a later version takes the earlier one's
  place before anything is planned: the earlier is ``superseded`` (not sent, not an error);
- a version that differs from what the ledger holds (changed since an earlier batch or an
  earlier run) is held here until the input ends, so only the run's last version is sent
  (as an update, the ``--on-change`` path). While a version is held no STATE is saved or
  relayed: if the run ends before the version is recorded, the tap sends it again. A later
  version equal to the ledger's releases the hold (the record is back to what was sent).

At the end of the input a held version whose first version is still being created in this
run waits for that create to be answered (the engine runs meanwhile), then is updated; if
the create is still unanswered after ``WAIT_SECONDS`` it is ``deferred`` to the next run
(exit 75), whose tap starts before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from zsync.ledger import Ledger
from zsync.model import Event, EventKind, ItemRow, Prepared, RunResult, StateMessage, Status
from zsync.plan.decide import decide
from zsync.plan.options import BATCH
from zsync.plan.seen import IdSet

# How long the end of the input waits for creates of this run to be answered before the
# changes to them are left to the next run.
WAIT_SECONDS = 30.0


class Upserts:
    """The changed versions held until the input ends, and the identities created this run."""

    def __init__(self, on_change: str = "update") -> None:
        self.on_change = on_change  # "skip": a change is never sent, so nothing is held
        self.held: dict[str, Prepared] = {}
        self.created = IdSet()  # hash() of each identity a create was planned for this run
        self.state_held = False  # the latest STATE was not saved: a version was held
        self.closing = False

    def hold(self, prepared: Prepared, row: ItemRow | None, result: RunResult) -> bool:
        """Keep ``prepared`` until the input ends when it is a new version of one already
        held, or changed against the ledger; False: plan it now."""
        if self.closing or self.on_change == "skip":
            return False
        external_id = prepared.external_id
        changed = row is not None and decide(prepared, row) == "changed"
        if external_id in self.held:
            result.count("superseded")
            if not changed:  # back to what the ledger holds: nothing left to record
                del self.held[external_id]
                return False
            self.held[external_id] = prepared
            return True
        if changed:
            self.held[external_id] = prepared
        return changed

    def passes(self, state: StateMessage) -> bool:
        """May this STATE be saved (and relayed)? Not while a version before it is held:
        the tap must send it again if this run ends before it is recorded."""
        self.state_held = bool(self.held)
        return not self.state_held

    def in_flight(self, external_id: str, row: ItemRow | None) -> bool:
        """Was this identity's create planned in this run and not answered yet?"""
        return (
            row is not None and row.status == Status.PENDING and hash(external_id) in self.created
        )

    def last_versions(
        self, ledger: Ledger | None, result: RunResult, emit: Callable[[Event], None]
    ) -> Iterator[list[Prepared]]:
        """At the end of the input: the held versions to plan, in chunks; an empty list
        while creates of this run they change are still unanswered (the caller yields to
        the engine, which records their answers meanwhile)."""
        self.closing = True
        held = list(self.held.values())
        self.held = {}
        deadline = time.monotonic() + WAIT_SECONDS
        for start in range(0, len(held), BATCH):
            chunk = held[start : start + BATCH]
            while ledger is not None and time.monotonic() < deadline:
                rows = ledger.items.lookup([p.external_id for p in chunk])
                if not any(self.in_flight(p.external_id, rows.get(p.external_id)) for p in chunk):
                    break
                yield []
                time.sleep(0.02)  # an answer may be a retry away: no busy loop meanwhile
            ready: list[Prepared] = []
            rows = ledger.items.lookup([p.external_id for p in chunk]) if ledger is not None else {}
            for prepared in chunk:
                if self.in_flight(prepared.external_id, rows.get(prepared.external_id)):
                    result.count("deferred")
                    emit(
                        Event(
                            EventKind.DEFERRED,
                            prepared.external_id,
                            "changed while its create is still unanswered: the next run updates it",
                        )
                    )
                else:
                    ready.append(prepared)
            yield ready
