"""Contract variants: each behaviour the API reference leaves open, as a client sees it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests

from tests.emulator.testing import running_emulator
from tests.waiting import wait_seconds
from zsync.config import DEV_API_KEY
from zsync.emulator.server import RunningEmulator

BODY = {"text": "Dark mode please", "signalType": "feedback_record", "externalId": "ext-1"}


def post(
    http: requests.Session, emu: RunningEmulator, body: dict[str, Any], key: str | None = None
) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return http.post(f"{emu.url}/external/v1/signals", json=body, headers=headers, timeout=5)


def poll(http: requests.Session, emu: RunningEmulator, public_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        signal: dict[str, Any] = http.get(f"{emu.url}/external/v1/signals/{public_id}").json()
        if signal["status"] in ("processed", "failed") or time.monotonic() > deadline:
            return signal
        time.sleep(0.05)


# -- Idempotency-Key --------------------------------------------------------------------------


def test_ignored_idempotency_key_makes_a_new_signal_per_resend(http: requests.Session) -> None:
    with running_emulator(idempotency="ignore", dedupe="off") as emu:
        first = post(http, emu, BODY, key="k-1")
        again = post(http, emu, BODY, key="k-1")
        truth = emu.truth()
    assert first.status_code == again.status_code == 201
    assert again.json()["publicId"] != first.json()["publicId"]
    assert "Idempotent-Replayed" not in again.headers
    assert truth["creates_by_external_id"] == {"ext-1": 2}
    assert truth["idempotency_keys"] == 0


def test_a_forgotten_key_is_a_new_create(http: requests.Session) -> None:
    with running_emulator(idempotency_ttl_seconds=60, dedupe="off") as emu:
        first = post(http, emu, BODY, key="k-1")
        kept = post(http, emu, BODY, key="k-1")  # well within the TTL, however slow
        emu.set_faults(idempotency_ttl_seconds=0.05)
        wait_seconds(0.05)  # the key is now older than the TTL
        forgotten = post(http, emu, BODY, key="k-1")
        truth = emu.truth()
    assert kept.headers["Idempotent-Replayed"] == "true"
    assert kept.json()["publicId"] == first.json()["publicId"]
    assert forgotten.status_code == 201
    assert "Idempotent-Replayed" not in forgotten.headers
    assert forgotten.json()["publicId"] != first.json()["publicId"]
    assert truth["creates_by_external_id"] == {"ext-1": 2}


# -- repeated identity ------------------------------------------------------------------------


def test_bare_conflict_body_does_not_name_the_existing_signal(http: requests.Session) -> None:
    with running_emulator(duplicate_answer="conflict", conflict_body="bare") as emu:
        original = post(http, emu, BODY).json()["publicId"]
        repeat = post(http, emu, BODY)
        other = post(http, emu, {**BODY, "externalId": "ext-2"}).json()["publicId"]
        patched = http.patch(f"{emu.url}/external/v1/signals/{other}", json={"externalId": "ext-1"})
    for answer in (repeat, patched):
        assert answer.status_code == 409
        error = answer.json()["error"]
        assert set(error) == {"code", "message"}
        assert error["code"] == "duplicate_external_id"
        assert original not in answer.text


def test_named_conflict_body_names_the_existing_signal(http: requests.Session) -> None:
    with running_emulator(duplicate_answer="conflict") as emu:
        original = post(http, emu, BODY).json()["publicId"]
        repeat = post(http, emu, BODY)
    assert repeat.status_code == 409
    assert repeat.json() == {
        "error": {
            "code": "duplicate_external_id",
            "message": "a signal with this sourceKey and externalId already exists",
            "publicId": original,
        }
    }


def test_conflict_if_changed_replays_identical_bodies_and_refuses_changed_ones(
    http: requests.Session,
) -> None:
    with running_emulator(duplicate_answer="conflict-if-changed") as emu:
        original = post(http, emu, BODY).json()
        # Same content, other key order and spacing: the same record.
        same = http.post(
            f"{emu.url}/external/v1/signals",
            data=b'{"externalId": "ext-1", "signalType": "feedback_record",'
            b' "text": "Dark mode please"}',
            headers={"Content-Type": "application/json"},
            timeout=5,
        )
        changed = post(http, emu, {**BODY, "text": "Dark mode, please!"})
        truth = emu.truth()
    assert same.status_code == 200
    assert same.json()["publicId"] == original["publicId"]
    assert changed.status_code == 409
    assert changed.json()["error"]["publicId"] == original["publicId"]
    assert truth["creates_by_external_id"] == {"ext-1": 1}


# -- receipts -----------------------------------------------------------------------------------


def test_receipt_without_job_id(http: requests.Session) -> None:
    with running_emulator(receipt_without_job_id=True, duplicate_answer="created") as emu:
        created = post(http, emu, BODY)
        repeat = post(http, emu, BODY)
        signal = http.get(f"{emu.url}/external/v1/signals/{created.json()['publicId']}").json()
    assert created.status_code == 201
    assert set(created.json()) == {"publicId", "workspaceId", "status"}
    assert "jobId" not in repeat.json()
    assert signal["jobId"].startswith("job-")


def test_receipt_names_another_workspace_than_the_auth_context(http: requests.Session) -> None:
    with running_emulator(receipt_workspace="someone-elses-workspace") as emu:
        receipt = post(http, emu, BODY).json()
        context = http.get(f"{emu.url}/external/v1/auth/context").json()
    assert receipt["workspaceId"] == "someone-elses-workspace"
    assert context["workspace"]["id"] == emu.config.workspace_id


@pytest.mark.parametrize("field", ["jobId", "message"])
def test_hostile_server_echoes_the_key_in_a_receipt_field(
    http: requests.Session, field: str
) -> None:
    with running_emulator(echo_key_in=field) as emu:
        created = post(http, emu, BODY, key="k-1")
        replayed = post(http, emu, BODY, key="k-1")
    assert DEV_API_KEY in created.json()[field]
    assert replayed.content == created.content
    if field == "jobId":
        assert created.json()["jobId"].startswith("job-")


# -- failure reason ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("place", "where"),
    [
        ("processing.error", lambda s: s["processing"]["error"]),
        ("processing.error.message", lambda s: s["processing"]["error"]["message"]),
        ("error", lambda s: s["error"]),
    ],
)
def test_failure_reason_sits_where_configured(
    http: requests.Session, place: str, where: Any
) -> None:
    with running_emulator(
        fail_rate=1.0, process_seconds=0.1, failure_reason_at=place, failure_reason="no speech"
    ) as emu:
        failed = poll(http, emu, post(http, emu, BODY).json()["publicId"])
    assert failed["status"] == failed["processing"]["status"] == "failed"
    assert where(failed) == "no speech"


def test_failure_reason_can_be_absent(http: requests.Session) -> None:
    with running_emulator(fail_rate=1.0, process_seconds=0.1, failure_reason_at="none") as emu:
        failed = poll(http, emu, post(http, emu, BODY).json()["publicId"])
    assert failed["processing"] == {"status": "failed", "attempts": 1}
    assert "error" not in failed
    assert "transcript too short" not in str(failed)


# -- readyz, DELETE, Retry-After ----------------------------------------------------------------


def test_readyz_reports_extra_checks_beside_the_core_ones() -> None:
    with running_emulator(readyz_extra_checks={"cache": "degraded", "search": "ok"}) as emu:
        answer = requests.get(f"{emu.url}/readyz", timeout=5)
        emu.set_faults(not_ready=True)
        unready = requests.get(f"{emu.url}/readyz", timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {
        "checks": {"database": "ok", "workspaceQueue": "ok", "cache": "degraded", "search": "ok"}
    }
    assert unready.status_code == 503
    assert unready.json()["checks"]["cache"] == "degraded"


def test_delete_can_answer_200_with_a_body(http: requests.Session) -> None:
    with running_emulator(delete_status=200) as emu:
        public_id = post(http, emu, BODY).json()["publicId"]
        url = f"{emu.url}/external/v1/signals/{public_id}"
        deleted = http.delete(url)
        again = http.delete(url)
    assert deleted.status_code == 200
    assert deleted.json() == {"publicId": public_id, "deleted": True}
    assert again.status_code == 404


def test_retry_after_as_an_http_date(http: requests.Session) -> None:
    with running_emulator(rate_limit=1, retry_after="http-date") as emu:
        statuses = [http.get(f"{emu.url}/readyz") for _ in range(2)]
    limited = statuses[1]
    assert limited.status_code == 429
    when = parsedate_to_datetime(limited.headers["Retry-After"])
    assert when >= datetime.now(UTC).replace(microsecond=0)


def test_retry_after_can_be_absent(http: requests.Session) -> None:
    with running_emulator(rate_limit=1, retry_after="absent") as emu:
        statuses = [http.get(f"{emu.url}/readyz") for _ in range(2)]
    assert statuses[1].status_code == 429
    assert "Retry-After" not in statuses[1].headers
