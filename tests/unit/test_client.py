"""ZentrikClient against mocked HTTP: what is sent, and what each answer turns into."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from http.client import RemoteDisconnected
from typing import Any

import pytest
import requests
import responses
import urllib3.exceptions

from zsync.engine.client import USER_AGENT, Receipt, SignalState, ZentrikClient
from zsync.errors import (
    ApiError,
    ApiUnavailable,
    AuthError,
    ConfigError,
    Conflict,
    MalformedResponse,
    RateLimited,
    RedirectRefused,
    Rejected,
    ServerUnavailable,
    TransportError,
    WarmingUp,
    ZsyncError,
)

BASE = "https://zentrik.test/api"
KEY = "zk_live_S3cr3tKeyValue42"
SIGNALS = f"{BASE}/external/v1/signals"
BODY = '{"externalId":"call-1","signalType":"transcript","text":"café ☕ naïve"}'.encode()
CREATED = {"publicId": "SIGNAL-42", "jobId": "job-9", "workspaceId": "ws-1", "status": "queued"}
FRONT_END = '<!doctype html><html><head><link href="/static/index.html"></head></html>'


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client() -> Iterator[ZentrikClient]:
    with ZentrikClient(BASE, KEY) as c:
        yield c


def assert_no_key(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), *map(str, exc.args)):
        assert KEY not in text
        assert KEY[:12] not in text  # not even a cut-off piece of it


# -- what is sent --------------------------------------------------------------------------


def test_create_sends_the_exact_bytes_and_idempotency_key(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.post(SIGNALS, status=201, json=CREATED)
    receipt = client.create_signal(BODY, "zsync:v1:5f2a")
    assert receipt == Receipt("SIGNAL-42", "job-9", "ws-1", "queued", 201)
    request = rsps.calls[0].request
    assert request.body == BODY
    assert request.headers["Idempotency-Key"] == "zsync:v1:5f2a"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.req_kwargs["timeout"] == (5.0, 30.0)  # type: ignore[attr-defined]


def _sent_by_every_endpoint(rsps: responses.RequestsMock, client: ZentrikClient) -> list[Any]:
    rsps.post(SIGNALS, status=201, json=CREATED)
    rsps.get(f"{SIGNALS}/S%2F1", json={"publicId": "S/1", "status": "queued"})
    rsps.patch(f"{SIGNALS}/S%2F1", json={})
    rsps.post(f"{SIGNALS}/S%2F1/process", status=202, json={"jobId": "j"})
    rsps.delete(f"{SIGNALS}/S%2F1", status=204)
    rsps.get(f"{SIGNALS}?limit=5&offset=10", json=[])
    client.create_signal(BODY, "zsync:v1:5f2a")
    client.get_signal("S/1")
    client.update_signal("S/1", {"text": "t"})
    client.process_signal("S/1")
    client.delete_signal("S/1")
    client.list_page(5, 10)
    return [call.request for call in rsps.calls]


def test_every_endpoint_sends_what_a_plain_requests_session_would(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    # Requests without a query are prepared from headers merged once per client: what goes
    # on the wire must be what Session.request with the same arguments sends.
    sent = _sent_by_every_endpoint(rsps, client)
    plain = requests.Session()
    plain.trust_env = False
    for request in sent:
        expected = plain.prepare_request(
            requests.Request(
                request.method,
                request.url,
                headers={
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                    **({"Content-Type": "application/json"} if request.body else {}),
                    **(
                        {"Idempotency-Key": request.headers["Idempotency-Key"]}
                        if "Idempotency-Key" in request.headers
                        else {}
                    ),
                },
                data=request.body,
                auth=client._auth,
            )
        )
        assert (request.method, request.url, request.body) == (
            expected.method,
            expected.url,
            expected.body,
        )
        assert dict(request.headers) == dict(expected.headers), request.method
    assert [r.url for r in sent] == [
        SIGNALS,
        f"{SIGNALS}/S%2F1",
        f"{SIGNALS}/S%2F1",
        f"{SIGNALS}/S%2F1/process",
        f"{SIGNALS}/S%2F1",
        f"{SIGNALS}?limit=5&offset=10",
    ]


def test_a_cookie_the_server_sets_is_sent_back(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    # A load balancer's sticky-session cookie must come back on the next request.
    rsps.post(SIGNALS, status=201, json=CREATED, headers={"Set-Cookie": "AWSALB=sticky1; Path=/"})
    rsps.post(SIGNALS, status=201, json=CREATED)
    client.create_signal(BODY, "k1")
    client.create_signal(BODY, "k2")
    assert "Cookie" not in rsps.calls[0].request.headers
    assert rsps.calls[1].request.headers["Cookie"] == "AWSALB=sticky1"
    assert rsps.calls[1].request.headers["Idempotency-Key"] == "k2"


def test_a_borrowed_session_that_trusts_the_environment_still_reads_it(
    rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Our own sessions read proxy and CA settings once; one handed in by a caller that
    # keeps trust_env reads them per request, as requests does.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/corporate-ca.pem")
    rsps.post(SIGNALS, status=201, json=CREATED)
    with requests.Session() as borrowed:
        ZentrikClient(BASE, KEY, session=borrowed).create_signal(BODY, "k")
    assert rsps.calls[0].request.req_kwargs["verify"] == "/etc/corporate-ca.pem"  # type: ignore[attr-defined]


def test_timeouts_are_configurable(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/readyz", json={"checks": {"database": "ok", "workspaceQueue": "ok"}})
    with ZentrikClient(BASE, KEY, timeout=12.0, connect_timeout=2.0) as c:
        c.readyz()
    assert rsps.calls[0].request.req_kwargs["timeout"] == (2.0, 12.0)  # type: ignore[attr-defined]


def test_create_answered_200_means_an_existing_signal(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.post(SIGNALS, status=200, json={"publicId": "SIGNAL-1", "jobId": "job-1"})
    receipt = client.create_signal(BODY, "k")
    assert (receipt.http_status, receipt.workspace_id, receipt.status) == (200, None, None)


def test_requests_without_body_send_no_content_type(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.post(f"{SIGNALS}/SIGNAL-42/process", status=202, json={"jobId": "job-10"})
    assert client.process_signal("SIGNAL-42") == "job-10"
    request = rsps.calls[0].request
    assert "Content-Type" not in request.headers
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert not request.body


def test_process_without_a_body_returns_none(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.post(f"{SIGNALS}/SIGNAL-42/process", status=204)
    assert client.process_signal("SIGNAL-42") is None


def test_update_patches_json_fields(rsps: responses.RequestsMock, client: ZentrikClient) -> None:
    rsps.patch(f"{SIGNALS}/SIGNAL-42", status=200, json={"publicId": "SIGNAL-42"})
    client.update_signal("SIGNAL-42", {"name": "Renamed", "data": {"k": 1}})
    request = rsps.calls[0].request
    assert request.method == "PATCH"
    assert request.headers["Content-Type"] == "application/json"
    assert isinstance(request.body, bytes)
    assert json.loads(request.body) == {"name": "Renamed", "data": {"k": 1}}


def test_ids_are_quoted_into_the_path(rsps: responses.RequestsMock, client: ZentrikClient) -> None:
    rsps.get(f"{SIGNALS}/a%2Fb%3Fc", json={"status": "queued"})
    assert client.get_signal("a/b?c").public_id == "a/b?c"
    with pytest.raises(ValueError):
        client.get_signal("..")


# -- successful answers --------------------------------------------------------------------


def test_get_signal(rsps: responses.RequestsMock, client: ZentrikClient) -> None:
    rsps.get(
        f"{SIGNALS}/SIGNAL-42",
        json={"publicId": "SIGNAL-42", "status": "Failed", "jobId": "job-9", "error": "boom"},
    )
    assert client.get_signal("SIGNAL-42") == SignalState("SIGNAL-42", "failed", "boom", "job-9")


def test_processing_error_is_one_short_redacted_line(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    error = {"code": "embedding_failed", "message": f"used key {KEY}\n" + "x" * 500}
    rsps.get(f"{SIGNALS}/SIGNAL-42", json={"status": "failed", "error": error})
    state = client.get_signal("SIGNAL-42")
    assert state.error is not None
    assert state.error.startswith("embedding_failed: used key ***")
    assert KEY not in state.error and "\n" not in state.error
    assert len(state.error) <= 200


def test_delete_accepts_200_204_and_already_gone(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.delete(f"{SIGNALS}/SIGNAL-1", status=200, json={"deleted": True})
    rsps.delete(f"{SIGNALS}/SIGNAL-2", status=204)
    rsps.delete(f"{SIGNALS}/SIGNAL-3", status=404, json={"error": {"code": "not_found"}})
    for n in (1, 2, 3):
        client.delete_signal(f"SIGNAL-{n}")


def test_delete_answered_by_the_front_end_is_not_a_success(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.delete(f"{SIGNALS}/SIGNAL-1", status=404, body=FRONT_END)
    with pytest.raises(WarmingUp):
        client.delete_signal("SIGNAL-1")


def test_list_signals_returns_the_page_and_total(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.get(
        SIGNALS,
        json=[{"publicId": "SIGNAL-1"}, {"publicId": "SIGNAL-2"}],
        headers={"X-Total-Count": "42"},
        match=[responses.matchers.query_param_matcher({"limit": "2", "offset": "4"})],
    )
    items, total = client.list_signals(limit=2, offset=4)
    assert [item["publicId"] for item in items] == ["SIGNAL-1", "SIGNAL-2"]
    assert total == 42


def test_list_signals_without_total(rsps: responses.RequestsMock, client: ZentrikClient) -> None:
    rsps.get(SIGNALS, json=[])
    assert client.list_signals() == ([], None)


def test_readyz_returns_the_checks(rsps: responses.RequestsMock, client: ZentrikClient) -> None:
    rsps.get(f"{BASE}/readyz", json={"checks": {"database": "ok", "workspaceQueue": "ok"}})
    assert client.readyz() == {"database": "ok", "workspaceQueue": "ok"}


def test_auth_context(rsps: responses.RequestsMock, client: ZentrikClient) -> None:
    context = {"workspace": {"id": "ws-1", "name": "Acme"}, "credential": {"scopes": ["x"]}}
    rsps.get(f"{BASE}/external/v1/auth/context", json=context)
    assert client.auth_context() == context


def test_auth_context_absent_is_none(rsps: responses.RequestsMock, client: ZentrikClient) -> None:
    rsps.get(f"{BASE}/external/v1/auth/context", status=404, json={"message": "Not Found"})
    assert client.auth_context() is None


# -- readiness -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (
            200,
            {"checks": {"database": "ok", "workspaceQueue": "starting"}},
            ApiUnavailable,
            "API not ready: workspaceQueue=starting",
        ),
        (
            200,
            {"status": "ok"},
            ApiUnavailable,
            "API not ready: /readyz answered 200 without any checks",
        ),
        (200, "OK", ApiUnavailable, "API not ready: /readyz answered 200 without any checks"),
        (418, "", ApiUnavailable, "API not ready: /readyz answered 418 i'm a teapot"),
        # Worth waiting for: transient, so the preflight's retry policy waits for the API.
        (
            503,
            {"checks": {"database": "down", "workspaceQueue": "ok"}},
            ServerUnavailable,
            "API not ready: database=down",
        ),
        (
            502,
            "<html><title>502 Bad Gateway</title></html>",
            ServerUnavailable,
            "API not ready: /readyz answered 502 bad gateway: 502 Bad Gateway",
        ),
        (429, "", RateLimited, "API not ready: /readyz answered 429 too many requests"),
        (
            404,
            FRONT_END,
            WarmingUp,
            "API not ready: /readyz answered 404 from the web front end "
            "(the API is still starting)",
        ),
    ],
)
def test_readyz_not_ready(
    rsps: responses.RequestsMock,
    client: ZentrikClient,
    status: int,
    body: Any,
    error: type[ZsyncError],
    message: str,
) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    rsps.get(f"{BASE}/readyz", status=status, body=text)
    with pytest.raises(error) as caught:
        client.readyz()
    assert str(caught.value) == message


def test_readyz_refused_key_is_an_auth_error(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.get(f"{BASE}/readyz", status=401)
    with pytest.raises(AuthError):
        client.readyz()


# -- error answers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (
            422,
            {
                "error": {
                    "code": "validation_failed",
                    "message": "text is required",
                    "field": "text",
                }
            },
            Rejected,
            "422 validation_failed: text is required (field text)",
        ),
        (
            400,
            {"message": "signalType is unknown"},
            Rejected,
            "400 bad request: signalType is unknown",
        ),
        (400, {"detail": "Malformed JSON"}, Rejected, "400 bad request: Malformed JSON"),
        (
            422,
            {"detail": [{"loc": ["body", "text"], "msg": "field required", "type": "missing"}]},
            Rejected,
            "422 missing: field required (field text)",
        ),
        (
            413,
            "Payload too large\nsee https://docs for limits",
            Rejected,
            "413 request entity too large: Payload too large",
        ),
        (404, {"error": "not_found"}, Rejected, "404 not found: not_found"),
        (501, "", Rejected, "501 not implemented"),
        (
            409,
            {
                "error": {
                    "code": "idempotency_conflict",
                    "message": "body differs from the first use",
                }
            },
            Conflict,
            "409 idempotency_conflict: body differs from the first use",
        ),
        (500, {"message": "internal"}, ServerUnavailable, "500 internal server error: internal"),
        (
            502,
            "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            ServerUnavailable,
            "502 bad gateway: 502 Bad Gateway",
        ),
        (503, "", ServerUnavailable, "503 service unavailable"),
        (504, "upstream timed out", ServerUnavailable, "504 gateway timeout: upstream timed out"),
    ],
)
def test_error_status_becomes_an_actionable_exception(
    rsps: responses.RequestsMock,
    client: ZentrikClient,
    status: int,
    body: Any,
    error: type[ApiError],
    message: str,
) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    rsps.post(SIGNALS, status=status, body=text)
    with pytest.raises(error) as caught:
        client.create_signal(BODY, "k")
    assert str(caught.value) == message
    assert caught.value.status == status


def test_429_carries_retry_after(rsps: responses.RequestsMock, client: ZentrikClient) -> None:
    rsps.post(SIGNALS, status=429, headers={"Retry-After": "3"}, json={"message": "slow down"})
    with pytest.raises(RateLimited) as caught:
        client.create_signal(BODY, "k")
    assert caught.value.retry_after == 3.0
    assert str(caught.value) == "429 too many requests: slow down; retry after 3s"


def test_429_without_retry_after(rsps: responses.RequestsMock, client: ZentrikClient) -> None:
    rsps.post(SIGNALS, status=429)
    with pytest.raises(RateLimited) as caught:
        client.create_signal(BODY, "k")
    assert caught.value.retry_after is None


def test_401_says_the_key_was_refused(rsps: responses.RequestsMock, client: ZentrikClient) -> None:
    rsps.post(SIGNALS, status=401, json={"error": {"message": "invalid API key"}})
    with pytest.raises(AuthError) as caught:
        client.create_signal(BODY, "k")
    assert str(caught.value) == (
        "the API refused the key (401 unauthorized: invalid API key); check ZENTRIK_API_KEY"
    )
    # It stops the run (exit 3) rather than failing one item.
    assert isinstance(caught.value, ConfigError) and not isinstance(caught.value, ApiError)


def test_403_names_the_missing_scope(rsps: responses.RequestsMock, client: ZentrikClient) -> None:
    rsps.post(SIGNALS, status=403, json={"error": {"message": "missing scope signals:write"}})
    with pytest.raises(AuthError) as caught:
        client.create_signal(BODY, "k")
    assert str(caught.value) == (
        "the API refused the key (403 forbidden: missing scope signals:write); "
        "create needs a key with the signals:write scope"
    )


def test_get_404_from_the_front_end_is_warming_up(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.get(f"{SIGNALS}/SIGNAL-1", status=404, body=FRONT_END)
    with pytest.raises(WarmingUp):
        client.get_signal("SIGNAL-1")


def test_post_404_from_the_front_end_is_rejected(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.post(SIGNALS, status=404, body=FRONT_END)
    with pytest.raises(Rejected) as caught:
        client.create_signal(BODY, "k")
    assert caught.value.status == 404


def test_get_404_of_the_api_is_rejected(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.get(f"{SIGNALS}/SIGNAL-1", status=404, json={"error": {"code": "not_found"}})
    with pytest.raises(Rejected, match="404 not_found"):
        client.get_signal("SIGNAL-1")


# -- redirects -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_on_post_is_refused_and_never_followed(status: int) -> None:
    target = "https://login.elsewhere.example/sso?token=abc123&next=/api"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(SIGNALS, status=status, headers={"Location": target})
        followed_get = rsps.get(target, json={"ok": True})
        followed_post = rsps.post(target, json=CREATED)
        with ZentrikClient(BASE, KEY) as client, pytest.raises(RedirectRefused) as caught:
            client.create_signal(BODY, "k")
        assert len(rsps.calls) == 1
        assert followed_get.call_count == followed_post.call_count == 0
    message = str(caught.value)
    assert message.startswith(f"API answered {status} redirect to login.elsewhere.example;")
    assert "redirects are not followed" in message
    assert "token" not in message and "/sso" not in message
    assert caught.value.status == status


def test_relative_redirect_on_get(rsps: responses.RequestsMock, client: ZentrikClient) -> None:
    rsps.get(f"{BASE}/readyz", status=301, headers={"Location": "/api/readyz/"})
    with pytest.raises(RedirectRefused, match="redirect to another path"):
        client.readyz()
    assert len(rsps.calls) == 1


# -- malformed success answers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (json.dumps({"jobId": "job-1"}), "create answered 201 without a publicId"),
        (json.dumps({"publicId": "", "jobId": "j"}), "create answered 201 without a publicId"),
        (json.dumps({"publicId": None, "jobId": "j"}), "create answered 201 without a publicId"),
        (json.dumps({"publicId": ["S-1"], "jobId": "j"}), "without a publicId"),
        (json.dumps([CREATED]), "create answered 201 with JSON that is not an object"),
        ("created!", "create answered 201 with a body that is not JSON"),
        ("", "create answered 201 with a body that is not JSON"),
        ("[" * 100_000, "create answered 201 with a body that is not JSON"),
    ],
)
def test_malformed_create_answer(
    rsps: responses.RequestsMock, client: ZentrikClient, body: str, message: str
) -> None:
    rsps.post(SIGNALS, status=201, body=body)
    with pytest.raises(MalformedResponse, match=message):
        client.create_signal(BODY, "k")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"publicId": "SIGNAL-1"}, "get SIGNAL-1 answered 200 without a status"),
        ({"publicId": "SIGNAL-1", "status": 3}, "without a status"),
        ({"publicId": "SIGNAL-2", "status": "processed"}, "answered for another signal"),
    ],
)
def test_malformed_get_answer(
    rsps: responses.RequestsMock, client: ZentrikClient, body: dict[str, Any], message: str
) -> None:
    rsps.get(f"{SIGNALS}/SIGNAL-1", json=body)
    with pytest.raises(MalformedResponse, match=message):
        client.get_signal("SIGNAL-1")


def test_malformed_list_answer(rsps: responses.RequestsMock, client: ZentrikClient) -> None:
    rsps.get(SIGNALS, json={"items": []})
    with pytest.raises(MalformedResponse, match="not an array"):
        client.list_signals()


def test_auth_context_without_workspace_is_malformed(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.get(f"{BASE}/external/v1/auth/context", json={"credential": {}})
    with pytest.raises(MalformedResponse, match=r"without a workspace\.id"):
        client.auth_context()


# -- the key never leaks, bodies are tamed -------------------------------------------------

ECHOES = [
    json.dumps({"error": {"code": "bad_key", "message": f"key {KEY} is revoked"}}),
    json.dumps({"message": f"Authorization: Bearer {KEY}"}),
    f"received headers:\nAuthorization: Bearer {KEY}\n",
    f"{KEY} is not valid",
    "<html><title>Denied for " + KEY + "</title></html>",
    json.dumps({"detail": [{"loc": ["header", KEY], "msg": f"bad {KEY}"}]}),
]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 429, 500, 501, 503])
@pytest.mark.parametrize("echo", ECHOES)
def test_key_echoed_by_the_server_never_reaches_a_message(
    rsps: responses.RequestsMock, client: ZentrikClient, status: int, echo: str
) -> None:
    rsps.post(SIGNALS, status=status, body=echo)
    with pytest.raises(ZsyncError) as caught:
        client.create_signal(BODY, "k")
    assert_no_key(caught.value)


@pytest.mark.parametrize("padding", range(170, 215, 3))
def test_key_cut_at_the_length_limit_does_not_leak_a_piece(
    rsps: responses.RequestsMock, client: ZentrikClient, padding: int
) -> None:
    rsps.post(SIGNALS, status=422, json={"message": "x" * padding + KEY})
    with pytest.raises(Rejected) as caught:
        client.create_signal(BODY, "k")
    assert_no_key(caught.value)
    assert "zk_live" not in str(caught.value)


def test_key_after_a_run_of_whitespace_does_not_leak_a_piece(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    # Whitespace collapses after the body is cut, so the cut must not split the key.
    for width in range(740, 800):
        rsps.post(SIGNALS, status=422, json={"message": " " * width + KEY})
    for _ in range(740, 800):
        with pytest.raises(Rejected) as caught:
            client.create_signal(BODY, "k")
        assert "zk_li" not in str(caught.value)


def test_key_echoed_in_a_redirect_location_never_leaks(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.post(SIGNALS, status=302, headers={"Location": f"https://x.example/?key={KEY}"})
    with pytest.raises(RedirectRefused) as caught:
        client.create_signal(BODY, "k")
    assert_no_key(caught.value)


def test_error_body_is_one_short_line_without_headers(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    message = "first\r\nsecond\x1b[31m red\x00\u202e evil\t" + "long " * 1000
    rsps.post(
        SIGNALS,
        status=422,
        json={"message": message},
        headers={"X-Request-Debug": "internal-header-value", "Set-Cookie": "session=s3cr3t"},
    )
    with pytest.raises(Rejected) as caught:
        client.create_signal(BODY, "k")
    text = str(caught.value)
    assert text.startswith("422 unprocessable")
    assert text.endswith("…")
    assert len(text) <= 200
    assert text.isprintable() and "\u202e" not in text
    assert "first second" in text and "red" in text
    assert "internal-header-value" not in text and "s3cr3t" not in text


def test_client_repr_does_not_show_the_key() -> None:
    client = ZentrikClient(BASE, KEY)
    assert KEY not in repr(client)
    assert KEY not in repr(client._auth)
    client.close()


@pytest.mark.parametrize("bad", ["", " ", "abc def", "abc\ndef", "ключ", "key\x00"])
def test_unusable_key_is_a_config_error_that_does_not_quote_it(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ZentrikClient(BASE, bad)
    assert "ZENTRIK_API_KEY" in str(caught.value)
    if bad.strip():
        assert bad not in str(caught.value)


# -- transport failures --------------------------------------------------------------------


def reset_error() -> requests.ConnectionError:
    reset = ConnectionResetError(104, "Connection reset by peer")
    return requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", reset))


@pytest.mark.parametrize(
    ("raised", "message"),
    [
        (reset_error(), "connection reset by the API (zentrik.test)"),
        (requests.ReadTimeout("read timed out"), "timed out after 30s waiting for the API"),
        (
            requests.ConnectTimeout("connect timed out"),
            "could not connect to zentrik.test within 5s",
        ),
        (requests.exceptions.ChunkedEncodingError("bad chunk"), "broke off in the middle"),
        (
            requests.ConnectionError(
                urllib3.exceptions.ProtocolError(
                    "Connection aborted.",
                    RemoteDisconnected("closed"),
                )
            ),
            "closed the connection without answering",
        ),
        (
            requests.ConnectionError(f"Bearer {KEY} weird"),
            "could not reach the API at zentrik.test",
        ),
    ],
)
def test_transport_failures(
    rsps: responses.RequestsMock, client: ZentrikClient, raised: Exception, message: str
) -> None:
    rsps.post(SIGNALS, body=raised)
    with pytest.raises(TransportError, match=re.escape(message)) as caught:
        client.create_signal(BODY, "k")
    assert_no_key(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert caught.value.status is None


def test_connection_refused_on_a_real_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ZentrikClient(f"http://127.0.0.1:{port}/api", KEY, connect_timeout=2)
    with client, pytest.raises(TransportError) as caught:
        client.readyz()
    assert str(caught.value) == f"connection refused by 127.0.0.1:{port} (is the API running?)"


def test_readyz_transport_failure_is_a_transport_error(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.get(f"{BASE}/readyz", body=reset_error())
    with pytest.raises(TransportError):
        client.readyz()


def test_session_is_owned_or_borrowed() -> None:
    borrowed = requests.Session()
    ZentrikClient(BASE, KEY, session=borrowed).close()
    # A borrowed session stays usable: the caller closes it.
    assert borrowed.adapters
    borrowed.close()
