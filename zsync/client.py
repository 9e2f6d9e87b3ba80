"""ZentrikClient: one method per endpoint of the Signals API, one request per call.

Every answer is either a validated result or an exception from :mod:`zsync.errors`; nothing
here retries (see :mod:`zsync.retry`) and nothing follows a redirect. Text that came from the
server goes through :func:`zsync.config.redact` and is shortened to one line before it is put
into an exception, so an error body that echoes the key cannot leak it.
"""

from __future__ import annotations

import http
import json
import re
import socket
import ssl
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPException, IncompleteRead, RemoteDisconnected
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import requests.auth
import urllib3.exceptions

import zsync
from zsync.config import redact
from zsync.errors import (
    ApiUnavailable,
    AuthError,
    ConfigError,
    Conflict,
    MalformedResponse,
    NotDelivered,
    RateLimited,
    RedirectRefused,
    Rejected,
    ServerUnavailable,
    TransportError,
    WarmingUp,
    WrongWorkspace,
    ZsyncError,
)
from zsync.retry import parse_retry_after

USER_AGENT = f"zsync/{zsync.__version__}"

SIGNALS_PATH = "/external/v1/signals"
AUTH_CONTEXT_PATH = "/external/v1/auth/context"
READYZ_PATH = "/readyz"

MAX_MESSAGE = 200
# A web front end answering for the API while it starts (the import template's rule).
_FRONT_END_MARKER = b"static/index.html"
# Only this much of a non-JSON error body is looked at.
_TEXT_PEEK = 65536
_SERVER_UNAVAILABLE = frozenset({500, 502, 503, 504})
# Where a signal may say why its processing failed (the API does not document it): inside
# its processing object, or at the top level.
_PROCESSING_REASON_KEYS = ("error", "errorMessage", "failureReason", "reason", "message")
_REASON_KEYS = ("error", "processingError", "errorMessage", "failureReason", "lastError")
_SCOPES = {
    "create": "signals:write",
    "update": "signals:write",
    "process": "signals:write",
    "get": "signals:read",
    "list": "signals:read",
    "delete": "signals:delete",
}


# The readiness checks the import template requires; any other check may say what it likes.
REQUIRED_CHECKS = ("database", "workspaceQueue")


@dataclass(frozen=True, slots=True)
class Receipt:
    public_id: str
    job_id: str | None  # Zentrik's own client does not require it; stored as null
    workspace_id: str | None
    status: str | None
    http_status: int
    replayed: bool = False  # the answer says it is a replay (header Idempotent-Replayed)


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of the list endpoint: the items as sent (checked by the reader) and the
    paging headers (None when absent or not a number)."""

    items: list[Any]
    total: int | None
    limit: int | None
    offset: int | None


@dataclass(frozen=True, slots=True)
class SignalState:
    public_id: str
    status: str
    error: str | None
    job_id: str | None


class _BearerAuth(requests.auth.AuthBase):
    """Sets the bearer header as an auth object, so a ~/.netrc entry cannot replace it."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._key}"
        return r

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


class ZentrikClient:
    def __init__(
        self,
        base: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        session: requests.Session | None = None,
    ) -> None:
        # requests would quote a malformed header value, key included, in its own error.
        if not api_key or not _is_header_token(api_key):
            raise ConfigError(
                "ZENTRIK_API_KEY is empty or contains spaces, control or non-ASCII characters; "
                "copy the key again from Settings → API Keys"
            )
        self._base = base.strip().rstrip("/")
        parts = urlsplit(self._base)
        host = parts.hostname or self._base
        self._host = f"{host}:{parts.port}" if parts.port else host
        self._key = api_key
        self._auth = _BearerAuth(api_key)
        self._connect_timeout = connect_timeout
        self._read_timeout = timeout
        self._owns_session = session is None
        self._session = session if session is not None else _session_for(self._base)
        # The workspace the ledger is bound to: a receipt naming another one is refused.
        self.workspace_id: str | None = None

    def __repr__(self) -> str:
        return f"ZentrikClient({self._base!r})"

    def __enter__(self) -> ZentrikClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    # -- endpoints ---------------------------------------------------------------------------

    def readyz(self) -> dict[str, str]:
        """The readiness checks when the answer is 200 and ``database`` and
        ``workspaceQueue`` are ``ok`` (as the import template decides; other checks may
        say anything and are reported, not required).

        A not-ready answer with a status worth waiting for (429, 5xx from a proxy, the web
        front end's 404) raises the matching TransientError, so a retry policy waits for a
        starting API as the import template does; any other not-ready answer raises
        ApiUnavailable at once.
        """
        resp = self._send("GET", READYZ_PATH)
        status = resp.status_code
        if 300 <= status < 400 or status in (401, 403):
            raise self._status_error(resp, "readyz", "GET")
        data = _json_or_none(resp)
        raw_checks = data.get("checks") if isinstance(data, dict) else None
        checks: dict[str, str] = {}
        if isinstance(raw_checks, dict):
            checks = {str(name): _check_state(value) for name, value in raw_checks.items()}
        required = [(name, checks.get(name, "missing")) for name in REQUIRED_CHECKS]
        failing = [f"{name}={state}" for name, state in required if state != "ok"] if checks else []
        if status == 200 and checks and not failing:
            return checks
        front_end = status == 404 and _FRONT_END_MARKER in resp.content
        if failing:
            detail = ", ".join(failing)
        elif status == 200:
            detail = "/readyz answered 200 without any checks"
        elif front_end:
            detail = "/readyz answered 404 from the web front end (the API is still starting)"
        else:
            detail = f"/readyz answered {_status_text(status, *_error_parts(resp))}"
        message = self._clean(f"API not ready: {detail}")
        if status == 429:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise RateLimited(message, retry_after=retry_after)
        if status in _SERVER_UNAVAILABLE:
            raise ServerUnavailable(message, status)
        if front_end:
            raise WarmingUp(message, status)
        raise ApiUnavailable(message)

    def auth_context(self) -> dict[str, Any] | None:
        """The key's workspace and scopes; None when the server has no such endpoint."""
        resp = self._send("GET", AUTH_CONTEXT_PATH)
        if resp.status_code == 404 and _FRONT_END_MARKER not in resp.content:
            return None
        self._raise_for_status(resp, "auth context", "GET")
        data = self._json_object(resp, "auth context")
        workspace = data.get("workspace")
        if not isinstance(workspace, dict) or _ident(workspace.get("id")) is None:
            raise MalformedResponse(
                f"auth context answered {resp.status_code} without a workspace.id",
                resp.status_code,
            )
        return data

    def create_signal(self, body: bytes, idempotency_key: str) -> Receipt:
        """POST the exact canonical bytes with their Idempotency-Key."""
        if not idempotency_key or not _is_header_token(idempotency_key):
            raise ValueError("idempotency_key must be non-empty printable ASCII without spaces")
        resp = self._send(
            "POST", SIGNALS_PATH, data=body, headers={"Idempotency-Key": idempotency_key}
        )
        self._raise_for_status(resp, "create", "POST")
        data = self._json_object(resp, "create")
        public_id = _ident(data.get("publicId"))
        if public_id is None:
            raise MalformedResponse(
                f"create answered {resp.status_code} without a publicId", resp.status_code
            )
        workspace_id = _ident(data.get("workspaceId"))
        if self.workspace_id and workspace_id and workspace_id != self.workspace_id:
            raise WrongWorkspace(
                self._clean(
                    f"create answered with a receipt for workspace {workspace_id}, but the "
                    f"ledger is bound to workspace {self.workspace_id} ({public_id})"
                )
            )
        status = data.get("status")
        replayed = resp.headers.get("Idempotent-Replayed", "").strip().lower() == "true"
        return Receipt(
            public_id=redact(public_id, self._key),
            job_id=self._redacted(_ident(data.get("jobId"))),
            workspace_id=self._redacted(workspace_id),
            status=status if isinstance(status, str) else None,
            http_status=resp.status_code,
            replayed=replayed,
        )

    def get_signal(self, public_id: str) -> SignalState:
        op = f"get {public_id}"
        resp = self._send("GET", self._signal_path(public_id))
        self._raise_for_status(resp, "get", "GET")
        data = self._json_object(resp, op)
        answered = data.get("publicId")
        if answered is not None and _ident(answered) != public_id:
            raise MalformedResponse(
                self._clean(f"{op} answered for another signal ({_ident(answered)})"),
                resp.status_code,
            )
        status = data.get("status")
        if not isinstance(status, str) or not status.strip():
            raise MalformedResponse(
                self._clean(f"{op} answered {resp.status_code} without a status"),
                resp.status_code,
            )
        return SignalState(
            public_id=public_id,
            status=status.strip().lower(),
            error=self._processing_error(data),
            job_id=self._redacted(_ident(data.get("jobId"))),
        )

    def process_signal(self, public_id: str) -> str | None:
        """(Re)queue processing; the new jobId when the answer names one."""
        resp = self._send("POST", self._signal_path(public_id) + "/process")
        self._raise_for_status(resp, "process", "POST")
        data = _json_or_none(resp)
        return self._redacted(_ident(data.get("jobId"))) if isinstance(data, dict) else None

    def update_signal(self, public_id: str, fields: dict[str, Any]) -> None:
        body = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        resp = self._send("PATCH", self._signal_path(public_id), data=body)
        self._raise_for_status(resp, "update", "PATCH")

    def delete_signal(self, public_id: str) -> None:
        """Delete; a signal that is already gone (404) counts as deleted."""
        resp = self._send("DELETE", self._signal_path(public_id))
        # A front end answering 404 for the API has deleted nothing: that one is WarmingUp.
        if resp.status_code == 404 and _FRONT_END_MARKER not in resp.content:
            return
        self._raise_for_status(resp, "delete", "DELETE")

    def list_signals(
        self, limit: int = 100, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of signals and the server's X-Total-Count (None when absent)."""
        page = self.list_page(limit, offset)
        if not all(isinstance(item, dict) for item in page.items):
            raise MalformedResponse("list answered 200 with an item that is not a signal", 200)
        return page.items, page.total

    def list_page(self, limit: int = 100, offset: int = 0) -> ListPage:
        """One page as sent: the body must be a JSON array; its items are not judged here."""
        resp = self._send("GET", SIGNALS_PATH, params={"limit": limit, "offset": offset})
        self._raise_for_status(resp, "list", "GET")
        try:
            data = _json(resp)
        except ValueError:
            data = None
        if not isinstance(data, list):
            what = "a body that is not JSON" if data is None else f"JSON {_kind(data)}"
            raise MalformedResponse(
                f"list answered {resp.status_code} with {what}, not an array of signals",
                resp.status_code,
            )
        headers = resp.headers
        return ListPage(
            data,
            _non_negative_int(headers.get("X-Total-Count")),
            _non_negative_int(headers.get("X-Limit")),
            _non_negative_int(headers.get("X-Offset")),
        )

    # -- one request -------------------------------------------------------------------------

    def _signal_path(self, public_id: str) -> str:
        # "." and ".." would be resolved away by URL normalisation and hit another endpoint.
        if public_id in ("", ".", ".."):
            raise ValueError(f"not a signal id: {public_id!r}")
        return f"{SIGNALS_PATH}/{quote(public_id, safe='')}"

    def _send(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, int] | None = None,
    ) -> requests.Response:
        request_headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if data is not None:
            request_headers["Content-Type"] = "application/json"
        if headers:
            request_headers.update(headers)
        try:
            return self._session.request(
                method,
                self._base + path,
                data=data,
                params=params,
                headers=request_headers,
                auth=self._auth,
                timeout=(self._connect_timeout, self._read_timeout),
                allow_redirects=False,
            )
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            HTTPException,
            OSError,
        ) as exc:
            # No chaining: the requests exception carries the prepared request and its headers.
            raise self._transport_error(exc) from None

    def _transport_error(self, exc: BaseException) -> ZsyncError:
        host = self._host
        causes = _causes(exc)

        def has(*kinds: type[BaseException]) -> bool:
            return any(isinstance(cause, kinds) for cause in causes)

        if has(ssl.SSLCertVerificationError):
            return ConfigError(
                self._clean(
                    f"the TLS certificate of {host} could not be verified; "
                    "check ZENTRIK_API_BASE (host name, https)"
                )
            )
        if isinstance(
            exc,
            requests.exceptions.InvalidURL
            | requests.exceptions.MissingSchema
            | requests.exceptions.InvalidSchema,
        ):
            return ConfigError(self._clean(f"ZENTRIK_API_BASE {self._base!r} is not usable"))
        if isinstance(exc, requests.ConnectTimeout):
            return NotDelivered(
                self._clean(f"could not connect to {host} within {self._connect_timeout:g}s")
            )
        if has(ConnectionRefusedError):
            return NotDelivered(self._clean(f"connection refused by {host} (is the API running?)"))
        if has(urllib3.exceptions.NameResolutionError, socket.gaierror):
            return NotDelivered(self._clean(f"cannot resolve the API host {host}"))
        if isinstance(exc, requests.Timeout) or has(
            urllib3.exceptions.ReadTimeoutError, TimeoutError
        ):
            message = f"timed out after {self._read_timeout:g}s waiting for the API at {host}"
        elif has(RemoteDisconnected):
            message = f"the API at {host} closed the connection without answering"
        elif has(ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            message = f"connection reset by the API ({host})"
        elif isinstance(exc, requests.exceptions.ChunkedEncodingError) or has(
            IncompleteRead, urllib3.exceptions.ProtocolError
        ):
            message = f"the connection to {host} broke off in the middle of an answer"
        elif has(ssl.SSLError):
            message = f"TLS handshake with {host} failed"
        elif isinstance(exc, requests.exceptions.ProxyError):
            message = f"could not reach {host} through the configured proxy"
        else:
            message = f"could not reach the API at {host} ({type(causes[-1]).__name__})"
        return TransportError(self._clean(message))

    # -- answers -----------------------------------------------------------------------------

    def _raise_for_status(self, resp: requests.Response, op: str, method: str) -> None:
        if 200 <= resp.status_code < 300:
            return
        raise self._status_error(resp, op, method)

    def _status_error(self, resp: requests.Response, op: str, method: str) -> ZsyncError:
        status = resp.status_code
        if 300 <= status < 400:
            location = resp.headers.get("Location", "")
            target = urlsplit(location).hostname if location else None
            where = f" to {target}" if target else " to another path" if location else ""
            return RedirectRefused(
                self._clean(
                    f"API answered {status} redirect{where}; redirects are not followed "
                    "(check ZENTRIK_API_BASE: https, and the /api suffix)"
                ),
                status,
            )
        if status in (401, 403):
            detail = self._clean(_status_text(status, *_error_parts(resp)), limit=110)
            if status == 401:
                hint = "check ZENTRIK_API_KEY"
            elif op in _SCOPES:
                hint = f"{op} needs a key with the {_SCOPES[op]} scope"
            else:
                hint = "check the key's scopes in Settings → API Keys"
            return AuthError(self._clean(f"the API refused the key ({detail}); {hint}"))
        if status == 429:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            suffix = f"; retry after {retry_after:g}s" if retry_after is not None else ""
            detail = self._clean(_status_text(status, *_error_parts(resp)), limit=170)
            return RateLimited(detail + suffix, retry_after=retry_after)
        if status in _SERVER_UNAVAILABLE:
            return ServerUnavailable(self._clean(_status_text(status, *_error_parts(resp))), status)
        if status == 404 and method in ("GET", "DELETE") and _FRONT_END_MARKER in resp.content:
            return WarmingUp(
                "404 from the web front end instead of the API (it is probably still starting)",
                status,
            )
        text = self._clean(_status_text(status, *_error_parts(resp)))
        if status == 409:
            return Conflict(text, public_id=_named_signal(resp))
        return Rejected(text, status)

    def _json_object(self, resp: requests.Response, op: str) -> dict[str, Any]:
        try:
            data = _json(resp)
        except ValueError:
            raise MalformedResponse(
                self._clean(f"{op} answered {resp.status_code} with a body that is not JSON"),
                resp.status_code,
            ) from None
        if not isinstance(data, dict):
            raise MalformedResponse(
                self._clean(f"{op} answered {resp.status_code} with JSON that is not an object"),
                resp.status_code,
            )
        return data

    def _processing_error(self, data: dict[str, Any]) -> str | None:
        """Why processing failed, wherever the signal carries it: inside its ``processing``
        object (``processing.error``, as a string or an object) or at the top level."""
        processing = data.get("processing")
        if isinstance(processing, dict):
            found = self._reason_in(processing, _PROCESSING_REASON_KEYS)
            if found is not None:
                return found
        return self._reason_in(data, _REASON_KEYS)

    def _reason_in(self, data: dict[str, Any], keys: tuple[str, ...]) -> str | None:
        for key in keys:
            value = data.get(key)
            if isinstance(value, dict | list):
                code, message, _field = _parts_from_json(value)
                text = ": ".join(part for part in (code, message) if part)
            else:
                text = _scalar(value) or ""
            if text.strip():
                return self._clean(text)
        return None

    def _clean(self, text: str, *, limit: int = MAX_MESSAGE) -> str:
        return shorten(text, self._key, limit=limit)

    def _redacted(self, value: str | None) -> str | None:
        """A value the server chose (an id, a name), without the key should it echo it:
        such values are stored in the ledger and shown by export and show."""
        return None if value is None else redact(value, self._key)


# -- helpers (module level so tests and the emulator can share them) --------------------------


def shorten(text: str, secret: str | None, *, limit: int = MAX_MESSAGE) -> str:
    """One redacted line of at most ``limit`` characters."""
    # Redact before cutting, so a cut can never leave part of the key behind.
    text = redact(text, secret)[: limit * 4]
    text = " ".join(
        "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in text).split()
    )
    text = redact(text, secret)
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _session_for(base: str) -> requests.Session:
    """A session whose proxy and CA settings are resolved from the environment once.

    requests otherwise rescans the whole environment for proxies twice per request: at 0 ms
    latency that was a third of the CPU each create cost.
    """
    session = requests.Session()
    settings = session.merge_environment_settings(base, {}, None, None, None)
    session.proxies.update(settings["proxies"])
    session.verify = settings["verify"]
    session.trust_env = False
    return session


def _is_header_token(value: str) -> bool:
    # For ASCII text, isprintable() already refuses every whitespace character but the space.
    return value.isascii() and value.isprintable() and " " not in value


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (args, urllib3's ``reason``, cause, context)."""
    seen: set[int] = set()
    found: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(found) < 32:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        nested: list[object] = [
            getattr(current, "reason", None),
            current.__cause__,
            current.__context__,
            *current.args,
        ]
        todo.extend(item for item in nested if isinstance(item, BaseException))
    return found


def _json(resp: requests.Response) -> Any:
    """The parsed body; ValueError when it is not JSON (including absurdly deep nesting)."""
    try:
        return json.loads(resp.content)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _json_or_none(resp: requests.Response) -> Any:
    try:
        return _json(resp)
    except ValueError:
        return None


def _ident(value: object) -> str | None:
    """A non-empty id as a string; integer ids (not booleans) are tolerated."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _scalar(value: object) -> str | None:
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _non_negative_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if number >= 0 else None


def _kind(value: object) -> str:
    return "object" if isinstance(value, dict) else type(value).__name__


def _named_signal(resp: requests.Response) -> str | None:
    """The existing signal a 409 names (``publicId`` at the top or under ``error``)."""
    data = _json_or_none(resp)
    if not isinstance(data, dict):
        return None
    inner = data.get("error")
    for where in (inner, data):
        if isinstance(where, dict):
            found = _ident(where.get("publicId"))
            if found is not None and len(found) <= 200 and found.isprintable():
                return found
    return None


def _check_state(value: object) -> str:
    if isinstance(value, dict):
        value = value.get("status")
    return value if isinstance(value, str) else "unknown"


def _status_text(status: int, code: str | None, message: str | None, field: str | None) -> str:
    """``422 validation_failed: text is required (field text)``-like."""
    if code == str(status):
        code = None
    text = f"{status} {code or _phrase(status)}"
    if message:
        text += f": {message}"
    if field:
        text += f" (field {field})"
    return text


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"


def _error_parts(resp: requests.Response) -> tuple[str | None, str | None, str | None]:
    """(code, message, field) from whatever the error body is; never headers."""
    data = _json_or_none(resp)
    if data is not None:
        return _parts_from_json(data)
    peek = resp.content[:_TEXT_PEEK].decode(resp.encoding or "utf-8", errors="replace")
    return None, _text_summary(peek), None


def _parts_from_json(data: Any, depth: int = 0) -> tuple[str | None, str | None, str | None]:
    if depth > 3:
        return None, None, None
    if isinstance(data, list):
        return _parts_from_json(data[0], depth + 1) if data else (None, None, None)
    if not isinstance(data, dict):
        return None, _scalar(data), None
    inner = data.get("error")
    if isinstance(inner, dict):
        parts = _parts_from_json(inner, depth + 1)
        if any(parts):
            return parts
    code = _scalar(data.get("code")) or _scalar(data.get("type"))
    field = _scalar(data.get("field")) or _scalar(data.get("param"))
    message = None
    for key in ("message", "detail", "title", "error_description", "msg", "description"):
        message = _scalar(data.get(key))
        if message:
            break
    if isinstance(inner, str) and inner.strip():
        if message:
            code = code or inner
        else:
            message = inner
    if message is None:
        for key in ("detail", "errors"):
            nested = data.get(key)
            if isinstance(nested, list | dict) and nested:
                nested_code, message, nested_field = _parts_from_json(nested, depth + 1)
                code = code or nested_code
                field = field or nested_field
                break
    location = data.get("loc")
    if field is None and isinstance(location, list):
        field = ".".join(str(part) for part in location if part != "body") or None
    return code, message, field


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def _text_summary(text: str) -> str | None:
    stripped = text.strip()
    if stripped.startswith("<"):
        title = _TITLE.search(stripped)
        if title and title.group(1).strip():
            return title.group(1).strip()
        stripped = _TAG.sub("\n", stripped)
    return next((line.strip() for line in stripped.splitlines() if line.strip()), None)
