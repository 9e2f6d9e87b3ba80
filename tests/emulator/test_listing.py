"""GET /external/v1/signals: the documented page shape, its orders, and bad list answers."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.emulator.testing import running_emulator
from zsync.emulator.server import RunningEmulator

TEXT = {"text": "Export to CSV", "signalType": "transcript"}


def fill(http: requests.Session, emu: RunningEmulator, n: int) -> list[str]:
    url = f"{emu.url}/external/v1/signals"
    return [
        http.post(url, json={**TEXT, "externalId": f"e-{i}"}, timeout=5).json()["publicId"]
        for i in range(n)
    ]


def page(http: requests.Session, emu: RunningEmulator, **params: int) -> requests.Response:
    return http.get(f"{emu.url}/external/v1/signals", params=params, timeout=5)


def ids(answer: requests.Response) -> list[str]:
    return [item["publicId"] for item in answer.json()]


def test_items_carry_their_create_fields_identity_and_state(
    emu: RunningEmulator, http: requests.Session
) -> None:
    body = {**TEXT, "externalId": "crm-7", "sourceKey": "crm.v1", "accountId": "acct-1"}
    public_id = http.post(f"{emu.url}/external/v1/signals", json=body).json()["publicId"]
    listed = page(http, emu)
    single = http.get(f"{emu.url}/external/v1/signals/{public_id}").json()
    assert listed.headers["X-Total-Count"] == "1"
    assert listed.headers["X-Limit"] == "20"
    assert listed.headers["X-Offset"] == "0"
    [item] = listed.json()
    for signal in (item, single):
        assert {k: signal[k] for k in body} == body
        assert signal["publicId"] == public_id
        assert signal["status"] in ("queued", "processing", "processed")
        assert signal["processing"]["status"] == signal["status"]


@pytest.mark.parametrize("order", ["newest", "random", "unstable"])
def test_list_orders(http: requests.Session, order: str) -> None:
    with running_emulator(list_order=order) as emu:
        created = fill(http, emu, 20)
        first = ids(page(http, emu, limit=100))
        second = ids(page(http, emu, limit=100))
        by_pages = ids(page(http, emu, limit=10)) + ids(page(http, emu, limit=10, offset=10))
    assert sorted(first) == sorted(second) == sorted(created)
    if order == "newest":
        assert first == second == by_pages == created[::-1]
    elif order == "random":
        # A fixed arbitrary order: pages agree with each other, yet it is not creation order.
        assert first == second == by_pages
        assert first not in (created, created[::-1])
    else:
        assert first != second


def test_list_can_hide_external_id_while_get_keeps_it(http: requests.Session) -> None:
    with running_emulator(list_hides_external_id=True) as emu:
        [public_id] = fill(http, emu, 1)
        [item] = page(http, emu).json()
        single = http.get(f"{emu.url}/external/v1/signals/{public_id}").json()
    assert "externalId" not in item
    assert item["publicId"] == public_id
    assert single["externalId"] == "e-0"


def test_not_array_wraps_the_page_in_an_object(http: requests.Session) -> None:
    with running_emulator(list_fault="not-array") as emu:
        created = fill(http, emu, 3)
        answer = page(http, emu)
    assert answer.status_code == 200
    body = answer.json()
    assert isinstance(body, dict)
    assert [item["publicId"] for item in body["data"]] == created


def test_no_headers_drops_the_totals(http: requests.Session) -> None:
    with running_emulator(list_fault="no-headers") as emu:
        fill(http, emu, 3)
        answer = page(http, emu)
    assert len(answer.json()) == 3
    for name in ("X-Total-Count", "X-Limit", "X-Offset"):
        assert name not in answer.headers


def test_shrink_claims_a_smaller_total_on_every_read(http: requests.Session) -> None:
    with running_emulator(list_fault="shrink") as emu:
        created = fill(http, emu, 10)
        reads = [page(http, emu, limit=4, offset=offset) for offset in (0, 4, 8)]
        truth = emu.truth()
    assert [r.headers["X-Total-Count"] for r in reads] == ["10", "9", "8"]
    seen = [public_id for r in reads for public_id in ids(r)]
    assert seen == created[:8]  # the last two were never listed
    assert len(truth["signals"]) == 10


def test_garbage_items_mix_non_objects_and_items_without_public_id(
    http: requests.Session,
) -> None:
    with running_emulator(list_fault="garbage-items") as emu:
        created = fill(http, emu, 8)
        items: list[Any] = page(http, emu).json() + page(http, emu, offset=4).json()[4:]
    assert len(items) == 8
    assert items[1] == created[1] and items[5] == created[5]  # strings, not objects
    for n in (3, 7):
        assert isinstance(items[n], dict) and "publicId" not in items[n]
        assert items[n]["externalId"] == f"e-{n}"
    assert [items[n]["publicId"] for n in (0, 2, 4, 6)] == created[0:8:2]


def test_list_fault_can_be_switched_on_while_running(
    emu: RunningEmulator, http: requests.Session
) -> None:
    fill(http, emu, 2)
    assert isinstance(page(http, emu).json(), list)
    emu.set_faults(list_fault="not-array")
    assert isinstance(page(http, emu).json(), dict)
    emu.set_faults(list_fault="none")
    assert isinstance(page(http, emu).json(), list)
