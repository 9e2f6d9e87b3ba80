"""Reading a mapping file: TOML in, a checked :class:`~zsync.shape.mapfile.MappingFile` out;
every mistake is one MappingError (exit 2) naming the file and line."""

from __future__ import annotations

import difflib
import re
import tomllib
from datetime import date, datetime, time
from typing import Any

from zsync.shape.body import EXTERNAL_TEXT_FIELDS, KINDS, RAW_SIGNAL_FIELDS
from zsync.shape.mapfile import FieldSpec, Mapping, MappingError, MappingFile
from zsync.shape.templates import (
    MISSING,
    SIMPLE,
    TRANSFORM_NAMES,
    WITH_ARG,
    Path,
    Transform,
    default,
    format_datetime,
    join,
    parse_template,
    split,
    truncate,
)

__all__ = ["load"]

_REQUIRED = {"external_text": ("text", "signalType"), "raw_signal": ("source",)}


_ALLOWED = {
    "external_text": frozenset(("text", "signalType", *EXTERNAL_TEXT_FIELDS)),
    "raw_signal": frozenset(("source", *RAW_SIGNAL_FIELDS)),
}


_TOP_KEYS = ("kind", "sourceKey", "fields", "streams")


_STREAM_KEYS = ("kind", "sourceKey", "fields")


_SPEC_SOURCES = ("template", "field", "value")


_SPEC_KEYS = frozenset((*_SPEC_SOURCES, "transforms", "default"))


# Body fields whose value is an object: a table there is the object itself.
_OBJECT_FIELDS = frozenset(("source", "data", "context", "sourceExternalData"))


_BARE_OR_QUOTED = r"""(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')"""


_KEY_LINE = re.compile(rf"({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*=")


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
        specs: list[FieldSpec] = []
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

    def external_id(self, where: Path, spec: FieldSpec, raw: Any) -> FieldSpec:
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
        return FieldSpec(
            spec.key,
            spec.line,
            spec.template,
            spec.template_text,
            spec.path,
            transforms=spec.transforms,
            empty_is_missing=True,
        )

    def spec(self, where: Path, key: str, name: str, raw: Any) -> FieldSpec:
        """``name`` is the body path for messages; ``key`` is the TOML key for line lookup."""
        line = self.line_of(where, key)
        if isinstance(raw, str):
            return self.template(where, key, name, line, raw, ())
        if isinstance(raw, dict) and any(k in raw for k in _SPEC_SOURCES):
            return self.table_spec(where, key, name, line, raw)
        if isinstance(raw, dict) and "." not in name and name not in _OBJECT_FIELDS:
            # `text = { templat = "..." }`: a field that is not an object, given a table without
            # template/field/value, is a misspelling; say so now, not once per record.
            guess = difflib.get_close_matches(next(iter(raw), ""), sorted(_SPEC_KEYS), n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            raise self.fail(
                where,
                key,
                f"{name}: a table here needs template, field or value; found "
                f"{', '.join(repr(k) for k in raw) or 'nothing'}{hint}",
            )
        if isinstance(raw, dict):
            children = tuple(self.spec(where, key, f"{name}.{k}", v) for k, v in raw.items())
            return FieldSpec(name, line, children=children)
        if isinstance(raw, list):
            items = tuple(self.spec(where, key, name, v) for v in raw)
            return FieldSpec(name, line, items=items)
        return FieldSpec(name, line, value=_literal(raw))

    def template(
        self, where: Path, key: str, name: str, line: int, text: str, transforms: tuple[Any, ...]
    ) -> FieldSpec:
        try:
            parsed = parse_template(text)
        except ValueError as exc:
            raise self.fail(where, key, f"{name}: {exc}") from None
        if not any(type(p) is tuple for p in parsed):
            value = "".join(p for p in parsed if type(p) is str)
            return FieldSpec(name, line, value=value, transforms=transforms)
        return FieldSpec(name, line, parsed, text, transforms=transforms)

    def table_spec(
        self, where: Path, key: str, name: str, line: int, raw: dict[str, Any]
    ) -> FieldSpec:
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
            transforms = (*transforms, default(_literal(raw["default"])))
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
            return FieldSpec(name, line, path=path, transforms=transforms)
        return FieldSpec(name, line, value=_literal(raw["value"]), transforms=transforms)

    def transforms(self, where: Path, key: str, name: str, raw: Any) -> tuple[Transform, ...]:
        if not isinstance(raw, list):
            raise self.fail(where, key, f'{name}: transforms must be a list, e.g. ["strip"]')
        out: list[Transform] = []
        for item in raw:
            if isinstance(item, str):
                if item not in SIMPLE:
                    if item in WITH_ARG:
                        message = f"transform {item!r} needs a value: {{ {item} = ... }}"
                    else:
                        message = f"unknown transform {item!r}; use {TRANSFORM_NAMES}"
                    raise self.fail(where, key, f"{name}: {message}")
                out.append(SIMPLE[item])
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
            return truncate(arg)
        if op in ("join", "split"):
            if not isinstance(arg, str) or (op == "split" and not arg):
                raise self.fail(where, key, f"{name}: {op} needs a separator string")
            return join(arg) if op == "join" else split(arg)
        if op == "default":
            return default(_literal(arg))
        if op in SIMPLE:
            raise self.fail(where, key, f"{name}: transform {op!r} takes no value; write {op!r}")
        raise self.fail(where, key, f"{name}: unknown transform {op!r}; use {TRANSFORM_NAMES}")


def _literal(value: Any) -> Any:
    """TOML values as JSON values: dates and times become ISO 8601 strings."""
    if isinstance(value, datetime):
        return format_datetime(value)
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
