"""Can the ledger vouch for itself? Decided once per run, before the first create.

A ledger that cannot (new or empty for a workspace that holds signals, older than the
workspace as after restoring a backup, half-repaired) would create again what the server
already holds. So before the first create, one request reads the list where this ledger last
saw it end (its anchor, kept in the ledger): the anchor signal must still be there, and what
follows it (the signals added since) must be the ones the ledger made itself. Then:

- ``trusted``: nothing more is read; records are created as planned.
- ``tail``: the list grew past what the ledger made (another tool, or a run whose ledger was
  lost): the signals added since the anchor are read (bounded by that growth, not by the
  workspace) and the records about to be created that they hold are adopted instead.
- ``full``: the ledger cannot place itself in the list (no anchor, the anchor moved, a repair
  that did not finish): the whole list is read once, the records about to be created that it
  holds are adopted (an unfinished repair is finished), and the anchor is set again.

Adoption is ``verify --repair``'s: a row from the server's copy, matched to its record field
by field by the planner (unchanged, or a PATCH of what differs). A listing that cannot be
read or is not complete ends the run (exit 4) before anything is created.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from zsync.engine import RetryPolicy, ZentrikClient
from zsync.errors import ApiError, ApiUnavailable, AuthError, TransientError
from zsync.ledger import Anchor, Ledger
from zsync.model import Emit, Event, EventKind, RunResult, ServerIndex, ServerSignal, Status
from zsync.truth.index import PAGE, anchor_of_listing, to_signal
from zsync.truth.reasons import recover_failure_reasons
from zsync.truth.verify import VerifyReport, compare, load_index, repair

# A tail longer than this is read as a whole listing instead (with its completeness proofs).
MAX_TAIL = 10_000


class Verdict(StrEnum):
    """What the run's one check decided."""

    TRUSTED = "trusted"
    TAIL = "tail"
    FULL = "full"


@dataclass
class TrustGate:
    """The check and the adoption, for one run. ``check`` is called by the planner once a
    batch holds records the ledger does not know, before their creates."""

    ledger: Ledger
    client_factory: Callable[[], ZentrikClient]
    retry: RetryPolicy
    result: RunResult
    emit: Emit
    run_id: int
    verdict: Verdict | None = None
    requests: int = 0  # list requests the check and its lookups made
    why: str = ""
    _index: ServerIndex | None = None  # the whole list, when it had to be read
    _total: int | None = None  # X-Total-Count of the last page read
    _anchor: Anchor | None = None  # where the ledger stands once the check's adoption is in

    def check(self) -> None:
        """Decide (once per run); adopt what the server holds that the ledger lacks (the
        caller then looks its records up again)."""
        if self.verdict is not None:
            return
        with self.client_factory() as client:
            try:
                found = self._decide(client)
            except AuthError as exc:  # a key without signals:read: as before, unchecked
                self.verdict = Verdict.TRUSTED
                self.emit(
                    Event(
                        EventKind.WARNING,
                        message=f"ledger {self.ledger.path} was not checked against the server "
                        f"(the list: {exc}); records sent under a lost or older ledger may be "
                        "created again",
                    )
                )
                return
            self.ledger.server.adopt(found, self.run_id)
            # Only once what it lacked is adopted does the anchor move past it (a kill
            # between the two leaves the old anchor: the next run reads the same again).
            if self._anchor is not None:
                self.ledger.trust.set_anchor(self._anchor)
            for signal in found:
                self.result.counts["adopted"] += 1
                what = f"{signal.public_id} (already on the server: adopted, not created again)"
                self.emit(Event(EventKind.ADOPTED, signal.external_id, what))
            if self.verdict != Verdict.TRUSTED:
                self.requests += recover_failure_reasons(self.ledger, client, self.retry)

    # -- the decision ------------------------------------------------------------------

    def _decide(self, client: ZentrikClient) -> list[ServerSignal]:
        unfinished = self.ledger.trust.repair_unfinished()
        if unfinished is not None:
            return self._full(client, f"a `verify --repair` begun {unfinished} did not finish")
        anchor = self.ledger.trust.anchor()
        if anchor is None:
            if self.ledger.items.has_items():
                return self._full(client, "it has not been checked against this workspace yet")
            anchor = Anchor(0, "", 0, self.run_id)
        own = self.ledger.trust.own_signal_count()
        if self._at_expected_end(client, anchor, own):
            return []
        if not self.ledger.items.has_items():  # the list is not empty: nothing to read on from
            held = f"{self._total:,} signals" if self._total is not None else "signals"
            return self._full(client, f"it is new or empty, but the workspace already holds {held}")
        found = self._from_anchor(client, anchor, own)
        if isinstance(found, str):
            return self._full(client, found)
        return found

    def _page(self, client: ZentrikClient, limit: int, offset: int) -> list[ServerSignal | None]:
        self.requests += 1
        try:
            page = self.retry.call(lambda: client.list_page(limit, offset))
        except TransientError as exc:
            raise ApiUnavailable(f"cannot read the server's list of signals: {exc}") from None
        except ApiError as exc:
            raise ApiUnavailable(f"the server's list of signals is unusable: {exc}") from None
        self._total = page.total
        return [to_signal(item) for item in page.items]

    def _at_expected_end(self, client: ZentrikClient, anchor: Anchor, own: int) -> bool:
        """Does the list end where it would if only this ledger had added to it since the
        anchor, with a signal there that it made since (or the anchor itself)? Then the
        ledger vouches for itself and the anchor moves there. One request with a count;
        without one, a second to see the list end."""
        end = max(anchor.count + own - anchor.own, 0)
        items = self._page(client, PAGE, max(end - 1, 0))
        last = ""
        if end:
            first = items.pop(0) if items else None
            if first is None or not self._made_since(first, anchor):
                return False
            last = first.public_id
        if items:
            return False  # more follows: signals the ledger did not make
        if self._total is None:
            if end and self._page(client, 1, end):
                return False
        elif self._total != end:
            return False
        self._anchor = Anchor(end, last, own, self.run_id)
        self.verdict = Verdict.TRUSTED
        return True

    def _made_since(self, signal: ServerSignal, anchor: Anchor) -> bool:
        """The anchor itself, or a signal this ledger made since it was set."""
        if signal.public_id == anchor.public_id:
            return True
        if signal.external_id is None:
            return False
        made = self.ledger.trust.made_in_runs([(signal.external_id, signal.public_id)])
        return made.get(signal.external_id, -1) >= anchor.run

    def _from_anchor(
        self, client: ZentrikClient, anchor: Anchor, own: int
    ) -> list[ServerSignal] | str:
        """Read the list from the anchor to its end (bounded by what was added since): the
        signals to adopt, or why the whole list must be read instead. What follows the
        anchor must be all the ledger made since it and nothing it made before (else the
        list is not in creation order, or changed before the anchor)."""
        start = max(anchor.count - 1, 0)
        items = self._page(client, PAGE, start)
        moved = "the server's list changed before the point where this ledger last saw it end"
        if anchor.count and (
            not items or items[0] is None or items[0].public_id != anchor.public_id
        ):
            return moved
        page = items
        while page and (self._total is None or start + len(items) < self._total):
            if len(items) > MAX_TAIL:
                return f"more than {MAX_TAIL:,} signals were added since it last looked"
            page = self._page(client, PAGE, start + len(items))
            items += page
        after = items[1:] if anchor.count else items
        signals = [s for s in after if s is not None]
        if len(signals) < len(after):
            return "the server's list holds items that are not signals"
        if len({s.public_id for s in signals}) < len(signals):
            return "the server's list shifts between pages"
        made = self.ledger.trust.made_in_runs(
            [(s.external_id, s.public_id) for s in signals if s.external_id]
        )
        if len(made) != own - anchor.own or any(run < anchor.run for run in made.values()):
            return moved
        found = self._unknown(signals)
        last = signals[-1].public_id if signals else anchor.public_id
        count = anchor.count + len(signals)
        self._anchor = Anchor(count, last, own, self.run_id)
        self.verdict = Verdict.TAIL if found else Verdict.TRUSTED
        self.why = f"{len(found)} signal(s) this ledger does not hold were added since"
        return found

    def _unknown(self, signals: Sequence[ServerSignal]) -> list[ServerSignal]:
        """The signals to adopt: those whose externalId the ledger does not hold, or holds
        only as deleted under another publicId (one signal per externalId, the oldest)."""
        first: dict[str, ServerSignal] = {}
        for s in signals:
            if s.external_id is not None:
                first.setdefault(s.external_id, s)
        known = self.ledger.items.lookup(list(first))
        return [
            s
            for ext, s in first.items()
            if ext not in known
            or (known[ext].status == Status.DELETED and known[ext].public_id != s.public_id)
        ]

    def _full(self, client: ZentrikClient, why: str) -> list[ServerSignal]:
        """Read the whole list (or use the one the run read), finish an unfinished repair,
        set the anchor again; the signals to adopt."""
        self.verdict, self.why = Verdict.FULL, why
        self.emit(
            Event(
                EventKind.NOTICE,
                message=f"ledger {self.ledger.path} cannot vouch for this workspace ({why}): "
                "what the server holds is adopted before anything is created",
            )
        )
        if self._index is None:
            index = load_index(client, self.retry)
            self.requests += index.requests
            for problem in index.problems:
                self.emit(Event(EventKind.WARNING, message=f"server list: {problem}"))
            if not index.complete:
                raise ApiUnavailable(
                    "the ledger cannot vouch for this workspace and the server's list is not "
                    "complete, so nothing is created: " + "; ".join(index.problems[-1:])
                )
            self._index = index
        index = self._index
        if self.ledger.trust.repair_unfinished() is not None:
            report = VerifyReport(str(self.ledger.path))
            repair(self.ledger, compare(self.ledger, index, report, 0), index, self.run_id)
            self.ledger.trust.mark_repair(finished=True)
            self.emit(
                Event(EventKind.NOTICE, message="the unfinished `verify --repair` is finished")
            )
        found = self._unknown([s for group in index.by_external_id.values() for s in group])
        self._anchor_after(client, index)
        return found

    def _anchor_after(self, client: ZentrikClient, index: ServerIndex) -> None:
        own = self.ledger.trust.own_signal_count()
        self._anchor, made = anchor_of_listing(client, self.retry, index, own, self.run_id)
        self.requests += made
