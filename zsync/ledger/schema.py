"""What a ledger must look like, and whether a file does: the checks every open runs before
anything is sent, and SQLite's own integrity check for ``status`` and ``check``.

The expected tables and columns are not written down twice: they are what the migrations a
ledger has applied build in an in-memory database, so they stay right as migrations are added.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from zsync.errors import LedgerError

# Every run, status and check runs SQLite's integrity_check (every page, and indexes against
# their tables: about 0.4 s for a 67 MB ledger of 100,000 items) up to this size, quick_check
# (pages only) beyond it. A push reads its input meanwhile (Meanwhile).
FULL_CHECK_BYTES = 1 << 30

# Work that needs no ledger, run while the check runs on another thread: it is called with
# ``done``, which turns true once the check has finished.
Meanwhile = Callable[[Callable[[], bool]], None]


class LedgerUnusable(LedgerError):
    """The file is not a usable zsync ledger (empty, not SQLite, damaged schema, corrupt):
    refused, or with ``--new-ledger`` kept aside and replaced by a new ledger."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"ledger {path} {reason}; restore it from a backup, or pass --new-ledger to keep "
            "it aside and start a new ledger (which sends every record again)"
        )
        self.reason = reason


def refuse_orphan_wal(path: Path) -> None:
    """A missing ledger whose write-ahead log is still there: the WAL holds the latest changes,
    and a new ledger beside it would discard them. Refused; the WAL is left untouched."""
    if (wal := Path(f"{path}-wal")).exists() and wal.stat().st_size > 0:
        raise LedgerError(
            f"ledger {path} is missing but its write-ahead log {wal.name} is there: restore "
            f"{path.name} beside it from a backup, or move {wal.name} aside to start a new ledger"
        )


@functools.cache
def expected_schema(directory: Path, names: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """table -> columns, as the migrations ``names`` (from ``directory``) build them."""
    conn = sqlite3.connect(":memory:")
    try:
        for name in names:
            conn.executescript((directory / f"{name}.sql").read_text("utf-8"))
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            t: frozenset(str(c[1]) for c in conn.execute(f'PRAGMA table_info("{t}")'))
            for t in tables
        }
    finally:
        conn.close()


def schema_problems(conn: sqlite3.Connection, expected: dict[str, frozenset[str]]) -> list[str]:
    """What the ledger lacks of its expected schema: missing tables, missing columns."""
    problems: list[str] = []
    for table in sorted(expected):
        have = {str(c[1]) for c in conn.execute(f'PRAGMA table_info("{table}")')}
        if not have:
            problems.append(f"table {table} is missing")
        elif missing := sorted(expected[table] - have):
            problems.append(f"table {table} lacks column {', '.join(missing)}")
    return problems


def integrity(conn: sqlite3.Connection, *, full: bool) -> list[str]:
    """SQLite's findings (empty when the file is sound); at most ten."""
    pragma = "integrity_check(10)" if full else "quick_check(10)"
    try:
        rows = [str(row[0]) for row in conn.execute(f"PRAGMA {pragma}")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def integrity_alongside(path: Path, full: bool, meanwhile: Meanwhile) -> list[str]:
    """:func:`integrity` on a connection of its own, on another thread, while ``meanwhile``
    works on this one (SQLite lets go of the GIL while it checks)."""
    found: list[str] = []
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=5.0, check_same_thread=False)

    def check() -> None:
        try:
            found.extend(integrity(conn, full=full))
        except Exception as exc:  # an unfinished check is a finding
            found.append(f"the integrity check did not finish: {exc}")

    thread = threading.Thread(target=check, name="zsync-ledger-check", daemon=True)
    thread.start()
    try:
        meanwhile(lambda: not thread.is_alive())
    except BaseException:
        conn.interrupt()  # a Ctrl-C: stop checking too
        raise
    finally:
        thread.join()
        conn.close()
    return found
