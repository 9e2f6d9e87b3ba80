"""zsync against every server variant the contract leaves open, with lost answers and SIGKILLs.

Variants: Idempotency-Key honoured or ignored; identity dedupe off, answering 200 (replay),
409 naming the signal, or a bare 409; list orders. Each campaign kills runs at random moments
with answers being lost after commit, then pushes and reconciles until both exit 0, and
asserts the emulator's truth: every record exactly once, the ledger settled.
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
    spawn,
    write_records,
    zsync,
)
from tests.emulator.testing import running_emulator

FAULTS = {"drop_after_commit_rate": 0.08, "reset_rate": 0.03, "error_rate": 0.05}

HARDEST = {"idempotency": "ignore", "dedupe": "off"}
VARIANTS: dict[str, dict[str, Any]] = {
    "keys-ignored-no-dedupe": HARDEST,
    "keys-honoured-no-dedupe": {"idempotency": "honour", "dedupe": "off"},
    "keys-ignored-dedupe-200": {"idempotency": "ignore", "dedupe": "on"},
    "keys-ignored-409-named": {
        "idempotency": "ignore",
        "duplicate_answer": "conflict",
        "conflict_body": "named",
    },
    "keys-ignored-409-bare": {
        "idempotency": "ignore",
        "duplicate_answer": "conflict",
        "conflict_body": "bare",
    },
    "keys-honoured-409-bare": {"duplicate_answer": "conflict", "conflict_body": "bare"},
    "list-newest": {**HARDEST, "list_order": "newest"},
    "list-random": {**HARDEST, "list_order": "random"},
    "list-unstable": {**HARDEST, "list_order": "unstable"},
}
QUICK = ("keys-ignored-no-dedupe", "keys-ignored-409-bare", "list-unstable")


def settle(args: list[str], env: dict[str, str], max_runs: int = 16) -> list[tuple[str, int]]:
    """push, then reconcile, until a reconcile and the push after it both exit 0."""
    seen: list[tuple[str, int]] = []
    for n in range(max_runs):
        command = args if n % 2 == 0 else ["reconcile", "--poll-seconds", "30"]
        done = zsync(command, env)
        assert "Traceback" not in done.stderr, done.stderr
        # 4: a listing not proven complete (an order that moves under the reader) refuses to
        # look up or resend anything; the next run reads it again.
        assert done.returncode in (0, 1, 4, 75), (seen, done.stderr[-2000:])
        seen.append((command[0], done.returncode))
        if len(seen) >= 2 and seen[-1][1] == 0 and seen[-2][1] == 0:
            return seen
    raise AssertionError(f"never settled: {seen}")


def campaign(tmp: Path, variant: dict[str, Any], *, records: int, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    ids = write_records(tmp / "in.jsonl", records, prefix="var", seed=seed)
    ledger = tmp / "zsync.db"
    with running_emulator(
        latency_ms=20, process_seconds=0.2, seed=seed, **FAULTS, **variant
    ) as emu:
        env = env_for(emu, ledger)
        push = ["push", "--input", str(tmp / "in.jsonl"), "--poll-seconds", "20"]
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
            _out, err = proc.communicate(timeout=60)
            assert "Traceback" not in err, err
            if proc.returncode != -signal.SIGKILL:
                assert proc.returncode in (0, 1, 4, 75), err
        FIGURES["kills"] += killed
        settle(push, env)
        truth = check_exactly_once(emu, ledger, ids)
        assert truth["faults"]["dropped_after_commit"] > 0, truth["faults"]


@pytest.mark.parametrize("name", QUICK)
def test_variant_sample(tmp_path: Path, name: str) -> None:
    campaign(tmp_path, VARIANTS[name], records=40, kills=1, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_with_lost_answers_and_kills(tmp_path: Path, name: str) -> None:
    campaign(tmp_path, VARIANTS[name], records=150, kills=2, seed=2026)
