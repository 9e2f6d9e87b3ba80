"""Bounded reading (issue 13, items 3 and 7): an endless line costs bounded memory and the
time budget still ends the run; an over-long or too-deep record is that record's problem and
the good records around it land."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.chaos.helpers import FIGURES, env_for, spawn
from tests.conftest import TEST_KEY, run_cli
from tests.zsync_cmd import ZSYNC
from zsync.emulator.server import RunningEmulator

BUDGET = 3.0  # --max-duration
PEAK_LIMIT_MB = 400  # the default record limit is 16 MiB; the whole process stays far below


def _peak_mb(proc: subprocess.Popen[str], timeout: float) -> float:
    """The process's peak resident memory (VmHWM), read until it exits."""
    peak = 0.0
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            raise AssertionError(f"still running after {timeout}s (budget {BUDGET}s)")
        time.sleep(0.05)
    return peak


ENDLESS = {
    "a device file": (["-i", "/dev/zero", "--format", "jsonl"], None),
    "a pipe on stdin": (["-i", "-", "--format", "jsonl"], "zeros"),
    "a source program": (["--source-cmd", "cat /dev/zero"], None),
    "a JSON array on stdin": (["-i", "-", "--format", "json"], "array"),
}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to read memory")
@pytest.mark.parametrize("how", sorted(ENDLESS))
def test_an_endless_line_is_bounded_and_the_budget_ends_the_run(
    how: str, tmp_path: Path, emulator: RunningEmulator
) -> None:
    args, feed = ENDLESS[how]
    env = env_for(emulator, tmp_path / "z.db")
    started = time.monotonic()
    if feed is None:
        proc = spawn(["push", *args, "--max-duration", str(BUDGET), "--no-poll"], env)
        feeder = None
    else:
        # A producer that never stops writing: zeros, or one string in an array.
        head = 'printf \'[{"text": "\'; ' if feed == "array" else ""
        body = "yes | tr -d '\\n'" if feed == "array" else "cat /dev/zero"
        feeder = subprocess.Popen(["sh", "-c", head + body], stdout=subprocess.PIPE)
        proc = subprocess.Popen(
            [*ZSYNC, "push", *args, "--max-duration", str(BUDGET), "--no-poll"],
            env=child_env(env),
            stdin=feeder.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        peak = _peak_mb(proc, timeout=BUDGET + 30)
        _out, err = proc.communicate()
    finally:
        if feeder is not None:
            feeder.kill()
            feeder.wait()
            assert feeder.stdout is not None
            feeder.stdout.close()
    took = time.monotonic() - started
    FIGURES["endless_peak_mb"].append(round(peak))
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]
    assert proc.returncode == 1, err[-2000:]
    [line] = [x for x in err.splitlines() if x.startswith("invalid: ")]
    assert "record is longer than 16,777,216 bytes (--max-record-bytes); skipped" in line
    assert took < BUDGET + 20
    assert peak < PEAK_LIMIT_MB, f"peak {peak:.0f} MB"


def child_env(env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ZENTRIK_", "ZSYNC_"))}
    return {**base, **env}


def _good(ext: str) -> dict[str, str]:
    return {"kind": "external_text", "externalId": ext, "signalType": "t", "text": ext}


def test_records_around_an_over_long_one_land(tmp_path: Path, emulator: RunningEmulator) -> None:
    big = json.dumps({**_good("big"), "text": "x" * (17 << 20)})  # over the 16 MiB default
    lines = [json.dumps(_good("a")), big, json.dumps(_good("b"))]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "in.json").write_text(
        "[" + ",".join(lines).replace('"a"', '"c"', 2).replace('"b"', '"d"', 2) + "]"
    )
    env = {"ZENTRIK_API_BASE": emulator.url, "ZENTRIK_API_KEY": TEST_KEY}
    for name, origin in (("in.jsonl", "in.jsonl:2"), ("in.json", "in.json:1:")):
        done = run_cli(["push", "-i", name, "--no-poll", "--ledger", "z.db"], env)
        assert done.code == 1, done.err
        [line] = [x for x in done.err.splitlines() if x.startswith("invalid: ")]
        assert line.startswith(f"invalid: {origin}") and "--max-record-bytes" in line, line
    FIGURES["faulty_records"] += 2
    landed = set(emulator.truth()["creates_by_external_id"])
    FIGURES["blocked"] += len({"a", "b", "c", "d"} - landed)
    assert landed == {"a", "b", "c", "d"}


def test_a_deep_element_in_an_array_does_not_stop_the_file(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    dup = (
        '{"kind": "external_text", "externalId": "d", "signalType": "t", "text": "1", "text": "2"}'
    )
    body = ",".join([json.dumps(_good("a")), deep, json.dumps(_good("b")), dup])
    (tmp_path / "in.json").write_text(f"[{body}]")
    env = {"ZENTRIK_API_BASE": emulator.url, "ZENTRIK_API_KEY": TEST_KEY}
    done = run_cli(["push", "-i", "in.json", "--no-poll", "--ledger", "z.db"], env)
    assert done.code == 1, done.err
    invalid = [x for x in done.err.splitlines() if x.startswith("invalid: ")]
    assert invalid == ["invalid: in.json:1:79: nesting deeper than 64 levels (record [1])"]
    warnings = [x for x in done.err.splitlines() if "given twice" in x]
    assert warnings == [
        "warning: in.json[3]: key 'text' given twice in one object; the last value is used"
    ]
    FIGURES["faulty_records"] += 1
    landed = set(emulator.truth()["creates_by_external_id"])
    FIGURES["blocked"] += len({"a", "b", "d"} - landed)
    assert landed == {"a", "b", "d"}


def test_the_limit_is_a_flag(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(json.dumps(_good("a" * 50)) + "\n")
    done = run_cli(["preview", "-i", "in.jsonl", "--max-record-bytes", "20"])
    assert done.code == 1
    assert "invalid: in.jsonl:1: record is longer than 20 bytes" in done.out
