"""Stage 2, shape: a record becomes a create body, or the reason it cannot.

A mapping file (``mapfile``, with its ``templates``) turns any record into the template's
shape; ``body`` checks the fields of its kind and builds the body; ``canonical`` gives the
bytes that are hashed, stored and sent, and every hash and key derived from them. Nothing
here reads input or touches the ledger.
"""

from __future__ import annotations

from dataclasses import replace

from zsync.model import Invalid, Prepared, Problem, Record, Schema, Warn, problem_to_invalid
from zsync.shape import singer_body
from zsync.shape.body import CLIENT_FIELDS, KINDS, prepare
from zsync.shape.mapfile import Mapping, MappingError, MappingFile
from zsync.shape.mapload import load
from zsync.shape.singer_body import SingerBody

__all__ = ["MappingError", "MappingFile", "Shaper", "SingerBody", "load", "prepare"]


class Shaper:
    """Record -> Prepared | Invalid; None for what is not a record to send (a Singer SCHEMA,
    a record of a stream the mapping file does not map, said once per stream).

    A Singer record without a mapping file becomes ``singer``'s body (``singer_body``),
    unless it is already in Zentrik's shape (it has a ``kind``): then it is sent as it is,
    with its stream's identity when it has no ``externalId``.
    """

    def __init__(
        self,
        mappings: MappingFile | None,
        *,
        derive_external_id: bool,
        warn: Warn,
        singer: SingerBody | None = None,
    ) -> None:
        self.mappings = mappings
        self.derive = derive_external_id
        self.warn = warn
        self.singer = singer or SingerBody()
        self._name = self.singer.template()
        self._warned: set[str] = set()

    def __call__(self, item: Record | Problem | Schema) -> Prepared | Invalid | None:
        try:
            shaped = self._shape(item)
        except (UnicodeError, RecursionError) as exc:
            # Text that cannot be encoded, nesting that cannot be walked: this record's
            # problem, never the batch's (issue 13).
            why = "cannot be encoded as UTF-8" if isinstance(exc, UnicodeError) else "too deep"
            return Invalid(item.origin, None, None, f"{item.origin}: record {why}")
        if type(shaped) is Invalid and shaped.external_id is not None:
            try:
                shaped.external_id.encode("utf-8")
            except UnicodeEncodeError:
                # An id that is not text (a lone surrogate) names nothing the ledger or the
                # server can hold: the record is invalid by its place alone.
                return replace(shaped, external_id=None)
        return shaped

    def _shape(self, item: Record | Problem | Schema) -> Prepared | Invalid | None:
        if type(item) is Record:
            if self.mappings is not None:
                mapping = self._mapping(item.stream, item.origin)
                if mapping is None:
                    return None
                mapped = mapping.apply(item)
                if isinstance(mapped, Invalid):
                    return mapped
                prepared = prepare(mapped, derive_external_id=self.derive)
                if type(prepared) is Prepared and prepared.dropped:
                    # A mapping file names each field it sends (its sourceKey included): a
                    # client field asked for by name needs no warning on every run.
                    kept = tuple(n for n in prepared.dropped if n not in CLIENT_FIELDS)
                    prepared = replace(prepared, dropped=kept)
                return prepared
            if item.key is not None and type(item.data) is dict:
                singer = self._singer(item)
                if isinstance(singer, Invalid):
                    return singer
                item = singer
            return prepare(item, derive_external_id=self.derive)
        if isinstance(item, Problem):
            return problem_to_invalid(item)
        if isinstance(item, Schema) and self.mappings is not None:
            self._mapping(item.stream, item.origin)
        return None

    def _singer(self, item: Record) -> Record | Invalid:
        """A Singer record without a mapping: the default body, or its own when it is already
        in Zentrik's shape (given an identity from its stream when it has none)."""
        assert item.stream is not None and item.key is not None and type(item.data) is dict
        data = item.data
        try:
            if data.get("kind") not in KINDS:
                return self.singer.record(item, self._name)
            if data.get("externalId") is None and (item.key or not self.derive):
                ident = singer_body.identity(item.stream, item.key, data)
                return replace(item, data={**data, "externalId": ident})
        except (ValueError, TypeError):  # NaN or Infinity: no JSON, so no stable identity
            why = "holds a number that JSON cannot (NaN or Infinity)"
            return Invalid(item.origin, None, None, f"{item.origin}: record {why}")
        return item

    def _mapping(self, stream: str | None, origin: str) -> Mapping | None:
        assert self.mappings is not None
        mapping = self.mappings.for_stream(stream)
        if mapping is None and stream is not None and stream not in self._warned:
            self._warned.add(stream)
            self.warn(
                f"{origin}: Singer stream {stream!r} has no mapping in {self.mappings.name} "
                f"(add [streams.{stream}] or top-level [fields]); its records are skipped"
            )
        return mapping
