"""The emulated endpoints over real HTTP: what a client written from Zentrik's docs sees."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests

from tests.emulator.testing import running_emulator
from tests.waiting import wait_until
from zsync.emulator.server import RunningEmulator

TEXT_BODY = {"text": "Customer wants CSV export", "signalType": "transcript"}


def create(
    http: requests.Session, emu: RunningEmulator, body: dict[str, Any], **headers: str
) -> requests.Response:
    return http.post(f"{emu.url}/external/v1/signals", json=body, headers=headers, timeout=5)


def wait_for_status(
    http: requests.Session, emu: RunningEmulator, public_id: str, wanted: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        signal: dict[str, Any] = http.get(f"{emu.url}/external/v1/signals/{public_id}").json()
        if signal["status"] == wanted or time.monotonic() > deadline:
            return signal
        time.sleep(0.05)


def test_readyz_ready(emu: RunningEmulator) -> None:
    answer = requests.get(f"{emu.url}/readyz", timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"checks": {"database": "ok", "workspaceQueue": "ok"}}


def test_warmup_answers_like_a_starting_web_front_then_becomes_ready(
    http: requests.Session,
) -> None:
    # Long enough that the first requests come during the warm-up on a loaded machine too.
    with running_emulator(warmup_seconds=1.5) as emu:
        ready = http.get(f"{emu.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["workspaceQueue"] != "ok"
        listing = http.get(f"{emu.url}/external/v1/signals")
        assert listing.status_code == 404
        assert listing.headers["Content-Type"].startswith("text/html")
        assert "static/index.html" in listing.text
        wait_until(lambda: http.get(f"{emu.url}/readyz").status_code == 200, "the warm-up to end")
        assert http.get(f"{emu.url}/external/v1/signals").status_code == 200


def test_not_ready_is_503_with_a_degraded_check() -> None:
    with running_emulator(not_ready=True) as emu:
        answer = requests.get(f"{emu.url}/readyz", timeout=5)
    assert answer.status_code == 503
    assert answer.json()["checks"]["workspaceQueue"] == "degraded"


def test_auth_context_shows_workspace_and_scopes(
    emu: RunningEmulator, http: requests.Session
) -> None:
    context = http.get(f"{emu.url}/external/v1/auth/context").json()
    assert context["workspace"] == {
        "id": emu.config.workspace_id,
        "name": emu.config.workspace_name,
    }
    assert context["credential"]["scopes"] == [
        "signals:read",
        "signals:write",
        "signals:delete",
    ]


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-secret-key-123", "Basic abc"])
def test_bad_or_missing_key_is_401_without_echoing_it(
    emu: RunningEmulator, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = requests.get(f"{emu.url}/external/v1/auth/context", headers=headers, timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert "wrong-secret-key-123" not in answer.text


def test_missing_scope_is_403_naming_it(http: requests.Session) -> None:
    with running_emulator(scopes=("signals:read",)) as emu:
        answer = create(http, emu, TEXT_BODY)
        assert http.get(f"{emu.url}/external/v1/signals").status_code == 200
    assert answer.status_code == 403
    assert answer.json()["error"] == {"code": "forbidden", "message": "missing scope signals:write"}


def test_create_returns_a_queued_receipt(emu: RunningEmulator, http: requests.Session) -> None:
    first = create(http, emu, TEXT_BODY)
    second = create(http, emu, {"source": {"type": "manual-text"}, "data": {"x": 1}})
    assert first.status_code == 201
    receipt = first.json()
    assert set(receipt) == {"publicId", "jobId", "workspaceId", "status"}
    assert receipt["publicId"] == "SIGNAL-1"
    assert re.fullmatch(r"job-[0-9a-f]{32}", receipt["jobId"])
    assert receipt["workspaceId"] == emu.config.workspace_id
    assert receipt["status"] == "queued"
    assert second.status_code == 201
    assert second.json()["publicId"] == "SIGNAL-2"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"signalType": "transcript"}, "text"),
        ({"text": "hello"}, "signalType"),
        ({"text": "   ", "signalType": "transcript"}, "text"),
        ({"text": 5, "signalType": "transcript"}, "text"),
        ({"text": "x" * 1_000_001, "signalType": "transcript"}, "text"),
        ({"source": "manual-text"}, "source"),
        ({"name": "neither kind"}, "text"),
    ],
)
def test_invalid_create_is_422_naming_the_field(
    emu: RunningEmulator, http: requests.Session, body: dict[str, Any], field: str
) -> None:
    answer = create(http, emu, body)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["field"] == field
    assert field in error["message"]
    assert emu.truth()["signals"] == []


def test_text_of_exactly_the_limit_is_accepted(
    emu: RunningEmulator, http: requests.Session
) -> None:
    answer = create(http, emu, {"text": "x" * 1_000_000, "signalType": "transcript"})
    assert answer.status_code == 201


def test_body_that_is_not_a_json_object_is_refused(
    emu: RunningEmulator, http: requests.Session
) -> None:
    url = f"{emu.url}/external/v1/signals"
    assert http.post(url, data=b"{not json", timeout=5).status_code == 400
    assert http.post(url, json=[TEXT_BODY], timeout=5).status_code == 422


def test_status_runs_queued_processing_processed(http: requests.Session) -> None:
    with running_emulator(process_seconds=1.0) as emu:
        public_id = create(http, emu, TEXT_BODY).json()["publicId"]
        early = http.get(f"{emu.url}/external/v1/signals/{public_id}").json()
        assert early["status"] == "queued"
        assert wait_for_status(http, emu, public_id, "processing")["status"] == "processing"
        done = wait_for_status(http, emu, public_id, "processed")
    assert done["status"] == "processed"
    assert done["processing"] == {"status": "processed", "attempts": 1, "error": None}
    assert done["text"] == TEXT_BODY["text"]
    assert done["updatedAt"] > done["createdAt"]


def test_fail_rate_one_ends_failed_and_process_requeues(http: requests.Session) -> None:
    with running_emulator(fail_rate=1.0, process_seconds=0.1) as emu:
        receipt = create(http, emu, TEXT_BODY).json()
        failed = wait_for_status(http, emu, receipt["publicId"], "failed")
        assert failed["status"] == "failed"
        assert failed["processing"] == {
            "status": "failed",
            "attempts": 1,
            "error": "transcript too short",
        }

        emu.set_faults(fail_rate=0.0)
        url = f"{emu.url}/external/v1/signals/{receipt['publicId']}/process"
        requeued = http.post(url, timeout=5)
        assert requeued.status_code == 202
        assert requeued.json()["status"] == "queued"
        assert requeued.json()["jobId"] != receipt["jobId"]
        done = wait_for_status(http, emu, receipt["publicId"], "processed")
        assert done["processing"] == {"status": "processed", "attempts": 2, "error": None}
        assert done["jobId"] == requeued.json()["jobId"]


def test_list_paginates_in_creation_order_with_total_headers(
    emu: RunningEmulator, http: requests.Session
) -> None:
    for n in range(105):
        create(http, emu, {**TEXT_BODY, "externalId": f"ext-{n}"})
    url = f"{emu.url}/external/v1/signals"
    default = http.get(url)
    assert len(default.json()) == 20
    assert default.headers["X-Limit"] == "20"
    clamped = http.get(url, params={"limit": 1000})
    assert len(clamped.json()) == 100
    assert clamped.headers["X-Total-Count"] == "105"
    assert clamped.headers["X-Limit"] == "100"
    tail = http.get(url, params={"limit": 50, "offset": 100})
    assert [s["externalId"] for s in tail.json()] == [f"ext-{n}" for n in range(100, 105)]
    assert tail.headers["X-Offset"] == "100"
    for bad in ({"limit": "abc"}, {"limit": 0}, {"offset": -1}):
        answer = http.get(url, params=bad)
        assert answer.status_code == 400
        assert answer.json()["error"]["field"] == next(iter(bad))


def test_patch_merges_fields_and_validates(emu: RunningEmulator, http: requests.Session) -> None:
    public_id = create(http, emu, {**TEXT_BODY, "externalId": "p-1"}).json()["publicId"]
    url = f"{emu.url}/external/v1/signals/{public_id}"
    patched = http.patch(url, json={"name": "Renamed", "accountId": "acct-9"})
    assert patched.status_code == 200
    assert patched.json()["name"] == "Renamed"
    assert patched.json()["accountId"] == "acct-9"
    assert patched.json()["text"] == TEXT_BODY["text"]
    assert http.get(url).json()["name"] == "Renamed"
    assert http.patch(url, json={"text": ""}).json()["error"]["field"] == "text"
    assert http.patch(url, json={"status": "processed"}).status_code == 422
    assert http.patch(f"{emu.url}/external/v1/signals/SIGNAL-999", json={}).status_code == 404


def test_delete_removes_the_signal_but_truth_keeps_the_count(
    emu: RunningEmulator, http: requests.Session
) -> None:
    public_id = create(http, emu, {**TEXT_BODY, "externalId": "d-1"}).json()["publicId"]
    url = f"{emu.url}/external/v1/signals/{public_id}"
    deleted = http.delete(url)
    assert deleted.status_code == 204
    assert deleted.content == b""
    missing = http.get(url)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert http.get(f"{emu.url}/external/v1/signals").headers["X-Total-Count"] == "0"
    assert http.delete(url).status_code == 404
    truth = emu.truth()
    assert truth["deleted"] == 1
    assert truth["creates_by_external_id"] == {"d-1": 1}
    assert truth["live_by_external_id"] == {}


def test_unknown_path_is_404_json_and_wrong_method_is_405(
    emu: RunningEmulator, http: requests.Session
) -> None:
    unknown = http.get(f"{emu.url}/external/v1/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    wrong = http.put(f"{emu.url}/external/v1/signals", json={})
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "GET, POST"


def test_truth_counts_requests_by_route_template(
    emu: RunningEmulator, http: requests.Session
) -> None:
    public_id = create(http, emu, TEXT_BODY).json()["publicId"]
    http.get(f"{emu.url}/external/v1/signals/{public_id}")
    http.get(f"{emu.url}/external/v1/signals/SIGNAL-404")
    over_http = requests.get(f"{emu.root}/__emulator/state", timeout=5).json()
    assert over_http["requests"] == {
        "POST /api/external/v1/signals 201": 1,
        "GET /api/external/v1/signals/{id} 200": 1,
        "GET /api/external/v1/signals/{id} 404": 1,
    }
    assert over_http["signals"][0]["publicId"] == public_id


def test_state_endpoints_are_off_unless_inspect_is_on(http: requests.Session) -> None:
    with running_emulator(inspect=False) as emu:
        assert requests.get(f"{emu.root}/__emulator/state", timeout=5).status_code == 404
        assert requests.post(f"{emu.root}/__emulator/reset", timeout=5).status_code == 404
    with running_emulator() as emu:
        create(http, emu, TEXT_BODY)
        assert requests.post(f"{emu.root}/__emulator/reset", timeout=5).status_code == 204
        assert emu.truth()["signals"] == []
        assert create(http, emu, TEXT_BODY).json()["publicId"] == "SIGNAL-1"


def test_stop_closes_pooled_keep_alive_connections(http: requests.Session) -> None:
    with running_emulator() as emu:
        assert http.get(f"{emu.url}/readyz").status_code == 200
    with pytest.raises(requests.ConnectionError):
        http.get(f"{emu.url}/readyz", timeout=2)
