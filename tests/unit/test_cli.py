"""Every command through the real entry point, with the API mocked by `responses`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import responses

from tests.conftest import run_cli

BASE = "http://127.0.0.1:8999/api"
ENV = {"ZENTRIK_API_BASE": BASE, "ZENTRIK_API_KEY": "unit-secret-key"}
RECORD = {
    "kind": "external_text",
    "externalId": "ext-1",
    "signalType": "transcript",
    "text": "hello",
}


@pytest.fixture
def api() -> responses.RequestsMock:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{BASE}/readyz", json={"checks": {"database": "ok", "workspaceQueue": "ok"}})
        mock.get(
            f"{BASE}/external/v1/auth/context",
            json={"workspace": {"id": "ws-1"}, "credential": {"scopes": ["signals:write"]}},
        )
        # The workspace lists no signals: a new ledger can vouch for it (one request).
        mock.get(f"{BASE}/external/v1/signals", json=[], headers={"X-Total-Count": "0"})
        yield mock


def _input(records: list[dict[str, object]]) -> str:
    Path("in.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return "in.jsonl"


def test_push_sends_waits_and_records(api: responses.RequestsMock) -> None:
    create = api.post(
        f"{BASE}/external/v1/signals",
        status=201,
        json={"publicId": "SIGNAL-7", "jobId": "job-1", "workspaceId": "ws-1"},
    )
    api.get(
        f"{BASE}/external/v1/signals/SIGNAL-7", json={"publicId": "SIGNAL-7", "status": "processed"}
    )
    result = run_cli(["push", "--input", _input([RECORD]), "--json"], env=ENV)
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["counts"] == {"attempted": 1, "created": 1, "processed": 1}
    sent = create.calls[0].request
    assert json.loads(sent.body) == {
        "externalId": "ext-1",
        "signalType": "transcript",
        "text": "hello",
    }
    assert re.fullmatch(r"zsync-[0-9a-f]{40}", sent.headers["Idempotency-Key"])
    status = run_cli(["status", "--json"], env=ENV)
    assert json.loads(status.out)["counts"] == {"processed": 1}


def test_same_record_always_gets_the_same_idempotency_key(api: responses.RequestsMock) -> None:
    create = api.post(f"{BASE}/external/v1/signals", status=503, json={"error": {"code": "down"}})
    env = {**ENV, "EVAL_API_WAIT_SECONDS": "0.3"}
    first = run_cli(["push", "--input", _input([RECORD]), "--no-poll"], env=env)
    assert first.code == 75  # budget spent: left as 'error' for the next run
    keys = {c.request.headers["Idempotency-Key"] for c in create.calls}
    bodies = {c.request.body for c in create.calls}
    assert len(create.calls) >= 2 and len(keys) == 1 and len(bodies) == 1
    api.replace(
        responses.POST,
        f"{BASE}/external/v1/signals",
        status=201,
        json={"publicId": "SIGNAL-1", "jobId": "job-1"},
    )
    second = run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=env)
    assert second.code == 0, second.err
    assert api.calls[-1].request.headers["Idempotency-Key"] in keys


def test_malformed_success_body_is_an_item_error_not_a_crash(api: responses.RequestsMock) -> None:
    api.post(f"{BASE}/external/v1/signals", status=201, json={"jobId": "job-1"})
    result = run_cli(["push", "--input", _input([RECORD]), "--no-poll"], env=ENV)
    assert result.code == 75
    assert "publicId" in result.err and "Traceback" not in result.err
    status = run_cli(["status", "--json"], env=ENV)
    assert json.loads(status.out)["counts"] == {"error": 1}


def test_409_becomes_conflict_and_is_never_resent_with_a_new_key(
    api: responses.RequestsMock,
) -> None:
    create = api.post(
        f"{BASE}/external/v1/signals", status=409, json={"error": {"code": "idempotency_conflict"}}
    )
    result = run_cli(["push", "--input", _input([RECORD]), "--no-poll"], env=ENV)
    assert result.code == 1
    assert len(create.calls) == 1
    assert "conflict: ext-1" in result.err


def test_wrong_workspace_is_refused(api: responses.RequestsMock) -> None:
    api.post(f"{BASE}/external/v1/signals", status=201, json={"publicId": "S-1", "jobId": "j"})
    assert run_cli(["push", "--input", _input([RECORD]), "--no-poll"], env=ENV).code == 0
    api.replace(
        responses.GET, f"{BASE}/external/v1/auth/context", json={"workspace": {"id": "ws-2"}}
    )
    result = run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=ENV)
    assert result.code == 3
    assert "belongs to workspace ws-1" in result.err


def test_readyz_not_ready_exits_4(api: responses.RequestsMock) -> None:
    api.replace(
        responses.GET,
        f"{BASE}/readyz",
        status=503,
        json={"checks": {"database": "ok", "workspaceQueue": "starting"}},
    )
    env = {**ENV, "EVAL_API_WAIT_SECONDS": "0.2"}
    result = run_cli(["push", "--input", _input([RECORD])], env=env)
    assert result.code == 4, result.err


def test_status_without_ledger_is_a_clear_error() -> None:
    result = run_cli(["status"], env={})
    assert result.code == 5
    assert "no such file" in result.err


def test_unknown_option_is_usage_exit_2() -> None:
    result = run_cli(["push", "--nope"], env={})
    assert result.code == 2
    assert "No such option" in result.err


def test_plain_http_to_a_remote_host_is_refused() -> None:
    result = run_cli(
        ["push", "--input", _input([RECORD])],
        env={**ENV, "ZENTRIK_API_BASE": "http://zentrik.example/api"},
    )
    assert result.code == 3
    assert "plain http" in result.err


def test_env_file_supplies_the_key_but_never_overrides_the_environment(
    api: responses.RequestsMock,
) -> None:
    Path(".env").write_text(
        '# comment\nZENTRIK_API_KEY="from-file"\nZENTRIK_API_BASE=http://127.0.0.1:1/api\n'
    )
    create = api.post(
        f"{BASE}/external/v1/signals", status=201, json={"publicId": "S-1", "jobId": "j"}
    )
    result = run_cli(
        ["push", "--input", _input([RECORD]), "--no-poll", "--env-file", ".env"],
        env={"ZENTRIK_API_BASE": BASE},
    )
    assert result.code == 0, result.err
    assert create.calls[0].request.headers["Authorization"] == "Bearer from-file"


def test_reconcile_polls_what_push_left_submitted(api: responses.RequestsMock) -> None:
    api.post(f"{BASE}/external/v1/signals", status=201, json={"publicId": "S-1", "jobId": "j"})
    assert run_cli(["push", "--input", _input([RECORD]), "--no-poll"], env=ENV).code == 0
    poll = api.get(
        f"{BASE}/external/v1/signals/S-1", json={"publicId": "S-1", "status": "processed"}
    )
    result = run_cli(["reconcile", "--json"], env=ENV)
    assert result.code == 0, result.err
    assert json.loads(result.out)["counts"] == {"processed": 1}
    assert len(poll.calls) == 1


def test_retry_failed_preview_changes_nothing_then_requeues(api: responses.RequestsMock) -> None:
    api.post(f"{BASE}/external/v1/signals", status=201, json={"publicId": "S-1", "jobId": "j"})
    api.get(
        f"{BASE}/external/v1/signals/S-1",
        json={"publicId": "S-1", "status": "failed", "processing": {"error": "model timeout"}},
    )
    assert run_cli(["push", "--input", _input([RECORD])], env=ENV).code == 1
    process = api.post(
        f"{BASE}/external/v1/signals/S-1/process",
        status=202,
        json={"publicId": "S-1", "jobId": "j-2", "status": "queued"},
    )
    preview = run_cli(["retry-failed", "--preview"], env=ENV)
    assert preview.code == 0 and "re-queue ext-1 (failed)" in preview.out
    assert len(process.calls) == 0
    result = run_cli(["retry-failed", "--no-poll", "--json"], env=ENV)
    assert result.code == 0, result.err
    assert json.loads(result.out)["counts"]["requeued"] == 1
    assert len(process.calls) == 1
    shown = json.loads(run_cli(["show", "ext-1", "--json"], env=ENV).out)
    assert shown["status"] == "submitted" and shown["job_id"] == "j-2"


def test_a_failed_update_leaves_the_item_accepted(api: responses.RequestsMock) -> None:
    api.post(f"{BASE}/external/v1/signals", status=201, json={"publicId": "S-1", "jobId": "j"})
    api.get(f"{BASE}/external/v1/signals/S-1", json={"publicId": "S-1", "status": "processed"})
    assert run_cli(["push", "--input", _input([RECORD])], env=ENV).code == 0
    patch = api.patch(f"{BASE}/external/v1/signals/S-1", status=503, json={"error": {}})
    env = {**ENV, "EVAL_API_WAIT_SECONDS": "0.2"}
    failed = run_cli(["push", "--input", _input([{**RECORD, "text": "edited"}])], env=env)
    assert failed.code == 75, failed.err
    assert len(patch.calls) >= 1
    shown = json.loads(run_cli(["show", "ext-1", "--json"], env=ENV).out)
    # Still the accepted signal: marking it unsettled would make the next run resend a create.
    assert shown["status"] == "processed"
    assert shown["events"][-1]["kind"] == "error"
    api.replace(responses.PATCH, f"{BASE}/external/v1/signals/S-1", json={"publicId": "S-1"})
    api.post(f"{BASE}/external/v1/signals/S-1/process", status=202, json={"jobId": "j-2"})
    again = run_cli(["push", "--input", "in.jsonl", "--no-poll", "--json"], env=ENV)
    assert again.code == 0, again.err
    assert json.loads(again.out)["counts"]["updated"] == 1
