"""Reading the input while the ledger is checked, and JSONL lines as views of a mapped file.

A push opens its ledger with SQLite's integrity check, which reads every page (about 0.4 s
for 100,000 items). The first input file is cut into records and hashed meanwhile, on the
main thread, without touching the ledger. What a run then does must be exactly what it did
without the overlap: the same records, in the same order, with the same names; a damaged
ledger still refused and left as it was.
"""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zsync.ledger import Ledger
from zsync.ledger.schema import LedgerUnusable
from zsync.model import Intent, Outcome, Problem, Record, Status
from zsync.plan import skip
from zsync.plan.options import PlanOptions
from zsync.read import InputSpec, Source, read
from zsync.read.jsonl import parse_jsonl_line
from zsync.read.raw import RawCsv, Unsure, json_elements, jsonl_records

BOM = b"\xef\xbb\xbf"


def _ordinary(path: Path) -> list[Any]:
    return list(read(InputSpec((str(path),))))


def test_jsonl_lines_as_views_read_as_the_jsonl_reader_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        BOM
        + b'{"externalId": "a"}\r\n'
        + b"\n"
        + b"   \t\n"
        + b'{"externalId": "b", "text": "caf\xc3\xa9"}\n'
        + b"{not json}\n"
        + b'{"externalId": "c"}'  # no line end at the end of the file
    )
    lines = list(jsonl_records(str(path)))
    parsed = [parse_jsonl_line(r.origin, bytes(r.raw)) for r in lines]
    assert parsed == _ordinary(path)
    assert [r.origin for r in lines] == [f"{path}:1", f"{path}:4", f"{path}:5", f"{path}:6"]
    assert isinstance(parsed[2], Problem)


def test_a_jsonl_line_over_the_limit_is_left_to_the_jsonl_reader(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    # The JSONL reader takes a line of limit + 1 bytes when the last of them is its end.
    at_limit = b'{"externalId": "a", "t": "' + b"x" * 20 + b'"}\n'
    limit = len(at_limit) - 1
    path.write_bytes(at_limit + b'{"externalId": "b", "t": "' + b"y" * 40 + b'"}\n')
    lines = jsonl_records(str(path), limit)
    first = next(lines)
    assert bytes(first.raw) == at_limit
    with pytest.raises(Unsure):
        next(lines)
    ordinary = list(read(InputSpec((str(path),), max_record_bytes=limit)))
    assert isinstance(ordinary[0], Record) and isinstance(ordinary[1], Problem)


CSV_HEADER = "externalId,signalType,text\r\n"


@pytest.mark.parametrize("last", ['c,x,"' + "z" * 60, 'c,x,"never closed\n' + "z" * 60])
def test_a_csv_row_over_the_limit_is_left_to_the_csv_reader(tmp_path: Path, last: str) -> None:
    """Looked for no further than the limit: a quote never closed at the top of a large
    file is not scanned (nor copied) to the end of the file."""
    path = tmp_path / "in.csv"
    path.write_text(CSV_HEADER + "a,x,short\n" + last, newline="")
    table = RawCsv(str(path), ",")
    rows = table.rows(40)
    assert bytes(next(rows).raw) == b"a,x,short"
    with pytest.raises(Unsure):
        next(rows)
    ordinary = list(read(InputSpec((str(path),), max_record_bytes=40)))
    assert isinstance(ordinary[0], Record) and isinstance(ordinary[1], Problem)


def _csv(path: Path, ids: list[str]) -> None:
    rows = [f'{i},transcript,"said ""{i}""\nand more"\r\n' for i in ids]
    path.write_text(CSV_HEADER + "".join(rows), newline="")


def _ledger_knowing(tmp_path: Path, options: PlanOptions, path: str, every: int) -> Ledger:
    """A ledger holding every ``every``-th record of each chunk of ``path`` as processed."""
    ledger = Ledger.open(tmp_path / "l.db")
    run_id = ledger.runs.start("test", {})
    records = skip.hashed(options, Source(options.source, path))
    assert records is not None
    intents = []
    while chunk := records.read().records:
        intents += [r for k, r in enumerate(chunk) if k % every == 0]
    cut_again = skip.hashed(options, Source(options.source, path))
    assert cut_again is not None
    hashes = {bytes(r.raw): cut_again.digest(r.raw) for r in intents}
    rows = [
        Intent(f"id-{k}", "h", "", f"key-{k}", r.origin, raw_hash=hashes[bytes(r.raw)])
        for k, r in enumerate(intents)
    ]
    ledger.items.record_intents(rows, run_id)
    done = [
        Outcome(i.external_id, "processed", Status.PROCESSED, 200, f"S-{i.external_id}")
        for i in rows
    ]
    ledger.items.apply_outcomes(done, run_id)
    return ledger


def _flat(items: list[Any]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        if isinstance(item, skip.KnownRun):
            out += [("known", k.origin) for k in item.items]
        elif isinstance(item, skip.Hashed):
            out.append(("new", item.record.origin))
        else:
            out.append((type(item).__name__, getattr(item, "origin", "")))
    return out


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_records_read_ahead_are_the_records_read_without_it(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"in.{suffix}"
    ids = [f"r{k:04d}" for k in range(1_700)]  # four chunks, the last one short
    if suffix == "csv":
        _csv(path, ids)
    else:
        path.write_text("".join(f'{{"externalId": "{i}", "text": "t"}}\n' for i in ids))
    options = PlanOptions(source=InputSpec((str(path),)))
    ledger = _ledger_knowing(tmp_path, options, str(path), every=3)
    try:
        plain = list(skip.matched(ledger, options, Source(options.source, str(path)), print))
        ahead = skip.read_ahead(options)
        assert ahead is not None
        checks = iter([False, False, True])  # the check ends after two chunks
        ahead(lambda: next(checks))
        overlapped = list(
            skip.matched(ledger, options, Source(options.source, str(path)), print, ahead)
        )
    finally:
        ledger.close()
    assert _flat(overlapped) == _flat(plain)
    assert len(_flat(plain)) == 1_700
    assert sum(1 for kind, _ in _flat(plain) if kind == "known") == 3 * 167 + 67  # 1 in 3
    # The rows' names are their first lines (each row spans two), counted only when asked.
    if suffix == "csv":
        assert _flat(plain)[1] == ("new", f"{path}:4")


def test_a_read_ahead_that_fails_leaves_the_file_to_be_read_as_usual(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "in.csv"
    _csv(path, [f"r{k}" for k in range(1_200)])
    options = PlanOptions(source=InputSpec((str(path),)))
    ledger = _ledger_knowing(tmp_path, options, str(path), every=2)
    try:
        plain = list(skip.matched(ledger, options, Source(options.source, str(path)), print))
        calls = [0]
        real = skip.HashedCut.read

        def failing(self: skip.HashedCut) -> skip.Chunk:
            calls[0] += 1
            if calls[0] == 2:
                raise OSError("the disk went away for a moment")
            return real(self)

        monkeypatch.setattr(skip.HashedCut, "read", failing)
        ahead = skip.ReadAhead(options)
        ahead(lambda: False)
        monkeypatch.setattr(skip.HashedCut, "read", real)
        again = list(skip.matched(ledger, options, Source(options.source, str(path)), print, ahead))
    finally:
        ledger.close()
    assert calls[0] == 2
    assert _flat(again) == _flat(plain)


def _damage_index(path: Path) -> None:
    """Noise over the root page of the raw-hash index: the pages of the items table are
    intact, so only SQLite's full integrity check (indexes against their table) sees it."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'items_raw_hash'")
    page = root.fetchone()[0]
    size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with path.open("r+b") as f:
        f.seek((page - 1) * size)
        f.write(random.Random(7).randbytes(size))


def test_a_damaged_ledger_is_refused_while_the_input_is_read_ahead(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    _csv(path, [f"r{k}" for k in range(900)])
    options = PlanOptions(source=InputSpec((str(path),)))
    _ledger_knowing(tmp_path, options, str(path), every=1).close()
    ledger_path = tmp_path / "l.db"
    _damage_index(ledger_path)
    before = ledger_path.read_bytes()
    ahead = skip.read_ahead(options)
    assert ahead is not None
    # Read ahead in full whatever the check does meanwhile: when ahead() was told the check
    # had finished, it read nothing, and whether it had depended on the machine's speed.
    with pytest.raises(LedgerUnusable, match="is corrupt"):
        Ledger.open(ledger_path, meanwhile=lambda _done: ahead(lambda: False))
    assert ledger_path.read_bytes() == before  # not even the lease was written
    taken = ahead.take(str(path))
    assert taken is not None and sum(len(c.records) for c in taken.early) == 900


def test_a_ctrl_c_while_reading_ahead_stops_the_check_too(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    _csv(path, ["a"])
    options = PlanOptions(source=InputSpec((str(path),)))
    _ledger_knowing(tmp_path, options, str(path), every=1).close()

    def interrupted(_done: Callable[[], bool]) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Ledger.open(tmp_path / "l.db", meanwhile=interrupted)
    assert not [t for t in threading.enumerate() if t.name == "zsync-ledger-check"]
    Ledger.open(tmp_path / "l.db").close()  # and the file opens as before


def test_a_json_element_over_the_limit_is_left_to_the_array_reader(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_text('[{"externalId": "a"},\n{"externalId": "b", "t": "' + "y" * 9000 + '"}]')
    elements = json_elements(str(path), 100)
    assert bytes(next(elements).raw) == b'{"externalId": "a"}'
    with pytest.raises(Unsure):
        next(elements)
    ordinary = list(read(InputSpec((str(path),), max_record_bytes=100)))
    assert isinstance(ordinary[0], Record) and isinstance(ordinary[1], Problem)
