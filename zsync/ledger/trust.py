"""What the ledger keeps so that it can vouch for itself: the anchor (where the server's list
stood when this ledger last saw it whole, and how many signals the ledger had made by then),
the mark of a ``verify --repair`` that has not finished, and the failure reasons of rows the
server's list settled (the list carries none).

The decision itself (trusted, or look the server up first) is ``zsync.truth.trust``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from zsync.ledger.table import Table, now_iso
from zsync.model import ACCEPTED, Status

_ANCHOR_KEY = "trust_anchor"
_REPAIR_KEY = "repair_unfinished"
_MARKS = ",".join("?" * len(ACCEPTED))


@dataclass(frozen=True)
class Anchor:
    """The list as this ledger last saw it to its end: ``count`` signals, the last of them
    ``public_id`` ("" when the list was empty), ``own`` signals the ledger had made, in the
    run ``run`` (what the ledger made from that run on came after it)."""

    count: int
    public_id: str
    own: int
    run: int = 0


class TrustTable(Table):
    """``ledger.trust``: the anchor, the mark of an unfinished repair, and the failure
    reasons of rows the server's list settled."""

    def anchor(self) -> Anchor | None:
        """The stored anchor; None when there is none (a new ledger, or one older than it)."""
        raw = self._ledger.meta.get(_ANCHOR_KEY)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return Anchor(
                int(data["count"]),
                str(data["public_id"]),
                int(data["own"]),
                int(data.get("run", 0)),
            )
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: as if there were none, so the list is read once

    def set_anchor(self, anchor: Anchor) -> None:
        """Store ``anchor`` in its own transaction."""
        value = {
            "count": anchor.count,
            "public_id": anchor.public_id,
            "own": anchor.own,
            "run": anchor.run,
        }
        with self._ledger.transaction():
            self._ledger.meta.set(_ANCHOR_KEY, json.dumps(value, sort_keys=True))

    def own_signal_count(self) -> int:
        """Signals on the server that this ledger made itself (accepted, not adopted): what
        the workspace's count can have grown by through zsync alone since the anchor."""
        row = self._conn.execute(
            f"SELECT COUNT(*) FROM items WHERE status IN ({_MARKS}) AND adopted_at IS NULL",
            [str(s) for s in ACCEPTED],
        ).fetchone()
        return int(row[0])

    def made_in_runs(self, signals: Sequence[tuple[str, str]]) -> dict[str, int]:
        """Of these (external_id, public_id), the ones this ledger made itself (not adopted):
        external_id -> the run that first recorded it."""
        found: dict[str, int] = {}
        for start in range(0, len(signals), 400):
            chunk = signals[start : start + 400]
            marks = ",".join("(?, ?)" for _ in chunk)
            rows = self._conn.execute(
                "SELECT external_id, first_run_id FROM items WHERE adopted_at IS NULL AND "
                f"(external_id, public_id) IN (VALUES {marks})",
                [value for pair in chunk for value in pair],
            )
            found.update({str(e): int(r or 0) for e, r in rows})
        return found

    def repair_unfinished(self) -> str | None:
        """When a ``verify --repair`` began that has not finished (killed, or failed)."""
        return self._ledger.meta.get(_REPAIR_KEY)

    def mark_repair(self, *, finished: bool) -> None:
        """Mark a repair begun (committed before it reads anything) or finished."""
        with self._ledger.transaction():
            if finished:
                self._ledger.meta.delete(_REPAIR_KEY)
            else:
                self._ledger.meta.set(_REPAIR_KEY, now_iso())

    # -- failure reasons of rows the server's list settled ------------------------------

    def failed_without_reason(self, limit: int) -> list[tuple[str, str]]:
        """(external_id, public_id) of failed items that do not say why: adopted from the
        server's list or corrected to failed by it (the list carries no reason)."""
        rows = self._conn.execute(
            "SELECT external_id, public_id FROM items WHERE status = ? AND public_id IS NOT "
            "NULL AND COALESCE(last_error, '') = '' ORDER BY external_id LIMIT ?",
            (str(Status.FAILED), limit),
        )
        return [(str(e), str(p)) for e, p in rows]

    def set_failure_reasons(self, pairs: Sequence[tuple[str, str]]) -> None:
        """(external_id, reason) as the server's processing error says it (redacted)."""
        if not pairs:
            return
        with self._ledger.transaction():
            self._conn.executemany(
                "UPDATE items SET last_error = ?, last_http_status = 200 "
                "WHERE external_id = ? AND status = ?",
                [(reason, ext, str(Status.FAILED)) for ext, reason in pairs],
            )
