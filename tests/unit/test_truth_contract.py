"""Item 7 of the server-truth issue: the template's contract, exactly (no stricter, no looser)."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from zsync.engine.client import ZentrikClient
from zsync.errors import ApiUnavailable, Conflict, MalformedResponse, WrongWorkspace
from zsync.model import Invalid, Prepared, Record
from zsync.shape.body import prepare

BASE = "https://zentrik.test/api"
SIGNALS = f"{BASE}/external/v1/signals"
RAW = {
    "kind": "raw_signal",
    "externalId": "t-1",
    "source": {"type": "manual-text"},
}


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def client() -> Any:
    with ZentrikClient(BASE, "k-secret") as c:
        yield c


def test_readyz_needs_only_database_and_workspace_queue(rsps: Any, client: ZentrikClient) -> None:
    checks = {"database": "ok", "workspaceQueue": "ok", "cache": "degraded"}
    rsps.get(f"{BASE}/readyz", json={"checks": checks})
    assert client.readyz() == checks


@pytest.mark.parametrize(
    ("checks", "detail"),
    [
        ({"database": "ok"}, "workspaceQueue=missing"),
        ({"workspaceQueue": "ok", "cache": "ok"}, "database=missing"),
    ],
)
def test_readyz_without_a_required_check_is_not_ready(
    rsps: Any, client: ZentrikClient, checks: dict[str, str], detail: str
) -> None:
    rsps.get(f"{BASE}/readyz", json={"checks": checks})
    with pytest.raises(ApiUnavailable, match=detail):
        client.readyz()


def test_receipt_without_job_id_is_accepted(rsps: Any, client: ZentrikClient) -> None:
    rsps.post(SIGNALS, status=201, json={"publicId": "SIGNAL-1", "workspaceId": "ws-1"})
    receipt = client.create_signal(b"{}", "key-1")
    assert (receipt.public_id, receipt.job_id) == ("SIGNAL-1", None)


def test_receipt_for_another_workspace_is_refused(rsps: Any, client: ZentrikClient) -> None:
    client.workspace_id = "ws-1"
    rsps.post(SIGNALS, status=201, json={"publicId": "SIGNAL-1", "workspaceId": "ws-2"})
    with pytest.raises(WrongWorkspace, match=r"workspace ws-2.*bound to workspace ws-1"):
        client.create_signal(b"{}", "key-1")


def test_replay_header_is_reported(rsps: Any, client: ZentrikClient) -> None:
    rsps.post(
        SIGNALS,
        status=201,
        json={"publicId": "SIGNAL-1"},
        headers={"Idempotent-Replayed": "true"},
    )
    assert client.create_signal(b"{}", "key-1").replayed


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"error": {"code": "duplicate", "message": "exists", "publicId": "SIGNAL-7"}}, "SIGNAL-7"),
        ({"message": "exists", "publicId": "SIGNAL-8"}, "SIGNAL-8"),
        ({"error": {"code": "duplicate", "message": "exists"}}, None),
        ("conflict", None),
    ],
)
def test_conflict_carries_the_named_signal(
    rsps: Any, client: ZentrikClient, body: Any, named: str | None
) -> None:
    rsps.post(SIGNALS, status=409, json=body)
    with pytest.raises(Conflict) as caught:
        client.create_signal(b"{}", "key-1")
    assert caught.value.public_id == named


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": []}, "JSON object, not an array of signals"),
        ("nope", "JSON str, not an array"),
    ],
)
def test_list_that_is_not_an_array_is_one_line(
    rsps: Any, client: ZentrikClient, body: Any, message: str
) -> None:
    rsps.get(SIGNALS, json=body)
    with pytest.raises(MalformedResponse, match=message):
        client.list_page()


def test_list_page_reads_the_paging_headers(rsps: Any, client: ZentrikClient) -> None:
    headers = {"X-Total-Count": "250", "X-Limit": "100", "X-Offset": "200"}
    rsps.get(SIGNALS, json=[{"publicId": "S-1"}, "junk"], headers=headers)
    page = client.list_page(100, 200)
    assert (page.total, page.limit, page.offset, len(page.items)) == (250, 100, 200, 2)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("participantPolicy", "none"),
        ("createMissingAccounts", False),
        ("sourceExternalData", {"ticket": 7}),
    ],
)
def test_documented_create_fields_are_passed_through(field: str, value: Any) -> None:
    for base in (RAW, {"kind": "external_text", "externalId": "t", "text": "x", "signalType": "t"}):
        result = prepare(Record("in.json[0]", {**base, field: value}))
        assert isinstance(result, Prepared), result
        assert result.body[field] == value
        assert field in result.dropped  # sent, and named: the template does not send it


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("participantPolicy", 3, "must be a string"),
        ("createMissingAccounts", "no", "must be true or false"),
        ("sourceExternalData", [1], "must be an object"),
    ],
)
def test_documented_create_fields_are_type_checked(field: str, value: Any, message: str) -> None:
    result = prepare(Record("in.json[0]", {**RAW, field: value}))
    assert isinstance(result, Invalid)
    assert f"field '{field}': {message}" in result.message


@pytest.mark.parametrize("context", [[], "call", 3, {"a": 1}])
def test_context_has_no_rule_stricter_than_the_contract(context: Any) -> None:
    result = prepare(Record("in.json[0]", {**RAW, "context": context}))
    assert isinstance(result, Prepared), result
    assert result.body["context"] == context
