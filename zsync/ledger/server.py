"""What the ledger learns from the server: adopted rows, settled in-doubt sends, signals found
gone, corrected statuses, and whether this workspace replays resends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from zsync.ledger.table import Table, now_iso
from zsync.model import ADOPTED_HASH, TERMINAL, ServerSignal, Status, StoredItem

_REPLAY_KEY = "replay_observed"


def server_status(signal: ServerSignal) -> str:
    """The ledger status a signal on the server stands for."""
    return signal.status if signal.status in TERMINAL else Status.SUBMITTED


class ServerTable(Table):
    """``ledger.server``: what the ledger learns from the server (``reconcile``, ``verify``
    and the in-doubt check before a push) and writes into the items and their events."""

    # -- replays ---------------------------------------------------------------------

    def replay_observed(self) -> str | None:
        """When and how a resend was seen answered with the original signal, if ever."""
        return self._ledger.meta.get(_REPLAY_KEY)

    def note_replay(self, how: str) -> None:
        """Remember (once) that this workspace answered a resend with the original signal."""
        if self.replay_observed() is None:
            with self._ledger.transaction():
                self._ledger.meta.set(_REPLAY_KEY, f"{now_iso()} ({how})")

    # -- reads -----------------------------------------------------------------------

    def iter_truth_rows(self, *, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every item that is, or may be, a signal on the server, in external_id order."""
        after = ""
        while True:
            rows = list(
                self._ledger.db.query(
                    "SELECT external_id, status, public_id, payload_hash, field_hashes, "
                    "payload IS NOT NULL AS has_payload FROM items "
                    "WHERE status NOT IN ('invalid', 'rejected') AND external_id > ? "
                    "ORDER BY external_id LIMIT ?",
                    [after, batch],
                )
            )
            if not rows:
                return
            yield from rows
            after = rows[-1]["external_id"]

    def iter_in_doubt(self, conflicts: bool) -> Iterator[StoredItem]:
        """Items whose create may have reached the server without its answer reaching us:
        pending (a killed run), or error after no answer, a malformed 2xx or a gateway's
        502/504; with ``conflicts``, conflicts too. An error the server itself answered
        (429, 503, ...) made no signal and is not in doubt."""
        wanted = "status = 'conflict' OR " if conflicts else ""
        yield from (
            StoredItem(*row)
            for row in self._conn.execute(
                "SELECT external_id, status, payload, idempotency_key, public_id, origin "
                f"FROM items WHERE {wanted}status = 'pending' OR (status = 'error' AND "
                "(last_http_status IS NULL OR last_http_status BETWEEN 200 AND 299 "
                "OR last_http_status IN (502, 504))) ORDER BY external_id"
            )
        )

    def doubt_since(self, external_ids: Sequence[str]) -> dict[str, str | None]:
        """For each send in doubt, a time (ISO, UTC) no earlier than its request could have
        reached the server: an error's record time (written after the request failed); for
        a row left pending by a run that died, the start of the first run after that one.
        None: it may still be on its way (pending in the newest run)."""
        found: dict[str, str | None] = {}
        ids = list(external_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            found.update(
                self._conn.execute(
                    "SELECT i.external_id, CASE WHEN i.status = 'pending' THEN "
                    "(SELECT MIN(r.started_at) FROM runs r WHERE r.id > "
                    "COALESCE(i.last_run_id, 0)) ELSE i.updated_at END "
                    f"FROM items i WHERE i.external_id IN ({marks})",
                    chunk,
                ).fetchall()
            )
        return found

    def known_public_ids(self, public_ids: Sequence[str]) -> set[str]:
        """Those of ``public_ids`` some item already holds."""
        known: set[str] = set()
        ids = list(public_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            known.update(
                row[0]
                for row in self._conn.execute(
                    f"SELECT public_id FROM items WHERE public_id IN ({marks})", chunk
                )
            )
        return known

    # -- writes (each call is one transaction) -----------------------------------------

    def settle_found(
        self, pairs: Sequence[tuple[str, ServerSignal]], run_id: int | None, kind: str
    ) -> None:
        """Items the server holds: take its publicId and status, keep the body we sent (it is
        what the server was given)."""
        if not pairs:
            return
        ts = now_iso()
        with self._ledger.transaction():
            self._conn.executemany(
                "UPDATE items SET status = ?, public_id = ?, job_id = COALESCE(?, job_id), "
                "last_error = NULL, updated_at = ?, last_run_id = COALESCE(?, last_run_id) "
                "WHERE external_id = ?",
                [
                    (server_status(s), s.public_id, s.job_id, ts, run_id, external_id)
                    for external_id, s in pairs
                ],
            )
            self._events([(e, run_id, ts, kind, s.public_id) for e, s in pairs])

    def adopt(self, signals: Sequence[ServerSignal], run_id: int | None) -> None:
        """Signals the ledger did not know (or knew only as gone): rows from the server's copy.
        Their hash is 'adopted' until a push matches an input record to them field by field."""
        # A signal without an externalId: no record can claim it, never adopted by guess.
        claimable = [(s.external_id, s) for s in signals if s.external_id is not None]
        if not claimable:
            return
        ts = now_iso()
        with self._ledger.transaction():
            self._conn.executemany(
                "INSERT INTO items (external_id, payload_hash, status, public_id, job_id, "
                "field_hashes, origin, first_run_id, last_run_id, created_at, updated_at, "
                "adopted_at) VALUES (?, ?, ?, ?, ?, ?, 'server', ?, ?, ?, ?, ?) "
                "ON CONFLICT(external_id) DO UPDATE SET payload_hash = excluded.payload_hash, "
                "payload = NULL, idempotency_key = NULL, status = excluded.status, "
                "public_id = excluded.public_id, job_id = excluded.job_id, "
                "field_hashes = excluded.field_hashes, raw_hash = NULL, last_error = NULL, "
                "updated_at = excluded.updated_at, adopted_at = excluded.adopted_at",
                [
                    (
                        *(e, ADOPTED_HASH, server_status(s), s.public_id, s.job_id),
                        *(s.field_hashes, run_id, run_id, ts, ts, ts),
                    )
                    for e, s in claimable
                ],
            )
            self._events([(e, run_id, ts, "adopted", s.public_id) for e, s in claimable])

    def mark_gone(self, external_ids: Sequence[str], run_id: int | None) -> None:
        """Signals the server no longer holds: the next push of their record creates them."""
        if not external_ids:
            return
        ts = now_iso()
        with self._ledger.transaction():
            self._conn.executemany(
                "UPDATE items SET status = ?, last_error = NULL, updated_at = ? "
                "WHERE external_id = ?",
                [(Status.DELETED, ts, e) for e in external_ids],
            )
            self._events([(e, run_id, ts, "gone", "no longer on the server") for e in external_ids])

    def set_status(self, pairs: Sequence[tuple[str, str]], run_id: int | None) -> None:
        """(external_id, status) the server's copy corrects the ledger to."""
        if not pairs:
            return
        ts = now_iso()
        with self._ledger.transaction():
            self._conn.executemany(
                "UPDATE items SET status = ?, updated_at = ?, payload = CASE WHEN ? "
                "THEN NULL ELSE payload END WHERE external_id = ?",
                [(status, ts, status == Status.PROCESSED, e) for e, status in pairs],
            )
            self._events([(e, run_id, ts, "status-corrected", status) for e, status in pairs])

    def learn_adopted(self, rows: Sequence[tuple[str, str, str, str | None]]) -> None:
        """(external_id, payload_hash, field_hashes, raw_hash) of adopted rows an unchanged
        input record was matched to: from now on they are ordinary rows."""
        if not rows:
            return
        with self._ledger.transaction():
            self._conn.executemany(
                "UPDATE items SET payload_hash = ?, field_hashes = ?, raw_hash = ? "
                "WHERE external_id = ? AND payload_hash = ?",
                [(h, f, r, e, ADOPTED_HASH) for e, h, f, r in rows],
            )

    def _events(self, rows: Sequence[tuple[str, int | None, str, str, str]]) -> None:
        """(external_id, run_id, at, kind, detail): one event each, in this order."""
        self._conn.executemany(
            "INSERT INTO events (external_id, run_id, at, kind, detail) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
