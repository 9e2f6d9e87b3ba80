"""Record -> create body: the template's fields for the record's kind, each checked.

The body holds the fields the Signals import template sends for the record's kind, and
the four that Zentrik's own client sends besides (:data:`CLIENT_FIELDS`); anything else in
the input is reported back in ``Prepared.dropped`` so the user is told, never silently
ignored. The canonical bytes, hashes and keys of the body
are :mod:`zsync.shape.canonical`'s.

This runs once per input record on every push, including re-runs where nothing changed,
so the hot path avoids regexes, copies and serialising twice.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from zsync.model import Invalid, Prepared, Record
from zsync.shape.canonical import body_json, derived_id, encode

KINDS = ("external_text", "raw_signal")
# Optional fields per kind, in the template's order (zentrik-api.md, "Create body").
EXTERNAL_TEXT_FIELDS = (
    "name",
    "additionalContext",
    "productId",
    "productIds",
    "accountId",
    "occurredAt",
    "externalId",
)
RAW_SIGNAL_FIELDS = (
    "name",
    "data",
    "externalId",
    "occurredAt",
    "integrationId",
    "context",
    "insightIds",
)
MAX_EXTERNAL_ID = 256  # characters
# [I] The API's real limit on text size is not documented; this keeps one record from
# becoming a multi-megabyte request that the server is likely to refuse anyway.
MAX_TEXT_CHARS = 1_000_000
# A record nested deeper than this is refused: no real export needs it, and it keeps
# serialisation far away from Python's recursion limit.
MAX_DEPTH = 64

# sourceKey is not in the template but Zentrik's own client sends it (a fixed namespace the
# server pairs with externalId); mapping files set it, and a record that has it keeps it.
# So are participantPolicy, createMissingAccounts and sourceExternalData: passed through,
# and named in Prepared.dropped like every other field the template does not send, so the
# user is told (report.dropped_warnings says these four are sent all the same).
CLIENT_FIELDS = ("sourceKey", "participantPolicy", "createMissingAccounts", "sourceExternalData")
_CLIENT_FIELDS = CLIENT_FIELDS
_EXTERNAL_TEXT_KEYS = frozenset(
    ("kind", "text", "signalType", *_CLIENT_FIELDS, *EXTERNAL_TEXT_FIELDS)
)
_RAW_SIGNAL_KEYS = frozenset(("kind", "source", *_CLIENT_FIELDS, *RAW_SIGNAL_FIELDS))
_CONTAINERS = (dict, list)

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


# -- field checks: each returns None when the value is fine, else what is wrong ----------


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(value: str, limit: int = 40) -> str:
    """A short, one-line, quoted rendering of an input value for a message."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _check_string(value: Any) -> str | None:
    if type(value) is str:
        return None
    return f"must be a string, not {_describe(value)}"


def _check_required_string(value: Any) -> str | None:
    if type(value) is not str:
        return f"must be a non-empty string, not {_describe(value)}"
    if not value or value.isspace():
        return "must be a non-empty string" if not value else "is only whitespace"
    return None


def _check_string_list(value: Any) -> str | None:
    if type(value) is not list:
        return f"must be a list of strings, not {_describe(value)}"
    for i, item in enumerate(value):
        if type(item) is not str:
            return f"must be a list of strings; item [{i}] is {_describe(item)}"
    return None


def _check_object(value: Any) -> str | None:
    if type(value) is dict:
        return None
    return f"must be an object, not {_describe(value)}"


def _check_bool(value: Any) -> str | None:
    if type(value) is bool:
        return None
    return f"must be true or false, not {_describe(value)}"


def _check_any(value: Any) -> str | None:
    return None  # the contract names the field but not its type: no rule stricter than it


def _check_timestamp(value: Any) -> str | None:
    if type(value) is not str:
        return f"must be an ISO 8601 date-time string, not {_describe(value)}"
    try:
        # 3.11's fromisoformat takes a trailing "Z" and most ISO 8601 forms; the value
        # is sent as written, this only catches what the server could not read.
        datetime.fromisoformat(value)
    except ValueError:
        return f"is not an ISO 8601 date-time: {_show(value)}"
    return None


def _check_source(value: Any) -> str | None:
    if type(value) is not dict:
        return f'must be an object such as {{"type": "manual-text"}}, not {_describe(value)}'
    kind = value.get("type")
    if type(kind) is not str or not kind.strip():
        return 'needs a non-empty string "type" (e.g. "manual-text")'
    return None


def _check_external_id(value: Any) -> str | None:
    if type(value) is not str:
        hint = f" (quote it: {json.dumps(str(value))})" if type(value) is int else ""
        return f"must be a string, not {_describe(value)}{hint}"
    if not value:
        return "must not be empty"
    if len(value) > MAX_EXTERNAL_ID:
        return f"is {len(value):,} characters; at most {MAX_EXTERNAL_ID}"
    if not value.isprintable():  # fast path: isprintable() is True for nearly every id
        m = _CONTROL.search(value)
        if m is not None:
            return f"contains a control character (U+{ord(m.group()):04X})"
    if value.isspace():
        return "is only whitespace"
    return None


_Check = Callable[[Any], "str | None"]

_EXTERNAL_TEXT_OPTIONAL: tuple[tuple[str, _Check], ...] = (
    ("name", _check_string),
    ("additionalContext", _check_string),
    ("productId", _check_string),
    ("productIds", _check_string_list),
    ("accountId", _check_string),
    ("occurredAt", _check_timestamp),
    ("sourceKey", _check_required_string),
)
_CLIENT_OPTIONAL: tuple[tuple[str, _Check], ...] = (
    ("participantPolicy", _check_string),
    ("createMissingAccounts", _check_bool),
    ("sourceExternalData", _check_object),
)
_EXTERNAL_TEXT_OPTIONAL += _CLIENT_OPTIONAL
_RAW_SIGNAL_OPTIONAL: tuple[tuple[str, _Check], ...] = (
    ("name", _check_string),
    ("data", _check_object),
    ("occurredAt", _check_timestamp),
    ("integrationId", _check_string),
    ("context", _check_any),
    ("insightIds", _check_string_list),
    ("sourceKey", _check_required_string),
    *_CLIENT_OPTIONAL,
)


def _too_deep(value: dict[str, Any] | list[Any]) -> bool:
    """Is a container that sits at depth 2 (a field of the record) nested past MAX_DEPTH?

    Iterative, and it stops at the first path that is too deep, so a hostile record
    costs no more than MAX_DEPTH levels of work per path.
    """
    stack: list[tuple[Any, int]] = [(value, 2)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        depth += 1
        for child in node.values() if type(node) is dict else node:
            if type(child) in _CONTAINERS:
                stack.append((child, depth))
    return False


# -- prepare ------------------------------------------------------------------------------


class _Bad(Exception):
    """What is wrong with a record, raised on the way through prepare (errors only)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def prepare(record: Record, *, derive_external_id: bool = False) -> Prepared | Invalid:
    """Validate one record and build its create body; the first problem found wins."""
    data = record.data
    origin = record.origin
    if type(data) is not dict:
        return Invalid(
            origin, None, None, f"{origin}: record is {_describe(data)}; expected an object"
        )
    raw_id = data.get("externalId")
    id_error = None if raw_id is None else _check_external_id(raw_id)
    external_id: str | None = raw_id if raw_id is not None and id_error is None else None
    try:
        body, optional, allowed = _required(data)
        for key, check in optional:
            value = data.get(key)
            if value is not None:
                error = check(value)
                if error is not None:
                    raise _Bad(key, error)
                body[key] = value
        if id_error is not None:
            raise _Bad("externalId", id_error)
        dropped = _dropped(data, allowed)
        external_id, canonical = _serialised(body, external_id, derive_external_id)
    except _Bad as bad:
        where = f"field '{bad.field}': " if bad.field else ""
        return Invalid(origin, external_id, bad.field, f"{origin}: {where}{bad.message}")
    return Prepared(
        origin, external_id, body, canonical, hashlib.sha256(canonical).hexdigest(), dropped
    )


_Optional = tuple[tuple[str, "_Check"], ...]


def _required(data: dict[str, Any]) -> tuple[dict[str, Any], _Optional, frozenset[str]]:
    """The body's required fields for the record's kind, its optional fields' checks, and
    every key the kind knows."""
    kind = data.get("kind")
    if type(kind) is str and kind not in KINDS:
        kind = kind.strip()  # the template strips it, so files made for it still work
    if kind == "external_text":
        text: Any = data.get("text")
        error = _check_required_string(text)
        if error is not None:
            raise _Bad("text", "missing; external_text needs it" if text is None else error)
        if len(text) > MAX_TEXT_CHARS:
            raise _Bad("text", f"is {len(text):,} characters; at most {MAX_TEXT_CHARS:,}")
        signal_type = data.get("signalType")
        error = _check_required_string(signal_type)
        if error is not None:
            if signal_type is None:
                error = "missing; external_text needs it (e.g. transcript, support_ticket)"
            raise _Bad("signalType", error)
        body = {"text": text, "signalType": signal_type}
        return body, _EXTERNAL_TEXT_OPTIONAL, _EXTERNAL_TEXT_KEYS
    if kind == "raw_signal":
        source = data.get("source")
        if source is None:
            raise _Bad(
                "source", 'missing; raw_signal needs an object such as {"type": "manual-text"}'
            )
        error = _check_source(source)
        if error is not None:
            raise _Bad("source", error)
        return {"source": source}, _RAW_SIGNAL_OPTIONAL, _RAW_SIGNAL_KEYS
    if kind is None:
        raise _Bad("kind", "missing; use external_text or raw_signal")
    if type(kind) is not str:
        raise _Bad(
            "kind", f"must be a string, not {_describe(kind)}; use external_text or raw_signal"
        )
    raise _Bad("kind", f"unknown kind {_show(kind)}; use external_text or raw_signal")


def _dropped(data: dict[str, Any], allowed: frozenset[str]) -> tuple[str, ...]:
    """The keys the template does not send (sorted): those not sent at all, and the client
    fields that are; refused when one cannot even be named, or when a container is nested
    too deep (only containers can be deep; checked fields cannot)."""
    extra = data.keys() - allowed
    for name in _CLIENT_FIELDS:
        if data.get(name) is not None:
            extra.add(name)
    dropped = tuple(sorted(extra)) if extra else ()
    for name in dropped:
        # A name that is not text cannot even be reported as "not sent" (issue 13).
        if not _is_text(name):
            raise _Bad(None, f"field {_show(name)}: {_surrogate(name)}")
    for key, value in data.items():
        if type(value) in _CONTAINERS and value and _too_deep(value):
            raise _Bad(key, f"nested deeper than {MAX_DEPTH} levels")
    return dropped


def _serialised(body: dict[str, Any], external_id: str | None, derive: bool) -> tuple[str, bytes]:
    """The externalId and the canonical bytes of the body that carries it."""
    try:
        if external_id is not None:
            body["externalId"] = external_id
            return external_id, body_json(body)
        if derive:
            return _with_derived_id(body)
    except (ValueError, TypeError) as exc:  # UnicodeEncodeError is a ValueError
        raise _Bad(*_unserialisable(body, exc)) from None
    raise _Bad(
        "externalId",
        "missing; every record needs a stable externalId (or derive one from the"
        " content with --derive-external-id)",
    )


def _with_derived_id(body: dict[str, Any]) -> tuple[str, bytes]:
    """Derive the id and serialise the body with it, serialising each value once.

    canonical_json of a dict is '{' + sorted '"key":value' parts joined by ',' + '}', so
    the body without the id and the body with it share every part but one.
    """
    parts = {key: f'"{key}":{encode(value)}' for key, value in body.items()}
    external_id = derived_id(("{" + ",".join(parts[k] for k in sorted(parts)) + "}").encode())
    body["externalId"] = external_id
    parts["externalId"] = f'"externalId":{encode(external_id)}'
    return external_id, ("{" + ",".join(parts[k] for k in sorted(parts)) + "}").encode()


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogate(value: str) -> str:
    char = next((c for c in value if "\ud800" <= c <= "\udfff"), "?")
    return f"contains an unpaired surrogate (U+{ord(char):04X}); not valid text"


def _unserialisable(body: dict[str, Any], exc: Exception) -> tuple[str | None, str]:
    """Which field cannot become JSON, and why (error path only)."""
    for key, value in body.items():
        try:
            encode(value).encode()
        except UnicodeEncodeError as err:
            return key, _surrogate(err.object if isinstance(err.object, str) else "?")
        except ValueError:
            return key, "contains a number that is not finite (too large for JSON)"
        except TypeError as err:
            return key, f"cannot be sent as JSON ({str(err).splitlines()[0]})"
    return None, f"cannot be sent as JSON ({str(exc).splitlines()[0]})"
