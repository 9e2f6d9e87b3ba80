"""What every table object of the ledger shares: the handle it belongs to and its connection.

A table object holds the SQL of its table(s) and nothing else: the connection, its
transactions and sqlite-utils' :class:`~sqlite_utils.Database` belong to the handle
(:class:`zsync.ledger.Ledger`), which every table object reaches through ``_ledger``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zsync.ledger.store import Ledger


def now_iso() -> str:
    """Now, in UTC, as the ledger writes times: ISO 8601 to the millisecond, ``Z``-suffixed."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def marks(values: Iterable[str]) -> tuple[str, list[str]]:
    """Placeholders and values for ``column IN (...)``: each distinct value once, sorted."""
    wanted = sorted({str(v) for v in values})
    return ",".join("?" * len(wanted)), wanted


class Table:
    """The statements of one table (or of a table and the rows it keeps beside it), run on
    the connection of the ledger handle it belongs to."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        # The handle's connection never changes: read once, not looked up on every statement.
        self._conn: sqlite3.Connection = ledger.conn
