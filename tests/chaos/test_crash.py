"""kill -9 at random moments across repeated runs, and Ctrl-C/SIGTERM: every record exactly once.

The emulator runs with server-side deduplication by externalId switched off, so the only thing
standing between a crash and a duplicate signal is zsync's ledger and Idempotency-Key.
"""

from __future__ import annotations

import random
import signal
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
)
from tests.emulator.testing import running_emulator

FAULTS = {"error_rate": 0.10, "reset_rate": 0.05, "drop_after_commit_rate": 0.05}


def sigkill_campaign(
    tmp: Path, *, records: int, kills: int, seed: int, latency_ms: float
) -> dict[str, int]:
    """Start push/reconcile runs and SIGKILL each at a random moment, `kills` times; finish
    with faults still on; check the exactly-once invariants. Returns what was survived."""
    rng = random.Random(seed)
    ids = write_records(tmp / "in.jsonl", records, prefix="crash", seed=seed)
    ledger = tmp / "zsync.db"
    with running_emulator(
        latency_ms=latency_ms, process_seconds=0.5, dedupe="off", seed=seed, **FAULTS
    ) as emu:
        env = env_for(emu, ledger)
        push = ["push", "--input", str(tmp / "in.jsonl")]
        killed = mid_send = finished = 0
        while killed < kills:
            roll = rng.random()
            if roll < 0.6:
                args = [*push, "--no-poll"]
            elif roll < 0.85 or not ledger.exists():
                args = [*push, "--poll-seconds", "30"]
            else:
                args = ["reconcile", "--poll-seconds", "30"]
            before = created_count(emu)
            proc = spawn(args, env)
            time.sleep(rng.uniform(0.1, 2.0))
            if proc.poll() is None:
                proc.kill()
                killed += 1
                if created_count(emu) > before:
                    mid_send += 1
            _out, err = proc.communicate(timeout=30)
            if proc.returncode != -signal.SIGKILL:
                # A run that ended on its own must have ended sanely, never as a crash.
                finished += 1
                assert proc.returncode in (0, 1, 75), err
                assert "Traceback" not in err, err
        FIGURES["kills"] += killed
        FIGURES["kills_mid_send"] += mid_send
        assert mid_send >= kills // 4, f"only {mid_send} of {killed} kills hit a sending run"

        finish([*push, "--poll-seconds", "60"], env)
        check_exactly_once(emu, ledger, ids)
        # Nothing is left behind: no lease, every run row closed except the killed ones.
        assert ledger_rows(ledger, "SELECT COUNT(*) FROM lease") == [(0,)]
    return {"killed": killed, "mid_send": mid_send, "finished": finished}


def test_sigkill_sample(tmp_path: Path) -> None:
    out = sigkill_campaign(tmp_path, records=100, kills=3, seed=11, latency_ms=60)
    assert out["killed"] == 3


@pytest.mark.slow
def test_sigkill_1000_records_at_least_20_kills(tmp_path: Path) -> None:
    out = sigkill_campaign(tmp_path, records=1000, kills=24, seed=2024, latency_ms=150)
    assert out["killed"] >= 20


def interrupt_and_resume(tmp: Path, sig: signal.Signals, *, records: int, twice: bool) -> None:
    """Stop a sending push with `sig`: exit 130, what the server accepted is in the ledger,
    the run is recorded as interrupted, and the next run finishes without a duplicate."""
    ids = write_records(tmp / "in.jsonl", records, prefix="stop")
    ledger = tmp / "zsync.db"
    # No dropped answers here: every signal the server created was answered, so the ledger
    # must know all of them once the interrupted run has finished its in-flight requests.
    with running_emulator(
        latency_ms=80, dedupe="off", error_rate=0.1, reset_rate=0.05, seed=5
    ) as emu:
        env = env_for(emu, ledger)
        args = ["push", "--input", str(tmp / "in.jsonl"), "--no-poll", "--concurrency", "4"]
        proc = spawn(args, env)
        wait_for(lambda: created_count(emu) >= 20, 30, "the first signals")
        proc.send_signal(sig)
        if twice:
            time.sleep(0.05)
            proc.send_signal(sig)
        started = time.monotonic()
        _out, err = proc.communicate(timeout=30)
        FIGURES["interrupts"] += 1
        assert proc.returncode == 130, err
        assert time.monotonic() - started < 10, "stopping took too long"
        assert "Traceback" not in err, err
        assert "interrupted" in err or "stopping" in err, err

        server = {s["externalId"]: s["publicId"] for s in emu.truth()["signals"]}
        assert 0 < len(server) < records
        accepted = dict(
            ledger_rows(
                ledger, "SELECT external_id, public_id FROM items WHERE public_id IS NOT NULL"
            )
        )
        emu.set_faults(latency_ms=5)  # the rest of the test is about correctness, not stopping
        if twice:
            # Aborted on the second signal: what it did record must be true; the rest is
            # settled by the next run replaying the same Idempotency-Keys.
            assert accepted.items() <= server.items()
        else:
            assert accepted == server, "the stopped run did not record what the server accepted"
            runs = ledger_rows(ledger, "SELECT exit_code, finished_at FROM runs")
            assert runs[-1][0] == 130 and runs[-1][1] is not None
        assert ledger_rows(ledger, "SELECT COUNT(*) FROM lease") == [(0,)]

        finish([*args[:-3], "--poll-seconds", "60"], env)
        check_exactly_once(emu, ledger, ids)


def test_ctrl_c_sample(tmp_path: Path) -> None:
    interrupt_and_resume(tmp_path, signal.SIGINT, records=200, twice=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "twice"),
    [(signal.SIGTERM, False), (signal.SIGINT, True), (signal.SIGTERM, True)],
    ids=["sigterm", "ctrl-c-twice", "sigterm-twice"],
)
def test_interrupt_then_resume(tmp_path: Path, sig: signal.Signals, twice: bool) -> None:
    interrupt_and_resume(tmp_path, sig, records=600, twice=twice)
