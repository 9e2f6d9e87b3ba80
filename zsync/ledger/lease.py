"""The run lease: one run at a time per ledger; a live holder is never displaced."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from zsync.errors import LedgerLocked
from zsync.ledger.store import Store, now_iso

LEASE_STALE_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    pid: int
    host: str
    command: str
    acquired_at: str
    heartbeat_at: float

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} ({self.command}, since {self.acquired_at})"


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


class LeaseTable(Store):
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

    def close(self) -> None:
        try:
            if self._lease_held:
                self.release_lease()
        finally:
            super().close()
