"""Idempotency-Key replays and (sourceKey, externalId) identity dedupe."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from tests.emulator.testing import running_emulator
from tests.waiting import wait_until
from zsync.emulator.server import RunningEmulator

BODY = {"text": "Dark mode please", "signalType": "feedback_record", "externalId": "ext-1"}


def post(
    http: requests.Session, emu: RunningEmulator, body: dict[str, Any], key: str | None = None
) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return http.post(f"{emu.url}/external/v1/signals", json=body, headers=headers, timeout=5)


def test_same_key_same_body_replays_the_original_answer(
    emu: RunningEmulator, http: requests.Session
) -> None:
    first = post(http, emu, BODY, key="k-1")
    # The replay must not pick up the signal's newer status: let it have one first.
    public_id = first.json()["publicId"]
    wait_until(
        lambda: (
            http.get(f"{emu.url}/external/v1/signals/{public_id}").json()["status"]
            != first.json()["status"]
        ),
        "the signal's status to move on",
    )
    again = post(http, emu, BODY, key="k-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    truth = emu.truth()
    assert len(truth["signals"]) == 1
    assert truth["creates_by_external_id"] == {"ext-1": 1}


def test_same_key_different_body_is_409(emu: RunningEmulator, http: requests.Session) -> None:
    assert post(http, emu, BODY, key="k-1").status_code == 201
    other = post(http, emu, {**BODY, "text": "changed"}, key="k-1")
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert len(emu.truth()["signals"]) == 1


def test_same_key_while_the_first_is_in_flight_is_409(http: requests.Session) -> None:
    # The first request holds its key this long: the second comes meanwhile on a loaded
    # machine too.
    with running_emulator(handle_ms=1500) as emu:
        answers: list[requests.Response] = []
        other_client = requests.Session()
        other_client.headers.update(http.headers)

        def first_request() -> None:
            answers.append(post(other_client, emu, BODY, key="k"))

        first = threading.Thread(target=first_request)
        first.start()
        wait_until(lambda: emu.truth()["idempotency_keys"] == 1, "the first request to arrive")
        second = post(http, emu, BODY, key="k")
        first.join()
        other_client.close()
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "request_in_progress"
        assert answers[0].status_code == 201
        assert post(http, emu, BODY, key="k").content == answers[0].content


def test_failed_validation_does_not_consume_the_key(
    emu: RunningEmulator, http: requests.Session
) -> None:
    assert post(http, emu, {"text": "no type"}, key="k-1").status_code == 422
    assert post(http, emu, BODY, key="k-1").status_code == 201


@pytest.mark.parametrize(
    ("duplicate_answer", "status"), [("replay", 200), ("created", 201), ("conflict", 409)]
)
def test_repeated_identity_gets_the_configured_answer(
    http: requests.Session, duplicate_answer: str, status: int
) -> None:
    with running_emulator(duplicate_answer=duplicate_answer) as emu:
        original = post(http, emu, BODY).json()
        repeat = post(http, emu, {**BODY, "text": "edited"}, key="another-key")
        assert repeat.status_code == status
        if status == 409:
            assert repeat.json()["error"]["code"] == "duplicate_external_id"
            assert repeat.json()["error"]["publicId"] == original["publicId"]
        else:
            assert repeat.json()["publicId"] == original["publicId"]
            assert repeat.json()["jobId"] == original["jobId"]
        truth = emu.truth()
    assert len(truth["signals"]) == 1
    assert truth["creates_by_external_id"] == {"ext-1": 1}


def test_identity_includes_source_key(emu: RunningEmulator, http: requests.Session) -> None:
    post(http, emu, {**BODY, "sourceKey": "crm.v1"})
    post(http, emu, {**BODY, "sourceKey": "helpdesk.v1"})
    post(http, emu, {**BODY, "sourceKey": "crm.v1"})
    assert emu.truth()["live_by_external_id"] == {"ext-1": 2}


def test_dedupe_off_creates_a_signal_per_request(http: requests.Session) -> None:
    with running_emulator(dedupe="off") as emu:
        ids = {post(http, emu, BODY).json()["publicId"] for _ in range(3)}
        truth = emu.truth()
    assert len(ids) == 3
    assert truth["creates_by_external_id"] == {"ext-1": 3}
    assert truth["live_by_external_id"] == {"ext-1": 3}


def test_a_deleted_identity_can_be_created_again(
    emu: RunningEmulator, http: requests.Session
) -> None:
    public_id = post(http, emu, BODY).json()["publicId"]
    http.delete(f"{emu.url}/external/v1/signals/{public_id}")
    again = post(http, emu, BODY)
    assert again.status_code == 201
    assert again.json()["publicId"] != public_id
    assert emu.truth()["creates_by_external_id"] == {"ext-1": 2}


def test_truth_counts_creates_and_live_signals_per_identity(http: requests.Session) -> None:
    with running_emulator(dedupe="off") as emu:
        post(http, emu, {**BODY, "sourceKey": "crm.v1"})
        doomed = post(http, emu, {**BODY, "sourceKey": "crm.v1"}).json()["publicId"]
        post(http, emu, {**BODY, "sourceKey": "helpdesk.v1"})
        post(http, emu, {**BODY, "externalId": "ext-2"})
        post(http, emu, {"text": "no id", "signalType": "transcript"})
        http.delete(f"{emu.url}/external/v1/signals/{doomed}")
        truth = requests.get(f"{emu.root}/__emulator/state", timeout=5).json()
    assert truth["creates_by_external_id"] == {"ext-1": 3, "ext-2": 1}
    assert truth["live_by_external_id"] == {"ext-1": 2, "ext-2": 1}
    assert truth["by_identity"] == [
        {"sourceKey": "crm.v1", "externalId": "ext-1", "creates": 2, "live": 1},
        {"sourceKey": "helpdesk.v1", "externalId": "ext-1", "creates": 1, "live": 1},
        {"sourceKey": None, "externalId": "ext-2", "creates": 1, "live": 1},
    ]
