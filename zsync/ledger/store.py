"""The SQLite ledger: open, migrate, lease, and every SQL statement zsync runs.

One connection, used only by the thread that opened it (the engine's writer). Writes are
batched into ``BEGIN IMMEDIATE`` transactions; WAL lets ``zsync status`` read while a push
writes.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import sqlite_utils
from sqlite_utils.migrations import Migrations

from zsync import __version__
from zsync.errors import ConfigError, LedgerError


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def migrations_dir() -> Path:
    package = Path(__file__).resolve().parent.parent  # zsync/
    # In a wheel they are zsync/migrations; in a checkout, migrations/ beside zsync/.
    for candidate in (package / "migrations", package.parent / "migrations"):
        if candidate.is_dir():
            return candidate
    raise LedgerError("zsync is installed without its migrations/ directory")


def _statements(sql: str) -> Iterator[str]:
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf
            buf = ""
    if buf.strip() and not buf.strip().startswith("--"):
        yield buf


def build_migrations(directory: Path | None = None) -> tuple[Migrations, list[str]]:
    directory = directory or migrations_dir()
    migrations = Migrations("zsync")
    names: list[str] = []
    for path in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        sql = path.read_text(encoding="utf-8")

        def apply(db: sqlite_utils.Database, sql: str = sql) -> None:
            # executescript() would COMMIT behind our back; one statement at a time keeps
            # the migration and its record in one transaction.
            for statement in _statements(sql):
                db.execute(statement)

        migrations(name=path.stem)(apply)
        names.append(path.stem)
    return migrations, names


class Store:
    """The connection: open, check, migrate, transactions, meta and the workspace binding."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self._lease_held = False

    # -- opening -------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Self:
        path = Path(path)
        if not path.parent.exists():
            raise LedgerError(f"ledger {path}: directory {path.parent} does not exist")
        if not path.exists():
            if not create:
                raise LedgerError(f"ledger {path}: no such file (run zsync push first)")
            try:
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            except OSError as exc:
                raise LedgerError(f"ledger {path}: cannot create ({exc.strerror})") from None
        if not os.access(path, os.R_OK):
            raise LedgerError(f"ledger {path}: not readable")
        old_umask = os.umask(0o077)  # the -wal and -shm files inherit this
        try:
            conn = sqlite3.connect(str(path), isolation_level=None, timeout=5.0)
            ledger = cls(path, conn)
            ledger._refuse_foreign()
            ledger._configure()
            ledger._migrate()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"ledger {path}: {_sqlite_reason(exc)}") from None
        finally:
            os.umask(old_umask)
        return ledger

    @classmethod
    def open_readonly(cls, path: Path) -> Self:
        """For status and dry runs: never migrates, never writes."""
        path = Path(path)
        if not path.exists():
            raise LedgerError(f"ledger {path}: no such file (run zsync push first)")
        try:
            conn = sqlite3.connect(
                f"file:{path.resolve()}?mode=ro", uri=True, isolation_level=None, timeout=5.0
            )
            conn.execute("PRAGMA busy_timeout = 5000")
            ledger = cls(path, conn)
            _, known = build_migrations()
            version = ledger.schema_version()
            if version not in known:
                raise LedgerError(
                    f"ledger {path} has schema {version}, not one this zsync {__version__} "
                    f"knows (up to {known[-1]}): upgrade zsync"
                )
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"ledger {path}: {_sqlite_reason(exc)}") from None
        return ledger

    def _refuse_foreign(self) -> None:
        """Never migrate another program's SQLite database (nor switch its journal to WAL)."""
        tables = sorted(
            str(row[0])
            for row in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        )
        if not tables:
            return  # new or empty: becomes a ledger
        if (
            "_sqlite_migrations" in tables
            and self.conn.execute(
                "SELECT 1 FROM _sqlite_migrations WHERE migration_set = 'zsync' LIMIT 1"
            ).fetchone()
        ):
            return
        raise LedgerError(
            f"ledger {self.path} is a SQLite database of another program (tables: "
            f"{', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''}); zsync leaves it "
            "untouched: choose another --ledger"
        )

    def _configure(self) -> None:
        self.conn.execute("PRAGMA busy_timeout = 5000")
        if not os.access(self.path, os.W_OK):
            raise LedgerError(f"ledger {self.path}: file is read-only")
        mode = self._switch_to_wal()
        if mode != "wal":
            raise LedgerError(f"ledger {self.path}: cannot switch to WAL mode")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA foreign_keys = ON")

    def _switch_to_wal(self, wait: float = 5.0) -> str:
        # Two runs opening a new ledger at the same moment: SQLite answers the switch with
        # "locked" at once instead of waiting on busy_timeout, so wait here; the lease then
        # names whichever run got in first.
        deadline = time.monotonic() + wait
        while True:
            try:
                return str(self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _migrate(self) -> None:
        migrations, known = build_migrations()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            applied = [m.name for m in migrations.applied(self.db)]
            unknown = [name for name in applied if name not in known]
            if unknown:
                raise LedgerError(
                    f"ledger {self.path} has schema {unknown[-1]}, written by a newer zsync; "
                    f"this zsync {__version__} knows up to {known[-1]}: upgrade zsync"
                )
            try:
                migrations.apply(self.db)
            except sqlite3.DatabaseError as exc:
                raise LedgerError(f"ledger {self.path}: migration failed: {exc}") from None
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('zsync_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (__version__,),
            )
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def schema_version(self) -> str:
        try:
            row = self.conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = 'zsync' "
                "ORDER BY rowid DESC LIMIT 1"
            ).fetchone()
        except sqlite3.OperationalError:
            raise LedgerError(f"{self.path} is not a zsync ledger (no schema table)") from None
        return str(row[0]) if row else "none"

    # -- meta and workspace binding ------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def bookmarks(self) -> dict[str, str]:
        """Saved source bookmarks, by source (the meta key without its "bookmark:" prefix)."""
        rows = self.conn.execute(
            "SELECT substr(key, 10), value FROM meta WHERE key LIKE 'bookmark:%' ORDER BY key"
        )
        return {str(k): str(v) for k, v in rows}

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def bind(self, api_base: str, workspace_id: str | None) -> None:
        """Tie this ledger to one workspace; refuse to sync it into another."""
        bound_ws = self.get_meta("workspace_id")
        bound_base = self.get_meta("api_base")
        if workspace_id and bound_ws and bound_ws != workspace_id:
            raise ConfigError(
                f"ledger {self.path} belongs to workspace {bound_ws}, but the key opens "
                f"workspace {workspace_id}; use another --ledger for another workspace"
            )
        if not workspace_id and not bound_ws and bound_base and bound_base != api_base:
            raise ConfigError(
                f"ledger {self.path} was used with {bound_base}, not {api_base}; "
                "use another --ledger for another API"
            )
        with self.transaction():
            if workspace_id and not bound_ws:
                self.set_meta("workspace_id", workspace_id)
            if not bound_base or workspace_id:
                self.set_meta("api_base", api_base)

    # -- the run lease -------------------------------------------------------------

    # -- runs ------------------------------------------------------------------------

    # -- items: reads ------------------------------------------------------------------

    # -- items: writes (each call is one transaction) ------------------------------------


def _sqlite_reason(exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return "not a zsync ledger or the file is corrupt (restore it, or move it aside)"
    if "readonly" in text or "read-only" in text:
        return "file is read-only"
    if "locked" in text:
        return "database is locked by another process"
    return text


@contextmanager
def ledger_errors(path: Path) -> Iterator[None]:
    """SQLite failures after the ledger is open (a corrupt page found mid-run, a full disk, a
    lock held past busy_timeout) become LedgerError naming the file, as they do while opening;
    without this they surfaced as "internal error" (exit 70) instead of exit 5."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.ProgrammingError | sqlite3.IntegrityError):
            raise  # a bug in zsync's SQL, not a broken ledger
        raise LedgerError(f"ledger {path}: {_sqlite_reason(exc)}") from None
