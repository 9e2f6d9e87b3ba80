"""zsync against the emulator over real HTTP; every test checks the server's truth."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.emulator.testing import running_emulator

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _records(n: int, prefix: str = "rec") -> list[dict[str, Any]]:
    return [
        {
            "kind": "external_text",
            "externalId": f"{prefix}-{i}",
            "signalType": "support_ticket",
            "text": f"Ticket {i}: the export button times out " * (1 + i % 5),
        }
        for i in range(n)
    ]


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def _creates(emulator: Any) -> dict[str, int]:
    return dict(emulator.truth()["creates_by_external_id"])


def test_template_example_lands_once_and_rerun_sends_nothing(
    emulator: Any, api_env: dict[str, str]
) -> None:
    shutil.copy(EXAMPLES / "signals.json", "signals.json")
    first = run_cli(["push", "--input", "signals.json", "--json"], env=api_env)
    assert first.code == 0, first.err
    summary = json.loads(first.out)
    assert summary["counts"]["created"] == 2 and summary["counts"]["processed"] == 2
    assert summary["attempted"] == 2 and summary["ok"] == 2
    truth = emulator.truth()
    assert _creates(emulator) == {"client-demo:typed-note-1": 1, "client-demo:support-ticket-1": 1}
    assert {s["status"] for s in truth["signals"]} == {"processed"}

    posts_before = _post_count(emulator)
    again = run_cli(["push", "--input", "signals.json"], env=api_env)
    assert again.code == 0, again.err
    assert "2 unchanged" in again.out
    assert _post_count(emulator) == posts_before  # not one create request


def _post_count(emulator: Any) -> int:
    return sum(
        n
        for k, n in emulator.truth()["requests"].items()
        if k.startswith("POST /api/external/v1/signals ")
    )


def test_one_rejected_record_does_not_stop_the_other_nine(
    emulator: Any, api_env: dict[str, str]
) -> None:
    _write(Path("in.jsonl"), _records(10))
    emulator.set_faults(reject_external_ids=["rec-4"])  # a server-side rule zsync cannot know
    result = run_cli(["push", "--input", "in.jsonl"], env=api_env)
    assert result.code == 1, result.err
    creates = _creates(emulator)
    assert len(creates) == 9 and "rec-4" not in creates
    assert "rejected: rec-4: 422" in result.err
    status = run_cli(["status"], env=api_env)
    assert "rec-4: rejected HTTP 422" in status.out
    assert "9 processed" in status.out and "1 rejected" in status.out


def test_refused_key_exits_3_after_one_request_and_never_shows_the_key(
    emulator: Any, api_env: dict[str, str]
) -> None:
    _write(Path("in.jsonl"), _records(3))
    secret = "sk-live-THIS-IS-SECRET-123"
    env = {**api_env, "ZENTRIK_API_KEY": secret}
    result = run_cli(["--debug", "push", "--input", "in.jsonl", "--skip-readyz"], env=env)
    assert result.code == 3
    assert "refused the key" in result.err
    assert secret not in result.out + result.err
    requests = emulator.truth()["requests"]
    assert sum(requests.values()) == 1, requests
    assert secret.encode() not in Path("zsync.db").read_bytes()


def test_dry_run_prints_bodies_and_touches_nothing(emulator: Any, api_env: dict[str, str]) -> None:
    shutil.copy(EXAMPLES / "signals.json", "signals.json")
    result = run_cli(["push", "--input", "signals.json", "--dry-run"], env={})
    assert result.code == 0, result.err
    bodies = [json.loads(line) for line in result.out.splitlines()]
    assert [b["externalId"] for b in bodies] == [
        "client-demo:typed-note-1",
        "client-demo:support-ticket-1",
    ]
    assert "kind" not in bodies[0] and bodies[0]["signalType"] == "transcript"
    assert not Path("zsync.db").exists()
    assert sum(emulator.truth()["requests"].values()) == 0


def test_invalid_and_duplicate_records_are_reported_and_the_rest_land(
    emulator: Any, api_env: dict[str, str]
) -> None:
    records = _records(4)
    records[1]["text"] = ""
    records.append(dict(records[2], text="same id, other content"))
    _write(Path("in.jsonl"), records)
    result = run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=api_env)
    assert result.code == 1
    assert "in.jsonl:2: field 'text'" in result.err
    assert "in.jsonl:5: field 'externalId': duplicate 'rec-2'" in result.err
    assert _creates(emulator) == {"rec-0": 1, "rec-2": 1, "rec-3": 1}
    assert "Traceback" not in result.err


def test_transient_faults_and_lost_answers_never_duplicate(
    emulator: Any, api_env: dict[str, str]
) -> None:
    _write(Path("in.jsonl"), _records(60))
    emulator.set_faults(error_rate=0.15, reset_rate=0.05, drop_after_commit_rate=0.1)
    result = run_cli(["push", "--input", "in.jsonl", "--no-poll", "--json"], env=api_env)
    emulator.set_faults(error_rate=0.0, reset_rate=0.0, drop_after_commit_rate=0.0)
    if result.code == 75:  # a record whose retries were all unlucky: the next run finishes it
        result = run_cli(["push", "--input", "in.jsonl", "--no-poll", "--json"], env=api_env)
    assert result.code == 0, result.err
    creates = _creates(emulator)
    assert len(creates) == 60 and set(creates.values()) == {1}
    faults = emulator.truth()["faults"]
    assert faults["dropped_after_commit"] > 0 and faults["error_503"] > 0
    db = sqlite3.connect("zsync.db")
    ledger_ids = dict(db.execute("SELECT external_id, public_id FROM items"))
    server_ids = {s["externalId"]: s["publicId"] for s in emulator.truth()["signals"]}
    assert ledger_ids == server_ids


def test_rate_limited_answers_are_waited_out(api_env: dict[str, str]) -> None:
    with running_emulator(rate_limit=20, dedupe="off") as emu:
        env = {**api_env, "ZENTRIK_API_BASE": emu.url}
        _write(Path("in.jsonl"), _records(40))
        result = run_cli(["push", "--input", "in.jsonl", "--no-poll", "--json"], env=env)
        assert result.code == 0, result.err
        assert len(_creates(emu)) == 40
        assert set(_creates(emu).values()) == {1}


def test_reconcile_follows_up_what_push_left_submitted(
    emulator: Any, api_env: dict[str, str]
) -> None:
    _write(Path("in.jsonl"), _records(5))
    pushed = run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=api_env)
    assert pushed.code == 0, pushed.err
    reconciled = run_cli(["reconcile", "--json"], env=api_env)
    assert reconciled.code == 0, reconciled.err
    assert json.loads(reconciled.out)["counts"]["processed"] == 5
    assert "5 processed" in run_cli(["status"], env=api_env).out


def test_retry_failed_requeues_with_process(api_env: dict[str, str]) -> None:
    with running_emulator(fail_rate=1.0, dedupe="off") as emu:
        env = {**api_env, "ZENTRIK_API_BASE": emu.url}
        _write(Path("in.jsonl"), _records(3))
        pushed = run_cli(["push", "--input", "in.jsonl"], env=env)
        assert pushed.code == 1
        assert "3 failed" in run_cli(["status"], env=env).out
        preview = run_cli(["retry-failed", "--preview"], env=env)
        assert preview.out.count("re-queue rec-") == 3
        emu.set_faults(fail_rate=0.0)
        retried = run_cli(["retry-failed", "--json"], env=env)
        assert retried.code == 0, retried.err
        assert json.loads(retried.out)["counts"]["processed"] == 3
        requests = emu.truth()["requests"]
        assert requests.get("POST /api/external/v1/signals/{id}/process 202") == 3
        assert len(_creates(emu)) == 3 and set(_creates(emu).values()) == {1}


def test_unreachable_api_exits_4(api_env: dict[str, str]) -> None:
    _write(Path("in.jsonl"), _records(1))
    env = {**api_env, "ZENTRIK_API_BASE": "http://127.0.0.1:9/api", "EVAL_API_WAIT_SECONDS": "0.2"}
    result = run_cli(["push", "--input", "in.jsonl"], env=env)
    assert result.code == 4, result.err
    assert "unreachable" in result.err and "Traceback" not in result.err


def test_missing_key_is_a_config_error(api_env: dict[str, str]) -> None:
    _write(Path("in.jsonl"), _records(1))
    env = {k: v for k, v in api_env.items() if k != "ZENTRIK_API_KEY"}
    result = run_cli(["push", "--input", "in.jsonl"], env=env)
    assert result.code == 3
    assert "ZENTRIK_API_KEY is not set" in result.err


def test_limit_sends_a_small_batch_first(emulator: Any, api_env: dict[str, str]) -> None:
    _write(Path("in.jsonl"), _records(5))
    first = run_cli(["push", "--input", "in.jsonl", "--no-poll", "--limit", "2"], env=api_env)
    assert first.code == 75
    assert len(_creates(emulator)) == 2
    rest = run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=api_env)
    assert rest.code == 0
    assert len(_creates(emulator)) == 5 and set(_creates(emulator).values()) == {1}
