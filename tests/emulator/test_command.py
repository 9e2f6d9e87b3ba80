"""`zsync emulator` as a user runs it: flags, the listening line, port file, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from zsync.emulator.command import emulator_command

# The command is registered on the main group by cli.py; run it standalone so these tests
# depend on nothing but the emulator.
LAUNCH = "from zsync.emulator.command import emulator_command; emulator_command()"


def test_help_shows_an_example() -> None:
    result = CliRunner().invoke(emulator_command, ["--help"])
    assert result.exit_code == 0
    assert "zsync emulator --port 8080" in result.output
    assert "--drop-after-commit-rate" in result.output


def test_non_loopback_host_is_refused_without_allow_remote() -> None:
    result = CliRunner().invoke(emulator_command, ["--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "--allow-remote" in result.output


def test_out_of_range_rate_is_a_usage_error() -> None:
    result = CliRunner().invoke(emulator_command, ["--error-rate", "1.5"])
    assert result.exit_code == 2


def _launch(
    tmp_path: Path, *args: str, key: str | None = None
) -> tuple[subprocess.Popen[str], int]:
    port_file = tmp_path / "port"
    env = {k: v for k, v in os.environ.items() if k != "ZENTRIK_API_KEY"}
    if key is not None:
        env["ZENTRIK_API_KEY"] = key
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "--port", "0", "--port-file", str(port_file), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 10
    while not port_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"emulator did not start: {process.communicate()}")
        time.sleep(0.02)
    return process, int(port_file.read_text())


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serves_on_a_free_port_and_stops_cleanly(tmp_path: Path, stop_signal: int) -> None:
    process, port = _launch(tmp_path, "--inspect")
    try:
        ready = requests.get(f"http://127.0.0.1:{port}/api/readyz", timeout=5)
        assert ready.status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/__emulator/state", timeout=5).ok
    finally:
        process.send_signal(stop_signal)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()  # not left running into the tests after this one
            process.communicate()
            raise AssertionError(f"the emulator ignored signal {stop_signal}") from None
    assert process.returncode == 0
    assert stdout.strip() == (
        f"zsync emulator listening on http://127.0.0.1:{port}/api (key: zsync-dev-key)"
    )
    assert "Traceback" not in stderr


def test_key_from_environment_is_required_and_not_shown(tmp_path: Path) -> None:
    process, port = _launch(tmp_path, key="env-secret-key")
    try:
        url = f"http://127.0.0.1:{port}/api/external/v1/auth/context"
        dev = requests.get(url, headers={"Authorization": "Bearer zsync-dev-key"}, timeout=5)
        env = requests.get(url, headers={"Authorization": "Bearer env-secret-key"}, timeout=5)
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=10)
    assert dev.status_code == 401
    assert env.status_code == 200
    assert "(key: custom key)" in stdout
    assert "env-secret-key" not in stdout + stderr


def test_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    process, port = _launch(tmp_path)
    try:
        second = subprocess.run(
            [sys.executable, "-c", LAUNCH, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=10,
        )
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert second.returncode == 1
    assert second.stderr.strip().count("\n") == 0
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--readyz-extra-check", "cache"],
        ["--readyz-extra-check", "=degraded"],
        ["--readyz-extra-check", "database=down"],
        ["--delete-status", "202"],
        ["--list-order", "alphabetical"],
        ["--max-inflight", "-1"],
        ["--idempotency", "sometimes"],
        ["--receipt-workspace", ""],
    ],
)
def test_bad_variant_flags_are_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(emulator_command, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_variant_flags_reach_the_running_server(tmp_path: Path) -> None:
    process, port = _launch(
        tmp_path,
        "--inspect",
        "--idempotency",
        "ignore",
        "--dedupe",
        "off",
        "--receipt-without-job-id",
        "--receipt-workspace",
        "elsewhere",
        "--echo-key-in",
        "message",
        "--delete-status",
        "200",
        "--readyz-extra-check",
        "cache=degraded",
        "--list-order",
        "newest",
        "--list-hides-external-id",
        "--max-inflight",
        "5",
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        with requests.Session() as http:
            http.headers["Authorization"] = "Bearer zsync-dev-key"
            ready = http.get(f"{api}/readyz", timeout=5).json()
            body = {"text": "t", "signalType": "transcript", "externalId": "x"}
            url = f"{api}/external/v1/signals"
            receipts = [
                http.post(url, json=body, headers={"Idempotency-Key": "k"}, timeout=5).json()
                for _ in range(2)
            ]
            listed = http.get(url, timeout=5).json()
            deleted = http.delete(f"{url}/{receipts[0]['publicId']}", timeout=5)
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert ready["checks"]["cache"] == "degraded"
    assert [r["publicId"] for r in receipts] == ["SIGNAL-1", "SIGNAL-2"]
    assert "jobId" not in receipts[0]
    assert receipts[0]["workspaceId"] == "elsewhere"
    assert receipts[0]["message"] == "zsync-dev-key"
    assert [s["publicId"] for s in listed] == ["SIGNAL-2", "SIGNAL-1"]
    assert "externalId" not in listed[0]
    assert deleted.status_code == 200
