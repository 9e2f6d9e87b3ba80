"""What an operator sees: progress on a terminal, log lines in cron mail, JSON logs, metrics."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.emulator.testing import running_emulator


def _write(n: int, prefix: str = "o") -> None:
    Path("in.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "kind": "external_text",
                    "externalId": f"{prefix}-{i}",
                    "signalType": "transcript",
                    "text": f"call {i}",
                }
            )
            + "\n"
            for i in range(n)
        )
    )


def test_without_a_terminal_progress_is_a_log_line_every_interval(api_env: dict[str, str]) -> None:
    with running_emulator(latency_ms=50) as emu:
        env = {**api_env, "ZENTRIK_API_BASE": emu.url}
        _write(120)
        result = run_cli(
            [
                "--progress-interval",
                "1",
                "push",
                "--input",
                "in.jsonl",
                "--no-poll",
                "--concurrency",
                "2",
            ],
            env=env,
        )
    assert result.code == 0, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("progress: ")]
    assert 1 <= len(lines) <= 6, result.err
    assert " done · " in lines[0] and " sent · " in lines[0] and "/s · " in lines[0]
    assert "\r" not in result.err  # never a redrawn bar in cron mail


def test_on_a_terminal_progress_is_one_redrawn_line_with_eta(api_env: dict[str, str]) -> None:
    with running_emulator(latency_ms=40) as emu:
        _write(150)
        env = {**os.environ, **api_env, "ZENTRIK_API_BASE": emu.url}
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zsync",
                "push",
                "--input",
                "in.jsonl",
                "--no-poll",
                "--concurrency",
                "2",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
        )
        os.close(slave)
        seen = b""
        while True:
            ready, _, _ = select.select([master], [], [], 20)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        proc.wait(timeout=30)
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        proc.stdout.close()
        os.close(master)
    text = seen.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "\r\x1b[K" in text and "/150 done" in text and "ETA" in text
    assert "150 created" in out


def test_json_logs_are_one_object_per_line_and_carry_no_key(
    emulator: Any, api_env: dict[str, str]
) -> None:
    _write(3)
    emulator.set_faults(reject_external_ids=["o-1"])
    result = run_cli(
        ["--log-format", "json", "-v", "push", "--input", "in.jsonl", "--no-poll"], env=api_env
    )
    assert result.code == 1
    records = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
    assert records, result.err
    rejected = [r for r in records if r["event"] == "rejected"]
    assert rejected[0]["externalId"] == "o-1" and rejected[0]["http_status"] == 422
    assert rejected[0]["level"] == "error" and rejected[0]["run_id"] == 1
    assert {"time", "level", "run_id", "externalId", "attempt", "http_status", "message"} <= set(
        records[0]
    )
    assert api_env["ZENTRIK_API_KEY"] not in result.err + result.out


def test_metrics_file_is_written_for_the_textfile_collector(
    emulator: Any, api_env: dict[str, str]
) -> None:
    _write(4)
    emulator.set_faults(reject_external_ids=["o-2"])
    result = run_cli(
        ["push", "--input", "in.jsonl", "--no-poll", "--metrics-file", "zsync.prom"], env=api_env
    )
    assert result.code == 1
    text = Path("zsync.prom").read_text()
    assert 'zsync_run_items{command="push",outcome="created"} 3' in text
    assert 'zsync_run_items{command="push",outcome="rejected"} 1' in text
    assert 'zsync_run_exit_code{command="push"} 1' in text
    assert 'zsync_ledger_items{status="submitted"} 3' in text
    assert "zsync_items_pending 3" in text
    assert "# TYPE zsync_run_duration_seconds gauge" in text
    assert "zsync_last_success_timestamp_seconds" not in text  # no clean run yet
    again = run_cli(["reconcile", "--metrics-file", "zsync.prom"], env=api_env)
    assert again.code == 0, again.err
    text = Path("zsync.prom").read_text()
    assert "zsync_last_success_timestamp_seconds" in text
    assert not [p for p in Path(".").iterdir() if p.name.startswith(".zsync.prom.")]
