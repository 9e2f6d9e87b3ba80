"""A live run never loses its lock (issue 13, item 1).

Before the fix a holder whose heartbeat was 120 s old was taken for dead even though its
process was alive: a JSON-array producer on stdin that paused for 135 s (or a SIGSTOP) was
enough for a second run to work the same ledger alongside the first. Waiting minutes in a
test is not needed to show it: the lease row is aged by hand, exactly as a long pause ages
it, and the second run must still be refused while the first lives."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

from tests.chaos.helpers import (
    FIGURES,
    check_exactly_once,
    env_for,
    ledger_rows,
    spawn,
    wait_for,
    write_records,
    zsync,
)
from tests.zsync_cmd import ZSYNC
from zsync.emulator.server import RunningEmulator

AGE = 1000.0  # seconds: far past the old 120 s and the other-host expiry (300 s)


def _age_lease(ledger: Path) -> float:
    db = sqlite3.connect(ledger, isolation_level=None, timeout=10)
    try:
        db.execute("UPDATE lease SET heartbeat_at = heartbeat_at - ?", (AGE,))
        return float(db.execute("SELECT heartbeat_at FROM lease").fetchone()[0])
    finally:
        db.close()


def _lease_row(ledger: Path) -> list[tuple[object, ...]]:
    if not ledger.exists():
        return []
    try:
        return ledger_rows(ledger, "SELECT pid, heartbeat_at FROM lease")
    except Exception:  # the first run may still be creating it
        return []


def _second_run(tmp_path: Path, env: dict[str, str], holder: subprocess.Popen[str]) -> None:
    """A second push while the first lives: refused at once, naming the first."""
    FIGURES["lease_probes"] += 1
    second = zsync(["push", "-i", str(tmp_path / "other.jsonl"), "--no-poll"], env, timeout=60)
    if second.returncode != 5:
        FIGURES["overlapped"] += 1
    assert second.returncode == 5, second.stderr
    assert f"pid {holder.pid}" in second.stderr and "in use" in second.stderr, second.stderr


def test_a_producer_that_pauses_keeps_the_lease(tmp_path: Path, emulator: RunningEmulator) -> None:
    ledger = tmp_path / "z.db"
    env = env_for(emulator, ledger)
    records = [
        {"kind": "external_text", "externalId": f"p-{i}", "signalType": "t", "text": f"r {i}"}
        for i in range(300)
    ]
    write_records(tmp_path / "other.jsonl", 50, prefix="other")
    # A run reading a JSON array from a producer on its stdin (spawn() gives no stdin pipe).
    producer = subprocess.Popen(
        [*_zsync_argv(), "push", "-i", "-", "--format", "json", "--no-poll"],
        env=_env(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert producer.stdin is not None
        # The first half of the array, then a pause with the pipe open.
        producer.stdin.write("[" + ",".join(json.dumps(r) for r in records[:150]) + ",")
        producer.stdin.flush()
        wait_for(lambda: bool(_lease_row(ledger)), 30, "the first run to take the lease")
        aged = _age_lease(ledger)  # as a 1,000 s pause would leave it
        _second_run(tmp_path, env, producer)
        # The heartbeat beats on its own thread while the reader waits on stdin.
        wait_for(lambda: float(_lease_row(ledger)[0][1]) > aged, 30, "a heartbeat during the pause")
        rest = ",".join(json.dumps(r) for r in records[150:]) + "]"
        _out, err = producer.communicate(rest, timeout=120)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.communicate()
    assert producer.returncode == 0, err
    check_exactly_once(emulator, ledger, [r["externalId"] for r in records], settled=("submitted",))


def test_a_stopped_holder_keeps_the_lease(tmp_path: Path, emulator: RunningEmulator) -> None:
    """SIGSTOP stops the heartbeat too; the pid still lives, so the lease is still held."""
    ledger = tmp_path / "z.db"
    env = env_for(emulator, ledger)
    emulator.set_faults(latency_ms=20)
    ids = write_records(tmp_path / "in.jsonl", 400, prefix="stop")
    write_records(tmp_path / "other.jsonl", 50, prefix="other")
    first = spawn(
        ["push", "-i", str(tmp_path / "in.jsonl"), "--no-poll", "--concurrency", "2"], env
    )
    wait_for(lambda: bool(_lease_row(ledger)), 30, "the first run to take the lease")
    os.kill(first.pid, signal.SIGSTOP)
    try:
        _age_lease(ledger)
        _second_run(tmp_path, env, first)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    emulator.set_faults(latency_ms=0)
    _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    check_exactly_once(emulator, ledger, ids, settled=("submitted",))


def _zsync_argv() -> list[str]:
    return list(ZSYNC)


def _env(env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ZENTRIK_", "ZSYNC_"))}
    return {**base, **env}
