"""The run lease holds while its holder lives, and only then: issue 13, item 1; issue 23
(the lock is the kernel's, so a pid or a start time never decides on this host)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from zsync.errors import LedgerLocked
from zsync.ledger import Ledger, lease

OTHER_HOST = "build-box-7.example"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process on this host that is not this one: a lease holder stand-in."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def _hold(
    path: Path, pid: int, host: str, age: float, started: int | None = None, boot: str | None = None
) -> None:
    ledger = Ledger.open(path)
    with ledger.transaction():
        ledger.conn.execute(
            "INSERT OR REPLACE INTO lease (id, pid, host, command, acquired_at, heartbeat_at, "
            "started, boot) VALUES (1, ?, ?, 'push', '2026-01-01T00:00:00Z', ?, ?, ?)",
            (pid, host, time.time() - age, started, boot),
        )
    ledger.close()


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A process on this host that holds the lease of ``tmp_path / "l.db"``."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from zsync.ledger import Ledger;"
            "l = Ledger.open(Path(sys.argv[1])); l.lease.acquire('push');"
            "print('held', flush=True); time.sleep(60)",
            str(tmp_path / "l.db"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()
    proc.stdout.close()


def test_a_live_holder_keeps_the_lease_however_old_its_heartbeat(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    # A producer that paused for 20 minutes: its heartbeat row is old, its lock is held.
    path = tmp_path / "l.db"
    ledger = Ledger.open(path)
    ledger.conn.execute("UPDATE lease SET heartbeat_at = heartbeat_at - 1200")
    with pytest.raises(LedgerLocked, match=rf"pid {holder.pid} on"):
        ledger.lease.acquire("push")
    found = ledger.lease.holder()
    assert found is not None and found.pid == holder.pid  # status shows it as running
    ledger.close()


def test_a_dead_holder_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "l.db"
    _hold(path, dead.pid, socket.gethostname(), age=0)  # a heartbeat from just now
    ledger = Ledger.open(path)
    ledger.lease.acquire("push")
    ledger.close()


def test_a_killed_holder_not_yet_reaped_is_taken_over_at_once(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    # SIGKILL leaves a zombie until the parent (a shell, cron, a test) collects it: its pid
    # still answers kill(pid, 0), but its files are closed and its lock is gone.
    holder.kill()
    path = tmp_path / "l.db"
    deadline = time.monotonic() + 10
    # The kernel lets go of the lock as the last thread of the process exits.
    while lease.lock_held(path) or lease.process_state(holder.pid) not in ("Z", None):
        assert time.monotonic() < deadline, "the killed holder's lock was never released"
        time.sleep(0.01)
    ledger = Ledger.open(path)
    ledger.lease.acquire("push")
    ledger.close()


def test_a_reused_pid_is_not_the_holder(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    start = lease.process_start(sleeper.pid)
    if start is None:
        pytest.skip("no /proc here: process start times are unknown")
    path = tmp_path / "l.db"
    # The holder died and its pid now belongs to another process (another start time).
    _hold(path, sleeper.pid, socket.gethostname(), age=0, started=start - 1)
    ledger = Ledger.open(path)
    ledger.lease.acquire("push")
    ledger.close()


def test_another_hosts_holder_expires_only_past_the_stated_margin(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    _hold(path, 1, OTHER_HOST, age=lease.LEASE_EXPIRY_SECONDS - 30)
    ledger = Ledger.open(path)
    with pytest.raises(LedgerLocked, match=OTHER_HOST):
        ledger.lease.acquire("push")
    ledger.close()
    _hold(path, 1, OTHER_HOST, age=lease.LEASE_EXPIRY_SECONDS + 30)
    ledger = Ledger.open(path)
    ledger.lease.acquire("push")
    ledger.close()


def test_another_hostnames_row_from_this_kernel_is_answered_by_the_lock(tmp_path: Path) -> None:
    """Another container on this machine (same boot id, another hostname): a free lock means
    its holder is gone, whatever its heartbeat. From another kernel, the row still holds."""
    if lease.boot_id() is None:
        pytest.skip("no boot id here: every other hostname counts as another machine")
    path = tmp_path / "l.db"
    _hold(path, 1, OTHER_HOST, age=0, boot="another-kernel")
    ledger = Ledger.open(path)
    assert ledger.lease.holder() is not None  # status: running elsewhere
    with pytest.raises(LedgerLocked, match=OTHER_HOST):
        ledger.lease.acquire("push")
    ledger.close()
    _hold(path, 1, OTHER_HOST, age=0, boot=lease.boot_id())
    ledger = Ledger.open(path)
    assert ledger.lease.holder() is None  # status: lock free
    ledger.lease.acquire("push")
    ledger.close()


def test_the_heartbeat_beats_on_its_own_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing on the run's thread calls heartbeat(): the lease is refreshed all the same
    (a producer on stdin may keep that thread waiting for minutes)."""
    monkeypatch.setattr(lease, "HEARTBEAT_SECONDS", 0.02)
    path = tmp_path / "l.db"
    ledger = Ledger.open(path)
    ledger.lease.acquire("push")
    ledger.conn.execute("UPDATE lease SET heartbeat_at = 1.0")
    deadline = time.monotonic() + 30
    while ledger.conn.execute("SELECT heartbeat_at FROM lease").fetchone()[0] == 1.0:
        assert time.monotonic() < deadline, "the lease was never refreshed"
        time.sleep(0.02)
    ledger.close()
    reopened = Ledger.open(path)
    assert reopened.lease.holder() is None  # released on close, beats stopped
    reopened.close()


def test_a_ledger_reached_through_a_symlink_shares_the_lock(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    link = tmp_path / "other-name.db"
    link.symlink_to(tmp_path / "l.db")
    ledger = Ledger.open(link)
    with pytest.raises(LedgerLocked, match=rf"pid {holder.pid} on"):
        ledger.lease.acquire("push")
    ledger.close()


def test_a_run_refused_the_lock_names_the_holder_that_has_not_written_its_row_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs started together: the one refused the lock may look before the holder has
    written its row; it waits for that row and names the holder (make chaos: "in use by
    another run", naming nobody)."""
    path = tmp_path / "l.db"
    Ledger.open(path).close()
    script = (
        "import fcntl, os, sys, time; from pathlib import Path; from zsync.ledger import Ledger;"
        "from zsync.ledger.lease import lock_path;"
        "fd = os.open(lock_path(Path(sys.argv[1])), os.O_RDWR | os.O_CREAT);"
        "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.readline();"
        "os.close(fd); l = Ledger.open(Path(sys.argv[1])); l.lease.acquire('push');"
        "print('named', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "locked"
        real_sleep = time.sleep

        def holder_writes_its_row(seconds: float) -> None:
            # The refused run is waiting: now the holder writes its row.
            if not proc.stdin.closed:  # type: ignore[union-attr]
                proc.stdin.write("go\n")  # type: ignore[union-attr]
                proc.stdin.close()  # type: ignore[union-attr]
                assert proc.stdout.readline().strip() == "named"  # type: ignore[union-attr]
            real_sleep(seconds)

        monkeypatch.setattr(lease.time, "sleep", holder_writes_its_row)
        ledger = Ledger.open(path)
        with pytest.raises(LedgerLocked) as refused:
            ledger.lease.acquire("push")
        ledger.close()
        assert f"pid {proc.pid}" in str(refused.value)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
