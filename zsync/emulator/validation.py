"""Request-body rules of the emulated API, and the error every rule breach becomes."""

from __future__ import annotations

import json
from typing import Any

MAX_TEXT_CHARS = 1_000_000

# Fields the server owns: a PATCH that tries to set them is refused rather than silently
# ignored, so a client bug that echoes a whole signal back shows up in tests.
READ_ONLY_FIELDS = frozenset(
    {"publicId", "jobId", "workspaceId", "status", "createdAt", "updatedAt", "processing"}
)


class ApiFailure(Exception):
    """An answer other than success; the server renders it as ``{"error": {...}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """``{"error": {code, message, field?, ...extra}}``, the API's error shape."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, field: str | None) -> ApiFailure:
    """The 422 ``validation_failed`` for a body that breaks a rule, naming the field."""
    return ApiFailure(422, "validation_failed", message, field=field)


def parse_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; 400 when it is not JSON, 422 when it is not an object."""
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiFailure(400, "invalid_json", "request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise invalid("request body must be a JSON object", None)
    return value


def _check_text_fields(body: dict[str, Any], *, required: bool) -> None:
    for name in ("text", "signalType"):
        if name not in body:
            if required:
                raise invalid(f"{name} is required", name)
            continue
        value = body[name]
        if not isinstance(value, str):
            raise invalid(f"{name} must be a string", name)
        if not value.strip():
            raise invalid(f"{name} is required", name)
    text = body.get("text")
    if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
        raise invalid(f"text is longer than {MAX_TEXT_CHARS} characters", "text")


def _check_source(body: dict[str, Any]) -> None:
    if "source" in body and not isinstance(body["source"], dict):
        raise invalid("source must be an object", "source")


def _check_external_id(body: dict[str, Any]) -> None:
    value = body.get("externalId")
    if value is not None and not isinstance(value, (str, int)):
        raise invalid("externalId must be a string", "externalId")
    if isinstance(value, str) and not value.strip():
        raise invalid("externalId must not be empty", "externalId")


def check_create(body: dict[str, Any]) -> None:
    """external_text-style bodies win when both styles' fields are present, as the template's
    mapping never sends both; a body with neither names ``text`` as the missing field."""
    if "text" in body or "signalType" in body:
        _check_text_fields(body, required=True)
    elif "source" in body:
        _check_source(body)
    else:
        raise invalid("text and signalType (or a source object) are required", "text")
    _check_external_id(body)


def check_patch(body: dict[str, Any]) -> None:
    """422 for a PATCH that sets a server-owned field or breaks a field's rule; every field is
    optional."""
    for name in body:
        if name in READ_ONLY_FIELDS:
            raise invalid(f"{name} is read-only", name)
    _check_text_fields(body, required=False)
    _check_source(body)
    _check_external_id(body)
