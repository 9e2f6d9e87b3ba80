"""Shared fixtures: every test runs in its own directory with a clean environment, so no
test can read a real key or write a ledger outside its temp dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.emulator.testing import emulator_fixture
from zsync.cli import main
from zsync.engine import retry

__all__ = ["CliResult", "emulator", "emulator_fixture", "run_cli"]

TEST_KEY = "zsync-dev-key"
DOUBT_HORIZON = "0.3"

# Identity dedupe off: a resend that is not an idempotent replay becomes a second signal on
# the emulator, so "one create per externalId" proves zsync's own exactly-once, not the
# server's forgiveness.
emulator = emulator_fixture(dedupe="off")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith(("ZENTRIK_", "ZSYNC_", "EVAL_API_")):
            monkeypatch.delenv(name)
    # Retries in tests wait milliseconds, not seconds (still real waits, still bounded), and
    # stop after 12 attempts: at that speed a 120 s budget is thousands of attempts at an
    # endpoint a test leaves unanswered. Real runs have no cap (tests/unit/test_retry.py).
    retry.set_testing(0.01, max_attempts=12)
    # The emulator commits a create before it answers (unless told to commit late): sends in
    # doubt need no minute-long horizon here. Tests of the horizon set their own.
    monkeypatch.setenv("ZSYNC_DOUBT_HORIZON", DOUBT_HORIZON)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    retry.set_testing(None)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(
    args: list[str], env: dict[str, str] | None = None, stdin: str | None = None
) -> CliResult:
    """Run the real entry point (exit-code mapping included) with captured output."""
    runner = CliRunner()
    code = 0
    with runner.isolation(input=stdin, env=env) as (out, err, _mixed):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out_s = out.getvalue().decode()
        err_s = err.getvalue().decode()
    return CliResult(code, out_s, err_s)


@pytest.fixture
def api_env(emulator) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"ZENTRIK_API_BASE": emulator.url, "ZENTRIK_API_KEY": TEST_KEY}
