"""The meta table: small named values (the workspace binding, the zsync version, bookmarks,
the trust anchor, the replay mark), one row each."""

from __future__ import annotations

from zsync.ledger.table import Table

BOOKMARK_PREFIX = "bookmark:"


class MetaTable(Table):
    """``ledger.meta``: named values, read and written one at a time."""

    def get(self, key: str) -> str | None:
        """The value stored under ``key``; None when there is none."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (in the caller's transaction, if one is open)."""
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def delete(self, key: str) -> None:
        """Forget ``key`` (in the caller's transaction, if one is open)."""
        self._conn.execute("DELETE FROM meta WHERE key = ?", (key,))

    def bookmarks(self) -> dict[str, str]:
        """Saved source bookmarks, by source (the meta key without its "bookmark:" prefix)."""
        rows = self._conn.execute(
            "SELECT substr(key, ?), value FROM meta WHERE key LIKE ? ORDER BY key",
            (len(BOOKMARK_PREFIX) + 1, BOOKMARK_PREFIX + "%"),
        )
        return {str(k): str(v) for k, v in rows}
