"""Templates and transforms of mapping files: the only code that reads a record's values.

A template is parsed here, never handed to ``str.format``: a placeholder is a dotted path
of dictionary keys (``{customer.name}``) and nothing else, so a mapping file cannot reach
attributes, index expressions, conversions or format specs, whatever it says.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["MISSING", "Absent", "RecordError", "lookup", "parse_template", "render", "to_iso8601"]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()
_NOT_IN_NAMES = frozenset("!:[]()")


# -- templates ----------------------------------------------------------------------------

Path = tuple[str, ...]
Template = tuple["str | Path", ...]  # literal text and placeholder paths, in order


def parse_template(text: str) -> Template:
    """Split ``text`` into literal pieces and placeholder paths; ValueError says what is wrong.

    ``{{`` and ``}}`` are literal braces. A placeholder holds a dotted path of keys and
    nothing else: conversions (``!r``), format specs (``:>10``), indexing and dunder names
    are refused so that a template can only ever read the record's own values.
    """
    parts: list[str | Path] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "{":
            if text.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            end = text.find("}", i + 1)
            if end < 0:
                raise ValueError(f"'{{' at column {i + 1} is never closed (write {{{{ for a brace)")
            inner = text[i + 1 : end]
            if "{" in inner:
                raise ValueError(f"'{{' inside the placeholder at column {i + 1}")
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_placeholder_path(inner))
            i = end + 1
        elif c == "}":
            if not text.startswith("}}", i):
                raise ValueError(f"single '}}' at column {i + 1} (write }}}} for a brace)")
            literal.append("}")
            i += 2
        else:
            literal.append(c)
            i += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _placeholder_path(inner: str) -> Path:
    name = inner.strip()
    if not name:
        raise ValueError("empty placeholder {}; name a field, e.g. {ticket_id}")
    bad = sorted(_NOT_IN_NAMES.intersection(name))
    if bad:
        raise ValueError(
            f"placeholder {{{inner}}} may only name a field (a.b.c): no conversions (!),"
            ' format specs (:), calls or indexing ([]); use field = "..." for a key with'
            " such characters"
        )
    segments = tuple(s.strip() for s in name.split("."))
    if any(not s for s in segments):
        raise ValueError(f"placeholder {{{inner}}} has an empty part between dots")
    for s in segments:
        if s.startswith("__"):
            raise ValueError(f"placeholder {{{inner}}}: names starting with '__' are refused")
    return segments


def lookup(data: Any, path: Path) -> Any:
    """The value at ``path`` (dictionary keys only), or MISSING. A key that itself holds
    dots (a CSV header such as "customer.id") wins over the nested reading."""
    if len(path) > 1 and type(data) is dict:
        whole = data.get(".".join(path), MISSING)
        if whole is not MISSING:
            return whole
    node = data
    for key in path:
        if type(node) is not dict:
            return MISSING
        node = node.get(key, MISSING)
        if node is MISSING:
            return MISSING
    return node


def show_path(path: Path) -> str:
    """A placeholder path as the mapping file spells it (``a.b.c``), for messages."""
    return ".".join(path)


def describe(value: Any) -> str:
    """What a value is, for messages: ``a list``, ``an object``, else its type's name."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class RecordError(Exception):
    """One record cannot be mapped: the message says why (without origin or field)."""


def as_text(value: Any, what: str) -> str:
    """A text, number or boolean as the text it reads as (booleans in JSON's spelling);
    RecordError naming ``what`` for a list, an object or null."""
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise RecordError(f"{what} is {describe(value)}; expected text, a number or a boolean")


def render(template: Template, data: Any, text: str, empty_is_missing: bool) -> Any:
    """The template filled from ``data``; Absent when a placeholder's value is missing or null
    (or empty, with ``empty_is_missing``), RecordError when it is not text, a number or a
    boolean. ``text`` is the template as written, for the message."""
    out: list[str] = []
    for part in template:
        if isinstance(part, str):
            out.append(part)
            continue
        value = lookup(data, part)
        name = show_path(part)
        if value is MISSING or value is None or (empty_is_missing and value == ""):
            state = "is empty" if value == "" else "is missing" if value is MISSING else "is null"
            has = record_has(data, part) if value is MISSING else ""
            raise Absent(f"template {text!r} needs '{name}', which {state} in this record{has}")
        out.append(as_text(value, f"'{name}'"))
    return "".join(out)


def record_has(data: Any, path: Path) -> str:
    """' (the record has: a, b, c)': the keys beside a missing one, to spot a misspelling."""
    parent = lookup(data, path[:-1]) if len(path) > 1 else data
    if type(parent) is not dict or not parent:
        return ""
    keys = sorted(str(k) for k in parent)
    shown = ", ".join(keys[:12]) + (", ..." if len(keys) > 12 else "")
    return f" (the record has: {shown})"


class Absent(Exception):
    """The value is missing; the message says which part of the record was."""


# -- transforms ---------------------------------------------------------------------------

Transform = Callable[[Any], Any]


def _each(fn: Callable[[str], str], name: str) -> Transform:
    def apply(value: Any) -> Any:
        if value is MISSING:
            return value
        if type(value) is list:
            return [fn(as_text(v, f"an item of the list given to {name}")) for v in value]
        return fn(as_text(value, f"the value given to {name}"))

    return apply


def _collapse(s: str) -> str:
    return " ".join(s.split())


def truncate(n: int) -> Transform:
    """``{ truncate = n }``: a text (or each text of a list) cut to ``n`` characters."""
    return _each(lambda s: s[:n], "truncate")


def join(sep: str) -> Transform:
    """``{ join = sep }``: a list as one text joined by ``sep``; anything else unchanged."""

    def apply(value: Any) -> Any:
        if type(value) is not list:
            return value
        return sep.join(as_text(v, "an item of the list given to join") for v in value)

    return apply


def split(sep: str) -> Transform:
    """``{ split = sep }``: a text as the list of its non-blank pieces, stripped; anything else
    unchanged."""

    def apply(value: Any) -> Any:
        if type(value) is not str:
            return value
        return [piece.strip() for piece in value.split(sep) if piece.strip()]

    return apply


def default(fallback: Any) -> Transform:
    """``{ default = value }``: ``fallback`` in place of an empty value (:func:`is_empty`)."""

    def apply(value: Any) -> Any:
        return fallback if is_empty(value) else value

    return apply


def _iso(value: Any) -> Any:
    if is_empty(value):
        return value
    return to_iso8601(value)


SIMPLE: dict[str, Transform] = {
    "strip": _each(str.strip, "strip"),
    "collapse_whitespace": _each(_collapse, "collapse_whitespace"),
    "lower": _each(str.lower, "lower"),
    "upper": _each(str.upper, "upper"),
    "iso8601": _iso,
}
WITH_ARG = ("truncate", "join", "split", "default")
TRANSFORM_NAMES = ", ".join([*SIMPLE, *(f"{{ {n} = ... }}" for n in WITH_ARG)])


def is_empty(value: Any) -> bool:
    """Missing, null, an empty text, list or object."""
    return value is MISSING or value is None or value == "" or value == [] or value == {}


# Epoch numbers at or above this are read as milliseconds (1e11 s is the year 5138).
_EPOCH_MS = 100_000_000_000
_EPOCH = re.compile(r"-?\d+(\.\d+)?")
_ZONE_WORDS = (" UTC", " GMT", " Z")
_FORMATS = (
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y-%m-%d %H:%M:%S %z",
    "%d %b %Y %H:%M:%S",
    "%d %b %Y %H:%M",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%b %d %Y",
    "%B %d %Y",
)


def to_iso8601(value: Any) -> str:
    """A date-time in a common format -> ISO 8601 with a timezone (naive values are UTC).

    Accepts ISO 8601 (also with a space instead of 'T', or a date alone), epoch seconds
    (numbers, or digits in a string; milliseconds from 1e11 up), RFC 2822 e-mail dates, and
    a few unambiguous spellings such as ``2024/03/01 14:05`` or ``1 Mar 2024``. Day/month
    orders that could be read both ways (03/01/2024) are refused rather than guessed.
    """
    if type(value) is bool or not isinstance(value, int | float | str):
        raise RecordError(f"iso8601 needs a date-time, not {describe(value)}")
    if isinstance(value, int | float):
        return format_datetime(_from_epoch(value))
    text = value.strip()
    if _EPOCH.fullmatch(text):
        return format_datetime(_from_epoch(float(text) if "." in text else int(text)))
    parsed = _parse_text(text)
    if parsed is None:
        raise RecordError(
            f"iso8601: cannot read {text[:40]!r} as a date-time; use ISO 8601 such as "
            "2024-03-01T14:05:00Z (or epoch seconds)"
        )
    return format_datetime(parsed)


def _from_epoch(number: float) -> datetime:
    seconds = number / 1000 if abs(number) >= _EPOCH_MS else number
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise RecordError(f"iso8601: {number} is out of range for a date") from None


def _parse_text(text: str) -> datetime | None:
    candidates = [text]
    for word in _ZONE_WORDS:
        if text.upper().endswith(word):
            candidates.append(text[: -len(word)] + "+00:00")
    for candidate in candidates:
        try:
            return datetime.fromisoformat(candidate)
        except ValueError:
            pass
    for fmt in _FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            pass
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


def format_datetime(dt: datetime) -> str:
    """ISO 8601 with a zone; a naive value is taken as UTC, and UTC is written ``Z``."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    text = dt.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
