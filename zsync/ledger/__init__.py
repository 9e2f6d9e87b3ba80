"""The SQLite ledger: an intent log plus a cache of what the server holds.

:class:`Ledger` is a thin handle: it opens, checks and migrates the file (``open``,
``open_readonly``), runs transactions (``transaction``), checks pages (``raise_if_damaged``),
binds the ledger to one workspace (``bind``) and closes. The statements live in small table
objects it carries, in the manner of sqlite-utils' ``db["items"]``:

- ``ledger.items``: one row per record and its events (the planner's lookups, the writer's
  ``record_intents``/``apply_outcomes``, the views' reads);
- ``ledger.runs``: one row per run; ``ledger.lease``: one run at a time (a lock beside the
  ledger, the row naming its holder, the heartbeat thread);
- ``ledger.server``: what the server is found to hold (adopted rows, settled in-doubt sends,
  signals gone, corrected statuses, replays);
- ``ledger.trust``: the anchor by which the ledger vouches for itself, unfinished repairs;
- ``ledger.meta``: named values (the workspace binding, source bookmarks).

One connection, used only by the thread that opened it (the engine's writer). Writes are
batched into ``BEGIN IMMEDIATE`` transactions; WAL lets ``zsync status`` read while a push
writes. Views read rows as dicts (sqlite-utils' ``db.query``); the planner's hot lookups read
plain tuples. ``migrate`` applies ``migrations/`` with sqlite-utils' ``Migrations`` (each file
and its record in one transaction); ``schema`` says whether a file is a sound ledger (its page
check runs on a thread of its own while the caller reads its input). Every SQL statement
zsync runs on a ledger is in this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zsync.ledger.lease import HEARTBEAT_SECONDS, LEASE_EXPIRY_SECONDS, LeaseHolder
from zsync.ledger.migrate import build_migrations, migrations_dir
from zsync.ledger.schema import Meanwhile
from zsync.ledger.store import Ledger, ledger_errors
from zsync.ledger.table import now_iso
from zsync.ledger.trust import Anchor

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


@contextmanager
def reading(path: Path) -> Iterator[Ledger]:
    """The ledger opened read-only, SQLite errors turned into one-line LedgerErrors."""
    with ledger_errors(path):
        ledger = Ledger.open_readonly(path)
        try:
            yield ledger
        finally:
            ledger.close()
