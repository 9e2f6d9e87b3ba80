"""Global options anywhere, -q quiet on a clean first run, a readable key file warned about
(issue 23), over real HTTP against the emulator."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_KEY, run_cli


def _input(n: int = 2, bad: bool = False) -> str:
    records: list[dict[str, Any]] = [
        {"kind": "external_text", "externalId": f"g-{i}", "signalType": "note", "text": "hi"}
        for i in range(n)
    ]
    if bad:
        records.append({"kind": "external_text", "externalId": "g-bad"})
    Path("in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return "in.jsonl"


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_is_silent_on_a_clean_first_run_wherever_it_is_given(
    api_env: dict[str, str], where: str
) -> None:
    args = ["push", "-i", _input(), "--no-poll"]
    args = ["-q", *args] if where == "before" else [*args, "-q"]
    result = run_cli(args, env=api_env)
    assert result.code == 0, result.err
    assert (result.out, result.err) == ("", "")  # no "notice: created a new ledger"
    assert Path("zsync.db").exists()


def test_quiet_still_says_what_needs_a_person(api_env: dict[str, str]) -> None:
    result = run_cli(["push", "-i", _input(bad=True), "--no-poll", "--quiet"], env=api_env)
    assert result.code == 1
    assert "invalid: in.jsonl:3" in result.err


def test_verbose_and_log_format_work_after_the_subcommand(api_env: dict[str, str]) -> None:
    result = run_cli(
        ["push", "-i", _input(bad=True), "--no-poll", "-v", "--log-format", "json"], env=api_env
    )
    assert result.code == 1, result.err
    events = [json.loads(line) for line in result.err.splitlines()]
    assert {e["event"] for e in events} >= {"invalid", "created"}


def test_status_takes_global_options_after_it(api_env: dict[str, str]) -> None:
    assert run_cli(["push", "-i", _input(), "--no-poll", "-q"], env=api_env).code == 0
    result = run_cli(["status", "--debug", "-q"], env=api_env)
    assert result.code == 0, result.err
    assert "2 items" in result.out


@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o640, True), (0o600, False)])
def test_a_key_file_others_can_read_is_warned_about(emulator: Any, mode: int, warned: bool) -> None:
    env_file = Path("zsync.env")
    env_file.write_text(f"ZENTRIK_API_BASE={emulator.url}\nZENTRIK_API_KEY={TEST_KEY}\n")
    os.chmod(env_file, mode)
    result = run_cli(["-q", "push", "-i", _input(), "--no-poll", "--env-file", str(env_file)])
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    if warned:
        assert len(lines) == 1
        assert str(env_file) in lines[0] and "chmod 600" in lines[0]
        assert f"{mode:04o}" in lines[0]
        assert TEST_KEY not in result.err
    else:
        assert lines == []
