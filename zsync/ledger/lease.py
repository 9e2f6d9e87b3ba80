"""The run lease: one run at a time per ledger; a live holder is never displaced.

Mutual exclusion is a lock the kernel keeps and lets go of when its holder dies, however it
dies: ``flock`` on ``LEDGER.lock``, a file beside the ledger. A second run that cannot take
it is refused at once (exit 5). Process ids and start times play no part, so it holds
across PID namespaces (containers sharing a volume) as well as on one host.

The ``lease`` row says who holds the lock (pid, host, command, since when) for messages
and ``zsync status``; a row whose lock is free was left by a run that was killed. While a
run holds the lease a :class:`Heartbeat` thread, on its own SQLite connection, refreshes
``heartbeat_at`` every :data:`HEARTBEAT_SECONDS`. The heartbeat matters only where the lock
may not reach: a row written from another host whose heartbeat is younger than
:data:`LEASE_EXPIRY_SECONDS` is still honoured (a network file system mounted without
shared locks gives each machine a lock of its own).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from zsync.errors import LedgerLocked
from zsync.ledger.table import Handle, Table, now_iso

HEARTBEAT_SECONDS = 10.0
# A row from another host, where the lock may not reach, is honoured until it has missed
# this many seconds of heartbeats (30 beats): far longer than any pause of a live process.
LEASE_EXPIRY_SECONDS = 300.0

# The row's columns, newest last: a ledger of an older zsync opened read-only lacks the last.
_COLUMNS = ("pid", "host", "command", "acquired_at", "heartbeat_at", "started", "boot")


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds the lease, as its row says."""

    pid: int
    host: str
    command: str
    acquired_at: str
    heartbeat_at: float
    started: int | None = None
    boot: str | None = None  # the holder's kernel boot id

    def describe(self) -> str:
        """The holder in a few words, for messages."""
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


def boot_id() -> str | None:
    """This kernel's boot id: shared by every container on the machine, whatever its
    hostname or PID namespace; None where unknown."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None


def same_kernel(holder: LeaseHolder) -> bool:
    """Was ``holder`` running on this kernel? Then the lock beside the ledger answers for it
    whatever its hostname (another container on this machine)."""
    return holder.boot is not None and holder.boot == boot_id()


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


# How long a run refused the lock waits for its holder's row to name it.
NAME_WAIT_SECONDS = 2.0


def holder_alive(holder: LeaseHolder, this_host: str, now: float | None = None) -> bool:
    """Can ``holder`` still be running, by its row alone? Asked only where the lock gives no
    answer: a row from another host, or a ledger no zsync with the lock has run on."""
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


def lock_path(ledger: Path) -> Path:
    """The file whose lock is the lease: ``LEDGER.lock``, beside the ledger (the file itself,
    not a symbolic link to it: two links to one ledger share one lock)."""
    real = Path(os.path.realpath(ledger))
    return real.with_name(real.name + ".lock")


# Locks this process holds, by the lock file's (device, inode), with the ledger handle that
# holds each: a lease that a handle of this process left unreleased (a library caller that
# never closed it) is handed to the next handle, not refused.
_HELD: dict[tuple[int, int], tuple[int, weakref.ref[LeaseTable]]] = {}


def _take_lock(path: Path, owner: LeaseTable) -> int | None:
    """A descriptor holding the lock on ``path``; None if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        mine = _HELD.get(key)
        if mine is None:
            return None
        previous = mine[1]()
        if previous is not None:  # it no longer holds what it left behind
            previous._lock_fd = None
            previous._held = False
        _HELD[key] = (mine[0], weakref.ref(owner))
        return mine[0]
    except BaseException:
        os.close(fd)
        raise
    _HELD[key] = (fd, weakref.ref(owner))
    return fd


def _drop_lock(fd: int) -> None:
    with contextlib.suppress(OSError):
        st = os.fstat(fd)
        _HELD.pop((st.st_dev, st.st_ino), None)
    os.close(fd)  # the only descriptor of its open file: the lock goes with it


def lock_held(ledger: Path) -> bool | None:
    """Does some process hold the lease's lock? None when there is no lock file (a ledger
    no zsync with the lock has run on). Takes nothing: a shared lock, let go at once."""
    try:
        fd = os.open(lock_path(ledger), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) in _HELD:
            return True  # this process holds it
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


class Heartbeat:
    """Refreshes the lease's heartbeat from its own thread and its own connection."""

    def __init__(self, path: Path, pid: int, interval: float | None = None) -> None:
        self.path = path
        self.pid = pid
        self.interval = HEARTBEAT_SECONDS if interval is None else interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zsync-heartbeat", daemon=True)

    def start(self) -> None:
        """Start beating."""
        self._thread.start()

    def stop(self) -> None:
        """Stop beating, and wait for the thread (unless called from it)."""
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


class LeaseTable(Table):
    """``ledger.lease``: the run lease (the lock beside the ledger and the row that names its
    holder) and the heartbeat thread that keeps the row fresh while this handle holds it."""

    def __init__(self, ledger: Handle) -> None:
        super().__init__(ledger)
        self._path = ledger.path
        self._held = False
        self._heartbeat: Heartbeat | None = None
        self._lock_fd: int | None = None

    def acquire(self, command: str) -> None:
        """Take the lease for ``command``, or raise LedgerLocked naming who holds it."""
        host = socket.gethostname()
        pid = os.getpid()
        path = self._path
        try:
            fd = _take_lock(lock_path(path), self)
        except OSError as exc:
            raise LedgerLocked(
                f"ledger {path}: cannot lock {lock_path(path)}: {exc.strerror or exc}"
            ) from None
        if fd is None:
            holder = self._named_holder(host)
            who = holder.describe() if holder is not None else "another run"
            raise LedgerLocked(f"ledger {path} is in use by {who}; wait for it to finish")
        try:
            with self._ledger.transaction():
                holder = self._holder_row()
                # The lock cannot answer for a row from another host: a network mount may
                # keep locks per machine. On this host the lock is the whole answer.
                if (
                    holder is not None
                    and holder.host != host
                    and not same_kernel(holder)
                    and holder_alive(holder, host)
                ):
                    raise LedgerLocked(
                        f"ledger {path} is in use by {holder.describe()}; wait for it to finish"
                    )
                self._conn.execute(
                    "INSERT OR REPLACE INTO lease (id, run_id, pid, host, command, acquired_at, "
                    "heartbeat_at, started, boot) VALUES (1, NULL, ?, ?, ?, ?, ?, ?, ?)",
                    (pid, host, command, now_iso(), time.time(), process_start(pid), boot_id()),
                )
        except BaseException:
            _drop_lock(fd)
            raise
        self._lock_fd = fd
        self._held = True
        self._heartbeat = Heartbeat(path, pid)
        self._heartbeat.start()

    def _named_holder(self, host: str) -> LeaseHolder | None:
        """The row naming the lock's holder. A run that has just taken the lock writes its
        row a moment later (two runs started together): wait that moment, briefly, rather
        than name nobody or the run before it."""
        deadline = time.monotonic() + NAME_WAIT_SECONDS
        while True:
            holder = self._holder_row()
            fresh = holder is not None and (holder.host != host or holder_alive(holder, host))
            if fresh or time.monotonic() >= deadline:
                return holder
            time.sleep(0.05)

    def heartbeat(self) -> None:
        """Refresh the row's heartbeat from the writer (besides the heartbeat thread's)."""
        if self._held:
            self._conn.execute(
                "UPDATE lease SET heartbeat_at = ? WHERE id = 1 AND pid = ?",
                (time.time(), os.getpid()),
            )

    def release(self) -> None:
        """Stop the heartbeat, delete this run's row, let go of the lock (each if held)."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        try:
            if self._held:
                self._conn.execute("DELETE FROM lease WHERE id = 1 AND pid = ?", (os.getpid(),))
                self._held = False
        finally:
            if self._lock_fd is not None:  # after the row: the next holder writes its own
                _drop_lock(self._lock_fd)
                self._lock_fd = None

    def holder(self) -> LeaseHolder | None:
        """Who holds the lease: the row, while its lock is held (or, where the lock cannot
        tell, while the row's holder can still be running)."""
        holder = self._holder_row()
        if holder is None:
            return None
        host = socket.gethostname()
        held = lock_held(self._path)
        if held:
            return holder
        lock_answers = held is not None and (holder.host == host or same_kernel(holder))
        if not lock_answers and holder_alive(holder, host):
            return holder
        return None

    def _holder_row(self) -> LeaseHolder | None:
        # A ledger of an older zsync opened read-only (not migrated) lacks the newer columns.
        have = {str(r[1]) for r in self._conn.execute("PRAGMA table_info(lease)")}
        columns = [c for c in _COLUMNS if c in have]
        row = self._conn.execute(f"SELECT {', '.join(columns)} FROM lease WHERE id = 1").fetchone()
        return None if row is None else LeaseHolder(**dict(zip(columns, row, strict=True)))
