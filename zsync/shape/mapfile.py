"""Mapping files: turn any record into one in Zentrik's template shape, declared in TOML.

A mapping file names the kind and, per body field, where its value comes from::

    kind = "external_text"
    sourceKey = "helpdesk.tickets.v1"
    [fields]
    externalId = "helpdesk:{ticket_id}"
    text = { template = "{subject}\\n\\n{body}", transforms = ["strip", { truncate = 20000 }] }
    signalType = "support_ticket"

The result goes through :func:`zsync.shape.body.prepare` like any other record, so validation,
canonical bytes and hashing stay in one place. Templates and transforms live in
:mod:`zsync.shape.templates`; :mod:`zsync.shape.mapload` reads and checks the file and says
which line is wrong; this module holds what it builds and applies it to records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zsync.errors import UsageError
from zsync.model import Invalid, Record
from zsync.shape.templates import (
    MISSING,
    Absent,
    Path,
    RecordError,
    Template,
    Transform,
    describe,
    is_empty,
    lookup,
    record_has,
    render,
    show_path,
)

__all__ = ["Mapping", "MappingError", "MappingFile"]


class MappingError(UsageError):
    """The mapping file cannot be used (exit 2); the message names the file and line."""


# -- field specs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """Where one body value comes from."""

    key: str  # the body field ("text"), or a dotted path inside an object ("source.type")
    line: int  # in the mapping file, 0 when unknown
    template: Template | None = None
    template_text: str = ""
    path: Path | None = None  # field = "..."
    value: Any = MISSING  # a literal
    children: tuple[FieldSpec, ...] | None = None  # an object whose values are specs
    items: tuple[FieldSpec, ...] | None = None  # a list whose items are specs
    transforms: tuple[Transform, ...] = ()
    empty_is_missing: bool = False  # externalId: an empty placeholder is missing

    def evaluate(self, data: Any) -> Any:
        """The value for ``data`` or MISSING; raises Absent/RecordError."""
        value: Any
        absent: Absent | None = None
        try:
            if self.template is not None:
                value = render(self.template, data, self.template_text, self.empty_is_missing)
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
        except Absent as exc:
            if not self.transforms:
                raise
            value, absent = MISSING, exc
        for transform in self.transforms:
            value = transform(value)
        if is_empty(value):
            if absent is not None:
                raise absent
            if self.path is not None:
                has = record_has(data, self.path) if lookup(data, self.path) is MISSING else ""
                raise Absent(f"'{show_path(self.path)}' is missing or empty in this record{has}")
            if self.template is not None:
                raise Absent(
                    f"template {self.template_text!r} gives an empty value for this record"
                )
            raise Absent("the value is empty")
        return value

    def optional(self, data: Any) -> Any:
        """Inside an object or list a missing value is left out, not an error."""
        try:
            return self.evaluate(data)
        except Absent:
            return MISSING


@dataclass(frozen=True)
class Mapping:
    """One record mapping: a kind, an optional sourceKey and the field specs."""

    name: str  # the mapping file as shown in messages
    kind: str
    source_key: str | None
    specs: tuple[FieldSpec, ...]
    required: frozenset[str] = field(default_factory=frozenset)

    def apply(self, record: Record) -> Record | Invalid:
        """The record in template shape (for prepare), or why this record cannot be mapped."""
        data = record.data
        origin = record.origin
        if type(data) is not dict:
            message = f"{origin}: record is {describe(data)}; expected an object"
            return Invalid(origin, None, None, message)
        out: dict[str, Any] = {"kind": self.kind}
        if self.source_key is not None:
            out["sourceKey"] = self.source_key
        external_id: str | None = None
        for spec in self.specs:
            try:
                value = spec.evaluate(data)
            except Absent as exc:
                if spec.key not in self.required:
                    continue
                return self._invalid(record, external_id, spec, f"{exc}; {spec.key} is required")
            except RecordError as exc:
                return self._invalid(record, external_id, spec, str(exc))
            out[spec.key] = value
            if spec.key == "externalId" and type(value) is str:
                external_id = value
        return Record(origin, out)

    def _invalid(
        self, record: Record, external_id: str | None, spec: FieldSpec, why: str
    ) -> Invalid:
        where = f"{self.name}:{spec.line}" if spec.line else self.name
        message = f"{record.origin}: field '{spec.key}' (mapping {where}): {why}"
        return Invalid(record.origin, external_id, spec.key, message)


@dataclass(frozen=True)
class MappingFile:
    """A loaded mapping file: its top-level mapping and one per Singer stream."""

    name: str
    default: Mapping | None  # the top-level mapping, for records without a Singer stream
    streams: dict[str, Mapping]

    def for_stream(self, stream: str | None) -> Mapping | None:
        """The stream's own mapping, else the top-level one (None when the file has none)."""
        if stream is not None and stream in self.streams:
            return self.streams[stream]
        return self.default


# -- loading ------------------------------------------------------------------------------
