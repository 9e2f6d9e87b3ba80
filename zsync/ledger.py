"""The SQLite ledger: open, migrate, lease, and every SQL statement zsync runs.

One connection, used only by the thread that opened it (the engine's writer). Writes are
batched into ``BEGIN IMMEDIATE`` transactions; WAL lets ``zsync status`` read while a push
writes.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from zsync import __version__
from zsync.errors import ConfigError, LedgerError, LedgerLocked

STATUSES = (
    "pending",
    "submitted",
    "processed",
    "failed",
    "rejected",
    "error",
    "conflict",
    "invalid",
    "deleted",
)
# Accepted by the server: never created again for the same content.
ACCEPTED = frozenset({"submitted", "processed", "failed"})
# Intent recorded but not (known to be) accepted: re-sent with the stored body and key.
UNSETTLED = frozenset({"pending", "error"})

LEASE_STALE_SECONDS = 120.0
_LOOKUP_CHUNK = 900


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def migrations_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "migrations", here.parent / "migrations"):
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


@dataclass(frozen=True, slots=True)
class ItemRow:
    external_id: str
    status: str
    payload_hash: str
    public_id: str | None
    raw_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Intent:
    """A create about to be sent: committed before the request leaves."""

    external_id: str
    payload_hash: str
    payload: str
    idempotency_key: str
    origin: str
    field_hashes: str | None = None
    raw_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one request settled for one item; applied by the writer in batches."""

    external_id: str
    kind: str  # accepted | rejected | conflict | error | polled | requeued | invalid
    status: str | None = None  # the item's new status (None: leave it)
    http_status: int | None = None
    public_id: str | None = None
    job_id: str | None = None
    detail: str | None = None
    attempts: int = 0
    # Set when the server now holds a new body for the item (an update or a deliberate resend).
    intent: Intent | None = None


@dataclass(frozen=True, slots=True)
class StoredItem:
    external_id: str
    status: str
    payload: str | None
    idempotency_key: str | None
    public_id: str | None
    origin: str | None


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    pid: int
    host: str
    command: str
    acquired_at: str
    heartbeat_at: float

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} ({self.command}, since {self.acquired_at})"


class Ledger:
    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self._lease_held = False

    # -- opening -------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Ledger:
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
    def open_readonly(cls, path: Path) -> Ledger:
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
        try:
            if self._lease_held:
                self.release_lease()
        finally:
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

    def acquire_lease(self, command: str) -> None:
        host = socket.gethostname()
        with self.transaction():
            row = self.conn.execute(
                "SELECT pid, host, command, acquired_at, heartbeat_at FROM lease WHERE id = 1"
            ).fetchone()
            if row is not None:
                holder = LeaseHolder(*row)
                if _holder_alive(holder, host):
                    raise LedgerLocked(
                        f"ledger {self.path} is in use by {holder.describe()}; "
                        "wait for it to finish"
                    )
            self.conn.execute(
                "INSERT OR REPLACE INTO lease (id, run_id, pid, host, command, acquired_at, "
                "heartbeat_at) VALUES (1, NULL, ?, ?, ?, ?, ?)",
                (os.getpid(), host, command, now_iso(), time.time()),
            )
        self._lease_held = True

    def heartbeat(self) -> None:
        if self._lease_held:
            self.conn.execute(
                "UPDATE lease SET heartbeat_at = ? WHERE id = 1 AND pid = ?",
                (time.time(), os.getpid()),
            )

    def release_lease(self) -> None:
        if self._lease_held:
            self.conn.execute("DELETE FROM lease WHERE id = 1 AND pid = ?", (os.getpid(),))
            self._lease_held = False

    def lease_holder(self) -> LeaseHolder | None:
        row = self.conn.execute(
            "SELECT pid, host, command, acquired_at, heartbeat_at FROM lease WHERE id = 1"
        ).fetchone()
        if row is None:
            return None
        holder = LeaseHolder(*row)
        return holder if _holder_alive(holder, socket.gethostname()) else None

    # -- runs ------------------------------------------------------------------------

    def start_run(self, command: str, arguments: dict[str, Any]) -> int:
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO runs (command, arguments, host, pid, started_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    command,
                    json.dumps(arguments, sort_keys=True),
                    socket.gethostname(),
                    os.getpid(),
                    now_iso(),
                ),
            )
            run_id = int(cur.lastrowid or 0)
            self.conn.execute("UPDATE lease SET run_id = ? WHERE id = 1", (run_id,))
        return run_id

    def finish_run(self, run_id: int, counts: dict[str, int], exit_code: int) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE runs SET finished_at = ?, counts = ?, exit_code = ? WHERE id = ?",
                (now_iso(), json.dumps(counts, sort_keys=True), exit_code, run_id),
            )

    def recent_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, command, started_at, finished_at, counts, exit_code, host, pid, "
            "arguments FROM runs ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {
                "id": r[0],
                "command": r[1],
                "started_at": r[2],
                "finished_at": r[3],
                "counts": json.loads(r[4]) if r[4] else None,
                "exit_code": r[5],
                "host": r[6],
                "pid": r[7],
                "arguments": json.loads(r[8]) if r[8] else {},
            }
            for r in rows
        ]

    def last_success(self) -> str | None:
        row = self.conn.execute("SELECT MAX(finished_at) FROM runs WHERE exit_code = 0").fetchone()
        return None if row is None or row[0] is None else str(row[0])

    # -- items: reads ------------------------------------------------------------------

    def lookup(self, external_ids: Sequence[str]) -> dict[str, ItemRow]:
        found: dict[str, ItemRow] = {}
        for start in range(0, len(external_ids), _LOOKUP_CHUNK):
            chunk = external_ids[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(
                "SELECT external_id, status, payload_hash, public_id, raw_hash FROM items "
                f"WHERE external_id IN ({marks})",
                chunk,
            ):
                found[row[0]] = ItemRow(*row)
        return found

    def lookup_raw(self, raw_hashes: Sequence[str]) -> dict[str, tuple[str, str]]:
        """raw_hash -> (external_id, status) for the hashes the ledger knows."""
        found: dict[str, tuple[str, str]] = {}
        for start in range(0, len(raw_hashes), _LOOKUP_CHUNK):
            chunk = raw_hashes[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            for raw_hash, external_id, status in self.conn.execute(
                f"SELECT raw_hash, external_id, status FROM items WHERE raw_hash IN ({marks})",
                chunk,
            ):
                found[raw_hash] = (external_id, status)
        return found

    def set_raw_hashes(self, pairs: Sequence[tuple[str, str]]) -> None:
        """(external_id, raw_hash) for unchanged items whose line hash was not known yet."""
        if not pairs:
            return
        with self.transaction():
            self.conn.executemany(
                "UPDATE items SET raw_hash = ? WHERE external_id = ?",
                [(h, e) for e, h in pairs],
            )

    def iter_items(self, statuses: Iterable[str], *, batch: int = 500) -> Iterator[StoredItem]:
        """Stream items in the given statuses, in external_id order, without holding them all."""
        wanted = sorted(set(statuses))
        marks = ",".join("?" * len(wanted))
        after = ""
        while True:
            rows = self.conn.execute(
                "SELECT external_id, status, payload, idempotency_key, public_id, origin "
                f"FROM items WHERE status IN ({marks}) AND external_id > ? "
                "ORDER BY external_id LIMIT ?",
                (*wanted, after, batch),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield StoredItem(*row)
            after = rows[-1][0]

    def counts_by_status(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT status, COUNT(*) FROM items GROUP BY status")
        return {status: int(n) for status, n in rows}

    def oldest_unfinished(self) -> str | None:
        row = self.conn.execute(
            "SELECT MIN(created_at) FROM items WHERE status IN "
            "('pending', 'submitted', 'error', 'conflict')"
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def items_in(self, statuses: Iterable[str], limit: int = 20) -> list[dict[str, Any]]:
        wanted = sorted(set(statuses))
        marks = ",".join("?" * len(wanted))
        rows = self.conn.execute(
            "SELECT external_id, status, public_id, last_http_status, last_error, origin, "
            f"updated_at FROM items WHERE status IN ({marks}) ORDER BY updated_at DESC LIMIT ?",
            (*wanted, limit),
        ).fetchall()
        keys = ("external_id", "status", "public_id", "http_status", "error", "origin", "at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def get_item(self, external_id: str) -> dict[str, Any] | None:
        cur = self.conn.execute("SELECT * FROM items WHERE external_id = ?", (external_id,))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row, strict=True))

    def events_for(self, external_id: str) -> list[dict[str, Any]]:
        cur = self.conn.execute(
            "SELECT run_id, at, kind, http_status, detail FROM events "
            "WHERE external_id = ? ORDER BY id",
            (external_id,),
        )
        return [
            dict(zip(("run_id", "at", "kind", "http_status", "detail"), r, strict=True))
            for r in cur
        ]

    def iter_failures(self) -> Iterator[tuple[str, str, int | None, str | None, str]]:
        """(external_id, status, http_status, last_error, updated_at) of items needing a look."""
        yield from self.conn.execute(
            "SELECT external_id, status, last_http_status, last_error, updated_at FROM items "
            "WHERE status IN ('rejected', 'error', 'conflict', 'failed', 'invalid') "
            "ORDER BY updated_at"
        )

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
        columns = ", ".join(self.EXPORT_COLUMNS)
        if statuses:
            wanted = sorted(set(statuses))
            marks = ",".join("?" * len(wanted))
            cur = self.conn.execute(
                f"SELECT {columns} FROM items WHERE status IN ({marks}) ORDER BY external_id",
                wanted,
            )
        else:
            cur = self.conn.execute(f"SELECT {columns} FROM items ORDER BY external_id")
        for row in cur:
            yield dict(zip(self.EXPORT_COLUMNS, row, strict=True))

    # -- items: writes (each call is one transaction) ------------------------------------

    def record_intents(self, intents: Sequence[Intent], run_id: int) -> None:
        """Commit the intent to send before any request leaves."""
        if not intents:
            return
        ts = now_iso()
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO items (external_id, payload_hash, payload, idempotency_key, status, "
                "origin, first_run_id, last_run_id, created_at, updated_at, field_hashes, "
                "raw_hash) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(external_id) DO UPDATE SET payload_hash = excluded.payload_hash, "
                "payload = excluded.payload, idempotency_key = excluded.idempotency_key, "
                "status = 'pending', origin = excluded.origin, last_error = NULL, "
                "field_hashes = excluded.field_hashes, raw_hash = excluded.raw_hash, "
                "last_run_id = excluded.last_run_id, updated_at = excluded.updated_at",
                [
                    (
                        i.external_id,
                        i.payload_hash,
                        i.payload,
                        i.idempotency_key,
                        i.origin,
                        run_id,
                        run_id,
                        ts,
                        ts,
                        i.field_hashes,
                        i.raw_hash,
                    )
                    for i in intents
                ],
            )

    def record_invalid(self, rows: Sequence[tuple[str | None, str, str]], run_id: int) -> None:
        """(external_id or None, origin, message). A known item keeps its status."""
        if not rows:
            return
        ts = now_iso()
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO items (external_id, payload_hash, status, last_error, origin, "
                "first_run_id, last_run_id, created_at, updated_at) "
                "VALUES (?, '', 'invalid', ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(external_id) DO UPDATE SET last_error = excluded.last_error, "
                "updated_at = excluded.updated_at WHERE items.status = 'invalid'",
                [(e, m, o, run_id, run_id, ts, ts) for e, o, m in rows if e is not None],
            )
            self.conn.executemany(
                "INSERT INTO events (external_id, run_id, at, kind, detail) "
                "VALUES (?, ?, ?, 'invalid', ?)",
                [(e, run_id, ts, m) for e, _o, m in rows],
            )

    def apply_outcomes(self, outcomes: Sequence[Outcome], run_id: int) -> None:
        if not outcomes:
            return
        ts = now_iso()
        with self.transaction():
            for o in outcomes:
                if o.status is not None:
                    # A processed item's body is no longer needed for a byte-identical resend.
                    drop_payload = o.status == "processed"
                    self.conn.execute(
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
                            o.detail if o.status in _ERROR_STATUSES else None,
                            run_id,
                            ts,
                            drop_payload,
                            o.external_id,
                        ),
                    )
                if o.intent is not None:
                    i = o.intent
                    self.conn.execute(
                        "UPDATE items SET payload_hash = ?, payload = ?, idempotency_key = ?, "
                        "field_hashes = ?, origin = ?, raw_hash = ? WHERE external_id = ?",
                        (
                            i.payload_hash,
                            i.payload,
                            i.idempotency_key,
                            i.field_hashes,
                            i.origin,
                            i.raw_hash,
                            o.external_id,
                        ),
                    )
                self.conn.execute(
                    "INSERT INTO events (external_id, run_id, at, kind, http_status, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (o.external_id, run_id, ts, o.kind, o.http_status, o.detail),
                )
            self.heartbeat()


_ERROR_STATUSES = frozenset({"rejected", "error", "conflict", "failed", "invalid"})


def _holder_alive(holder: LeaseHolder, this_host: str) -> bool:
    if time.time() - holder.heartbeat_at > LEASE_STALE_SECONDS:
        return False
    if holder.host != this_host:
        return True  # cannot probe another host's pids; trust a fresh heartbeat
    if holder.pid == os.getpid():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
