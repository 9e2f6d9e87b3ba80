"""Full sync semantics: edits become PATCH + process, removals are pruned, budgets end on time."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.emulator.testing import running_emulator


def _records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "kind": "external_text",
            "externalId": f"t-{i}",
            "signalType": "support_ticket",
            "name": f"Ticket {i}",
            "text": f"ticket {i} text",
        }
        for i in range(n)
    ]


def _write(records: list[dict[str, Any]]) -> None:
    Path("in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _requests(emulator: Any) -> dict[str, int]:
    return dict(emulator.truth()["requests"])


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {
        k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)
    }


def test_editing_one_record_issues_one_patch_and_one_process(
    emulator: Any, api_env: dict[str, str]
) -> None:
    records = _records(5)
    _write(records)
    assert run_cli(["push", "--input", "in.jsonl"], env=api_env).code == 0
    records[2]["text"] = "ticket 2 text, corrected by support"
    _write(records)
    before = _requests(emulator)
    result = run_cli(["push", "--input", "in.jsonl", "--json"], env=api_env)
    assert result.code == 0, result.err
    assert json.loads(result.out)["counts"]["updated"] == 1
    delta = _delta(before, _requests(emulator))
    assert delta.get("PATCH /api/external/v1/signals/{id} 200") == 1
    assert delta.get("POST /api/external/v1/signals/{id}/process 202") == 1
    assert not any(k.startswith("POST /api/external/v1/signals ") for k in delta)
    server = {s["externalId"]: s for s in emulator.truth()["signals"]}
    assert server["t-2"]["text"] == "ticket 2 text, corrected by support"
    assert server["t-2"]["status"] == "processed"
    # The ledger took the new content: a third push changes nothing.
    third = run_cli(["push", "--input", "in.jsonl", "--json"], env=api_env)
    assert json.loads(third.out)["counts"] == {"unchanged": 5}


def test_on_change_skip_leaves_the_signal_alone(emulator: Any, api_env: dict[str, str]) -> None:
    records = _records(2)
    _write(records)
    assert run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=api_env).code == 0
    records[0]["name"] = "renamed"
    _write(records)
    before = _requests(emulator)
    result = run_cli(["push", "--input", "in.jsonl", "--on-change", "skip", "--json"], env=api_env)
    assert json.loads(result.out)["counts"]["changed"] == 1
    delta = _delta(before, _requests(emulator))
    # nothing sent: no create, update or delete (the push still polls what is processing)
    assert not [k for k in delta if "/signals" in k and not k.startswith("GET ")], delta
    assert sum(n for k, n in delta.items() if k.startswith("GET ") and "/signals/" in k) <= 10


def test_prune_deletes_exactly_the_removed_record(emulator: Any, api_env: dict[str, str]) -> None:
    records = _records(12)
    _write(records)
    assert run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=api_env).code == 0
    _write(records[:5] + records[6:])
    dry = run_cli(["push", "--input", "in.jsonl", "--prune", "--dry-run"], env=api_env)
    t5 = next(s["publicId"] for s in emulator.truth()["signals"] if s["externalId"] == "t-5")
    assert [json.loads(line) for line in dry.out.splitlines()] == [
        {"action": "delete", "externalId": "t-5", "publicId": t5}
    ]
    result = run_cli(["push", "--input", "in.jsonl", "--prune", "--no-poll", "--json"], env=api_env)
    assert result.code == 0, result.err
    assert json.loads(result.out)["counts"]["deleted"] == 1
    truth = emulator.truth()
    assert truth["requests"].get("DELETE /api/external/v1/signals/{id} 204") == 1
    assert "t-5" not in truth["live_by_external_id"] or truth["live_by_external_id"]["t-5"] == 0
    assert len(truth["signals"]) == 11
    shown = run_cli(["status", "--json"], env=api_env)
    assert json.loads(shown.out)["counts"]["deleted"] == 1


def test_prune_refuses_to_delete_too_much(emulator: Any, api_env: dict[str, str]) -> None:
    records = _records(10)
    _write(records)
    assert run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=api_env).code == 0
    _write(records[:3])
    result = run_cli(["push", "--input", "in.jsonl", "--prune", "--no-poll"], env=api_env)
    assert result.code == 1
    assert "prune refused: 7 of 10 signals" in result.err
    assert len(emulator.truth()["signals"]) == 10
    forced = run_cli(
        ["push", "--input", "in.jsonl", "--prune", "--force", "--no-poll"], env=api_env
    )
    assert forced.code == 0
    assert len(emulator.truth()["signals"]) == 3


def test_max_duration_ends_on_time_with_75_and_the_next_run_finishes(
    api_env: dict[str, str],
) -> None:
    with running_emulator(latency_ms=100, dedupe="off") as emu:
        env = {**api_env, "ZENTRIK_API_BASE": emu.url}
        _write(_records(200))
        started = time.monotonic()
        first = run_cli(
            [
                "push",
                "--input",
                "in.jsonl",
                "--no-poll",
                "--concurrency",
                "2",
                "--max-duration",
                "1",
            ],
            env=env,
        )
        elapsed = time.monotonic() - started
        assert first.code == 75, first.err
        assert elapsed < 4  # the budget plus requests already in flight
        sent = len(emu.truth()["creates_by_external_id"])
        assert 0 < sent < 200
        emu.set_faults(latency_ms=0)
        second = run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=env)
        assert second.code == 0, second.err
        creates = emu.truth()["creates_by_external_id"]
        assert len(creates) == 200 and set(creates.values()) == {1}
