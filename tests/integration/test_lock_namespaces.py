"""The run lock holds across PID namespaces (issue 23).

Two containers sharing a volume and a hostname: a push in a PID namespace of its own could
not see the holder's pid, took it for dead and took the lease over: 524 of 600 records were
created twice and both runs exited 0. The lock is now the kernel's (``flock`` on
``LEDGER.lock``): the second run exits 5 at once, naming the holder, wherever its pid lives.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY
from tests.emulator.testing import running_emulator
from tests.zsync_cmd import ZSYNC

RECORDS = 600


def _unshare() -> list[str]:
    """The command prefix that runs a program in a PID namespace of its own."""
    tool = shutil.which("unshare")
    if tool is None:
        pytest.skip("no unshare(1) here: cannot make a PID namespace")
    argv = [tool, "--pid", "--fork", "--mount-proc"]
    probe = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"unshare --pid is not permitted here: {probe.stderr.strip()}")
    return argv


def _records(path: Path, prefix: str, n: int) -> Path:
    """``n`` transcripts, ``PREFIX-0`` onwards, as JSONL."""
    rows = (
        {
            "kind": "external_text",
            "externalId": f"{prefix}-{i}",
            "signalType": "transcript",
            "text": f"call {i}",
        }
        for i in range(n)
    )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _env(url: str, ledger: Path) -> dict[str, str]:
    return {
        "ZENTRIK_API_BASE": url,
        "ZENTRIK_API_KEY": TEST_KEY,
        "ZSYNC_LEDGER": str(ledger),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }


def _holder_pid(ledger: Path) -> int | None:
    try:
        db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1)
        try:
            row = db.execute("SELECT pid FROM lease").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return None if row is None else int(row[0])


def test_a_push_in_another_pid_namespace_is_refused_while_the_holder_lives(
    tmp_path: Path,
) -> None:
    unshare = _unshare()
    source = _records(tmp_path / "in.jsonl", "ns", RECORDS)
    ledger = tmp_path / "z.db"
    with running_emulator(dedupe="off") as emu:
        env = _env(emu.url, ledger)
        # The first run holds the lease while it waits for its producer: as long as the
        # test keeps the pipe open, whatever the machine's speed.
        first = subprocess.Popen(
            [*ZSYNC, "push", "-i", "-", "--format", "jsonl", "--no-poll"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while _holder_pid(ledger) != first.pid:
                assert first.poll() is None, "the first run ended before it held the lease"
                assert time.monotonic() < deadline, "the first run never took the lease"
                time.sleep(0.05)
            second = subprocess.run(
                [*unshare, *ZSYNC, "push", "-i", str(source), "--no-poll"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            _out, err = first.communicate(source.read_text(), timeout=120)
        finally:
            first.kill()
            first.wait()
        creates = emu.truth()["creates_by_external_id"]
    twice = sum(1 for n in creates.values() if n > 1)
    assert second.returncode == 5, second.stderr
    assert f"in use by pid {first.pid} on" in second.stderr, second.stderr
    assert twice == 0, f"{twice} of {RECORDS} records created twice"
    assert first.returncode == 0, err
    assert len(creates) == RECORDS


def _other_hostname(name: str) -> list[str]:
    """The command prefix that runs a program under hostname ``name`` on this kernel (a
    container of its own, sharing the ledger's volume)."""
    tool = shutil.which("unshare")
    if tool is None:
        pytest.skip("no unshare(1) here: cannot make a UTS namespace")
    argv = [tool, "--uts", "sh", "-c", f'hostname {name} && exec "$@"', "sh"]
    probe = subprocess.run([*argv, "hostname"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0 or probe.stdout.strip() != name:
        pytest.skip(f"unshare --uts is not permitted here: {probe.stderr.strip()}")
    return argv


def test_a_killed_holder_under_another_hostname_on_this_machine_is_taken_over_at_once(
    tmp_path: Path,
) -> None:
    """Two containers on one machine, different hostnames, one volume: the lock answers for
    both (one kernel), so the holder's row is honoured while it lives and not a moment after
    a SIGKILL. (Before: its row was trusted like another machine's, for 300 s of beats.)"""
    other = _other_hostname("zsync-box-b")
    source = _records(tmp_path / "in.jsonl", "h", 20)
    ledger = tmp_path / "z.db"
    with running_emulator(dedupe="off") as emu:
        env = _env(emu.url, ledger)
        holder = subprocess.Popen(
            [*other, *ZSYNC, "push", "-i", "-", "--format", "jsonl", "--no-poll"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while _holder_pid(ledger) is None:
                assert holder.poll() is None, "the holder ended before it held the lease"
                assert time.monotonic() < deadline, "the holder never took the lease"
                time.sleep(0.05)
            push = [*ZSYNC, "push", "-i", str(source), "--no-poll"]
            refused = subprocess.run(push, env=env, capture_output=True, text=True, timeout=120)
            assert refused.returncode == 5, refused.stderr
            assert "on zsync-box-b" in refused.stderr, refused.stderr
            holder.kill()
            holder.wait()
            after = subprocess.run(push, env=env, capture_output=True, text=True, timeout=120)
        finally:
            holder.kill()
            holder.wait()
            assert holder.stdin is not None
            holder.stdin.close()
        assert after.returncode == 0, after.stderr
        assert sorted(emu.truth()["creates_by_external_id"]) == sorted(f"h-{i}" for i in range(20))
