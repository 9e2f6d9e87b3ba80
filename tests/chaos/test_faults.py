"""An unreliable API: 503s, resets, answers lost after the server committed, 429 bursts with
Retry-After, high latency, and the API going down and coming back mid-run. Nothing is lost,
nothing is duplicated; a run that cannot finish in its budget says so (exit 75) and the next
run finishes.

Emulator restart: the emulator's data lives in its App object, not in its listener, so the
restart here (helpers.Outage) closes the listening socket and every open connection, refuses
connections for a while, then serves the same workspace on the same port after a warm-up.
Starting a new emulator on the port would lose every signal, which no real API restart does.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.helpers import (
    FIGURES,
    Outage,
    check_exactly_once,
    created_count,
    env_for,
    finish,
    ledger_rows,
    record_faults,
    spawn,
    wait_for,
    write_records,
    zsync,
)
from tests.emulator.testing import running_emulator
from zsync.emulator.server import RunningEmulator

BASE_FAULTS = {"error_rate": 0.10, "reset_rate": 0.05, "drop_after_commit_rate": 0.05}


class Storm(threading.Thread):
    """Turns faults on as the push progresses: a 429 burst, a latency spike, an outage."""

    def __init__(self, emu: RunningEmulator, records: int, base_latency: float) -> None:
        super().__init__(daemon=True)
        self.emu = emu
        self.records = records
        self.base_latency = base_latency
        self.done: list[str] = []
        self.error: BaseException | None = None

    def _at(self, share: float) -> None:
        wait_for(lambda: created_count(self.emu) >= share * self.records, 120, f"{share:.0%}")

    def run(self) -> None:
        try:
            self._at(0.10)
            self.emu.set_faults(rate_limit=5)  # 429 with Retry-After for most requests
            time.sleep(3.0)
            self.emu.set_faults(rate_limit=0)
            self.done.append("429 burst")
            self._at(0.35)
            self.emu.set_faults(latency_ms=400)
            time.sleep(2.0)
            self.emu.set_faults(latency_ms=self.base_latency)
            self.done.append("latency spike")
            self._at(0.60)
            Outage(self.emu).bounce(2.0)
            self.done.append("restart")
        except BaseException as exc:
            self.error = exc


def storm_run(tmp: Path, *, records: int, seed: int, storm: bool) -> dict[str, Any]:
    ids = write_records(tmp / "in.jsonl", records, prefix="fault", seed=seed)
    ledger = tmp / "zsync.db"
    latency = 30.0
    with running_emulator(
        latency_ms=latency,
        process_seconds=0.5,
        dedupe="off",
        seed=seed,
        warmup_seconds=1.5,
        **BASE_FAULTS,
    ) as emu:
        emu_any: Any = emu
        emu_any._app.started -= 10  # warm up only after the restart, not at the first start
        env = env_for(emu, ledger)
        conductor = Storm(emu, records, latency)
        if storm:
            conductor.start()
        codes = finish(["push", "--input", str(tmp / "in.jsonl"), "--poll-seconds", "60"], env)
        if storm:
            conductor.join(timeout=30)
            assert conductor.error is None, conductor.error
            assert conductor.done == ["429 burst", "latency spike", "restart"]
        truth = check_exactly_once(emu, ledger, ids)
    faults = truth["faults"]
    assert faults["error_503"] and faults["reset"] and faults["dropped_after_commit"], faults
    if storm:
        assert faults["rate_limited_429"], faults
    return {"codes": codes, "faults": faults}


def test_fault_mix_sample(tmp_path: Path) -> None:
    storm_run(tmp_path, records=200, seed=3, storm=False)


@pytest.mark.slow
def test_fault_storm_1000_records(tmp_path: Path) -> None:
    storm_run(tmp_path, records=1000, seed=99, storm=True)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fault_mix_seeds(tmp_path: Path, seed: int) -> None:
    storm_run(tmp_path, records=500, seed=seed, storm=False)


def test_time_budget_spent_exits_75_and_the_next_run_finishes(tmp_path: Path) -> None:
    ids = write_records(tmp_path / "in.jsonl", 200, prefix="budget")
    ledger = tmp_path / "zsync.db"
    with running_emulator(latency_ms=100, dedupe="off", seed=8, **BASE_FAULTS) as emu:
        env = env_for(emu, ledger)
        push = ["push", "--input", str(tmp_path / "in.jsonl")]
        started = time.monotonic()
        first = zsync([*push, "--no-poll", "--concurrency", "2", "--max-duration", "1"], env)
        assert first.returncode == 75, first.stderr
        assert time.monotonic() - started < 15
        assert "75" in first.stdout + first.stderr  # the summary names the pending exit
        sent = ledger_rows(ledger, "SELECT COUNT(*) FROM items WHERE status = 'submitted'")[0][0]
        assert 0 < sent < 200
        emu.set_faults(latency_ms=5)
        finish([*push, "--poll-seconds", "60"], env)
        check_exactly_once(emu, ledger, ids)


def test_processing_outlasts_the_poll_budget_exits_75_then_reconcile(tmp_path: Path) -> None:
    ids = write_records(tmp_path / "in.jsonl", 40, prefix="slowproc")
    ledger = tmp_path / "zsync.db"
    with running_emulator(process_seconds=3.0, dedupe="off") as emu:
        env = env_for(emu, ledger)
        first = zsync(["push", "--input", str(tmp_path / "in.jsonl"), "--poll-seconds", "0.5"], env)
        assert first.returncode == 75, first.stderr
        statuses = dict(ledger_rows(ledger, "SELECT status, COUNT(*) FROM items GROUP BY status"))
        assert statuses == {"submitted": 40}
        done = zsync(["reconcile", "--poll-seconds", "30"], env)
        assert done.returncode == 0, done.stderr
        check_exactly_once(emu, ledger, ids)


WAIT_BUDGET = 2.0  # EVAL_API_WAIT_SECONDS in the outage tests


def _api_dies_mid_run(tmp: Path, emu: RunningEmulator, records: int) -> dict[str, Any]:
    """Push `records`; once 30 have landed every connection is reset (the API is down for
    good). Returns how the run ended and what it cost."""
    ids = write_records(tmp / "in.jsonl", records, prefix="outage")
    env = env_for(
        emu, tmp / "zsync.db", EVAL_API_WAIT_SECONDS=str(WAIT_BUDGET), ZSYNC_RETRY_SCALE="0.2"
    )
    proc = spawn(["push", "--input", str(tmp / "in.jsonl"), "--no-poll"], env)
    wait_for(lambda: created_count(emu) >= 30, 30, "the first signals")
    resets_before = emu.truth()["faults"]["reset"]
    emu.set_faults(reset_rate=1.0)
    down = time.monotonic()
    _out, err = proc.communicate(timeout=600)
    return {
        "ids": ids,
        "env": env,
        "code": proc.returncode,
        "err": err,
        "seconds": round(time.monotonic() - down, 1),
        "requests_while_down": emu.truth()["faults"]["reset"] - resets_before,
    }


@pytest.mark.slow
def test_api_down_longer_than_the_wait_budget_exits_75_and_the_next_run_finishes(
    tmp_path: Path,
) -> None:
    with running_emulator(latency_ms=40, dedupe="off", seed=4) as emu:
        run = _api_dies_mid_run(tmp_path, emu, 150)
        assert run["code"] == 75, run["err"]
        assert "Traceback" not in run["err"]
        ledger = tmp_path / "zsync.db"
        errors = ledger_rows(ledger, "SELECT COUNT(*) FROM items WHERE status = 'error'")[0][0]
        assert errors > 0
        emu.set_faults(reset_rate=0.0)
        finish(["push", "--input", str(tmp_path / "in.jsonl"), "--poll-seconds", "60"], run["env"])
        check_exactly_once(emu, ledger, run["ids"])


@pytest.mark.slow
def test_api_down_for_good_ends_the_run_within_a_few_wait_budgets(tmp_path: Path) -> None:
    """Without an early stop, each pending record would spend its own wait budget on a dead
    API: about pending / concurrency x budget (with the defaults, 120 s and 8 in flight,
    hours for a few thousand records) and up to 12 requests per record. Once the API has
    failed every request for a whole wait budget, the run stops starting new work and
    exits 75, leaving the rest pending."""
    with running_emulator(latency_ms=40, dedupe="off", seed=6) as emu:
        run = _api_dies_mid_run(tmp_path, emu, 400)
        record_faults(emu.truth())
    FIGURES["outage_run_seconds"] = run["seconds"]
    FIGURES["outage_requests"] = run["requests_while_down"]
    assert run["code"] == 75, run["err"]
    assert run["seconds"] < 4 * WAIT_BUDGET + 5, (
        f"the run went on for {run['seconds']}s ({run['requests_while_down']} requests) "
        f"after the API went down, with a wait budget of {WAIT_BUDGET:g}s"
    )
