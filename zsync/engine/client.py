"""ZentrikClient: one method per endpoint of the Signals API, one request per call.

Every answer is either a validated result or an exception from :mod:`zsync.errors`; nothing
here retries (see :mod:`zsync.engine.retry`) and nothing follows a redirect. How one request
is sent, and its answer first judged, is :mod:`zsync.engine.request`. Text that came from
the server goes through :func:`zsync.config.redact` and is shortened to one line before it is
put into an exception, so an error body that echoes the key cannot leak it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from zsync.config import redact
from zsync.engine.answers import (
    error_parts,
    ident,
    is_header_token,
    json_body,
    json_body_or_none,
    kind_of,
    non_negative_int,
    parts_from_json,
    scalar,
    status_text,
)
from zsync.engine.failures import (
    FRONT_END_MARKER,
    SERVER_UNAVAILABLE,
)
from zsync.engine.request import SIGNALS_PATH, USER_AGENT, Requester
from zsync.engine.retry import parse_retry_after
from zsync.errors import (
    ApiUnavailable,
    MalformedResponse,
    RateLimited,
    ServerUnavailable,
    WarmingUp,
    WrongWorkspace,
)

__all__ = ["USER_AGENT", "ListPage", "Receipt", "SignalState", "ZentrikClient"]

AUTH_CONTEXT_PATH = "/external/v1/auth/context"
READYZ_PATH = "/readyz"

# Where a signal may say why its processing failed (the API does not document it): inside
# its processing object, or at the top level.
_PROCESSING_REASON_KEYS = ("error", "errorMessage", "failureReason", "reason", "message")
_REASON_KEYS = ("error", "processingError", "errorMessage", "failureReason", "lastError")

# The readiness checks the import template requires; any other check may say what it likes.
REQUIRED_CHECKS = ("database", "workspaceQueue")


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a create answered: the signal's id, its job and workspace, and the status."""

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
    """What a get answered: the signal's status, why it failed (if it did) and its job."""

    public_id: str
    status: str
    error: str | None
    job_id: str | None


class ZentrikClient(Requester):
    """One method per endpoint of the Signals API, one request per call (see
    :class:`~zsync.engine.request.Requester` for the sending)."""

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
        """The signal's state; MalformedResponse when the answer is for another signal."""
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
        """PATCH the signal with ``fields`` (as compact JSON)."""
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

    def _signal_path(self, public_id: str) -> str:
        # "." and ".." would be resolved away by URL normalisation and hit another endpoint.
        if public_id in ("", ".", ".."):
            raise ValueError(f"not a signal id: {public_id!r}")
        return f"{SIGNALS_PATH}/{quote(public_id, safe='')}"

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


def _check_state(value: object) -> str:
    """A readiness check's value as the template reads it: only the string ``ok`` is ok (an
    object such as ``{"status": "ok"}`` is not; the template compares the value itself)."""
    return value if isinstance(value, str) else f"{kind_of(value)}, not a string"
