"""kill -9 at arbitrary moments, then re-run: every record exactly once on the server."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import TEST_KEY
from tests.emulator.testing import running_emulator
from tests.waiting import wait_until
from tests.zsync_cmd import ZSYNC


def _zsync(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*ZSYNC, *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def crash_and_finish(
    tmp: Path,
    *,
    records: int,
    kills: int,
    seed: int,
    faults: dict[str, float],
    latency_ms: float = 30.0,
) -> dict[str, Any]:
    """Push with faults on, SIGKILL it `kills` times at random moments, then finish."""
    rng = random.Random(seed)
    lines = [
        json.dumps(
            {
                "kind": "external_text",
                "externalId": f"crash-{i}",
                "signalType": "transcript",
                "text": f"call {i} " + "words " * rng.randint(20, 400),
            }
        )
        for i in range(records)
    ]
    (tmp / "in.jsonl").write_text("\n".join(lines) + "\n")
    # dedupe off: only the Idempotency-Key stands between a resend and a duplicate.
    with running_emulator(
        latency_ms=latency_ms, process_seconds=0.2, dedupe="off", **faults
    ) as emu:
        env = {
            "ZENTRIK_API_BASE": emu.url,
            "ZENTRIK_API_KEY": TEST_KEY,
            "ZSYNC_LEDGER": str(tmp / "zsync.db"),
            "ZSYNC_RETRY_SCALE": "0.02",
        }
        args = ["push", "--input", str(tmp / "in.jsonl"), "--no-poll"]
        killed = 0
        for _ in range(kills):
            proc = _zsync(args, env)
            time.sleep(rng.uniform(0.3, 1.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()
        emu.set_faults(error_rate=0.0, reset_rate=0.0, drop_after_commit_rate=0.0)
        final = subprocess.run(
            [*ZSYNC, *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        assert final.returncode == 0, final.stderr
        rec = subprocess.run(
            [*ZSYNC, "reconcile", "--poll-seconds", "30"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        assert rec.returncode == 0, rec.stderr
        truth = emu.truth()
    creates = truth["creates_by_external_id"]
    ledger = dict(
        sqlite3.connect(tmp / "zsync.db").execute(
            "SELECT external_id, public_id FROM items WHERE status = 'processed'"
        )
    )
    server = {s["externalId"]: s["publicId"] for s in truth["signals"]}
    return {
        "killed": killed,
        "creates": creates,
        "ledger": ledger,
        "server": server,
        "statuses": {s["status"] for s in truth["signals"]},
    }


def test_sigkill_at_random_moments_never_loses_or_duplicates(tmp_path: Path) -> None:
    out = crash_and_finish(
        tmp_path,
        records=400,
        kills=4,
        seed=7,
        faults={"drop_after_commit_rate": 0.05, "error_rate": 0.05},
    )
    assert out["killed"] >= 1
    assert len(out["creates"]) == 400
    assert max(out["creates"].values()) == 1, "an externalId was created twice"
    assert out["ledger"] == out["server"]
    assert out["statuses"] == {"processed"}


def test_sigterm_stops_cleanly_with_130_and_the_next_run_resumes(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {
                "kind": "external_text",
                "externalId": f"t-{i}",
                "signalType": "transcript",
                "text": f"call {i}",
            }
        )
        for i in range(400)
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    with running_emulator(latency_ms=30, dedupe="off") as emu:
        env = {
            "ZENTRIK_API_BASE": emu.url,
            "ZENTRIK_API_KEY": TEST_KEY,
            "ZSYNC_LEDGER": str(tmp_path / "zsync.db"),
        }
        args = ["push", "--input", str(tmp_path / "in.jsonl"), "--no-poll", "--concurrency", "2"]
        proc = _zsync(args, env)
        # Stopped once it has sent something: while it is sending, however fast that is.
        wait_until(lambda: emu.truth()["creates_by_external_id"], "the first create")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert b"Traceback" not in err
        done_before = len(emu.truth()["creates_by_external_id"])
        assert 0 < done_before < 400
        db = sqlite3.connect(tmp_path / "zsync.db")
        submitted = db.execute("SELECT COUNT(*) FROM items WHERE status = 'submitted'").fetchone()[
            0
        ]
        db.close()
        assert submitted == done_before  # everything the server accepted is in the ledger
        emu.set_faults(latency_ms=0)
        final = subprocess.run(
            [*ZSYNC, *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        assert final.returncode == 0, final.stderr
        creates = emu.truth()["creates_by_external_id"]
        assert len(creates) == 400 and set(creates.values()) == {1}
