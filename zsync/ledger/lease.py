"""The run lease: one run at a time per ledger; a live holder is never displaced.

While a run holds the lease a :class:`Heartbeat` thread, on its own SQLite connection (the
writer's connection stays on the writer's thread), refreshes ``heartbeat_at`` every
:data:`HEARTBEAT_SECONDS`, whatever the input or the engine is doing. The lease is taken
over only when its holder is provably gone:

- on this host: its pid is dead, or now belongs to another process (the start time
  stored with the lease differs). A live holder keeps the lease however old its heartbeat
  (a producer that pauses for minutes, a stopped process);
- on another host (a shared file system): its heartbeat is older than
  :data:`LEASE_EXPIRY_SECONDS`.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from zsync.errors import LedgerLocked
from zsync.ledger.store import Store, now_iso

HEARTBEAT_SECONDS = 10.0
# A holder on another host whose pid cannot be probed is gone once it has missed this many
# seconds of heartbeats (30 beats): far longer than any pause of a live, running process.
LEASE_EXPIRY_SECONDS = 300.0

_OLD_COLUMNS = "pid, host, command, acquired_at, heartbeat_at"  # before 0006_lease_started
_COLUMNS = _OLD_COLUMNS + ", started"


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    pid: int
    host: str
    command: str
    acquired_at: str
    heartbeat_at: float
    started: int | None = None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} ({self.command}, since {self.acquired_at})"


def _stat(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first); None where
    there is no such file."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    return stat[stat.rfind(b")") + 2 :].split()


def process_state(pid: int) -> str | None:
    """The state letter of process ``pid`` (R, S, Z for a zombie, ...); None where unknown."""
    fields = _stat(pid)
    return fields[0].decode("ascii", "replace") if fields else None


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot; None where unknown."""
    fields = _stat(pid)
    try:
        return int(fields[19]) if fields else None  # field 22 of the whole line
    except (IndexError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def holder_alive(holder: LeaseHolder, this_host: str, now: float | None = None) -> bool:
    """Can ``holder`` still be running? False only when it provably is not."""
    if holder.host != this_host:
        # Another host's pids cannot be probed; its heartbeat thread beats every
        # HEARTBEAT_SECONDS while it lives.
        return (now if now is not None else time.time()) - holder.heartbeat_at <= (
            LEASE_EXPIRY_SECONDS
        )
    if holder.pid == os.getpid():
        return False  # a lease this process left behind (it holds no other)
    if not _pid_alive(holder.pid):
        return False
    if process_state(holder.pid) in ("Z", "X"):
        return False  # killed, and its parent has not collected its exit status yet
    if holder.started is not None:
        started = process_start(holder.pid)
        if started is not None and started != holder.started:
            return False  # the pid now belongs to another process
    return True


class Heartbeat:
    """Refreshes the lease's heartbeat from its own thread and its own connection."""

    def __init__(self, path: Path, pid: int, interval: float | None = None) -> None:
        self.path = path
        self.pid = pid
        self.interval = HEARTBEAT_SECONDS if interval is None else interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zsync-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=5.0)
        except sqlite3.Error:
            return  # the writer's own beats and the pid check still hold the lease
        try:
            while not self._stop.wait(self.interval):
                try:
                    conn.execute(
                        "UPDATE lease SET heartbeat_at = ? WHERE id = 1 AND pid = ?",
                        (time.time(), self.pid),
                    )
                except sqlite3.Error:
                    continue  # busy or briefly unreadable: the next beat tries again
        finally:
            conn.close()


class LeaseTable(Store):
    _heartbeat: Heartbeat | None = None

    def acquire_lease(self, command: str) -> None:
        host = socket.gethostname()
        pid = os.getpid()
        with self.transaction():
            holder = self._holder_row()
            if holder is not None and holder_alive(holder, host):
                raise LedgerLocked(
                    f"ledger {self.path} is in use by {holder.describe()}; wait for it to finish"
                )
            self.conn.execute(
                "INSERT OR REPLACE INTO lease (id, run_id, pid, host, command, acquired_at, "
                "heartbeat_at, started) VALUES (1, NULL, ?, ?, ?, ?, ?, ?)",
                (pid, host, command, now_iso(), time.time(), process_start(pid)),
            )
        self._lease_held = True
        self._heartbeat = Heartbeat(self.path, pid)
        self._heartbeat.start()

    def heartbeat(self) -> None:
        if self._lease_held:
            self.conn.execute(
                "UPDATE lease SET heartbeat_at = ? WHERE id = 1 AND pid = ?",
                (time.time(), os.getpid()),
            )

    def release_lease(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self._lease_held:
            self.conn.execute("DELETE FROM lease WHERE id = 1 AND pid = ?", (os.getpid(),))
            self._lease_held = False

    def lease_holder(self) -> LeaseHolder | None:
        holder = self._holder_row()
        if holder is None:
            return None
        return holder if holder_alive(holder, socket.gethostname()) else None

    def _holder_row(self) -> LeaseHolder | None:
        try:
            row = self.conn.execute(f"SELECT {_COLUMNS} FROM lease WHERE id = 1").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such column" not in str(exc):
                raise
            # A ledger of an older zsync opened read-only (not migrated): no start time.
            row = self.conn.execute(f"SELECT {_OLD_COLUMNS} FROM lease WHERE id = 1").fetchone()
        return None if row is None else LeaseHolder(*row)

    def close(self) -> None:
        try:
            self.release_lease()
        finally:
            super().close()
