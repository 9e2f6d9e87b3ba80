"""Proxies: the key never crosses a proxy in clear text (issue 23).

A plain-http base on this machine is reached directly whatever HTTP_PROXY says; a plain-http
base elsewhere is refused through a plain-http proxy elsewhere (exit 3, the proxy named, its
password never printed); an https base goes through its proxy as before.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY, run_cli
from zsync import config, proxy_rules
from zsync.engine.client import ZentrikClient
from zsync.errors import ConfigError

PROXY_WITH_PASSWORD = "http://proxyuser:proxy-s3cret@proxy.corp.example:3128"
_PROXY_NAMES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


class _Recorder(BaseHTTPRequestHandler):
    """A proxy that only writes down what reached it (and the header that would leak)."""

    seen: list[tuple[str, str | None]]

    def _any(self) -> None:
        self.seen.append((self.requestline, self.headers.get("Authorization")))
        self.send_response(502)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PATCH = _any

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def recording_proxy() -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    seen: list[tuple[str, str | None]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_base_on_this_machine_bypasses_http_proxy(
    emulator, recording_proxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    proxy_url, seen = recording_proxy
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("http_proxy", proxy_url)
    (tmp_path / "in.jsonl").write_text(
        json.dumps({"kind": "external_text", "externalId": "p-1", "text": "t", "signalType": "x"})
        + "\n"
    )
    env = {"ZENTRIK_API_BASE": emulator.url, "ZENTRIK_API_KEY": TEST_KEY}
    result = run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=env)
    assert result.code == 0, result.err
    assert seen == []  # nothing, least of all the key, went through the proxy


def test_a_plain_http_proxy_elsewhere_is_refused_for_a_plain_http_base(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTP_PROXY", PROXY_WITH_PASSWORD)
    (tmp_path / "in.jsonl").write_text(
        json.dumps({"kind": "external_text", "externalId": "p-1", "text": "t", "signalType": "x"})
        + "\n"
    )
    env = {
        "ZENTRIK_API_BASE": "http://zentrik.corp.example/api",
        "ZENTRIK_API_KEY": TEST_KEY,
        "EVAL_API_WAIT_SECONDS": "0",
    }
    result = run_cli(["push", "--input", "in.jsonl", "--allow-insecure-http"], env=env)
    assert result.code == 3, result.err
    assert "http://proxy.corp.example:3128" in result.err
    assert "proxy-s3cret" not in result.err + result.out
    assert "proxyuser" not in result.err + result.out
    assert len(result.err.strip().splitlines()) == 1


def test_the_client_refuses_the_same_proxy() -> None:
    # The library path (no CLI, no config.load) is guarded too.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HTTP_PROXY", PROXY_WITH_PASSWORD)
        with pytest.raises(ConfigError, match=r"proxy http://proxy\.corp\.example:3128") as e:
            ZentrikClient("http://zentrik.corp.example/api", TEST_KEY)
    assert "s3cret" not in str(e.value)


def test_https_through_a_proxy_keeps_working(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY_WITH_PASSWORD)
    settings = config.load(api_base="https://zentrik.ai/api", environ={})
    assert settings.api_base == "https://zentrik.ai/api"
    with ZentrikClient("https://zentrik.ai/api", TEST_KEY) as client:
        assert client._session.proxies.get("https") == PROXY_WITH_PASSWORD


@pytest.mark.parametrize(
    ("base", "environ", "expected"),
    [
        ("http://a.example/api", {"HTTP_PROXY": "http://p:1"}, "http://p:1"),
        (
            "http://a.example/api",
            {"HTTP_PROXY": "http://P:1", "http_proxy": "http://p:2"},
            "http://p:2",
        ),
        ("https://a.example/api", {"HTTP_PROXY": "http://p:1"}, None),
        ("https://a.example/api", {"ALL_PROXY": "http://p:3"}, "http://p:3"),
        ("http://a.example/api", {"HTTP_PROXY": "http://p:1", "NO_PROXY": ".example"}, None),
        ("http://10.1.2.3/api", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, None),
        ("http://a.example/api", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "*"}, None),
    ],
)
def test_the_proxy_a_request_would_take(
    base: str, environ: dict[str, str], expected: str | None
) -> None:
    assert proxy_rules.environ_proxy(base, environ) == expected


def test_config_refuses_the_proxy_before_anything_is_opened() -> None:
    env = {"HTTP_PROXY": PROXY_WITH_PASSWORD}
    with pytest.raises(ConfigError, match=r"proxy http://proxy\.corp\.example:3128"):
        config.load(
            api_base="http://zentrik.corp.example/api", allow_insecure_http=True, environ=env
        )
    # A proxy on this machine, or a base on this machine, is fine.
    config.load(
        api_base="http://zentrik.corp.example/api",
        allow_insecure_http=True,
        environ={"HTTP_PROXY": "http://127.0.0.1:3128"},
    )
    config.load(api_base="http://localhost:8080/api", environ=env)
