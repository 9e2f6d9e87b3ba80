"""Two runs on one ledger (a cron overlap): one works, the other exits 5 at once naming the
holder; a lock left behind by a SIGKILLed run is taken over by the next run."""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import pytest

from tests.chaos.helpers import (
    FIGURES,
    check_exactly_once,
    created_count,
    env_for,
    finish,
    ledger_rows,
    spawn,
    wait_for,
    write_records,
    zsync,
)
from tests.emulator.testing import running_emulator


def _lease(ledger: Path) -> list[tuple[int, str, str]]:
    if not ledger.exists():
        return []
    try:
        return [
            (int(pid), str(host), str(command))
            for pid, host, command in ledger_rows(ledger, "SELECT pid, host, command FROM lease")
        ]
    except Exception:  # the file exists before its schema does
        return []


def test_second_run_exits_5_at_once_naming_the_holder(tmp_path: Path) -> None:
    # long enough (about 8 s at 60 ms and two at a time) to outlast four refused starts
    # and a status on a busy machine
    ids = write_records(tmp_path / "in.jsonl", 250, prefix="cron")
    ledger = tmp_path / "zsync.db"
    with running_emulator(latency_ms=60, dedupe="off") as emu:
        env = env_for(emu, ledger)
        push = ["push", "--input", str(tmp_path / "in.jsonl"), "--concurrency", "2"]
        first = spawn([*push, "--no-poll"], env)
        wait_for(lambda: created_count(emu) >= 5, 30, "the first run to send")
        assert _lease(ledger) == [(first.pid, socket.gethostname(), "push")]

        for args in ([*push, "--no-poll"], ["reconcile"], ["retry-failed"]):
            started = time.monotonic()
            second = zsync(args, env)
            elapsed = time.monotonic() - started
            FIGURES["overlaps"] += 1
            assert second.returncode == 5, (args, second.stderr)
            assert elapsed < 4, f"{args[0]} waited {elapsed:.1f}s instead of refusing at once"
            assert f"pid {first.pid}" in second.stderr and socket.gethostname() in second.stderr
            assert "Traceback" not in second.stderr
            assert len(second.stderr.strip().splitlines()) == 1, second.stderr

        status = zsync(["status"], env)
        assert status.returncode == 0 and f"pid {first.pid}" in status.stdout, status.stdout

        _out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
        # The refused runs wrote nothing: one run row, the first one's.
        assert ledger_rows(ledger, "SELECT command, exit_code FROM runs") == [("push", 0)]
        finish([*push, "--poll-seconds", "60"], env)
        check_exactly_once(emu, ledger, ids)


@pytest.mark.parametrize(
    "round_", [0, *(pytest.param(n, marks=pytest.mark.slow) for n in range(1, 12))]
)
def test_two_pushes_started_together(tmp_path: Path, round_: int) -> None:
    """Started in the same instant, with no ledger yet: exactly one runs, one exits 5."""
    ids = write_records(tmp_path / "in.jsonl", 200, prefix="race")
    ledger = tmp_path / "zsync.db"
    with running_emulator(latency_ms=20, dedupe="off") as emu:
        env = env_for(emu, ledger)
        args = ["push", "--input", str(tmp_path / "in.jsonl"), "--poll-seconds", "60"]
        procs = [spawn(args, env), spawn(args, env)]
        errs = [p.communicate(timeout=120)[1] for p in procs]
        assert sorted(p.returncode for p in procs) == [0, 5], errs
        winner = next(p.pid for p in procs if p.returncode == 0)
        loser = next(err for p, err in zip(procs, errs, strict=True) if p.returncode == 5)
        assert f"pid {winner}" in loser and "Traceback" not in loser, loser
        FIGURES["overlaps"] += 1
        check_exactly_once(emu, ledger, ids)


def test_lock_of_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    ids = write_records(tmp_path / "in.jsonl", 120, prefix="orphan")
    ledger = tmp_path / "zsync.db"
    with running_emulator(latency_ms=60, dedupe="off") as emu:
        env = env_for(emu, ledger)
        push = ["push", "--input", str(tmp_path / "in.jsonl")]
        victim = spawn([*push, "--no-poll"], env)
        wait_for(lambda: created_count(emu) >= 20, 30, "the run to send")
        victim.kill()
        victim.communicate()
        FIGURES["kills"] += 1
        FIGURES["kills_mid_send"] += 1
        # The lease row is still there, naming a process that no longer exists...
        assert _lease(ledger) == [(victim.pid, socket.gethostname(), "push")]
        with pytest.raises(ProcessLookupError):
            os.kill(victim.pid, 0)
        status = zsync(["status"], env)
        assert status.returncode == 0
        assert re.search(r"lock: free", status.stdout), status.stdout
        # ...and the next run takes it over, finishes the work, and releases it.
        finish([*push, "--poll-seconds", "60"], env)
        assert _lease(ledger) == []
        check_exactly_once(emu, ledger, ids)
