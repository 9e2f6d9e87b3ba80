"""Injected faults: what the client sees, and what truth records."""

from __future__ import annotations

import math
import time

import pytest
import requests

from tests.emulator.testing import running_emulator
from tests.waiting import wait_seconds
from zsync.emulator.server import RunningEmulator

BODY = {"text": "SSO times out", "signalType": "support_ticket", "externalId": "t-1"}


def test_rate_limit_answers_429_with_integer_retry_after(http: requests.Session) -> None:
    with running_emulator(rate_limit=2) as emu:
        statuses = [http.get(f"{emu.url}/readyz") for _ in range(5)]
        truth = emu.truth()
    assert [a.status_code for a in statuses[:2]] == [200, 200]
    limited = [a for a in statuses if a.status_code == 429]
    assert limited
    for answer in limited:
        assert int(answer.headers["Retry-After"]) >= 1
        assert answer.json()["error"]["code"] == "rate_limited"
    assert truth["faults"]["rate_limited_429"] == len(limited)


def test_rate_limit_refills_at_the_configured_rate(http: requests.Session) -> None:
    with running_emulator(rate_limit=20) as emu:
        started = time.monotonic()
        first = [http.get(f"{emu.url}/readyz").status_code for _ in range(30)]
        took = time.monotonic() - started
        wait_seconds(0.3)  # about six tokens, however long the burst took
        later = [http.get(f"{emu.url}/readyz").status_code for _ in range(3)]
    # A full bucket of 20, and what refilled at 20/s while the burst was being sent.
    assert 20 <= first.count(200) <= 20 + math.ceil(took * 20)
    assert later == [200, 200, 200]


def test_error_rate_one_answers_503_with_a_json_body(http: requests.Session) -> None:
    with running_emulator(error_rate=1.0) as emu:
        answer = http.post(f"{emu.url}/external/v1/signals", json=BODY, timeout=5)
        truth = emu.truth()
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "unavailable"
    assert truth["signals"] == []
    assert truth["faults"]["error_503"] == 1


def test_reset_rate_one_drops_the_connection_before_handling(http: requests.Session) -> None:
    with running_emulator(reset_rate=1.0) as emu:
        with pytest.raises(requests.ConnectionError):
            http.post(f"{emu.url}/external/v1/signals", json=BODY, timeout=5)
        truth = emu.truth()
    assert truth["signals"] == []
    assert truth["faults"]["reset"] == 1
    assert truth["requests"] == {"POST /api/external/v1/signals reset": 1}


def test_drop_after_commit_creates_the_signal_but_loses_the_answer(
    http: requests.Session,
) -> None:
    with running_emulator(drop_after_commit_rate=1.0) as emu:
        headers = {"Idempotency-Key": "k-1"}
        url = f"{emu.url}/external/v1/signals"
        with pytest.raises(requests.ConnectionError):
            http.post(url, json=BODY, headers=headers, timeout=5)
        truth = emu.truth()
        assert [s["externalId"] for s in truth["signals"]] == ["t-1"]
        assert truth["faults"]["dropped_after_commit"] == 1
        assert truth["requests"] == {"POST /api/external/v1/signals dropped": 1}

        # A careful client re-sends the same body with the same key and gets the original.
        emu.set_faults(drop_after_commit_rate=0.0)
        retry = http.post(url, json=BODY, headers=headers, timeout=5)
        assert retry.status_code == 201
        assert retry.json()["publicId"] == truth["signals"][0]["publicId"]
        assert emu.truth()["creates_by_external_id"] == {"t-1": 1}


def test_latency_delays_each_request(http: requests.Session) -> None:
    with running_emulator(latency_ms=150) as emu:
        started = time.monotonic()
        http.get(f"{emu.url}/readyz")
        elapsed = time.monotonic() - started
        assert emu.truth()["faults"]["latency"] == 1
    assert elapsed >= 0.15


def test_set_faults_changes_behaviour_while_running(
    emu: RunningEmulator, http: requests.Session
) -> None:
    assert http.get(f"{emu.url}/readyz").status_code == 200
    emu.set_faults(error_rate=1.0)
    assert http.get(f"{emu.url}/readyz").status_code == 503
    emu.set_faults(error_rate=0.0, not_ready=True)
    assert http.get(f"{emu.url}/readyz").status_code == 503
    emu.set_faults(not_ready=False, rate_limit=1)
    assert [http.get(f"{emu.url}/readyz").status_code for _ in range(2)] == [200, 429]
    with pytest.raises(TypeError):
        emu.set_faults(api_key="other")
    with pytest.raises(ValueError):
        emu.set_faults(error_rate=2.0)
    assert emu.config.error_rate == 0.0


def test_a_seed_makes_fault_draws_reproducible(http: requests.Session) -> None:
    def statuses() -> list[int]:
        with running_emulator(error_rate=0.5, seed=7) as emu:
            return [http.get(f"{emu.url}/readyz").status_code for _ in range(30)]

    first = statuses()
    assert first == statuses()
    assert {200, 503} <= set(first)
