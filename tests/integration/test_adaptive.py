"""Adaptive concurrency and polls timed by the learned processing time, over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.emulator.testing import running_emulator


def _write(n: int, prefix: str = "a") -> None:
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


def _push(url: str, *args: str, code: int = 0, pre: tuple[str, ...] = ()) -> dict[str, Any]:
    env = {"ZENTRIK_API_BASE": url, "ZENTRIK_API_KEY": "zsync-dev-key"}
    result = run_cli([*pre, "push", "--input", "in.jsonl", "--json", *args], env=env)
    assert result.code == code, result.err
    summary: dict[str, Any] = json.loads(result.out)
    summary["stderr"] = result.err
    return summary


def _requests(truth: dict[str, Any], prefix: str) -> int:
    return sum(n for k, n in truth["requests"].items() if k.startswith(prefix))


def test_a_distant_server_gets_more_than_eight_requests_in_flight() -> None:
    with running_emulator(latency_ms=60) as emu:
        _write(400)
        summary = _push(emu.url, "--no-poll")
        truth = emu.truth()
    limits = summary["concurrency"]
    assert limits["adaptive"] is True
    assert limits["limit_reached"] > 8  # the old fixed default
    assert set(truth["creates_by_external_id"].values()) == {1}


def test_a_fixed_concurrency_is_reported_and_kept() -> None:
    with running_emulator(latency_ms=20) as emu:
        _write(60)
        summary = _push(emu.url, "--no-poll", "--concurrency", "3")
    assert summary["concurrency"] == {"adaptive": False, "limit_reached": 3, "limit_final": 3}


def test_a_server_that_refuses_when_overloaded_is_not_overloaded_for_long() -> None:
    """503 beyond 6 in flight, latency growing with the queue: the limit backs off, and
    every record still lands exactly once (a refused create is resent with its key)."""
    with running_emulator(latency_ms=20, inflight_cost_ms=5, max_inflight=6) as emu:
        _write(300)
        summary = _push(emu.url, "--no-poll")
        truth = emu.truth()
    refused = truth["faults"].get("overloaded_503", 0)
    assert summary["counts"]["created"] == 300
    assert set(truth["creates_by_external_id"].values()) == {1}
    assert len(truth["creates_by_external_id"]) == 300
    assert refused < 30  # well under a tenth of the creates
    assert summary["concurrency"]["limit_final"] <= 8


def test_the_limit_is_in_the_verbose_log_and_the_metrics() -> None:
    with running_emulator(latency_ms=10) as emu:
        _write(40)
        summary = _push(emu.url, "--no-poll", "--metrics-file", "m.prom", pre=("-v",))
    assert "concurrency: limit reached" in summary["stderr"]
    metrics = Path("m.prom").read_text()
    reached = summary["concurrency"]["limit_reached"]
    assert f'zsync_run_concurrency_limit{{command="push",which="reached"}} {reached}' in metrics


def test_bad_concurrency_is_one_line_and_exit_2() -> None:
    _write(1)
    for value in ("0", "65", "lots"):
        result = run_cli(["push", "--input", "in.jsonl", "--concurrency", value])
        assert result.code == 2
        assert "auto or a number from 1 to 64" in result.err
        assert "Traceback" not in result.err


def test_signals_created_together_are_polled_about_once_each() -> None:
    """Processing takes 2 s: one signal is polled until it is done, the rest once then."""
    with running_emulator(process_seconds=2.0) as emu:
        _write(60)
        summary = _push(emu.url)
        truth = emu.truth()
    assert summary["counts"]["processed"] == 60
    polls = _requests(truth, "GET /api/external/v1/signals/")
    # A fixed doubling schedule (0.5, 1, 2 s) polled each of them three times.
    assert polls <= 60 + 20, polls


def test_a_run_on_a_ledger_of_submitted_signals_still_polls_them_to_the_end() -> None:
    with running_emulator(process_seconds=1.0) as emu:
        _write(20)
        first = _push(emu.url, "--no-poll")
        assert first["counts"]["submitted"] == 20
        env = {"ZENTRIK_API_BASE": emu.url, "ZENTRIK_API_KEY": "zsync-dev-key"}
        result = run_cli(["reconcile", "--json"], env=env)
    assert result.code == 0, result.err
    assert json.loads(result.out)["counts"]["processed"] == 20
