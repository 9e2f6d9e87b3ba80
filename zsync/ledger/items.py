"""The items table and the events beside it: every read and write of one record's row."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from zsync.ledger.table import Table, marks, now_iso
from zsync.model import (
    ACCEPTED,
    GONE_HASH_PREFIX,
    NEEDS_LOOK,
    UNFINISHED,
    Intent,
    ItemRow,
    Outcome,
    Status,
    StoredItem,
)

_LOOKUP_CHUNK = 900


def _storable(text: str | None) -> bool:
    try:
        return text is not None and bool(text.encode("utf-8"))
    except UnicodeEncodeError:
        return False


def _text(text: str) -> str:
    return text if _storable(text) else text.encode("utf-8", "backslashreplace").decode()


class ItemsTable(Table):
    """``ledger.items``: the items (one row per record) and their events. Each write is one
    transaction; the planner's lookups read plain rows, the views read dicts."""

    def lookup(self, external_ids: Sequence[str]) -> dict[str, ItemRow]:
        """The rows of those of ``external_ids`` the ledger knows, by external_id (plain
        tuples: this is the planner's hot path)."""
        found: dict[str, ItemRow] = {}
        for start in range(0, len(external_ids), _LOOKUP_CHUNK):
            chunk = external_ids[start : start + _LOOKUP_CHUNK]
            places = ",".join("?" * len(chunk))
            for row in self._conn.execute(
                "SELECT external_id, status, payload_hash, public_id, raw_hash, source FROM items "
                f"WHERE external_id IN ({places})",
                chunk,
            ):
                found[row[0]] = ItemRow(*row)
        return found

    def lookup_raw(self, raw_hashes: Sequence[str]) -> dict[str, tuple[str, str, str, str | None]]:
        """raw_hash -> (raw_hash, external_id, status, source) for the hashes the ledger
        knows (the row as SQLite gives it: no tuple made per record)."""
        found: dict[str, tuple[str, str, str, str | None]] = {}
        for start in range(0, len(raw_hashes), _LOOKUP_CHUNK):
            chunk = raw_hashes[start : start + _LOOKUP_CHUNK]
            places = ",".join("?" * len(chunk))
            for row in self._conn.execute(
                "SELECT raw_hash, external_id, status, source FROM items "
                f"WHERE raw_hash IN ({places})",
                chunk,
            ):
                found[row[0]] = row
        return found

    def has_unsourced(self) -> bool:
        """Whether accepted items exist whose source was never recorded (older ledgers)."""
        in_marks, wanted = marks(ACCEPTED)
        sql = f"SELECT 1 FROM items WHERE source IS NULL AND status IN ({in_marks}) LIMIT 1"
        return self._conn.execute(sql, wanted).fetchone() is not None

    def set_sources(self, pairs: Sequence[tuple[str, str]]) -> None:
        """(external_id, source) for items that have none recorded yet."""
        if not pairs:
            return
        with self._ledger.transaction():
            self._conn.executemany(
                "UPDATE items SET source = ? WHERE external_id = ? AND source IS NULL",
                [(s, e) for e, s in pairs],
            )

    def set_raw_hashes(self, pairs: Sequence[tuple[str, str]]) -> None:
        """(external_id, raw_hash) for unchanged items whose raw hash was not known yet."""
        if not pairs:
            return
        with self._ledger.transaction():
            self._conn.executemany(
                "UPDATE items SET raw_hash = ? WHERE external_id = ?",
                [(h, e) for e, h in pairs],
            )

    def iter_items(
        self,
        statuses: Iterable[str],
        *,
        batch: int = 500,
        before_run: int | None = None,
        sources: Iterable[str] | None = None,
    ) -> Iterator[StoredItem]:
        """Stream items in the given statuses, in external_id order, without holding them all;
        with ``before_run``, only those no later run than that one has touched; with
        ``sources``, only those that came from one of them."""
        in_marks, wanted = marks(statuses)
        where = f"status IN ({in_marks}) "
        extra: list[object] = []
        if before_run is not None:
            where += "AND (last_run_id IS NULL OR last_run_id < ?) "
            extra.append(before_run)
        if sources is not None:
            source_marks, source_values = marks(sources)
            where += f"AND source IN ({source_marks}) "
            extra.extend(source_values)
        after = ""
        while True:
            rows = self._conn.execute(
                "SELECT external_id, status, payload, idempotency_key, public_id, origin, source "
                f"FROM items WHERE {where}AND external_id > ? "
                "ORDER BY external_id LIMIT ?",
                (*wanted, *extra, after, batch),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield StoredItem(*row)
            after = rows[-1][0]

    def has_items(self) -> bool:
        """Whether the ledger holds any item."""
        return self._conn.execute("SELECT 1 FROM items LIMIT 1").fetchone() is not None

    def counts_by_status(self, sources: Iterable[str] | None = None) -> dict[str, int]:
        """Items per status; with ``sources``, only those that came from one of them."""
        if sources is None:
            rows = self._conn.execute("SELECT status, COUNT(*) FROM items GROUP BY status")
        else:
            in_marks, wanted = marks(sources)
            sql = f"SELECT status, COUNT(*) FROM items WHERE source IN ({in_marks}) GROUP BY status"
            rows = self._conn.execute(sql, wanted)
        return {status: int(n) for status, n in rows}

    def oldest_unfinished(self) -> str | None:
        """When the oldest item still on its way was first recorded; None if none is."""
        in_marks, wanted = marks(UNFINISHED)
        row = self._conn.execute(
            f"SELECT MIN(created_at) FROM items WHERE status IN ({in_marks})", wanted
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def items_in(self, statuses: Iterable[str], limit: int = 20) -> list[dict[str, Any]]:
        """The ``limit`` most recently updated items in ``statuses``, as dicts for the views."""
        in_marks, wanted = marks(statuses)
        return list(
            self._ledger.db.query(
                "SELECT external_id, status, public_id, last_http_status AS http_status, "
                "last_error AS error, origin, updated_at AS at FROM items "
                f"WHERE status IN ({in_marks}) ORDER BY updated_at DESC LIMIT ?",
                [*wanted, limit],
            )
        )

    def get_item(self, external_id: str) -> dict[str, Any] | None:
        """The whole row of one item as a dict; None if the ledger does not know it."""
        sql = "SELECT * FROM items WHERE external_id = ?"
        return next(self._ledger.db.query(sql, [external_id]), None)

    def events_for(self, external_id: str) -> list[dict[str, Any]]:
        """The events of one item, oldest first."""
        return list(
            self._ledger.db.query(
                "SELECT run_id, at, kind, http_status, detail FROM events "
                "WHERE external_id = ? ORDER BY id",
                [external_id],
            )
        )

    def iter_failures(self) -> Iterator[tuple[str, str, int | None, str | None, str]]:
        """(external_id, status, http_status, last_error, updated_at) of items needing a look."""
        in_marks, wanted = marks(NEEDS_LOOK)
        yield from self._conn.execute(
            "SELECT external_id, status, last_http_status, last_error, updated_at FROM items "
            f"WHERE status IN ({in_marks}) ORDER BY updated_at",
            wanted,
        )

    # The columns ``zsync export`` writes, in its order.
    EXPORT_COLUMNS = (
        "external_id",
        "status",
        "public_id",
        "job_id",
        "attempts",
        "last_http_status",
        "last_error",
        "origin",
        "payload_hash",
        "first_run_id",
        "last_run_id",
        "created_at",
        "updated_at",
    )

    def iter_export(self, statuses: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every item (or those in ``statuses``) as a dict of EXPORT_COLUMNS, by external_id."""
        columns = ", ".join(self.EXPORT_COLUMNS)
        if statuses:
            in_marks, wanted = marks(statuses)
            sql = f"SELECT {columns} FROM items WHERE status IN ({in_marks}) ORDER BY external_id"
            yield from self._ledger.db.query(sql, wanted)
        else:
            yield from self._ledger.db.query(f"SELECT {columns} FROM items ORDER BY external_id")

    def record_intents(self, intents: Sequence[Intent], run_id: int) -> None:
        """Commit the intent to send before any request leaves."""
        if not intents:
            return
        ts = now_iso()
        with self._ledger.transaction():
            self._conn.executemany(
                "INSERT INTO items (external_id, payload_hash, payload, idempotency_key, status, "
                "origin, first_run_id, last_run_id, created_at, updated_at, field_hashes, "
                "raw_hash, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(external_id) DO UPDATE SET payload_hash = excluded.payload_hash, "
                "payload = excluded.payload, idempotency_key = excluded.idempotency_key, "
                "status = excluded.status, origin = excluded.origin, last_error = NULL, "
                "field_hashes = excluded.field_hashes, raw_hash = excluded.raw_hash, "
                "source = COALESCE(excluded.source, items.source), "
                "last_run_id = excluded.last_run_id, updated_at = excluded.updated_at",
                [
                    (
                        i.external_id,
                        i.payload_hash,
                        i.payload,
                        i.idempotency_key,
                        Status.PENDING,
                        i.origin,
                        run_id,
                        run_id,
                        ts,
                        ts,
                        i.field_hashes,
                        i.raw_hash,
                        i.source,
                    )
                    for i in intents
                ],
            )

    def record_invalid(self, rows: Sequence[tuple[str | None, str, str]], run_id: int) -> None:
        """(external_id or None, origin, message). A known item keeps its status."""
        if not rows:
            return
        ts = now_iso()
        # Text SQLite cannot store (a lone surrogate) must not fail the whole batch: an id
        # that cannot be stored is not stored; a message keeps the character escaped.
        rows = [(e if _storable(e) else None, _text(o), _text(m)) for e, o, m in rows]
        with self._ledger.transaction():
            self._conn.executemany(
                "INSERT INTO items (external_id, payload_hash, status, last_error, origin, "
                "first_run_id, last_run_id, created_at, updated_at) "
                "VALUES (?, '', 'invalid', ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(external_id) DO UPDATE SET last_error = excluded.last_error, "
                "updated_at = excluded.updated_at WHERE items.status = 'invalid'",
                [(e, m, o, run_id, run_id, ts, ts) for e, o, m in rows if e is not None],
            )
            self._conn.executemany(
                "INSERT INTO events (external_id, run_id, at, kind, detail) "
                "VALUES (?, ?, ?, 'invalid', ?)",
                [(e, run_id, ts, m) for e, _o, m in rows],
            )

    def apply_outcomes(self, outcomes: Sequence[Outcome], run_id: int) -> None:
        """What the workers found, one batch in one transaction: each item's new status (and
        body, for a changed record sent as an update) and one event per outcome."""
        if not outcomes:
            return
        ts = now_iso()
        with self._ledger.transaction():
            for o in outcomes:
                if o.status is not None:
                    # A processed item's body is no longer needed for a byte-identical resend.
                    drop_payload = o.status == "processed"
                    self._conn.execute(
                        "UPDATE items SET status = ?, "
                        "public_id = COALESCE(?, public_id), job_id = COALESCE(?, job_id), "
                        "attempts = attempts + ?, "
                        "last_http_status = COALESCE(?, last_http_status), "
                        "last_error = ?, last_run_id = ?, updated_at = ?, "
                        "payload = CASE WHEN ? THEN NULL ELSE payload END "
                        "WHERE external_id = ?",
                        (
                            o.status,
                            o.public_id,
                            o.job_id,
                            o.attempts,
                            o.http_status,
                            o.detail if o.status in NEEDS_LOOK else None,
                            run_id,
                            ts,
                            drop_payload,
                            o.external_id,
                        ),
                    )
                if o.kind == "gone" and o.status == Status.DELETED:
                    # Deleted on the server: not created again while its record is unchanged.
                    self._conn.execute(
                        "UPDATE items SET payload_hash = ? || payload_hash "
                        "WHERE external_id = ? AND payload_hash NOT LIKE ?",
                        (GONE_HASH_PREFIX, o.external_id, GONE_HASH_PREFIX + "%"),
                    )
                if o.intent is not None:
                    i = o.intent
                    self._conn.execute(
                        "UPDATE items SET payload_hash = ?, payload = ?, idempotency_key = ?, "
                        "field_hashes = ?, origin = ?, raw_hash = ?, "
                        "source = COALESCE(?, source) WHERE external_id = ?",
                        (
                            i.payload_hash,
                            i.payload,
                            i.idempotency_key,
                            i.field_hashes,
                            i.origin,
                            i.raw_hash,
                            i.source,
                            o.external_id,
                        ),
                    )
                self._conn.execute(
                    "INSERT INTO events (external_id, run_id, at, kind, http_status, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (o.external_id, run_id, ts, o.kind, o.http_status, o.detail),
                )
