"""Issue 22's server behaviours under SIGKILLs and lost answers, checked against the emulator's
truth: late commits, a list without totals and with capped pages, list items without
externalId, and dedupe that answers with deleted signals.

Each campaign kills runs at random moments while answers are lost after commit (on a server
that neither replays keys nor dedupes), then pushes and reconciles until both exit 0, and
asserts every record exactly once and the ledger settled. `make test` runs a small sample;
the full campaigns are marked slow (`make chaos`).
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.helpers import (
    FIGURES,
    check_exactly_once,
    created_count,
    env_for,
    ledger_rows,
    spawn,
    wait_for,
    write_records,
    zsync,
)
from tests.emulator.testing import running_emulator

LOST = {"drop_after_commit_rate": 0.08, "reset_rate": 0.03, "error_rate": 0.05}
HARDEST = {"idempotency": "ignore", "dedupe": "off"}
VARIANTS: dict[str, dict[str, Any]] = {
    "late-commits": {**HARDEST, "late_commit_rate": 0.06, "late_commit_seconds": 0.8},
    "no-totals-capped-pages": {**HARDEST, "list_fault": "no-headers", "list_page_cap": 7},
    "items-without-external-id": {**HARDEST, "list_drops_external_id_every": 4},
    "dedupe-keeps-deleted": {
        "idempotency": "ignore",
        "dedupe": "on",
        "duplicate_answer": "replay",
        "dedupe_keeps_deleted": True,
    },
}
# Longer than any late commit above: the emulator's server may still be committing until then.
HORIZON = "1.5"


def _settle(args: list[str], env: dict[str, str], max_runs: int = 10) -> list[tuple[str, int]]:
    """push, then reconcile, until a reconcile and the push after it both exit 0."""
    seen: list[tuple[str, int]] = []
    for n in range(max_runs):
        command = args if n % 2 == 0 else ["reconcile", "--poll-seconds", "30"]
        done = zsync(command, env)
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode in (0, 75), (seen, done.stderr[-2000:])
        seen.append((command[0], done.returncode))
        if len(seen) >= 2 and seen[-1][1] == 0 and seen[-2][1] == 0:
            return seen
    raise AssertionError(f"never settled: {seen}")


def _kill_runs(
    push: list[str], env: dict[str, str], emu: Any, rng: random.Random, kills: int
) -> None:
    killed = 0
    while killed < kills:
        before = created_count(emu)
        proc = spawn(push, env)
        time.sleep(rng.uniform(0.2, 1.0))
        if proc.poll() is None:
            proc.kill()
            killed += 1
            if created_count(emu) > before:
                FIGURES["kills_mid_send"] += 1
        _out, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        if proc.returncode != -signal.SIGKILL:
            assert proc.returncode in (0, 1, 75), err
    FIGURES["kills"] += killed


def campaign(
    tmp: Path, name: str, *, records: int, kills: int, seed: int, often: float = 1.0
) -> dict[str, Any]:
    """``often`` scales the rates of lost answers and late commits (a small sample needs
    more of them to meet any at all)."""
    ids = write_records(tmp / "in.jsonl", records, prefix="st", seed=seed)
    ledger = tmp / "zsync.db"
    settings = {"latency_ms": 20, "process_seconds": 0.2, "seed": seed, **LOST, **VARIANTS[name]}
    for rate in ("drop_after_commit_rate", "late_commit_rate"):
        settings[rate] = min(1.0, settings.get(rate, 0.0) * often)
    with running_emulator(**settings) as emu:
        env = env_for(emu, ledger, ZSYNC_DOUBT_HORIZON=HORIZON)
        push = ["push", "--input", str(tmp / "in.jsonl"), "--poll-seconds", "20"]
        _kill_runs(push, env, emu, random.Random(seed), kills)
        _settle(push, env)
        # A late commit lands after the runs: it must find its record already settled.
        wait_for(lambda: emu.truth()["late_pending"] == 0, 30, "late commits to land")
        truth = check_exactly_once(emu, ledger, ids)
        assert truth["faults"]["dropped_after_commit"] > 0, truth["faults"]
        if name == "late-commits":
            assert truth["faults"]["late_commit"] > 0, truth["faults"]
        return truth


def _returning_records_meet_their_deleted_signals(tmp: Path, *, records: int, seed: int) -> None:
    """Prune some records, bring them back: dedupe answers with the deleted signals. Each is
    a conflict saying so (exit 1), never an endless 75, and nothing else is touched."""
    ids = write_records(tmp / "in.jsonl", records, prefix="st", seed=seed)
    lines = (tmp / "in.jsonl").read_text().splitlines(keepends=True)
    (tmp / "part.jsonl").write_text("".join(lines[3:]))
    ledger = tmp / "zsync.db"
    settings = {"latency_ms": 20, "process_seconds": 0.2, "seed": seed, **LOST}
    with running_emulator(**settings, **VARIANTS["dedupe-keeps-deleted"]) as emu:
        env = env_for(emu, ledger, ZSYNC_DOUBT_HORIZON=HORIZON)
        push = ["push", "--input", str(tmp / "in.jsonl"), "--poll-seconds", "20"]
        _kill_runs(push, env, emu, random.Random(seed), 1)
        _settle(push, env)
        pruned = ["push", "--input", str(tmp / "part.jsonl"), "--prune", "--force"]
        assert zsync(pruned, env).returncode == 0
        codes = []
        for _ in range(4):
            done = zsync(push, env)
            assert "Traceback" not in done.stderr, done.stderr
            codes.append(done.returncode)
            if done.returncode in (0, 1):
                break
        assert codes[-1] == 1, codes
        conflicts = ledger_rows(ledger, "SELECT external_id FROM items WHERE status = 'conflict'")
        assert sorted(r[0] for r in conflicts) == ids[:3]
        truth = emu.truth()
    live = truth["live_by_external_id"]
    assert all(live.get(ext) == 1 for ext in ids[3:]), live
    assert all(truth["creates_by_external_id"].get(ext) == 1 for ext in ids)


SAMPLE = ("late-commits", "no-totals-capped-pages", "items-without-external-id")


@pytest.mark.parametrize("name", SAMPLE)
def test_server_truth_sample(tmp_path: Path, name: str) -> None:
    campaign(tmp_path, name, records=20, kills=1, seed=22, often=3.0)


def test_dedupe_keeping_deleted_signals_sample(tmp_path: Path) -> None:
    _returning_records_meet_their_deleted_signals(tmp_path, records=12, seed=22)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(VARIANTS) - {"dedupe-keeps-deleted"}))
def test_server_truth_with_lost_answers_and_kills(tmp_path: Path, name: str) -> None:
    campaign(tmp_path, name, records=150, kills=3, seed=2026)


@pytest.mark.slow
def test_dedupe_keeping_deleted_signals_with_kills(tmp_path: Path) -> None:
    _returning_records_meet_their_deleted_signals(tmp_path, records=120, seed=2026)
