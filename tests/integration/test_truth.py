"""verify, verify --repair, a rebuilt ledger, gone and pruned signals: against the emulator."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_KEY, run_cli
from tests.emulator.testing import running_emulator
from tests.waiting import wait_until
from zsync.emulator.server import RunningEmulator
from zsync.engine.client import ZentrikClient


def _records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "kind": "external_text",
            "externalId": f"t-{i}",
            "signalType": "support_ticket",
            "name": f"Ticket {i}",
            "text": f"Ticket {i}: the export button times out",
        }
        for i in range(n)
    ]


def _write(records: list[dict[str, Any]], path: str = "in.jsonl") -> None:
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    with running_emulator(dedupe="off", process_seconds=0.05) as running:
        yield running


@pytest.fixture
def env(emu: RunningEmulator) -> dict[str, str]:
    return {"ZENTRIK_API_BASE": emu.url, "ZENTRIK_API_KEY": TEST_KEY}


def _verify(env: dict[str, str], *extra: str) -> tuple[int, dict[str, Any]]:
    result = run_cli(["verify", "--json", *extra], env=env)
    assert "Traceback" not in result.err
    assert result.out, result.err
    return result.code, json.loads(result.out)


def _counts(report: dict[str, Any]) -> dict[str, int]:
    return {k: v["count"] for k, v in report["classes"].items() if v["count"]}


def _requests(emu: RunningEmulator, method: str) -> int:
    return sum(
        n for key, n in emu.truth()["requests"].items() if key.startswith(f"{method} /api/external")
    )


def _push(env: dict[str, str]) -> dict[str, Any]:
    result = run_cli(["push", "--input", "in.jsonl", "--json"], env=env)
    assert result.code == 0, result.err
    return dict(json.loads(result.out))


def test_verify_agrees_after_a_push(emu: RunningEmulator, env: dict[str, str]) -> None:
    _write(_records(5))
    _push(env)
    code, report = _verify(env)
    assert code == 0 and report["agree"], report
    assert report["server_signals"] == 5 and report["ledger_items"] == 5


def test_lost_ledger_is_rebuilt_and_the_next_push_sends_nothing(
    emu: RunningEmulator, env: dict[str, str]
) -> None:
    records = _records(12)
    records[3]["sourceExternalData"] = {"crm": 3}  # a documented field passes through
    _write(records)
    _push(env)
    os.remove("zsync.db")
    code, report = _verify(env)
    assert code == 1 and _counts(report) == {"unknown": 12}
    code, report = _verify(env, "--repair")
    assert code == 0 and report["repaired"]["adopted"] == 12, report
    posts, patches = _requests(emu, "POST"), _requests(emu, "PATCH")
    summary = _push(env)
    assert summary["counts"]["unchanged"] == 12
    assert (_requests(emu, "POST"), _requests(emu, "PATCH")) == (posts, patches)
    # ...and once more on the learned hashes (the byte-level skip path).
    assert _push(env)["counts"]["unchanged"] == 12
    assert _verify(env)[0] == 0


def test_rebuilt_ledger_updates_a_record_that_changed_meanwhile(
    emu: RunningEmulator, env: dict[str, str]
) -> None:
    records = _records(3)
    _write(records)
    _push(env)
    os.remove("zsync.db")
    _verify(env, "--repair")
    records[1]["text"] = "changed while the ledger was lost"
    _write(records)
    summary = _push(env)
    assert summary["counts"]["updated"] == 1 and summary["counts"]["unchanged"] == 2
    signal = next(s for s in emu.truth()["signals"] if s["externalId"] == "t-1")
    assert signal["text"] == "changed while the ledger was lost"
    assert signal["name"] == "Ticket 1"  # a PATCH of the changed field only
    assert emu.truth()["creates_by_external_id"] == {f"t-{i}": 1 for i in range(3)}


def test_signal_deleted_on_the_server_is_reported_and_created_once(
    emu: RunningEmulator, env: dict[str, str]
) -> None:
    _write(_records(4))
    _push(env)
    gone = next(s for s in emu.truth()["signals"] if s["externalId"] == "t-2")
    with ZentrikClient(emu.url, TEST_KEY) as client:
        client.delete_signal(gone["publicId"])
    code, report = _verify(env)
    assert code == 1 and _counts(report) == {"gone": 1}
    assert report["classes"]["gone"]["examples"][0]["externalId"] == "t-2"
    _verify(env, "--repair")
    summary = _push(env)
    assert summary["counts"]["created"] == 1 and summary["counts"]["unchanged"] == 3
    assert _push(env)["counts"]["unchanged"] == 4
    assert emu.truth()["live_by_external_id"] == {f"t-{i}": 1 for i in range(4)}


def test_pruned_record_that_comes_back_is_created_once(
    emu: RunningEmulator, env: dict[str, str]
) -> None:
    records = _records(20)
    _write(records)
    _push(env)
    _write(records[1:])
    pruned = run_cli(["push", "--input", "in.jsonl", "--prune", "--json"], env=env)
    assert pruned.code == 0, pruned.err
    assert "t-0" not in emu.truth()["live_by_external_id"]
    _write(records)
    assert _push(env)["counts"]["created"] == 1
    assert _push(env)["counts"]["unchanged"] == 20
    assert emu.truth()["live_by_external_id"] == {f"t-{i}": 1 for i in range(20)}


def test_status_drift_is_found_and_corrected(emu: RunningEmulator, env: dict[str, str]) -> None:
    _write(_records(3))
    run = run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=env)
    assert run.code == 0, run.err
    wait_until(  # processed on the server meanwhile (process_seconds=0.05)
        lambda: {s["status"] for s in emu.truth()["signals"]} == {"processed"},
        "the server to process the 3 signals",
    )
    code, report = _verify(env)
    assert code == 1 and _counts(report) == {"status": 3}
    assert report["classes"]["status"]["examples"][0]["server"] == "processed"
    assert _verify(env, "--repair")[0] == 0
    statuses = set(sqlite3.connect("zsync.db").execute("SELECT DISTINCT status FROM items"))
    assert statuses == {("processed",)}


def test_content_drift_names_the_field(emu: RunningEmulator, env: dict[str, str]) -> None:
    _write(_records(2))
    _push(env)
    target = next(s for s in emu.truth()["signals"] if s["externalId"] == "t-0")
    with ZentrikClient(emu.url, TEST_KEY) as client:
        client.update_signal(target["publicId"], {"name": "renamed in the UI"})
    code, report = _verify(env)
    assert code == 1 and _counts(report) == {"content": 1}
    assert report["classes"]["content"]["examples"][0]["fields"] == ["name"]
    # After --repair the ledger holds the server's copy: the next push restores the record's.
    _verify(env, "--repair")
    summary = _push(env)
    assert summary["counts"]["updated"] == 1
    target = next(s for s in emu.truth()["signals"] if s["externalId"] == "t-0")
    assert target["name"] == "Ticket 0"


def test_verify_text_output_names_classes_and_examples(
    emu: RunningEmulator, env: dict[str, str]
) -> None:
    _write(_records(2))
    _push(env)
    os.remove("zsync.db")
    result = run_cli(["verify"], env=env)
    assert result.code == 1
    assert "2  on the server, unknown to the ledger" in result.out
    assert "externalId=t-0" in result.out
    assert TEST_KEY not in result.out + result.err


def test_adopted_signals_no_record_claims_are_never_pruned(
    emu: RunningEmulator, env: dict[str, str]
) -> None:
    records = _records(20)
    _write(records)
    _push(env)
    os.remove("zsync.db")
    _verify(env, "--repair")  # adopts all 20, as another tool's signals would be
    _write(records[:19])
    result = run_cli(["push", "--input", "in.jsonl", "--prune", "--json"], env=env)
    assert result.code == 0, result.err
    assert json.loads(result.out)["counts"].get("deleted", 0) == 0
    assert len(emu.truth()["live_by_external_id"]) == 20
