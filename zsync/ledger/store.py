"""The ledger handle: open, check, migrate, transactions and the workspace binding; the
statements of each table are in the table objects it carries (``items``, ``runs``, ``lease``,
``server``, ``trust``, ``meta``).

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
from typing import TYPE_CHECKING, Self

from zsync.errors import ConfigError, LedgerError
from zsync.ledger import migrate
from zsync.ledger.items import ItemsTable
from zsync.ledger.lease import LeaseTable
from zsync.ledger.meta import MetaTable
from zsync.ledger.runs import RunsTable
from zsync.ledger.schema import (
    FULL_CHECK_BYTES,
    LedgerUnusable,
    Meanwhile,
    expected_schema,
    integrity,
    integrity_alongside,
    refuse_orphan_wal,
    schema_problems,
)
from zsync.ledger.server import ServerTable
from zsync.ledger.trust import TrustTable
from zsync.model import Status
from zsync.version import __version__

if TYPE_CHECKING:
    import sqlite_utils


class Ledger:
    """One ledger file: open with :meth:`open` (read-write, checked, migrated) or
    :meth:`open_readonly`. The handle holds the connection and its transactions; each table's
    statements are in its table object: ``items`` (and their events), ``runs``, ``lease``,
    ``server`` (what the server is found to hold), ``trust`` (the anchor, repairs) and
    ``meta`` (named values, bookmarks)."""

    # Where Ledger.open kept an unusable file it replaced (--new-ledger), for the run to say.
    replaced: Path | None = None

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self._db: sqlite_utils.Database | None = None
        self.meta = MetaTable(self)
        self.items = ItemsTable(self)
        self.runs = RunsTable(self)
        self.lease = LeaseTable(self)
        self.server = ServerTable(self)
        self.trust = TrustTable(self)

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over the same connection (rows as dicts, migrations)."""
        if self._db is None:
            import sqlite_utils  # lazily: see build_migrations

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    # -- opening -------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        create: bool = True,
        new_ledger: bool = False,
        meanwhile: Meanwhile | None = None,
    ) -> Self:
        """Open read-write: checked, migrated, private. A missing file is created (whole, or
        not at all); an existing one that is not a usable ledger is refused (LedgerUnusable),
        or with ``new_ledger`` kept aside as ``FILE.broken-TIME`` and replaced.

        ``meanwhile(done)`` runs while SQLite checks every page on another thread, until
        ``done()``: work that needs no ledger (reading the input ahead). Nothing is written
        to the file before the check has passed."""
        path = Path(path)
        _check_path(path)
        if not path.exists():
            refuse_orphan_wal(path)
            if not create:
                raise LedgerError(f"ledger {path}: no such file (run zsync push first)")
            _create(cls, path)
        try:
            return cls._open_existing(path, meanwhile)
        except LedgerUnusable:
            if not new_ledger:
                raise
        aside = _keep_aside(path)
        _create(cls, path)
        ledger = cls._open_existing(path)
        ledger.replaced = aside
        return ledger

    @classmethod
    def _open_existing(cls, path: Path, meanwhile: Meanwhile | None = None) -> Self:
        if not os.access(path, os.R_OK):
            raise LedgerError(f"ledger {path}: not readable (permission denied)")
        old_umask = os.umask(0o077)  # the -wal and -shm files inherit this
        try:
            conn = sqlite3.connect(str(path), isolation_level=None, timeout=5.0)
            ledger = cls(path, conn)
            try:
                ledger._inspect(check_pages=True, meanwhile=meanwhile)
                ledger._configure()
                ledger._migrate()
            except BaseException:
                conn.close()
                raise
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"ledger {path}: {_sqlite_reason(exc)}") from None
        finally:
            os.umask(old_umask)
        _tighten(path)
        return ledger

    @classmethod
    def open_readonly(cls, path: Path) -> Self:
        """For status and dry runs: never migrates, never writes."""
        path = Path(path)
        _check_path(path)
        if not path.exists():
            raise LedgerError(f"ledger {path}: no such file (run zsync push first)")
        if not os.access(path, os.R_OK):
            raise LedgerError(f"ledger {path}: not readable (permission denied)")
        try:
            conn = sqlite3.connect(
                f"file:{path.resolve()}?mode=ro", uri=True, isolation_level=None, timeout=5.0
            )
            conn.execute("PRAGMA busy_timeout = 5000")
            ledger = cls(path, conn)
            ledger._inspect(check_pages=False)
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"ledger {path}: {_sqlite_reason(exc)}") from None
        _tighten(path)
        return ledger

    def _inspect(self, *, check_pages: bool, meanwhile: Meanwhile | None = None) -> None:
        """Is this file a zsync ledger this zsync can use? Reads only: a refused file is left
        exactly as it was (not even switched to WAL)."""
        if self.path.stat().st_size == 0:
            raise LedgerUnusable(self.path, "is an empty file (0 bytes), not a zsync ledger")
        try:
            tables = sorted(
                str(row[0])
                for row in self.conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            )
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise LedgerUnusable(self.path, "is not a SQLite database, or is corrupt") from None
            raise
        if not tables:
            raise LedgerUnusable(
                self.path, "is a SQLite database without tables, not a zsync ledger"
            )
        if (
            "_sqlite_migrations" not in tables
            or not self.conn.execute(
                "SELECT 1 FROM _sqlite_migrations WHERE migration_set = 'zsync' LIMIT 1"
            ).fetchone()
        ):
            # Never migrate (nor move aside) another program's database.
            raise LedgerError(
                f"ledger {self.path} is a SQLite database of another program (tables: "
                f"{', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''}); zsync leaves it "
                "untouched: choose another --ledger"
            )
        directory = migrate.migrations_dir()
        known = migrate.migration_names(directory)
        applied = self.applied_migrations()
        unknown = [name for name in applied if name not in known]
        if unknown:
            raise LedgerError(
                f"ledger {self.path} has schema {unknown[-1]}, written by a newer zsync; "
                f"this zsync {__version__} knows up to {known[-1]}: upgrade zsync"
            )
        expected = expected_schema(directory, tuple(n for n in known if n in applied))
        problems = schema_problems(self.conn, expected)
        if problems:
            raise LedgerUnusable(self.path, f"is damaged: {'; '.join(problems[:3])}")
        if check_pages:
            self.raise_if_damaged(meanwhile)

    def raise_if_damaged(self, meanwhile: Meanwhile | None = None) -> None:
        """SQLite's own check of every page (and of indexes against their tables, up to
        FULL_CHECK_BYTES); LedgerUnusable naming the first finding. With ``meanwhile``, the
        check runs on its own connection while ``meanwhile`` works."""
        full = self.path.stat().st_size <= FULL_CHECK_BYTES
        if meanwhile is None:
            found = integrity(self.conn, full=full)
        else:
            found = integrity_alongside(self.path, full, meanwhile)
        if not found:
            # SQLite skips CHECK constraints on a read-only connection (status, check).
            marks = ",".join("?" * len(Status))
            bad = self.conn.execute(
                f"SELECT external_id FROM items WHERE status NOT IN ({marks}) LIMIT 1",
                [str(s) for s in Status],
            ).fetchone()
            if bad is not None:
                found = [f"an item with a status zsync never writes ({bad[0]!r})"]
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise LedgerUnusable(self.path, f"is corrupt: {found[0]}{more}")

    def applied_migrations(self) -> list[str]:
        """The names of the migrations this ledger has applied, oldest first."""
        return [
            str(row[0])
            for row in self.conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = 'zsync' ORDER BY rowid"
            )
        ]

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
        directory = migrate.migrations_dir()
        known = migrate.migration_names(directory)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            has_table = self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlite_migrations'"
            ).fetchone()
            applied = self.applied_migrations() if has_table else []
            unknown = [name for name in applied if name not in known]
            if unknown:
                raise LedgerError(
                    f"ledger {self.path} has schema {unknown[-1]}, written by a newer zsync; "
                    f"this zsync {__version__} knows up to {known[-1]}: upgrade zsync"
                )
            if any(name not in applied for name in known):
                try:
                    migrate.build_migrations(directory)[0].apply(self.db)
                except sqlite3.DatabaseError as exc:
                    raise LedgerError(f"ledger {self.path}: migration failed: {exc}") from None
            self.meta.set("zsync_version", __version__)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Let go of the lease (if this handle holds it), then of the connection."""
        try:
            self.lease.release()
        finally:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed when the block ends, rolled back
        when it raises."""
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
        """The newest migration this ledger has applied ("none" when it has none)."""
        try:
            row = self.conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = 'zsync' "
                "ORDER BY rowid DESC LIMIT 1"
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise LedgerError(f"ledger {self.path}: {_sqlite_reason(exc)}") from None
            raise LedgerError(f"{self.path} is not a zsync ledger (no schema table)") from None
        return str(row[0]) if row else "none"

    # -- the workspace binding ------------------------------------------------------

    def bind(self, api_base: str, workspace_id: str | None) -> None:
        """Tie this ledger to one workspace; refuse to sync it into another."""
        bound_ws = self.meta.get("workspace_id")
        bound_base = self.meta.get("api_base")
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
                self.meta.set("workspace_id", workspace_id)
            if not bound_base or workspace_id:
                self.meta.set("api_base", api_base)


def _check_path(path: Path) -> None:
    if path.is_dir():
        raise LedgerError(f"ledger {path} is a directory; give the path of a ledger file")
    if not path.parent.exists():
        raise LedgerError(f"ledger {path}: directory {path.parent} does not exist")


def _create(cls: type[Ledger], path: Path) -> None:
    """A new ledger appears whole or not at all: built (migrated) under a temporary name in
    the same directory, then linked into place. An empty or half-made file is never left
    where a later run would find it; of two runs creating it at once, one link wins and the
    other opens that one."""
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}")
    try:
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise LedgerError(f"ledger {path}: cannot create ({exc.strerror})") from None
    try:
        conn = sqlite3.connect(str(tmp), isolation_level=None, timeout=5.0)
        try:
            cls(path, conn)._migrate()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"ledger {path}: {_sqlite_reason(exc)}") from None
        finally:
            conn.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another run made it first: that one is used
        except OSError:
            if not path.exists():  # a file system without hard links
                os.replace(tmp, path)
    finally:
        for leftover in (tmp, Path(f"{tmp}-journal")):
            leftover.unlink(missing_ok=True)


def _keep_aside(path: Path) -> Path:
    """Rename an unusable ledger (and its -wal/-shm, which must not meet a new file)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.broken-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            try:
                os.replace(source, f"{aside}{suffix}")
            except OSError as exc:
                raise LedgerError(f"ledger {path}: cannot move it aside ({exc.strerror})") from None
    return aside


def _tighten(path: Path) -> None:
    """The ledger holds bodies and ids: no one but its owner reads it (0600 on every open,
    -wal and -shm included). Only bits are removed: a read-only ledger stays read-only."""
    for suffix in ("", "-wal", "-shm"):
        try:
            target = f"{path}{suffix}"
            mode = os.stat(target).st_mode & 0o777
            if mode & 0o077:
                os.chmod(target, mode & 0o700)
        except OSError:
            continue  # absent, or another user's file: nothing this run can change


def _sqlite_reason(exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return "not a zsync ledger or the file is corrupt (restore it, or move it aside)"
    if "readonly" in text or "read-only" in text:
        return "file is read-only"
    if "unable to open" in text:
        return (
            "cannot open it, or the -wal/-shm files beside it (a read-only directory, or "
            "files of another user): run zsync as the ledger's owner, where it can write"
        )
    if "disk I/O" in text:
        return "disk I/O error (is the disk full or failing?)"
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
