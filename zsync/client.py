"""ZentrikClient: one method per endpoint of the Signals API, one request per call.

Every answer is either a validated result or an exception from :mod:`zsync.errors`; nothing
here retries (see :mod:`zsync.retry`) and nothing follows a redirect. Text that came from the
server goes through :func:`zsync.config.redact` and is shortened to one line before it is put
into an exception, so an error body that echoes the key cannot leak it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPException
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import requests.auth
import urllib3.exceptions

import zsync
from zsync.answers import (
    MAX_MESSAGE,
    error_parts,
    ident,
    is_header_token,
    json_body,
    json_body_or_none,
    kind_of,
    non_negative_int,
    parts_from_json,
    scalar,
    shorten,
    status_text,
)
from zsync.config import redact
from zsync.errors import (
    ApiUnavailable,
    ConfigError,
    MalformedResponse,
    RateLimited,
    ServerUnavailable,
    WarmingUp,
    WrongWorkspace,
    ZsyncError,
)
from zsync.failures import FRONT_END_MARKER, SERVER_UNAVAILABLE, status_error, transport_error
from zsync.proxies import session_for
from zsync.retry import parse_retry_after

USER_AGENT = f"zsync/{zsync.__version__}"

SIGNALS_PATH = "/external/v1/signals"
AUTH_CONTEXT_PATH = "/external/v1/auth/context"
READYZ_PATH = "/readyz"

# Where a signal may say why its processing failed (the API does not document it): inside
# its processing object, or at the top level.
_PROCESSING_REASON_KEYS = ("error", "errorMessage", "failureReason", "reason", "message")
_REASON_KEYS = ("error", "processingError", "errorMessage", "failureReason", "lastError")


_HEADERS = {"Accept": "application/json", "User-Agent": USER_AGENT}

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
        if not api_key or not is_header_token(api_key):
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
        self._timeout = (connect_timeout, timeout)
        self._owns_session = session is None
        self._session = session if session is not None else session_for(self._base)
        # Set by the first request (see _prepared).
        self._template: requests.PreparedRequest | None = None
        self._url_root = ""
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
        data = json_body_or_none(resp)
        raw_checks = data.get("checks") if isinstance(data, dict) else None
        checks: dict[str, str] = {}
        if isinstance(raw_checks, dict):
            checks = {str(name): _check_state(value) for name, value in raw_checks.items()}
        required = [(name, checks.get(name, "missing")) for name in REQUIRED_CHECKS]
        failing = [f"{name}={state}" for name, state in required if state != "ok"] if checks else []
        if status == 200 and checks and not failing:
            return checks
        front_end = status == 404 and FRONT_END_MARKER in resp.content
        if failing:
            detail = ", ".join(failing)
        elif status == 200:
            detail = "/readyz answered 200 without any checks"
        elif front_end:
            detail = "/readyz answered 404 from the web front end (the API is still starting)"
        else:
            detail = f"/readyz answered {status_text(status, *error_parts(resp))}"
        message = self._clean(f"API not ready: {detail}")
        if status == 429:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise RateLimited(message, retry_after=retry_after)
        if status in SERVER_UNAVAILABLE:
            raise ServerUnavailable(message, status)
        if front_end:
            raise WarmingUp(message, status)
        raise ApiUnavailable(message)

    def auth_context(self) -> dict[str, Any] | None:
        """The key's workspace and scopes; None when the server has no such endpoint."""
        resp = self._send("GET", AUTH_CONTEXT_PATH)
        if resp.status_code == 404 and FRONT_END_MARKER not in resp.content:
            return None
        self._raise_for_status(resp, "auth context", "GET")
        data = self._json_object(resp, "auth context")
        workspace = data.get("workspace")
        if not isinstance(workspace, dict) or ident(workspace.get("id")) is None:
            raise MalformedResponse(
                f"auth context answered {resp.status_code} without a workspace.id",
                resp.status_code,
            )
        return data

    def create_signal(self, body: bytes, idempotency_key: str) -> Receipt:
        """POST the exact canonical bytes with their Idempotency-Key."""
        if not idempotency_key or not is_header_token(idempotency_key):
            raise ValueError("idempotency_key must be non-empty printable ASCII without spaces")
        resp = self._send(
            "POST", SIGNALS_PATH, data=body, headers={"Idempotency-Key": idempotency_key}
        )
        self._raise_for_status(resp, "create", "POST")
        data = self._json_object(resp, "create")
        public_id = ident(data.get("publicId"))
        if public_id is None:
            raise MalformedResponse(
                f"create answered {resp.status_code} without a publicId", resp.status_code
            )
        workspace_id = ident(data.get("workspaceId"))
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
            job_id=self._redacted(ident(data.get("jobId"))),
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
        if answered is not None and ident(answered) != public_id:
            raise MalformedResponse(
                self._clean(f"{op} answered for another signal ({ident(answered)})"),
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
            job_id=self._redacted(ident(data.get("jobId"))),
        )

    def process_signal(self, public_id: str) -> str | None:
        """(Re)queue processing; the new jobId when the answer names one."""
        resp = self._send("POST", self._signal_path(public_id) + "/process")
        self._raise_for_status(resp, "process", "POST")
        data = json_body_or_none(resp)
        return self._redacted(ident(data.get("jobId"))) if isinstance(data, dict) else None

    def update_signal(self, public_id: str, fields: dict[str, Any]) -> None:
        body = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        resp = self._send("PATCH", self._signal_path(public_id), data=body)
        self._raise_for_status(resp, "update", "PATCH")

    def delete_signal(self, public_id: str) -> None:
        """Delete; a signal that is already gone (404) counts as deleted."""
        resp = self._send("DELETE", self._signal_path(public_id))
        # A front end answering 404 for the API has deleted nothing: that one is WarmingUp.
        if resp.status_code == 404 and FRONT_END_MARKER not in resp.content:
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
            data = json_body(resp)
        except ValueError:
            data = None
        if not isinstance(data, list):
            what = "a body that is not JSON" if data is None else f"JSON {kind_of(data)}"
            raise MalformedResponse(
                f"list answered {resp.status_code} with {what}, not an array of signals",
                resp.status_code,
            )
        headers = resp.headers
        return ListPage(
            data,
            non_negative_int(headers.get("X-Total-Count")),
            non_negative_int(headers.get("X-Limit")),
            non_negative_int(headers.get("X-Offset")),
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
        try:
            session = self._session
            if params is None and not session.trust_env and not session.cookies:
                prepared = self._prepared(method, path, data, headers)
                return session.send(prepared, timeout=self._timeout, allow_redirects=False)
            request_headers = dict(_HEADERS)
            if data is not None:
                request_headers["Content-Type"] = "application/json"
            if headers:
                request_headers.update(headers)
            return session.request(
                method,
                self._base + path,
                data=data,
                params=params,
                headers=request_headers,
                auth=self._auth,
                timeout=self._timeout,
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

    def _prepared(
        self, method: str, path: str, data: bytes | None, headers: Mapping[str, str] | None
    ) -> requests.PreparedRequest:
        """What ``Session.request`` would prepare, from headers merged once per client.

        Merging the session's settings into every request cost a fifth of the CPU of a create
        at 0 ms latency. Only used while the session holds no cookies (a server that sets one
        gets the full path, which sends it back) and reads nothing from the environment per
        request (our own sessions; a borrowed one that does keeps the full path).
        """
        if self._template is None:
            template = self._session.prepare_request(
                requests.Request(
                    "GET", self._base + SIGNALS_PATH, headers=_HEADERS, auth=self._auth
                )
            )
            # The base as requests normalises it; every path is appended already quoted.
            self._url_root = str(template.url).removesuffix(SIGNALS_PATH)
            self._template = template
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = self._url_root + path
        prepared.headers = self._template.headers.copy()
        if data is not None:
            prepared.headers["Content-Type"] = "application/json"
        if headers:
            prepared.headers.update(headers)
        prepared.prepare_body(data, None)
        prepared.prepare_cookies(requests.cookies.RequestsCookieJar())
        prepared.hooks = self._template.hooks
        return prepared

    def _transport_error(self, exc: BaseException) -> ZsyncError:
        return transport_error(exc, self._base, self._host, self._timeout, self._clean)

    # -- answers -----------------------------------------------------------------------------

    def _raise_for_status(self, resp: requests.Response, op: str, method: str) -> None:
        if 200 <= resp.status_code < 300:
            return
        raise self._status_error(resp, op, method)

    def _status_error(self, resp: requests.Response, op: str, method: str) -> ZsyncError:
        return status_error(resp, op, method, self._clean)

    def _json_object(self, resp: requests.Response, op: str) -> dict[str, Any]:
        try:
            data = json_body(resp)
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
                code, message, _field = parts_from_json(value)
                text = ": ".join(part for part in (code, message) if part)
            else:
                text = scalar(value) or ""
            if text.strip():
                return self._clean(text)
        return None

    def _clean(self, text: str, *, limit: int = MAX_MESSAGE) -> str:
        return shorten(text, self._key, limit=limit)

    def _redacted(self, value: str | None) -> str | None:
        """A value the server chose (an id, a name), without the key should it echo it:
        such values are stored in the ledger and shown by export and show."""
        return None if value is None else redact(value, self._key)


def _check_state(value: object) -> str:
    """A readiness check's value as the template reads it: only the string ``ok`` is ok (an
    object such as ``{"status": "ok"}`` is not; the template compares the value itself)."""
    return value if isinstance(value, str) else f"{kind_of(value)}, not a string"
