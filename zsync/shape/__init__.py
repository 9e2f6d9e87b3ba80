"""Stage 2, shape: a record becomes a create body, or the reason it cannot.

A mapping file (``mapfile``, with its ``templates``) turns any record into the template's
shape; ``body`` checks the fields of its kind and builds the body; ``canonical`` gives the
bytes that are hashed, stored and sent, and every hash and key derived from them. Nothing
here reads input or touches the ledger.
"""

from __future__ import annotations

from dataclasses import replace

from zsync.model import Invalid, Prepared, Problem, Record, Schema, Warn, problem_to_invalid
from zsync.shape.body import CLIENT_FIELDS, prepare
from zsync.shape.mapfile import Mapping, MappingError, MappingFile
from zsync.shape.mapload import load

__all__ = ["MappingError", "MappingFile", "Shaper", "load", "prepare"]


class Shaper:
    """Record -> Prepared | Invalid; None for what is not a record to send (a Singer SCHEMA,
    a record of a stream the mapping file does not map, said once per stream)."""

    def __init__(
        self, mappings: MappingFile | None, *, derive_external_id: bool, warn: Warn
    ) -> None:
        self.mappings = mappings
        self.derive = derive_external_id
        self.warn = warn
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
            return prepare(item, derive_external_id=self.derive)
        if isinstance(item, Problem):
            return problem_to_invalid(item)
        if isinstance(item, Schema) and self.mappings is not None:
            self._mapping(item.stream, item.origin)
        return None

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
