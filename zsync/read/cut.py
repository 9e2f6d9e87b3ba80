"""A regular file cut into records as bytes, for the skip path (``zsync.plan.skip``).

:class:`Cut` hands out each record's bytes (a view into the mapped file, see
``zsync.read.raw``) and parses one only when asked, with the ordinary reader's own rules,
so what it accepts or refuses is exactly what a full read accepts or refuses. Where the
cutter cannot be sure where a record ends, or a record does not parse to exactly one, it
says :class:`~zsync.read.raw.Unsure`, and :meth:`Cut.rest` reads the rest of the file the
ordinary way: never wrong, only as slow as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain

from zsync.model import Item, Problem, Record, Warn
from zsync.read.jsonl import parse_jsonl_line
from zsync.read.raw import (
    RawCsv,
    RawRecord,
    Unsure,
    json_elements,
    jsonl_records,
    parse_json_element,
    sniff,
)

__all__ = ["Cut", "cut_file"]

Parse = Callable[[RawRecord, Warn], Item | None]
Ordinary = Callable[..., Iterator[Item]]


class Cut:
    """One file's records as bytes, in order. ``context``: what besides a record's own
    bytes decides how it parses (the format; a CSV file's delimiter and header row), for a
    hash of a record to cover."""

    def __init__(
        self,
        path: str,
        records: Iterator[RawRecord],
        context: bytes,
        parse: Parse,
        ordinary: Ordinary,
    ) -> None:
        self.path = path
        self.context = context
        self._records = records
        self._parse = parse
        self._ordinary = ordinary

    def take(self, n: int) -> tuple[list[RawRecord], bool]:
        """Up to ``n`` records, and whether the cutter turned unsure after them (then no
        record follows: the rest is :meth:`rest`'s)."""
        chunk: list[RawRecord] = []
        try:
            for record in self._records:
                chunk.append(record)
                if len(chunk) >= n:
                    break
        except Unsure:
            return chunk, True
        return chunk, False

    def parse(self, record: RawRecord, warn: Warn) -> Item | None:
        """The record as the ordinary reader reads it (a Record or its Problem; None for a
        blank line). Raises Unsure when that is not exactly one record: read :meth:`rest`."""
        return self._parse(record, warn)

    def rest(self, done: int, warn: Warn) -> Iterator[Item]:
        """The ordinary reader's items of this file after its first ``done`` records (those
        already handled, parsed or matched)."""
        for item in self._ordinary(warn=warn):
            if done > 0 and isinstance(item, Record | Problem):
                done -= 1
                continue
            yield item


def cut_file(
    path: str, fmt: str, delimiter: str | None, max_bytes: int, ordinary: Ordinary
) -> Cut | None:
    """``path`` (a regular file whose format is ``fmt``: jsonl, json or csv) cut into
    records as bytes; None when a CSV file has no data row the cutter is sure of.
    ``delimiter``: a CSV file's, None to detect it as the CSV reader does."""
    if fmt == "jsonl":
        return Cut(path, jsonl_records(path, max_bytes), b"jsonl\0", _parse_line, ordinary)
    if fmt == "json":
        return Cut(path, json_elements(path, max_bytes), b"json\0", _parse_element, ordinary)
    table = RawCsv(path, delimiter or sniff(path))
    rows = table.rows(max_bytes)
    first = _peek(rows)  # reads the header row
    if not first:
        return None
    context = b"csv\0" + table.delimiter.encode() + b"\0" + table.header
    return Cut(path, chain(first, rows), context, lambda r, _warn: table.parse(r), ordinary)


def _peek(rows: Iterator[RawRecord]) -> list[RawRecord]:
    try:
        return [next(rows)]
    except (StopIteration, Unsure):
        return []


def _parse_line(record: RawRecord, warn: Warn) -> Item | None:
    return parse_jsonl_line(record.origin, bytes(record.raw), warn=warn)


def _parse_element(record: RawRecord, _warn: Warn) -> Item | None:
    return parse_json_element(record)
