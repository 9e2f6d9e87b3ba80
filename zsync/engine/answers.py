"""Reading the API's answers: JSON bodies, ids and scalars, and the one-line, redacted
text of an error (its status, code, message and field, from JSON, HTML or plain text).

Nothing here sends a request; :mod:`zsync.engine.client` does, and turns answers into results or
exceptions with these helpers.
"""

from __future__ import annotations

import http
import json
import re
import unicodedata
from typing import Any

import requests

from zsync.config import redact

MAX_MESSAGE = 200
_TEXT_PEEK = 65536  # bytes of a non-JSON error body read for its gist


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


def is_header_token(value: str) -> bool:
    """Can ``value`` go into a header as is: printable ASCII without spaces."""
    # For ASCII text, isprintable() already refuses every whitespace character but the space.
    return value.isascii() and value.isprintable() and " " not in value


def cause_chain(exc: BaseException) -> list[BaseException]:
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


def json_body(resp: requests.Response) -> Any:
    """The parsed body; ValueError when it is not JSON (including absurdly deep nesting)."""
    try:
        return json.loads(resp.content)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def json_body_or_none(resp: requests.Response) -> Any:
    """The answer's JSON body, or None when it is not JSON."""
    try:
        return json_body(resp)
    except ValueError:
        return None


def ident(value: object) -> str | None:
    """A non-empty id as a string; integer ids (not booleans) are tolerated."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def scalar(value: object) -> str | None:
    """A non-blank string, or a number as text; None for anything else."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def non_negative_int(value: str | None) -> int | None:
    """A header value as a whole number of at least 0; None when absent or not one."""
    if value is None:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if number >= 0 else None


def kind_of(value: object) -> str:
    """What a JSON value is, for a message (``object``, ``list``, ``str``, ...)."""
    return "object" if isinstance(value, dict) else type(value).__name__


def named_signal(resp: requests.Response) -> str | None:
    """The existing signal a 409 names (``publicId`` at the top or under ``error``)."""
    data = json_body_or_none(resp)
    if not isinstance(data, dict):
        return None
    inner = data.get("error")
    for where in (inner, data):
        if isinstance(where, dict):
            found = ident(where.get("publicId"))
            if found is not None and len(found) <= 200 and found.isprintable():
                return found
    return None


def check_state(value: object) -> str:
    """A readiness check's state: its text, or an object's ``status`` (else ``unknown``)."""
    if isinstance(value, dict):
        value = value.get("status")
    return value if isinstance(value, str) else "unknown"


def status_text(status: int, code: str | None, message: str | None, field: str | None) -> str:
    """``422 validation_failed: text is required (field text)``-like."""
    if code == str(status):
        code = None
    text = f"{status} {code or phrase(status)}"
    if message:
        text += f": {message}"
    if field:
        text += f" (field {field})"
    return text


def phrase(status: int) -> str:
    """The reason phrase of an HTTP status, in lower case (``error`` if unknown)."""
    try:
        return http.HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"


def error_parts(resp: requests.Response) -> tuple[str | None, str | None, str | None]:
    """(code, message, field) from whatever the error body is; never headers."""
    data = json_body_or_none(resp)
    if data is not None:
        return parts_from_json(data)
    peek = resp.content[:_TEXT_PEEK].decode(resp.encoding or "utf-8", errors="replace")
    return None, text_summary(peek), None


def parts_from_json(data: Any, depth: int = 0) -> tuple[str | None, str | None, str | None]:
    """(code, message, field) of an error body, from the usual JSON shapes."""
    if depth > 3:
        return None, None, None
    if isinstance(data, list):
        return parts_from_json(data[0], depth + 1) if data else (None, None, None)
    if not isinstance(data, dict):
        return None, scalar(data), None
    inner = data.get("error")
    if isinstance(inner, dict):
        parts = parts_from_json(inner, depth + 1)
        if any(parts):
            return parts
    code = scalar(data.get("code")) or scalar(data.get("type"))
    field = scalar(data.get("field")) or scalar(data.get("param"))
    message = None
    for key in ("message", "detail", "title", "error_description", "msg", "description"):
        message = scalar(data.get(key))
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
                nested_code, message, nested_field = parts_from_json(nested, depth + 1)
                code = code or nested_code
                field = field or nested_field
                break
    location = data.get("loc")
    if field is None and isinstance(location, list):
        field = ".".join(str(part) for part in location if part != "body") or None
    return code, message, field


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


_TAG = re.compile(r"<[^>]*>")


def text_summary(text: str) -> str | None:
    """One line from a body that is not JSON: an HTML page's title, or its text."""
    stripped = text.strip()
    if stripped.startswith("<"):
        title = _TITLE.search(stripped)
        if title and title.group(1).strip():
            return title.group(1).strip()
        stripped = _TAG.sub("\n", stripped)
    return next((line.strip() for line in stripped.splitlines() if line.strip()), None)
