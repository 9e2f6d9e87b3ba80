"""The server behaviours of issue 22 as switches: capped pages, items without externalId,
dedupe that keeps deleted signals, late commits; each as a client sees it."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.chaos.helpers import wait_for
from tests.emulator.testing import running_emulator
from zsync.emulator.config import EmulatorConfig
from zsync.emulator.server import RunningEmulator


def _create(http: requests.Session, emu: RunningEmulator, n: int) -> requests.Response:
    body = {"text": f"t {n}", "signalType": "t", "externalId": f"e-{n}"}
    return http.post(f"{emu.url}/external/v1/signals", json=body, timeout=5)


def _list(http: requests.Session, emu: RunningEmulator, offset: int) -> requests.Response:
    url = f"{emu.url}/external/v1/signals?limit=100&offset={offset}"
    return http.get(url, timeout=5)


def test_capped_pages_hold_at_most_the_cap_and_say_so(http: requests.Session) -> None:
    with running_emulator(list_page_cap=4) as emu:
        for n in range(10):
            _create(http, emu, n)
        pages = [_list(http, emu, offset) for offset in (0, 4, 8, 10)]
    assert [len(p.json()) for p in pages] == [4, 4, 2, 0]
    assert pages[0].headers["X-Limit"] == "4" and pages[0].headers["X-Total-Count"] == "10"


def test_every_nth_item_is_listed_without_external_id(http: requests.Session) -> None:
    with running_emulator(list_drops_external_id_every=3) as emu:
        for n in range(6):
            _create(http, emu, n)
        items: list[dict[str, Any]] = _list(http, emu, 0).json()
        one = http.get(f"{emu.url}/external/v1/signals/SIGNAL-1", timeout=5).json()
    assert ["externalId" in item for item in items] == [False, True, True, False, True, True]
    assert one["externalId"] == "e-0"  # GET of one signal keeps it


def test_dedupe_that_keeps_deleted_signals_answers_with_them(http: requests.Session) -> None:
    with running_emulator(dedupe_keeps_deleted=True) as emu:
        first = _create(http, emu, 1).json()["publicId"]
        http.delete(f"{emu.url}/external/v1/signals/{first}", timeout=5).raise_for_status()
        again = _create(http, emu, 1)
        gone = http.get(f"{emu.url}/external/v1/signals/{first}", timeout=5)
        truth = emu.truth()
    assert again.status_code == 200 and again.json()["publicId"] == first
    assert gone.status_code == 404
    assert truth["live_by_external_id"] == {}


def test_a_late_commit_resets_the_connection_and_lands_later(http: requests.Session) -> None:
    with running_emulator(late_commit_rate=1.0, late_commit_seconds=0.3) as emu:
        with pytest.raises(requests.ConnectionError):
            _create(http, emu, 1)
        assert emu.truth()["late_pending"] == 1
        assert emu.truth()["signals"] == []  # not committed yet
        wait_for(lambda: emu.truth()["late_pending"] == 0, 5, "the late commit")
        truth = emu.truth()
    assert truth["creates_by_external_id"] == {"e-1": 1}
    assert truth["faults"]["late_commit"] == 1


def test_a_late_create_holds_its_key_until_it_commits(http: requests.Session) -> None:
    with running_emulator(late_commit_rate=1.0, late_commit_seconds=0.5) as emu:
        body = {"text": "t", "signalType": "t", "externalId": "e-1"}
        url = f"{emu.url}/external/v1/signals"
        with pytest.raises(requests.ConnectionError):
            http.post(url, json=body, headers={"Idempotency-Key": "k"}, timeout=5)
        emu.set_faults(late_commit_rate=0.0)
        meanwhile = http.post(url, json=body, headers={"Idempotency-Key": "k"}, timeout=5)
    assert meanwhile.status_code == 409
    assert meanwhile.json()["error"]["code"] == "request_in_progress"


def test_the_echoed_key_shows_in_listed_signals_too(http: requests.Session) -> None:
    with running_emulator(echo_key_in="jobId") as emu:
        _create(http, emu, 1)
        item = _list(http, emu, 0).json()[0]
    assert item["jobId"].endswith(emu.config.api_key)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("list_page_cap", -1), ("list_drops_external_id_every", 1.5), ("late_commit_rate", 2.0)],
)
def test_bad_switch_values_are_refused(setting: str, value: object) -> None:
    with pytest.raises(ValueError, match=setting):
        EmulatorConfig(**{setting: value})  # type: ignore[arg-type]
