"""Operator commands over a realistic ledger: processed, failed, rejected and invalid items."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli


@pytest.fixture
def busy_ledger(emulator: Any, api_env: dict[str, str]) -> dict[str, str]:
    records = [
        {
            "kind": "external_text",
            "externalId": f"tk-{i}",
            "signalType": "support_ticket",
            "text": f"ticket {i}",
        }
        for i in range(8)
    ]
    records.append({"kind": "external_text", "externalId": "tk-bad", "signalType": "x", "text": ""})
    Path("in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    emulator.set_faults(reject_external_ids=["tk-3", "tk-4"])
    assert run_cli(["push", "--input", "in.jsonl"], env=api_env).code == 1
    more = [
        {
            "kind": "external_text",
            "externalId": f"fl-{i}",
            "signalType": "transcript",
            "text": f"call {i}",
        }
        for i in range(2)
    ]
    Path("more.jsonl").write_text("".join(json.dumps(r) + "\n" for r in more))
    emulator.set_faults(fail_rate=1.0)
    assert run_cli(["push", "--input", "more.jsonl"], env=api_env).code == 1
    return api_env


def test_runs_lists_each_run_with_counts_and_exit(busy_ledger: dict[str, str]) -> None:
    text = run_cli(["runs"], env=busy_ledger)
    assert text.code == 0
    lines = text.out.splitlines()
    assert lines[0].split()[:3] == ["run", "started", "(UTC)"]
    assert "push" in lines[1] and "2 failed" in lines[1]
    assert "2 rejected" in lines[2] and "6 processed" in lines[2]
    rows = json.loads(run_cli(["runs", "--json"], env=busy_ledger).out)
    assert [r["exit_code"] for r in rows] == [1, 1]
    assert all(r["duration_s"] is not None and r["duration_s"] >= 0 for r in rows)


def test_show_gives_the_item_and_its_timeline(busy_ledger: dict[str, str]) -> None:
    out = run_cli(["show", "tk-0"], env=busy_ledger).out
    assert out.startswith("tk-0: processed")
    assert "public_id" in out and "created" in out and "processed" in out
    data = json.loads(run_cli(["show", "tk-3", "--json"], env=busy_ledger).out)
    assert data["status"] == "rejected" and data["last_http_status"] == 422
    assert [e["kind"] for e in data["events"]] == ["rejected"]
    missing = run_cli(["show", "nope"], env=busy_ledger)
    assert missing.code == 2 and "no item with externalId 'nope'" in missing.err


def test_errors_groups_failures_by_cause(busy_ledger: dict[str, str]) -> None:
    causes = json.loads(run_cli(["errors", "--json"], env=busy_ledger).out)
    by_status = {c["status"]: c for c in causes}
    assert by_status["rejected"]["count"] == 2
    assert sorted(by_status["rejected"]["samples"]) == ["tk-3", "tk-4"]
    assert by_status["failed"]["count"] == 2
    assert by_status["invalid"]["count"] == 1
    text = run_cli(["errors"], env=busy_ledger).out
    assert "2 × rejected HTTP 422" in text


def test_export_streams_rows_as_jsonl_and_csv(busy_ledger: dict[str, str]) -> None:
    lines = run_cli(["export"], env=busy_ledger).out.splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 11
    assert {r["status"] for r in rows} == {"processed", "rejected", "invalid", "failed"}
    assert all("payload" not in r for r in rows)
    out = run_cli(["export", "--format", "csv", "--status", "rejected"], env=busy_ledger).out
    table = list(csv.DictReader(io.StringIO(out)))
    assert [r["external_id"] for r in table] == ["tk-3", "tk-4"]


def test_check_reports_each_preflight_and_writes_nothing(busy_ledger: dict[str, str]) -> None:
    before = Path("zsync.db").read_bytes()
    result = run_cli(["check", "--for", "push --prune"], env=busy_ledger)
    assert result.code == 0, result.out + result.err
    assert [line.split()[:2] for line in result.out.splitlines()] == [
        ["ok", "readyz"],
        ["ok", "auth"],
        ["ok", "scopes"],
        ["ok", "ledger"],
    ]
    assert Path("zsync.db").read_bytes() == before
    refused = run_cli(["check"], env={**busy_ledger, "ZENTRIK_API_KEY": "wrong"})
    assert refused.code == 3
    assert "FAIL auth" in refused.out
