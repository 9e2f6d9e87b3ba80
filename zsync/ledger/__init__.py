"""The SQLite ledger: an intent log plus a cache of what the server holds.

One connection, used only by the thread that opened it (the engine's writer). Writes are
batched into ``BEGIN IMMEDIATE`` transactions; WAL lets ``zsync status`` read while a push
writes. ``store`` opens, checks and migrates the file and holds meta and the workspace
binding; ``migrate`` knows the migrations and applies them; ``schema`` says whether a file
is a sound ledger (its page check runs on a thread of its own while the caller reads its
input); ``lease`` (with its heartbeat thread), ``runs`` and ``items`` hold the SQL of their
tables; ``trust`` keeps the anchor by which the ledger vouches for itself. Every SQL
statement zsync runs is in this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zsync.ledger.items import ItemsTable
from zsync.ledger.lease import (
    HEARTBEAT_SECONDS,
    LEASE_EXPIRY_SECONDS,
    LeaseHolder,
    LeaseTable,
)
from zsync.ledger.migrate import build_migrations, migrations_dir
from zsync.ledger.runs import RunsTable
from zsync.ledger.schema import Meanwhile
from zsync.ledger.server import ServerTable
from zsync.ledger.store import ledger_errors, now_iso
from zsync.ledger.trust import Anchor, TrustTable

__all__ = [
    "HEARTBEAT_SECONDS",
    "LEASE_EXPIRY_SECONDS",
    "Anchor",
    "LeaseHolder",
    "Ledger",
    "Meanwhile",
    "build_migrations",
    "ledger_errors",
    "migrations_dir",
    "now_iso",
    "reading",
]


class Ledger(LeaseTable, RunsTable, ItemsTable, ServerTable, TrustTable):
    """One ledger file: open with :meth:`open` (read-write, migrated) or
    :meth:`open_readonly`; the tables' methods come from their modules."""


@contextmanager
def reading(path: Path) -> Iterator[Ledger]:
    """The ledger opened read-only, SQLite errors turned into one-line LedgerErrors."""
    with ledger_errors(path):
        ledger = Ledger.open_readonly(path)
        try:
            yield ledger
        finally:
            ledger.close()
