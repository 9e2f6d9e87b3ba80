"""What every table object of the ledger shares: the handle it belongs to and its connection.

A table object holds the SQL of its table(s) and nothing else: the connection, its
transactions and sqlite-utils' :class:`~sqlite_utils.Database` belong to the handle
(:class:`zsync.ledger.Ledger`), which every table object reaches through ``_ledger``. The
tables know the handle only as :class:`Handle`, what they use of it, so the handle's module
imports the tables and never the other way round.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import sqlite_utils


class Meta(Protocol):
    """The ``meta`` key-value table, as other tables use it."""

    def get(self, key: str) -> str | None:
        """The value stored under ``key``; None when there is none."""

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""

    def delete(self, key: str) -> None:
        """Forget ``key``."""


class Handle(Protocol):
    """What a table object uses of the ledger handle (:class:`zsync.ledger.Ledger`)."""

    @property
    def path(self) -> Path:
        """The ledger file."""

    @property
    def conn(self) -> sqlite3.Connection:
        """The handle's one connection."""

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over that connection."""

    @property
    def meta(self) -> Meta:
        """The meta table."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction."""


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

    def __init__(self, ledger: Handle) -> None:
        self._ledger = ledger
        # The handle's connection never changes: read once, not looked up on every statement.
        self._conn: sqlite3.Connection = ledger.conn
