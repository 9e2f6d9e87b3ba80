"""Mapping files: turn any record into one in Zentrik's template shape, declared in TOML.

A mapping file names the kind and, per body field, where its value comes from::

    kind = "external_text"
    sourceKey = "helpdesk.tickets.v1"
    [fields]
    externalId = "helpdesk:{ticket_id}"
    text = { template = "{subject}\\n\\n{body}", transforms = ["strip", { truncate = 20000 }] }
    signalType = "support_ticket"

The result goes through :func:`zsync.mapping.prepare` like any other record, so validation,
canonical bytes and hashing stay in one place.

Templates are parsed here, never handed to ``str.format``: a placeholder is a dotted path of
dictionary keys (``{customer.name}``) and nothing else, so a mapping cannot reach attributes,
index expressions, conversions or format specs, whatever the file says.
"""

from __future__ import annotations

import email.utils
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from zsync.errors import UsageError
from zsync.mapping import EXTERNAL_TEXT_FIELDS, KINDS, RAW_SIGNAL_FIELDS, Invalid
from zsync.sources import Record

__all__ = ["Mapping", "MappingError", "MappingFile", "load", "parse_template", "to_iso8601"]


class MappingError(UsageError):
    """The mapping file cannot be used (exit 2); the message names the file and line."""


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

_REQUIRED = {"external_text": ("text", "signalType"), "raw_signal": ("source",)}
_ALLOWED = {
    "external_text": frozenset(("text", "signalType", *EXTERNAL_TEXT_FIELDS)),
    "raw_signal": frozenset(("source", *RAW_SIGNAL_FIELDS)),
}
_TOP_KEYS = ("kind", "sourceKey", "fields", "streams")
_STREAM_KEYS = ("kind", "sourceKey", "fields")
_SPEC_SOURCES = ("template", "field", "value")
_SPEC_KEYS = frozenset((*_SPEC_SOURCES, "transforms", "default"))
_NOT_IN_NAMES = frozenset("!:[]()")
_BARE_OR_QUOTED = r"""(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')"""
_KEY_LINE = re.compile(rf"({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*=")


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


def _show_path(path: Path) -> str:
    return ".".join(path)


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _RecordError(Exception):
    """One record cannot be mapped: the message says why (without origin or field)."""


def _as_text(value: Any, what: str) -> str:
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise _RecordError(f"{what} is {_describe(value)}; expected text, a number or a boolean")


def _render(template: Template, data: Any, text: str, empty_is_missing: bool) -> Any:
    out: list[str] = []
    for part in template:
        if isinstance(part, str):
            out.append(part)
            continue
        value = lookup(data, part)
        name = _show_path(part)
        if value is MISSING or value is None or (empty_is_missing and value == ""):
            state = "is empty" if value == "" else "is missing" if value is MISSING else "is null"
            raise _Absent(f"template {text!r} needs '{name}', which {state} in this record")
        out.append(_as_text(value, f"'{name}'"))
    return "".join(out)


class _Absent(Exception):
    """The value is missing; the message says which part of the record was."""


# -- transforms ---------------------------------------------------------------------------

Transform = Callable[[Any], Any]


def _each(fn: Callable[[str], str], name: str) -> Transform:
    def apply(value: Any) -> Any:
        if value is MISSING:
            return value
        if type(value) is list:
            return [fn(_as_text(v, f"an item of the list given to {name}")) for v in value]
        return fn(_as_text(value, f"the value given to {name}"))

    return apply


def _collapse(s: str) -> str:
    return " ".join(s.split())


def _truncate(n: int) -> Transform:
    return _each(lambda s: s[:n], "truncate")


def _join(sep: str) -> Transform:
    def apply(value: Any) -> Any:
        if type(value) is not list:
            return value
        return sep.join(_as_text(v, "an item of the list given to join") for v in value)

    return apply


def _split(sep: str) -> Transform:
    def apply(value: Any) -> Any:
        if type(value) is not str:
            return value
        return [piece.strip() for piece in value.split(sep) if piece.strip()]

    return apply


def _default(fallback: Any) -> Transform:
    def apply(value: Any) -> Any:
        return fallback if _is_empty(value) else value

    return apply


def _iso(value: Any) -> Any:
    if _is_empty(value):
        return value
    return to_iso8601(value)


_SIMPLE: dict[str, Transform] = {
    "strip": _each(str.strip, "strip"),
    "collapse_whitespace": _each(_collapse, "collapse_whitespace"),
    "lower": _each(str.lower, "lower"),
    "upper": _each(str.upper, "upper"),
    "iso8601": _iso,
}
_WITH_ARG = ("truncate", "join", "split", "default")
_TRANSFORM_NAMES = ", ".join([*_SIMPLE, *(f"{{ {n} = ... }}" for n in _WITH_ARG)])


def _is_empty(value: Any) -> bool:
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
        raise _RecordError(f"iso8601 needs a date-time, not {_describe(value)}")
    if isinstance(value, int | float):
        return _format(_from_epoch(value))
    text = value.strip()
    if _EPOCH.fullmatch(text):
        return _format(_from_epoch(float(text) if "." in text else int(text)))
    parsed = _parse_text(text)
    if parsed is None:
        raise _RecordError(
            f"iso8601: cannot read {text[:40]!r} as a date-time; use ISO 8601 such as "
            "2024-03-01T14:05:00Z (or epoch seconds)"
        )
    return _format(parsed)


def _from_epoch(number: float) -> datetime:
    seconds = number / 1000 if abs(number) >= _EPOCH_MS else number
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise _RecordError(f"iso8601: {number} is out of range for a date") from None


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


def _format(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    text = dt.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# -- field specs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spec:
    """Where one body value comes from."""

    key: str  # the body field ("text"), or a dotted path inside an object ("source.type")
    line: int  # in the mapping file, 0 when unknown
    template: Template | None = None
    template_text: str = ""
    path: Path | None = None  # field = "..."
    value: Any = MISSING  # a literal
    children: tuple[_Spec, ...] | None = None  # an object whose values are specs
    items: tuple[_Spec, ...] | None = None  # a list whose items are specs
    transforms: tuple[Transform, ...] = ()
    empty_is_missing: bool = False  # externalId: an empty placeholder is missing

    def evaluate(self, data: Any) -> Any:
        """The value for ``data`` or MISSING; raises _Absent/_RecordError."""
        value: Any
        absent: _Absent | None = None
        try:
            if self.template is not None:
                value = _render(self.template, data, self.template_text, self.empty_is_missing)
            elif self.path is not None:
                value = lookup(data, self.path)
                if value is None:
                    value = MISSING
            elif self.children is not None:
                value = {}
                for child in self.children:
                    v = child.optional(data)
                    if v is not MISSING:
                        value[child.key.rsplit(".", 1)[-1]] = v
            elif self.items is not None:
                value = [
                    v for v in (item.optional(data) for item in self.items) if v is not MISSING
                ]
            else:
                value = self.value
        except _Absent as exc:
            if not self.transforms:
                raise
            value, absent = MISSING, exc
        for transform in self.transforms:
            value = transform(value)
        if _is_empty(value):
            if absent is not None:
                raise absent
            if self.path is not None:
                raise _Absent(f"'{_show_path(self.path)}' is missing or empty in this record")
            if self.template is not None:
                raise _Absent(
                    f"template {self.template_text!r} gives an empty value for this record"
                )
            raise _Absent("the value is empty")
        return value

    def optional(self, data: Any) -> Any:
        """Inside an object or list a missing value is left out, not an error."""
        try:
            return self.evaluate(data)
        except _Absent:
            return MISSING


@dataclass(frozen=True)
class Mapping:
    """One record mapping: a kind, an optional sourceKey and the field specs."""

    name: str  # the mapping file as shown in messages
    kind: str
    source_key: str | None
    specs: tuple[_Spec, ...]
    required: frozenset[str] = field(default_factory=frozenset)

    def apply(self, record: Record) -> Record | Invalid:
        """The record in template shape (for prepare), or why this record cannot be mapped."""
        data = record.data
        origin = record.origin
        if type(data) is not dict:
            message = f"{origin}: record is {_describe(data)}; expected an object"
            return Invalid(origin, None, None, message)
        out: dict[str, Any] = {"kind": self.kind}
        if self.source_key is not None:
            out["sourceKey"] = self.source_key
        external_id: str | None = None
        for spec in self.specs:
            try:
                value = spec.evaluate(data)
            except _Absent as exc:
                if spec.key not in self.required:
                    continue
                return self._invalid(record, external_id, spec, f"{exc}; {spec.key} is required")
            except _RecordError as exc:
                return self._invalid(record, external_id, spec, str(exc))
            out[spec.key] = value
            if spec.key == "externalId" and type(value) is str:
                external_id = value
        return Record(origin, out)

    def _invalid(self, record: Record, external_id: str | None, spec: _Spec, why: str) -> Invalid:
        where = f"{self.name}:{spec.line}" if spec.line else self.name
        message = f"{record.origin}: field '{spec.key}' (mapping {where}): {why}"
        return Invalid(record.origin, external_id, spec.key, message)


@dataclass(frozen=True)
class MappingFile:
    name: str
    default: Mapping | None  # the top-level mapping, for records without a Singer stream
    streams: dict[str, Mapping]

    def for_stream(self, stream: str | None) -> Mapping | None:
        if stream is not None and stream in self.streams:
            return self.streams[stream]
        return self.default


# -- loading ------------------------------------------------------------------------------


def load(path: str) -> MappingFile:
    """Read and check a mapping file; MappingError (exit 2) names the file and line."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror or exc
        raise MappingError(f"mapping {path}: {str(reason).lower()}") from None
    try:
        text = raw.decode("utf-8-sig")
        doc = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise MappingError(f"mapping {path}:{line}: not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if m is not None:
            where = f"{path}:{m.group(1)}:{m.group(2)}"
            message = message[: m.start()]
        else:
            where = path
        raise MappingError(f"mapping {where}: invalid TOML: {message}") from None
    return _Loader(path, text).file(doc)


class _Loader:
    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.lines = text.splitlines()

    def fail(self, table: Path, key: str | None, message: str) -> MappingError:
        line = self.line_of(table, key)
        where = f"{self.name}:{line}" if line else self.name
        return MappingError(f"mapping {where}: {message}")

    def line_of(self, table: Path, key: str | None) -> int:
        """The line that defines ``table.key`` (or the table), found by scanning the text;
        failing that, the line of an enclosing inline table or a sub-table; 0 if none."""
        wanted = (*table, key) if key is not None else table
        if not wanted:
            return 0
        current: Path = ()
        fallback = 0
        for number, raw in enumerate(self.lines, 1):
            line = raw.strip()
            if line.startswith("["):
                current = _dotted(line.strip("[]").split("]")[0])
                if current == wanted:
                    return number
                if not fallback and current[: len(wanted)] == wanted:
                    fallback = number
                continue
            m = _KEY_LINE.match(line)
            if m is None:
                continue
            found = (*current, *_dotted(m.group(1)))
            if found[: len(wanted)] == wanted:
                return number
            if not fallback and wanted[: len(found)] == found:
                fallback = number  # an inline table that holds the key
        return fallback

    def file(self, doc: dict[str, Any]) -> MappingFile:
        for key in doc:
            if key not in _TOP_KEYS:
                raise self.fail((), key, f"unknown key {key!r}; a mapping has {_TOP_KEYS}")
        kind = doc.get("kind")
        source_key = self.source_key((), doc.get("sourceKey", MISSING))
        default = None
        if "fields" in doc:
            default = self.mapping((), kind, source_key, doc["fields"])
        elif kind is not None and not isinstance(kind, str):
            raise self.fail((), "kind", "kind must be a string: external_text or raw_signal")
        streams_doc = doc.get("streams", {})
        if not isinstance(streams_doc, dict):
            raise self.fail((), "streams", "streams must be tables: [streams.NAME]")
        streams: dict[str, Mapping] = {}
        for stream, table in streams_doc.items():
            where = ("streams", stream)
            if not isinstance(table, dict):
                raise self.fail(where, None, f"streams.{stream} must be a table")
            for key in table:
                if key not in _STREAM_KEYS:
                    raise self.fail(where, key, f"unknown key {key!r}; a stream has {_STREAM_KEYS}")
            if "fields" not in table:
                raise self.fail(where, None, f"[streams.{stream}] needs [streams.{stream}.fields]")
            stream_key = source_key
            if "sourceKey" in table:
                stream_key = self.source_key(where, table["sourceKey"])
            streams[stream] = self.mapping(
                where, table.get("kind", kind), stream_key, table["fields"]
            )
        if default is None and not streams:
            raise self.fail((), None, "no [fields] table (and no [streams.NAME] tables)")
        return MappingFile(self.name, default, streams)

    def source_key(self, table: Path, value: Any) -> str | None:
        if value is MISSING:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(table, "sourceKey", "sourceKey must be a non-empty string")
        return value

    def mapping(self, table: Path, kind: Any, source_key: str | None, fields: Any) -> Mapping:
        where = (*table, "fields")
        if kind is None:
            raise self.fail(table, None, "kind is missing; use external_text or raw_signal")
        if kind not in KINDS:
            raise self.fail(
                table, "kind", f"unknown kind {kind!r}; use external_text or raw_signal"
            )
        if not isinstance(fields, dict):
            raise self.fail(table, "fields", "fields must be a table: [fields]")
        allowed = _ALLOWED[kind]
        specs: list[_Spec] = []
        for key, raw in fields.items():
            if key not in allowed:
                hint = " (sourceKey is set at the top of the file)" if key == "sourceKey" else ""
                raise self.fail(
                    where,
                    key,
                    f"{kind} has no field {key!r}{hint}; it sends {', '.join(sorted(allowed))}",
                )
            spec = self.spec(where, key, key, raw)
            if key == "externalId":
                spec = self.external_id(where, spec, raw)
            specs.append(spec)
        required = ("externalId", *_REQUIRED[kind])
        for key in required:
            if key not in fields:
                raise self.fail(where, None, f"fields.{key} is missing; {kind} needs it")
        # externalId first, so a later field's error can name the record's id.
        specs.sort(key=lambda s: s.key != "externalId")
        return Mapping(self.name, kind, source_key, tuple(specs), frozenset(required))

    def external_id(self, where: Path, spec: _Spec, raw: Any) -> _Spec:
        placeholders = spec.template is not None and any(type(p) is tuple for p in spec.template)
        if not placeholders and spec.path is None:
            raise self.fail(
                where,
                "externalId",
                'externalId must come from the record, e.g. "helpdesk:{ticket_id}": a fixed'
                " value would give every record the same id",
            )
        defaults = isinstance(raw, dict) and (
            "default" in raw
            or any(isinstance(t, dict) and "default" in t for t in raw.get("transforms", []))
        )
        if defaults:
            raise self.fail(
                where, "externalId", "externalId cannot have a default (records would share it)"
            )
        return _Spec(
            spec.key,
            spec.line,
            spec.template,
            spec.template_text,
            spec.path,
            transforms=spec.transforms,
            empty_is_missing=True,
        )

    def spec(self, where: Path, key: str, name: str, raw: Any) -> _Spec:
        """``name`` is the body path for messages; ``key`` is the TOML key for line lookup."""
        line = self.line_of(where, key)
        if isinstance(raw, str):
            return self.template(where, key, name, line, raw, ())
        if isinstance(raw, dict) and any(k in raw for k in _SPEC_SOURCES):
            return self.table_spec(where, key, name, line, raw)
        if isinstance(raw, dict):
            children = tuple(self.spec(where, key, f"{name}.{k}", v) for k, v in raw.items())
            return _Spec(name, line, children=children)
        if isinstance(raw, list):
            items = tuple(self.spec(where, key, name, v) for v in raw)
            return _Spec(name, line, items=items)
        return _Spec(name, line, value=_literal(raw))

    def template(
        self, where: Path, key: str, name: str, line: int, text: str, transforms: tuple[Any, ...]
    ) -> _Spec:
        try:
            parsed = parse_template(text)
        except ValueError as exc:
            raise self.fail(where, key, f"{name}: {exc}") from None
        if not any(type(p) is tuple for p in parsed):
            value = "".join(p for p in parsed if type(p) is str)
            return _Spec(name, line, value=value, transforms=transforms)
        return _Spec(name, line, parsed, text, transforms=transforms)

    def table_spec(self, where: Path, key: str, name: str, line: int, raw: dict[str, Any]) -> _Spec:
        unknown = sorted(set(raw) - _SPEC_KEYS)
        if unknown:
            raise self.fail(
                where,
                key,
                f"{name}: unknown key {unknown[0]!r}; a field takes template, field or value,"
                " with transforms and default",
            )
        sources = [k for k in _SPEC_SOURCES if k in raw]
        if len(sources) > 1:
            raise self.fail(where, key, f"{name}: use one of template, field or value, not both")
        transforms = self.transforms(where, key, name, raw.get("transforms", []))
        if "default" in raw:
            transforms = (*transforms, _default(_literal(raw["default"])))
        source = sources[0]
        if source == "template":
            if not isinstance(raw["template"], str):
                raise self.fail(where, key, f"{name}: template must be a string")
            return self.template(where, key, name, line, raw["template"], transforms)
        if source == "field":
            path_text = raw["field"]
            if not isinstance(path_text, str) or not path_text.strip():
                raise self.fail(where, key, f"{name}: field must name a record field")
            path = tuple(s.strip() for s in path_text.split("."))
            if any(s.startswith("__") for s in path):
                raise self.fail(where, key, f"{name}: names starting with '__' are refused")
            return _Spec(name, line, path=path, transforms=transforms)
        return _Spec(name, line, value=_literal(raw["value"]), transforms=transforms)

    def transforms(self, where: Path, key: str, name: str, raw: Any) -> tuple[Transform, ...]:
        if not isinstance(raw, list):
            raise self.fail(where, key, f'{name}: transforms must be a list, e.g. ["strip"]')
        out: list[Transform] = []
        for item in raw:
            if isinstance(item, str):
                if item not in _SIMPLE:
                    if item in _WITH_ARG:
                        message = f"transform {item!r} needs a value: {{ {item} = ... }}"
                    else:
                        message = f"unknown transform {item!r}; use {_TRANSFORM_NAMES}"
                    raise self.fail(where, key, f"{name}: {message}")
                out.append(_SIMPLE[item])
                continue
            if not isinstance(item, dict) or len(item) != 1:
                raise self.fail(where, key, f"{name}: a transform is a name or {{ name = value }}")
            ((op, arg),) = item.items()
            out.append(self.transform_with_arg(where, key, name, op, arg))
        return tuple(out)

    def transform_with_arg(self, where: Path, key: str, name: str, op: str, arg: Any) -> Transform:
        if op == "truncate":
            if type(arg) is not int or arg < 1:
                raise self.fail(where, key, f"{name}: truncate needs a whole number >= 1")
            return _truncate(arg)
        if op in ("join", "split"):
            if not isinstance(arg, str) or (op == "split" and not arg):
                raise self.fail(where, key, f"{name}: {op} needs a separator string")
            return _join(arg) if op == "join" else _split(arg)
        if op == "default":
            return _default(_literal(arg))
        if op in _SIMPLE:
            raise self.fail(where, key, f"{name}: transform {op!r} takes no value; write {op!r}")
        raise self.fail(where, key, f"{name}: unknown transform {op!r}; use {_TRANSFORM_NAMES}")


def _literal(value: Any) -> Any:
    """TOML values as JSON values: dates and times become ISO 8601 strings."""
    if isinstance(value, datetime):
        return _format(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, list):
        return [_literal(v) for v in value]
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    return value


def _dotted(text: str) -> Path:
    parts: list[str] = []
    for m in re.finditer(r'"([^"]*)"|\'([^\']*)\'|([^.\s"\']+)', text):
        parts.append(next(g for g in m.groups() if g is not None))
    return tuple(parts)
