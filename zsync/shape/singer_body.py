"""A Singer record without a mapping: its identity from the stream and key, its body an
``external_text`` signal whose text is a readable rendering of the record.

Identity (``externalId``), the README's and docs/meltano.md's "No mapping" describe it:

    <stream>:<key value>[,<key value>...]    a stream whose SCHEMA has key_properties
    <stream>:~<32 hex digits>                 a stream without: a hash of the record's content

Each part is escaped: ``%`` ``:`` ``,`` and control characters become ``%XX`` (UTF-8 bytes),
so ``test:a`` with key ``1`` is ``test%3Aa:1``. A key value is its text (a string as written,
a number as in JSON, null/true/false as in JSON, an object or list as canonical JSON). An id
longer than 256 characters keeps its first 215 and ends in ``~`` and 40 hex digits of a hash
of the whole. Fields whose name starts with ``_sdc_`` (the Singer SDK's metadata, which
changes on every extraction) are left out of the content hash and the text.

Text: one line per field, sorted by name, ``name: value``; nested objects as dotted names
(``info.weather: rainy``); a list of plain values joined by ", "; a list holding objects or
lists by index (``items[0].sku: A1``); ``{}`` and ``[]`` for empty ones. Strings as written,
control characters other than newline and tab shown as ``\\uXXXX``, and further lines of a
multi-line value indented by two spaces; numbers, null, true and false as in JSON. A value is
cut at 2,000 characters and the text at 20,000 (``… (N more lines)``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from zsync.errors import UsageError
from zsync.model import Record
from zsync.shape.body import MAX_EXTERNAL_ID
from zsync.shape.canonical import canonical_json
from zsync.shape.templates import Absent, RecordError, Template, parse_template, render

__all__ = ["SingerBody", "identity", "record_text"]

MAX_VALUE_CHARS = 2_000
MAX_TEXT_CHARS = 20_000
METADATA_PREFIX = "_sdc_"
_ESCAPE = re.compile("[%:,\x00-\x1f\x7f]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # all but tab and newline


@dataclass(frozen=True)
class SingerBody:
    """How a Singer record without a mapping becomes a body: the signalType (None: the
    stream's name) and an optional template for the signal's name."""

    signal_type: str | None = None
    name_template: str | None = None

    def __post_init__(self) -> None:
        if self.signal_type is not None and not self.signal_type.strip():
            raise UsageError("signal type must be a non-empty string")
        self.template()  # a broken template is refused before anything is read

    def template(self) -> Template | None:
        """The parsed name template, or None without one; UsageError when it does not parse."""
        if self.name_template is None:
            return None
        try:
            return parse_template(self.name_template)
        except ValueError as exc:
            raise UsageError(f"name template {self.name_template!r}: {exc}") from None

    def record(self, record: Record, template: Template | None) -> Record:
        """The record in Zentrik's template shape (for prepare): the body it becomes."""
        data = record.data
        assert record.stream is not None and type(data) is dict
        out: dict[str, Any] = {
            "kind": "external_text",
            "externalId": identity(record.stream, record.key or (), data),
            "signalType": self.signal_type or record.stream,
            "text": record_text(data),
        }
        if template is not None and self.name_template is not None:
            try:
                name = render(template, data, self.name_template, True)
            except (Absent, RecordError):
                name = ""  # a name is optional: a record without its fields has none
            if name.strip():
                out["name"] = name
        return Record(record.origin, out, record.stream, record.key)


def identity(stream: str, key: tuple[str, ...], data: dict[str, Any]) -> str:
    """``<stream>:<key values>``, or ``<stream>:~<hash of the content>`` without a key."""
    if key:
        value = ",".join(_escape(_key_text(data.get(k))) for k in key)
    else:
        content = {k: v for k, v in data.items() if not k.startswith(METADATA_PREFIX)}
        value = "~" + hashlib.sha256(canonical_json(content)).hexdigest()[:32]
    whole = f"{_escape(stream)}:{value}"
    if len(whole) <= MAX_EXTERNAL_ID:
        return whole
    digest = hashlib.sha256(whole.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{whole[: MAX_EXTERNAL_ID - 41]}~{digest}"


def _key_text(value: Any) -> str:
    if type(value) is str:
        return value
    return canonical_json(value).decode()


def _escape(text: str) -> str:
    return _ESCAPE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text)


def record_text(data: dict[str, Any]) -> str:
    """The record as readable text (see the module's docstring); never empty."""
    lines: list[str] = []
    size = 0
    every = _lines(data)
    for line in every:
        if size + len(line) > MAX_TEXT_CHARS:
            rest = 1 + sum(1 for _ in every)
            lines.append(f"… ({rest} more line{'s' if rest != 1 else ''})")
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) or "(no fields)"


def _lines(data: dict[str, Any]) -> Iterator[str]:
    for name in sorted(data):
        if not name.startswith(METADATA_PREFIX):
            yield from _field(str(name), data[name])


def _field(path: str, value: Any) -> Iterator[str]:
    if type(value) is dict:
        if not value:
            yield f"{path}: {{}}"
        for name in sorted(value):
            yield from _field(f"{path}.{name}", value[name])
    elif type(value) is list:
        if not value:
            yield f"{path}: []"
        elif not any(type(v) in (dict, list) for v in value):
            yield f"{path}: " + _bounded(", ".join(_plain(v) for v in value))
        else:
            for i, item in enumerate(value):
                yield from _field(f"{path}[{i}]", item)
    else:
        yield f"{path}: " + _bounded(_plain(value))


def _plain(value: Any) -> str:
    if type(value) is str:
        return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
    return json.dumps(value, ensure_ascii=False)


def _bounded(text: str) -> str:
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + "…"
    return text.replace("\n", "\n  ")
