"""HTTP/1.1 front of the emulator: routing, auth, fault injection, truth endpoints."""

from __future__ import annotations

import contextlib
import hmac
import math
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any, cast
from urllib.parse import parse_qs

from zsync.emulator.config import EmulatorConfig
from zsync.emulator.faults import FaultInjector, InflightGauge
from zsync.emulator.listing import list_answer
from zsync.emulator.routes import DEFAULT_LIMIT, MAX_LIMIT, WARMUP_PAGE, int_param, match
from zsync.emulator.state import Answer, EmulatorState, encode
from zsync.emulator.validation import ApiFailure

MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass
class App:
    """Everything one emulator instance serves from; shared by all handler threads."""

    config: EmulatorConfig
    state: EmulatorState
    faults: FaultInjector
    started: float = field(default_factory=time.monotonic)
    inflight: InflightGauge = field(default_factory=InflightGauge)
    access_log: Callable[[str], None] | None = None

    def warming_up(self) -> bool:
        """True for the first ``warmup_seconds`` after start, while the API is not routed yet."""
        return time.monotonic() - self.started < self.config.warmup_seconds


class _Abort(Exception):
    """The connection is to be dropped without an answer; ``outcome`` is what truth records."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class HttpServer(ThreadingHTTPServer):
    """One thread per connection, keep-alive, and a record of open connections so a stop
    does not wait for idle clients."""

    request_queue_size = 128
    daemon_threads = True
    # Idle keep-alive connections would make server_close() wait forever; stop() closes them.
    block_on_close = False

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's FQDN lookup, which can stall on reverse DNS."""
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hang up (or stop() closing their socket): routine,
        not errors."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Shut down every open connection, idle keep-alive ones included."""
        with self.connections_lock:
            open_sockets = list(self.connections)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    """One connection: every method goes through one dispatch (routing, auth, faults)."""

    protocol_version = "HTTP/1.1"
    server_version = "zsync-emulator"
    # Buffered writes put headers and body in one segment; with Nagle off that avoids the
    # delayed-ACK stall that costs keep-alive clients ~40 ms per request.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    timeout = 300

    def version_string(self) -> str:
        """The Server header: ``zsync-emulator`` alone, without the Python version the standard
        library appends."""
        return self.server_version

    @property
    def app(self) -> App:
        """The emulator instance this connection's server serves."""
        return cast(HttpServer, self.server).app

    def setup(self) -> None:
        """Register the connection so a stop can close it."""
        super().setup()
        server = cast(HttpServer, self.server)
        with server.connections_lock:
            server.connections.add(self.connection)

    def finish(self) -> None:
        """Forget the connection; flush what is left unless it is already closed."""
        server = cast(HttpServer, self.server)
        with server.connections_lock:
            server.connections.discard(self.connection)
        # The client or stop() may already have closed the socket.
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Nothing: the emulator command's ``--verbose`` access log is written in
        ``_dispatch`` instead."""

    def do_GET(self) -> None:
        """Every method (GET, POST, PATCH, DELETE, PUT, HEAD, OPTIONS) is dispatched alike."""
        self._dispatch()

    do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = do_OPTIONS = do_GET

    # -- plumbing -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        started = time.perf_counter()
        path, _, query = self.path.partition("?")
        try:
            raw = self._read_body()
        except ApiFailure as failure:
            self.close_connection = True
            self._send_failure(failure)
            return
        if path.startswith("/__emulator/"):
            self._inspect(path)
            return
        if path != "/api" and not path.startswith("/api/"):
            self._send_failure(ApiFailure(404, "not_found", "the API lives under /api"))
            return
        template, methods, params = match(path)
        try:
            outcome = str(self._api(template, methods, params, raw, query))
        except OSError:
            # The client went away mid-answer; nothing left to say to it.
            self.close_connection = True
            outcome = "client_gone"
        except _Abort as abort:
            outcome = abort.outcome
            self.close_connection = True
            # An abortive close (RST), so the client sees a reset rather than a clean EOF.
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
        self.app.state.count_request(f"{self.command} {template or path} {outcome}")
        if self.app.access_log is not None:
            elapsed = (time.perf_counter() - started) * 1000
            self.app.access_log(f"{self.command} {path} {outcome} {elapsed:.1f}ms")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if not raw_length:
            return b""
        try:
            length = int(raw_length)
        except ValueError:
            raise ApiFailure(400, "bad_request", "Content-Length is not a number") from None
        if length < 0:
            raise ApiFailure(400, "bad_request", "Content-Length is negative")
        if length > MAX_BODY_BYTES:
            raise ApiFailure(413, "payload_too_large", "request body is too large")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise ApiFailure(400, "bad_request", "malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(8192).strip():
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise ApiFailure(413, "payload_too_large", "request body is too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> int:
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if status != 204 and self.command != "HEAD":
            self.wfile.write(body)
        return status

    def _send_json(self, status: int, value: object, headers: dict[str, str] | None = None) -> int:
        return self._send(status, encode(value), headers)

    def _send_failure(self, failure: ApiFailure) -> int:
        return self._send_json(failure.status, failure.body(), failure.headers)

    def _inspect(self, path: str) -> None:
        app = self.app
        if not app.config.inspect:
            self._send_failure(ApiFailure(404, "not_found", "inspection is disabled"))
        elif path == "/__emulator/state" and self.command == "GET":
            self._send_json(200, app.state.truth())
        elif path == "/__emulator/reset" and self.command == "POST":
            app.state.reset()
            app.faults.reset()
            self._send(204, b"")
        else:
            self._send_failure(ApiFailure(404, "not_found", "no such inspection endpoint"))

    # -- the API --------------------------------------------------------------------------

    def _api(
        self,
        template: str | None,
        methods: dict[str, tuple[str, str | None]],
        params: tuple[str, ...],
        raw: bytes,
        query: str,
    ) -> int:
        app = self.app
        others = app.inflight.enter(app.config.max_inflight)
        if others is None:
            app.state.count_fault("overloaded_503")
            return self._send_failure(
                ApiFailure(503, "overloaded", "too many requests in flight; try again later")
            )
        try:
            return self._admitted(template, methods, params, raw, query, others)
        finally:
            app.inflight.leave()

    def _admitted(
        self,
        template: str | None,
        methods: dict[str, tuple[str, str | None]],
        params: tuple[str, ...],
        raw: bytes,
        query: str,
        others: int,
    ) -> int:
        app = self.app
        config = app.config
        if app.faults.chance(config.reset_rate):
            app.state.count_fault("reset")
            raise _Abort("reset")
        if config.latency_ms > 0:
            app.state.count_fault("latency")
            time.sleep(config.latency_ms / 1000)
        if config.inflight_cost_ms > 0 and others:
            # A queueing server: each request already in flight slows this one down.
            app.state.count_fault("inflight_delay")
            time.sleep(config.inflight_cost_ms * others / 1000)
        retry_after = app.faults.take_token(self.headers.get("Authorization", ""))
        if retry_after is not None:
            app.state.count_fault("rate_limited_429")
            failure = ApiFailure(429, "rate_limited", "too many requests")
            return self._send_json(429, failure.body(), _retry_after(config, retry_after))
        if app.faults.chance(config.error_rate):
            app.state.count_fault("error_503")
            failure = ApiFailure(503, "unavailable", "service temporarily unavailable")
            return self._send_failure(failure)
        if app.warming_up():
            return self._warming_up(template)
        if template is None:
            return self._send_failure(ApiFailure(404, "not_found", "no such endpoint"))
        if self.command not in methods:
            allowed = ", ".join(sorted(methods))
            failure = ApiFailure(
                405, "method_not_allowed", f"{self.command} is not allowed here; use {allowed}"
            )
            failure.headers["Allow"] = allowed
            return self._send_failure(failure)
        handler_name, scope = methods[self.command]
        try:
            if scope is not None:
                self._authorize(scope)
            if handler_name == "_create" and app.faults.chance(config.late_commit_rate):
                self._commit_late(raw)
                raise _Abort("late_commit")
            handler = getattr(self, handler_name)
            answer: Answer = handler(params, raw, query)
        except _Abort:
            raise
        except ApiFailure as failure:
            return self._send_failure(failure)
        except Exception as exc:
            # An emulator bug must look like a server error to the client under test, not
            # like a network fault; the connection is closed in case state is half-written.
            self.close_connection = True
            internal = ApiFailure(500, "internal_error", f"emulator error: {type(exc).__name__}")
            return self._send_failure(internal)
        if answer.created and app.faults.chance(config.drop_after_commit_rate):
            app.state.count_fault("dropped_after_commit")
            raise _Abort("dropped")
        return self._send(answer.status, answer.body, answer.headers)

    def _warming_up(self, template: str | None) -> int:
        if template == "/api/readyz":
            checks = {"database": "ok", "workspaceQueue": "starting"}
            checks.update(self.app.config.readyz_extra_checks)
            return self._send_json(503, {"checks": checks})
        if self.command == "GET":
            return self._send(404, WARMUP_PAGE, content_type="text/html; charset=utf-8")
        failure = ApiFailure(503, "starting", "the API is starting")
        return self._send_failure(failure)

    def _authorize(self, scope: str) -> None:
        config = self.app.config
        scheme, _, token = self.headers.get("Authorization", "").strip().partition(" ")
        presented = token.strip().encode("utf-8", "replace")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented, config.api_key.encode("utf-8")
        ):
            # Never echo the presented key: the message is the same for every bad key.
            raise ApiFailure(
                401,
                "unauthorized",
                "missing or invalid API key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scope and scope not in config.scopes:
            raise ApiFailure(403, "forbidden", f"missing scope {scope}")

    def _readyz(self, params: tuple[str, ...], raw: bytes, query: str) -> Answer:
        ready = not self.app.config.not_ready
        checks = {"database": "ok", "workspaceQueue": "ok" if ready else "degraded"}
        checks.update(self.app.config.readyz_extra_checks)
        return Answer(200 if ready else 503, encode({"checks": checks}))

    def _auth_context(self, params: tuple[str, ...], raw: bytes, query: str) -> Answer:
        config = self.app.config
        return Answer(
            200,
            encode(
                {
                    "workspace": {"id": config.workspace_id, "name": config.workspace_name},
                    "credential": {"scopes": list(config.scopes)},
                }
            ),
        )

    def _create(self, params: tuple[str, ...], raw: bytes, query: str) -> Answer:
        key = self.headers.get("Idempotency-Key")
        handle_seconds = self.app.config.handle_ms / 1000
        return self.app.state.create(raw, key.strip() if key else None, handle_seconds)

    def _commit_late(self, raw: bytes) -> None:
        """A create still being handled when its connection drops: it holds its key (a
        repeat meanwhile gets 409 request_in_progress) and commits late_commit_seconds on."""
        key = self.headers.get("Idempotency-Key")
        state, delay = self.app.state, self.app.config.late_commit_seconds

        def commit() -> None:
            try:
                with contextlib.suppress(ApiFailure):
                    state.create(raw, key.strip() if key else None, delay)
            finally:
                state.late_done()

        state.late_started()

        threading.Thread(target=commit, name="late-commit", daemon=True).start()

    def _list(self, params: tuple[str, ...], raw: bytes, query: str) -> Answer:
        values = parse_qs(query, keep_blank_values=True)
        limit = min(int_param(values, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
        offset = int_param(values, "offset", 0, minimum=0)
        page, total = self.app.state.list_page(limit, offset)
        return list_answer(page, total, limit, offset, self.app.config)

    def _get(self, params: tuple[str, ...], raw: bytes, query: str) -> Answer:
        return Answer(200, encode(self.app.state.get(params[0])))

    def _patch(self, params: tuple[str, ...], raw: bytes, query: str) -> Answer:
        return Answer(200, encode(self.app.state.patch(params[0], raw)))

    def _delete(self, params: tuple[str, ...], raw: bytes, query: str) -> Answer:
        self.app.state.delete(params[0])
        if self.app.config.delete_status == 200:
            return Answer(200, encode({"publicId": params[0], "deleted": True}))
        return Answer(204, b"")

    def _process(self, params: tuple[str, ...], raw: bytes, query: str) -> Answer:
        return Answer(202, encode(self.app.state.process(params[0])))


def _retry_after(config: EmulatorConfig, seconds: int) -> dict[str, str]:
    if config.retry_after == "absent":
        return {}
    if config.retry_after == "http-date":
        # Whole seconds, rounded up, so the date never asks for less wait than ``seconds``.
        return {"Retry-After": formatdate(math.ceil(time.time()) + seconds, usegmt=True)}
    return {"Retry-After": str(seconds)}
