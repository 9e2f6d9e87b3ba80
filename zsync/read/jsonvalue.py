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


decoder = json.JSONDecoder(parse_constant=_refuse_constant)


_Scanner = Callable[[str, int], tuple[Any, int]]


# scan_once parses one value at an index (raw_decode minus its overhead); typeshed omits it.
scan: _Scanner = decoder.scan_once  # type: ignore[attr-defined]


# Parses what decoder refuses, only to find where the refused element ends so reading
# can continue after it.
lenient_scan: _Scanner = json.JSONDecoder(  # type: ignore[attr-defined]
    parse_constant=lambda _n: None, parse_int=float
).scan_once


def non_finite_at(buf: str, pos: int) -> int:
    for m in _NON_FINITE.finditer(buf, pos):
        if m.group(1):
            return m.start(1)
    return pos


def value_error(exc: ValueError) -> str:
    if isinstance(exc, NonFinite):
        return f"{exc.args[0].lstrip('-')} is not valid JSON (use null or a string)"
    if "integer string conversion" in str(exc):
        return "number has too many digits (over 4300)"
    return f"invalid JSON: {str(exc).splitlines()[0]}"


def not_utf8(byte: int) -> str:
    return f"not UTF-8 (byte 0x{byte:02x})"
