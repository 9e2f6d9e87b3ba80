"""The API key stays secret, the ledger stays private, and the client refuses what it must:
plain http to another machine, redirects, refused keys (no retries), and header values or
long bodies in what the server answers."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import signal
import socket
import stat
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.helpers import (
    FIGURES,
    created_count,
    ledger_rows,
    spawn,
    wait_for,
    write_records,
    zsync,
)
from tests.emulator.testing import running_emulator

SECRET = "zk_chaos_" + secrets.token_hex(16)
WRONG = "zk_wrong_" + secrets.token_hex(16)


def _env(url: str, ledger: Path, key: str = SECRET) -> dict[str, str]:
    return {
        "ZENTRIK_API_BASE": url,
        "ZENTRIK_API_KEY": key,
        "ZSYNC_LEDGER": str(ledger),
        "ZSYNC_RETRY_SCALE": "0.02",
        "ZSYNC_DOUBT_HORIZON": "0.3",  # the emulator commits before it answers
    }


def _assert_no_secret(text: str, *secrets_: str, where: str) -> None:
    for secret in secrets_:
        assert secret not in text, f"the key appears in {where}"
        # Nor a long piece of it (a shortened message must not leave half a key behind).
        assert secret[-16:] not in text, f"part of the key appears in {where}"


def _ledger_bytes(ledger: Path) -> bytes:
    return b"".join(p.read_bytes() for p in ledger.parent.glob(ledger.name + "*") if p.is_file())


# -- the key -----------------------------------------------------------------------------


def _noisy_emulator() -> contextlib.AbstractContextManager[Any]:
    """Every kind of answer that gets printed: retries, rejections, failures, lost answers."""
    return running_emulator(
        api_key=SECRET,
        error_rate=0.15,
        reset_rate=0.05,
        drop_after_commit_rate=0.05,
        fail_rate=0.2,
        reject_external_ids=("sec-00003", "sec-00007"),
        process_seconds=0.2,
        seed=17,
    )


def test_key_in_no_output_sample(tmp_path: Path) -> None:
    write_records(tmp_path / "in.jsonl", 40, prefix="sec")
    ledger = tmp_path / "z.db"
    with _noisy_emulator() as emu:
        env = _env(emu.url, ledger)
        done = zsync(
            ["--debug", "-vv", "push", "-i", str(tmp_path / "in.jsonl"), "--poll-seconds", "20"],
            env,
        )
        assert done.returncode == 1, done.stderr  # rejected and failed items
        assert "retry" in done.stderr and "rejected" in done.stderr  # it did talk a lot
        _assert_no_secret(done.stdout + done.stderr, SECRET, where="push --debug -vv")
    _assert_no_secret(_ledger_bytes(ledger).decode("latin-1"), SECRET, where="the ledger")


COMMANDS: list[list[str]] = [
    ["push", "-i", "{input}", "--poll-seconds", "20"],
    ["-v", "push", "-i", "{input}", "--no-poll"],
    ["-vv", "--debug", "push", "-i", "{input}", "--json", "--metrics-file", "{dir}/m.prom"],
    ["--log-format", "json", "-vv", "--debug", "push", "-i", "{input}", "--poll-seconds", "5"],
    ["-q", "push", "-i", "{input}", "--dry-run"],
    ["--debug", "-vv", "reconcile", "--poll-seconds", "10"],
    ["--debug", "-vv", "retry-failed", "--poll-seconds", "10"],
    ["retry-failed", "--preview"],
    ["--debug", "status"],
    ["status", "--json"],
    ["runs"],
    ["errors"],
    ["show", "sec-00003"],
    ["export"],
    ["export", "--format", "csv"],
    ["--debug", "-vv", "check"],
]


@pytest.mark.slow
def test_key_in_no_output_of_any_command_at_any_verbosity(tmp_path: Path) -> None:
    write_records(tmp_path / "in.jsonl", 150, prefix="sec")
    ledger = tmp_path / "z.db"
    env_file = tmp_path / "key.env"
    env_file.write_text(f"ZENTRIK_API_KEY={SECRET}\n")
    with _noisy_emulator() as emu:
        env = _env(emu.url, ledger)
        for template in COMMANDS:
            args = [a.format(input=tmp_path / "in.jsonl", dir=tmp_path) for a in template]
            done = zsync(args, env)
            assert "Traceback" not in done.stderr or "--debug" in args, done.stderr
            _assert_no_secret(done.stdout + done.stderr, SECRET, where=" ".join(template))
        # The key from --env-file instead of the environment, and a killed run's WAL.
        write_records(tmp_path / "more.jsonl", 300, prefix="more")
        emu.set_faults(latency_ms=30)
        file_env = {k: v for k, v in env.items() if k != "ZENTRIK_API_KEY"}
        before = created_count(emu)
        proc = spawn(
            ["-vv", "push", "-i", str(tmp_path / "more.jsonl"), "--env-file", str(env_file)],
            file_env,
        )
        wait_for(lambda: created_count(emu) >= before + 30, 30, "the run to send")
        proc.send_signal(signal.SIGKILL)
        FIGURES["kills"] += 1
        FIGURES["kills_mid_send"] += 1
        out, err = proc.communicate()
        _assert_no_secret(out + err, SECRET, where="push --env-file")
        assert Path(f"{ledger}-wal").exists()
        _assert_no_secret(_ledger_bytes(ledger).decode("latin-1"), SECRET, where="ledger + WAL")
        for table in ("runs", "events", "items", "meta"):
            rows = json.dumps(ledger_rows(ledger, f"SELECT * FROM {table}"))
            _assert_no_secret(rows, SECRET, where=f"ledger table {table}")
        metrics = (tmp_path / "m.prom").read_text()
        _assert_no_secret(metrics, SECRET, where="the metrics file")


@pytest.mark.parametrize(
    "bad_key",
    [WRONG, "zk key with spaces " + secrets.token_hex(8), "zk_" + secrets.token_hex(8) + "\u00e9"],
    ids=["wrong", "spaces", "non-ascii"],
)
def test_refused_or_malformed_key_is_not_echoed(tmp_path: Path, bad_key: str) -> None:
    write_records(tmp_path / "in.jsonl", 5, prefix="sec")
    with running_emulator(api_key=SECRET) as emu:
        env = _env(emu.url, tmp_path / "z.db", key=bad_key)
        done = zsync(["--debug", "-vv", "push", "-i", str(tmp_path / "in.jsonl")], env)
        assert done.returncode == 3, done.stderr
        _assert_no_secret(done.stdout + done.stderr, bad_key.split()[-1], SECRET, where="stderr")
        auth = emu.truth()["requests"]
    # Refused once, never retried (readyz needs no key; it is asked once too).
    assert sum(n for k, n in auth.items() if "auth/context" in k) <= 1, auth


# -- the files ---------------------------------------------------------------------------


def test_ledger_and_wal_are_private_even_with_umask_0(tmp_path: Path) -> None:
    write_records(tmp_path / "in.jsonl", 400, prefix="mode")
    ledger = tmp_path / "z.db"
    with running_emulator(latency_ms=40) as emu:
        env = _env(emu.url, ledger, key="zsync-dev-key")
        proc = spawn(["push", "-i", str(tmp_path / "in.jsonl"), "--no-poll"], env, umask=0)
        wait_for(lambda: created_count(emu) >= 20, 30, "the run to write")
        proc.kill()  # so the -wal and -shm files stay for inspection
        proc.communicate()
        files = sorted(ledger.parent.glob("z.db*"))
        # The run lock's file (z.db.lock) sits beside them and is private too.
        assert [f.name for f in files] == ["z.db", "z.db-shm", "z.db-wal", "z.db.lock"]
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
        assert modes == dict.fromkeys(modes, 0o600), {k: oct(v) for k, v in modes.items()}
        # A finished run leaves a private file too.
        done = zsync(["push", "-i", str(tmp_path / "in.jsonl"), "--no-poll"], env)
        assert done.returncode == 0
        assert stat.S_IMODE(ledger.stat().st_mode) == 0o600


# -- plain http ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base",
    [
        "http://zentrik.example.com/api",
        "http://10.1.2.3:8080/api",
        "http://127.0.0.1.nip.io/api",  # a DNS name that merely starts like a loopback address
        "http://localhost.attacker.example/api",
        "http://[2001:db8::1]/api",
    ],
)
def test_plain_http_to_another_machine_is_refused(tmp_path: Path, base: str) -> None:
    write_records(tmp_path / "in.jsonl", 2)
    env = _env(base, tmp_path / "z.db")
    refused = zsync(["push", "-i", str(tmp_path / "in.jsonl"), "--dry-run"], env)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "plain http" in refused.stderr and "--allow-insecure-http" in refused.stderr
    assert refused.stdout == ""
    allowed = zsync(
        ["push", "-i", str(tmp_path / "in.jsonl"), "--dry-run", "--allow-insecure-http"], env
    )
    assert allowed.returncode == 0, allowed.stderr
    assert len(allowed.stdout.splitlines()) >= 2  # the bodies it would send


def _non_loopback_address() -> str | None:
    for target in ("10.255.255.255", "192.0.2.1", "198.51.100.1"):
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((target, 9))  # no packet is sent; this only picks a route
            address = str(s.getsockname()[0])
            if not address.startswith("127.") and address != "0.0.0.0":
                return address
    return None


def test_plain_http_to_this_machines_network_address_needs_the_flag(tmp_path: Path) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    ids = write_records(tmp_path / "in.jsonl", 5)
    with running_emulator(host="0.0.0.0") as emu:
        base = f"http://{address}:{emu.port}/api"
        env = _env(base, tmp_path / "z.db", key="zsync-dev-key")
        refused = zsync(["push", "-i", str(tmp_path / "in.jsonl"), "--no-poll"], env)
        assert refused.returncode == 3, refused.stderr
        assert emu.truth()["requests"] == {}, "a request left before the refusal"
        allowed = zsync(
            ["push", "-i", str(tmp_path / "in.jsonl"), "--no-poll", "--allow-insecure-http"], env
        )
        assert allowed.returncode == 0, allowed.stderr
        assert set(emu.truth()["creates_by_external_id"]) == set(ids)


# -- a hostile or broken server --------------------------------------------------------------

Responder = Callable[["FakeHandler", bytes], tuple[int, dict[str, str], bytes]]


def _json(status: int, value: object, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(value).encode()


def _ready(_h: FakeHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
    return _json(200, {"checks": {"database": "ok", "workspaceQueue": "ok"}})


def _context(_h: FakeHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
    return _json(200, {"workspace": {"id": "ws-1", "name": "w"}, "credential": {"scopes": []}})


def _no_signals(_h: FakeHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
    # An empty workspace: a new ledger vouches for it with this one list request.
    return _json(200, [], **{"X-Total-Count": "0"})


class FakeHandler(BaseHTTPRequestHandler):
    server: FakeApi

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        path = self.path.split("?")[0]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        api = self.server
        with api.lock:
            api.hits[(self.command, path)] += 1
            api.auth_seen.add(self.headers.get("Authorization", ""))
        responder = api.routes.get((self.command, path))
        if responder is None:
            status, headers, payload = _json(404, {"error": {"code": "not_found"}})
        else:
            status, headers, payload = responder(self, body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any


class FakeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[tuple[str, str], Responder]) -> None:
        super().__init__(("127.0.0.1", 0), FakeHandler)
        self.routes = {
            ("GET", "/api/readyz"): _ready,
            ("GET", "/api/external/v1/auth/context"): _context,
            ("GET", "/api/external/v1/signals"): _no_signals,
            **routes,
        }
        self.hits: Counter[tuple[str, str]] = Counter()
        self.auth_seen: set[str] = set()
        self.lock = threading.Lock()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def count(self, path: str) -> int:
        return sum(n for (_m, p), n in self.hits.items() if p == path)


@contextlib.contextmanager
def fake_api(routes: dict[tuple[str, str], Responder]) -> Iterator[FakeApi]:
    api = FakeApi(routes)
    thread = threading.Thread(target=api.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield api
    finally:
        api.shutdown()
        api.server_close()
        thread.join()


def _redirect(status: int, target: str) -> Responder:
    def answer(h: FakeHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
        location = f"{h.server.root}{target}"
        return _json(status, {"moved": location}, Location=location)

    return answer


def _trap(_h: FakeHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
    return _json(201, {"publicId": "TRAP-1", "jobId": "job-trap", "status": "queued"})


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("where", ["readyz", "create"])
def test_redirect_is_an_error_and_never_followed(tmp_path: Path, status: int, where: str) -> None:
    ids = write_records(tmp_path / "in.jsonl", 6)
    route = ("GET", "/api/readyz") if where == "readyz" else ("POST", "/api/external/v1/signals")
    trap: dict[tuple[str, str], Responder] = {
        (method, "/elsewhere"): _trap for method in ("GET", "POST", "PUT", "HEAD")
    }
    with fake_api({route: _redirect(status, "/elsewhere"), **trap}) as api:
        env = _env(f"{api.root}/api", tmp_path / "z.db")
        done = zsync(["push", "-i", str(tmp_path / "in.jsonl"), "--no-poll"], env)
        FIGURES["faults"]["redirect"] += api.hits[route]
        assert api.count("/elsewhere") == 0, "the redirect was followed"
        # A base that redirects is misconfigured (http vs https, a missing /api): exit 3.
        assert done.returncode == 3, done.stderr
        lines = [x for x in done.stderr.splitlines() if not x.startswith("notice: ")]
        assert len(lines) == 1 and "redirect" in lines[0] and "not followed" in lines[0], lines
        assert "Traceback" not in done.stderr
        if where == "create":
            # The run stopped at the first redirects (at most those in flight), unretried;
            # the records stay pending with their keys for the run after the fix.
            assert 1 <= api.hits[route] <= len(ids), api.hits
            rows = ledger_rows(tmp_path / "z.db", "SELECT status, public_id FROM items")
            assert rows == [("pending", None)] * len(ids), rows


def _echo(status: int, *, html: bool = False) -> Responder:
    """An error answer that repeats the request's Authorization header in its body (and in
    its own headers), then pads the body to 20 kB."""

    def answer(h: FakeHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
        auth = h.headers.get("Authorization", "")
        headers = {"X-Echo-Authorization": auth, "X-Header-Only": f"hdr-{SECRET}"}
        padding = "the server explains at length " * 700
        if html:
            page = f"<html><head><title>Bad gateway</title></head><body>{auth} {padding}</body>"
            return status, {"Content-Type": "text/html", **headers}, page.encode()
        message = f"you sent Authorization: {auth} and this is wrong. {padding}"
        return _json(status, {"error": {"code": "echo", "message": message}}, **headers)

    return answer


@pytest.mark.parametrize(
    ("route", "status", "html"),
    [
        (("POST", "/api/external/v1/signals"), 422, False),
        (("POST", "/api/external/v1/signals"), 400, True),
        (("POST", "/api/external/v1/signals"), 503, True),
        (("POST", "/api/external/v1/signals"), 401, False),
        (("GET", "/api/external/v1/auth/context"), 403, False),
        (("GET", "/api/readyz"), 500, True),
    ],
    ids=["422-json", "400-html", "503-html", "401-json", "403-auth", "500-readyz"],
)
def test_error_bodies_are_short_and_never_show_header_values(
    tmp_path: Path, route: tuple[str, str], status: int, html: bool
) -> None:
    write_records(tmp_path / "in.jsonl", 4)
    ledger = tmp_path / "z.db"
    with fake_api({route: _echo(status, html=html)}) as api:
        env = _env(f"{api.root}/api", ledger)
        done = zsync(["-vv", "--debug", "push", "-i", str(tmp_path / "in.jsonl"), "--no-poll"], env)
        assert api.auth_seen == {f"Bearer {SECRET}"}  # the server did get the key to echo
        FIGURES["faults"]["echoed_key"] += api.hits[route]
    output = done.stdout + done.stderr
    assert done.returncode != 0
    _assert_no_secret(output, SECRET, where="output")
    assert "hdr-" not in output, "a response header value was printed"
    assert "X-Echo" not in output and "X-Header-Only" not in output
    long_lines = [line for line in done.stderr.splitlines() if len(line) > 300]
    assert not long_lines, f"an error body was printed at length: {long_lines[0][:120]}..."
    if ledger.exists():
        _assert_no_secret(_ledger_bytes(ledger).decode("latin-1"), SECRET, where="the ledger")


def test_401_in_the_middle_of_a_run_stops_it_without_retries(tmp_path: Path) -> None:
    """The key is revoked after 10 creates: the run stops (exit 3), no request is retried,
    and the unsent records stay pending for the next run with a good key."""
    ids = write_records(tmp_path / "in.jsonl", 200)
    state = {"n": 0}
    lock = threading.Lock()

    def create(_h: FakeHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
        with lock:
            state["n"] += 1
            n = state["n"]
        if n > 10:
            return _json(401, {"error": {"code": "unauthorized", "message": "key revoked"}})
        return _json(201, {"publicId": f"S-{n}", "jobId": f"j-{n}", "status": "queued"})

    with fake_api({("POST", "/api/external/v1/signals"): create}) as api:
        env = _env(f"{api.root}/api", tmp_path / "z.db")
        done = zsync(
            ["push", "-i", str(tmp_path / "in.jsonl"), "--no-poll", "--concurrency", "4"], env
        )
        posts = api.hits[("POST", "/api/external/v1/signals")]
    assert done.returncode == 3, done.stderr
    assert "refused the key" in done.stderr
    assert posts <= 10 + 4, f"{posts} creates: the run went on (or retried) after a 401"
    statuses = Counter(s for (s,) in ledger_rows(tmp_path / "z.db", "SELECT status FROM items"))
    assert statuses["submitted"] == 10
    assert statuses["pending"] == len(ids) - 10, statuses
    FIGURES["faults"]["http_401_revoked"] += posts - 10


def test_403_on_create_stops_without_retries(tmp_path: Path) -> None:
    write_records(tmp_path / "in.jsonl", 100)
    with running_emulator(api_key=SECRET, scopes=("signals:read",)) as emu:
        env = _env(emu.url, tmp_path / "z.db")
        done = zsync(["push", "-i", str(tmp_path / "in.jsonl"), "--no-poll"], env)
        requests = emu.truth()["requests"]
    assert done.returncode == 3, done.stderr
    assert "signals:write" in done.stderr
    creates = sum(n for k, n in requests.items() if k.startswith("POST /api/external/v1/signals"))
    assert 1 <= creates <= 8, requests  # at most what was in flight (default concurrency 8)
    statuses = {s for (s,) in ledger_rows(tmp_path / "z.db", "SELECT status FROM items")}
    assert statuses == {"pending"}, statuses  # not 'rejected': a better key will send them
    assert not re.search(r"^(rejected|error): ", done.stderr, re.MULTILINE), done.stderr
