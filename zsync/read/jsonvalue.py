"""The JSON decoder every reader shares: NaN and Infinity refused, errors in one line."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

# Only used on the error path, to point at a NaN/Infinity outside of strings.
_NON_FINITE = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)', re.S)


class NonFinite(ValueError):
    """NaN/Infinity in the input: Python's json accepts them, JSON and the API do not."""


def _refuse_constant(name: str) -> Any:
    raise NonFinite(name)


# Keys that occurred twice in one object of the value being decoded (the last value wins,
# as in every JSON parser); readers turn them into one warning per record. Readers run on
# one thread (the writer's), so a module-level list is enough.
_DUPLICATES: list[str] = []


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    made = dict(pairs)
    if len(made) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen and key not in _DUPLICATES:
                _DUPLICATES.append(key)
            seen.add(key)
    return made


def duplicate_keys() -> list[str]:
    """The keys found twice since the last call (and forget them)."""
    if not _DUPLICATES:
        return []
    found = list(_DUPLICATES)
    _DUPLICATES.clear()
    return found


def duplicates_warning(origin: str, keys: list[str]) -> str:
    """The warning for keys given twice in one object (the last value is kept)."""
    shown = ", ".join(repr(k) for k in keys[:5]) + (", ..." if len(keys) > 5 else "")
    noun = "key" if len(keys) == 1 else "keys"
    return f"{origin}: {noun} {shown} given twice in one object; the last value is used"


decoder = json.JSONDecoder(parse_constant=_refuse_constant, object_pairs_hook=_object)


_Scanner = Callable[[str, int], tuple[Any, int]]


# scan_once parses one value at an index (raw_decode minus its overhead); typeshed omits it.
scan: _Scanner = decoder.scan_once  # type: ignore[attr-defined]


# Parses what decoder refuses, only to find where the refused element ends so reading
# can continue after it.
lenient_scan: _Scanner = json.JSONDecoder(  # type: ignore[attr-defined]
    parse_constant=lambda _n: None, parse_int=float
).scan_once


def non_finite_at(buf: str, pos: int) -> int:
    """Where in ``buf`` (from ``pos``) the NaN or Infinity the decoder refused starts."""
    for m in _NON_FINITE.finditer(buf, pos):
        if m.group(1):
            return m.start(1)
    return pos


def value_error(exc: ValueError) -> str:
    """The Problem text for a value the decoder refused."""
    if isinstance(exc, NonFinite):
        return f"{exc.args[0].lstrip('-')} is not valid JSON (use null or a string)"
    if "integer string conversion" in str(exc):
        return "number has too many digits (over 4300)"
    return f"invalid JSON: {str(exc).splitlines()[0]}"


def not_utf8(byte: int) -> str:
    """The Problem text for a record holding ``byte``, which is not UTF-8."""
    return f"not UTF-8 (byte 0x{byte:02x})"
