"""The rows of issue 22 this suite covers, as a user meets them: each scenario runs real zsync
processes against the emulator with one server behaviour switched on and returns what a user
would notice (duplicates, records lost, exit codes, where the key shows up).

Run by tests/chaos/test_server_truth.py, and by hand for the figures in docs/server-truth.md:

    .venv/bin/python -m tests.chaos.server_truth_rows
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.chaos.helpers import env_for, wait_for, write_records, zsync
from tests.emulator.testing import running_emulator
from zsync.emulator.server import RunningEmulator

Row = dict[str, Any]


def _creates(emu: RunningEmulator, ids: list[str]) -> tuple[int, int]:
    """(duplicates, lost) over ``ids``: extra creates, and records with no live signal."""
    truth = emu.truth()
    creates = truth["creates_by_external_id"]
    live = truth["live_by_external_id"]
    dup = sum(max(0, creates.get(i, 0) - 1) for i in ids)
    lost = sum(1 for i in ids if live.get(i, 0) == 0)
    return dup, lost


def _push(tmp: Path, env: dict[str, str], *extra: str, name: str = "in.jsonl") -> int:
    done = zsync(["push", "-i", str(tmp / name), "--poll-seconds", "20", *extra], env)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode


def _until_zero(tmp: Path, env: dict[str, str], runs: int = 4) -> list[int]:
    codes: list[int] = []
    for _ in range(runs):
        codes.append(_push(tmp, env))
        if codes[-1] in (0, 1):
            break
    return codes


def capped_pages_without_totals(tmp: Path, records: int = 200) -> Row:
    """List without X-Total-Count, pages capped at 50: verify, verify --repair, push."""
    ids = write_records(tmp / "in.jsonl", records, prefix="cap")
    with running_emulator(process_seconds=0.0, dedupe="off", idempotency="ignore") as emu:
        env = env_for(emu, tmp / "z.db")
        first = _push(tmp, env)
        emu.set_faults(list_fault="no-headers", list_page_cap=50)
        verify = zsync(["verify", "--json"], env)
        gone = json.loads(verify.stdout)["classes"]["gone"]["count"] if verify.stdout else None
        repair = zsync(["verify", "--repair"], env)
        push = _push(tmp, env)
        dup, lost = _creates(emu, ids)
    return {
        "first": first,
        "verify": verify.returncode,
        "gone": gone,
        "repair": repair.returncode,
        "repair_says": repair.stderr.strip().splitlines()[-1:] if repair.stderr else [],
        "push": push,
        "duplicates": dup,
        "lost": lost,
    }


def items_without_external_id(tmp: Path, records: int = 60) -> Row:
    """Some list items lack externalId, some signals drifted on the server: verify --repair."""
    ids = write_records(tmp / "in.jsonl", records, prefix="noext")
    with running_emulator(process_seconds=0.0, dedupe="off", list_drops_external_id_every=3) as emu:
        env = env_for(emu, tmp / "z.db")
        first = _push(tmp, env)
        headers = {"Authorization": f"Bearer {emu.config.api_key}"}
        for n in range(1, 10):  # drift: a new name on the server
            requests.patch(
                f"{emu.url}/external/v1/signals/SIGNAL-{n}",
                json={"name": f"renamed {n}"},
                headers=headers,
                timeout=10,
            ).raise_for_status()
        repair = zsync(["verify", "--repair"], env)
        push = _push(tmp, env)
        dup, lost = _creates(emu, ids)
    return {
        "first": first,
        "repair": repair.returncode,
        "traceback": "Traceback" in repair.stderr or "AssertionError" in repair.stderr,
        "push": push,
        "duplicates": dup,
        "lost": lost,
    }


def _delete(emu: RunningEmulator, public_id: str) -> None:
    headers = {"Authorization": f"Bearer {emu.config.api_key}"}
    url = f"{emu.url}/external/v1/signals/{public_id}"
    requests.delete(url, headers=headers, timeout=10).raise_for_status()


def submitted_signal_deleted(tmp: Path, records: int = 30) -> Row:
    """Signals deleted on the server while zsync still polls them."""
    ids = write_records(tmp / "in.jsonl", records, prefix="del")
    with running_emulator(process_seconds=1.0, dedupe="off") as emu:
        env = env_for(emu, tmp / "z.db")
        first = zsync(["push", "-i", str(tmp / "in.jsonl"), "--no-poll"], env).returncode
        for n in (1, 2, 3):
            _delete(emu, f"SIGNAL-{n}")
        pushes = [_push(tmp, env) for _ in range(3)]
        reconcile = zsync(["reconcile", "--poll-seconds", "20"], env)
        status = zsync(["status"], env)
        dup, lost = _creates(emu, ids)
    return {
        "first": first,
        "pushes": pushes,
        "reconcile": reconcile.returncode,
        "status_shows_deleted": "deleted" in status.stdout,
        "duplicates": dup,
        "deleted_on_server": 3,
        "lost_other": lost - 3,
    }


def dedupe_answers_deleted(tmp: Path, records: int = 20) -> Row:
    """Prune 5, the records return, dedupe answers with the deleted signals."""
    ids = write_records(tmp / "in.jsonl", records, prefix="dd")
    lines = (tmp / "in.jsonl").read_text().splitlines(keepends=True)
    (tmp / "part.jsonl").write_text("".join(lines[5:]))
    with running_emulator(
        process_seconds=0.0, dedupe="on", duplicate_answer="replay", dedupe_keeps_deleted=True
    ) as emu:
        env = env_for(emu, tmp / "z.db")
        first = _push(tmp, env)
        prune = _push(tmp, env, "--prune", "--force", name="part.jsonl")
        pushes = [_push(tmp, env) for _ in range(3)]
        reconcile = zsync(["reconcile", "--poll-seconds", "20"], env)
        truth = emu.truth()
        missing = sum(1 for i in ids if truth["live_by_external_id"].get(i, 0) == 0)
        status = zsync(["status"], env)
    return {
        "first": first,
        "prune": prune,
        "pushes": pushes,
        "reconcile": reconcile.returncode,
        "reconcile_says": reconcile.stderr.strip().splitlines()[:1],
        "not_on_server": missing,
        "status_says_conflict": "conflict" in status.stdout,
    }


def late_commits(tmp: Path, records: int = 300, horizon: str | None = "6") -> Row:
    """Creates that commit after zsync gave up on them, on a server without key replay."""
    ids = write_records(tmp / "in.jsonl", records, prefix="late")
    with running_emulator(
        process_seconds=0.0,
        dedupe="off",
        idempotency="ignore",
        late_commit_rate=0.01,
        late_commit_seconds=4.0,
        seed=22,
    ) as emu:
        extra = {"ZSYNC_DOUBT_HORIZON": horizon} if horizon is not None else {}
        env = env_for(emu, tmp / "z.db", **extra)
        codes = _until_zero(tmp, env, runs=5)
        wait_for(lambda: emu.truth()["late_pending"] == 0, 30, "late commits to land")
        truth = emu.truth()
        dup, lost = _creates(emu, ids)
    return {
        "late": truth["faults"]["late_commit"],
        "pushes": codes,
        "duplicates": dup,
        "lost": lost,
    }


def key_echoed_in_adopted_rows(tmp: Path, records: int = 20) -> Row:
    """A server that echoes the key in jobId: rows adopted by --repair and by the in-doubt
    lookup must not hold it, nor may export and show print it."""
    secret = "zk_echo_" + secrets.token_hex(12)
    ids = write_records(tmp / "in.jsonl", records, prefix="echo")
    places: dict[str, bool] = {}
    with running_emulator(
        api_key=secret,
        echo_key_in="jobId",
        process_seconds=0.0,
        dedupe="off",
        idempotency="ignore",
        drop_after_commit_rate=0.3,
        seed=5,
    ) as emu:
        env = {**env_for(emu, tmp / "z.db"), "ZENTRIK_API_KEY": secret}
        _until_zero(tmp, env)
        places["in-doubt lookup: ledger"] = _holds(tmp, secret)
        for p in tmp.glob("z.db*"):
            os.remove(p)
        zsync(["verify", "--repair"], env)
        places["verify --repair: ledger"] = _holds(tmp, secret)
        export = zsync(["export"], env)
        show = zsync(["show", ids[0]], env)
        places["export"] = secret in export.stdout + export.stderr
        places["show"] = secret in show.stdout + show.stderr
        dup, lost = _creates(emu, ids)
    return {"key_found_in": [k for k, v in places.items() if v], "duplicates": dup, "lost": lost}


def _holds(tmp: Path, secret: str) -> bool:
    db = sqlite3.connect(tmp / "z.db")
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return any(secret.encode() in p.read_bytes() for p in tmp.glob("z.db*") if p.is_file())


ROWS: dict[str, Callable[[Path], Row]] = {
    "capped pages, no totals": capped_pages_without_totals,
    "items without externalId, drift": items_without_external_id,
    "submitted signal deleted on the server": submitted_signal_deleted,
    "dedupe answers with a deleted signal": dedupe_answers_deleted,
    "late commits (no key replay)": late_commits,
    "key echoed in adopted rows": key_echoed_in_adopted_rows,
}


def main(names: list[str]) -> None:
    for name, scenario in ROWS.items():
        if names and not any(n in name for n in names):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            print(f"{name}: {scenario(Path(tmp))}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
