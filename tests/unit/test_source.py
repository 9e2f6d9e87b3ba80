"""One Source per input: its format decided once, its records cut as bytes (for the skip
path) or parsed, the two agreeing record for record, and a stream never cut."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from zsync.errors import UsageError
from zsync.model import Problem, Record
from zsync.plan import skip
from zsync.plan.options import PlanOptions
from zsync.read import InputSpec, Source, Unsure, sources


def _spec(*paths: Path | str, **kw: Any) -> InputSpec:
    return InputSpec(tuple(str(p) for p in paths), **kw)


def _cut_items(source: Source) -> list[Any]:
    """What the skip path sees of a file that is all new: each cut record parsed, then the
    ordinary reader's rest once the cut is unsure."""
    cut = source.cut()
    assert cut is not None
    out: list[Any] = []
    done = 0
    while True:
        records, unsure = cut.take(2)
        for record in records:
            try:
                item = cut.parse(record, print)
            except Unsure:
                return out + list(cut.rest(done, print))
            done += 1
            if item is not None:
                out.append(item)
        if unsure:
            return out + list(cut.rest(done, print))
        if not records:
            return out


def test_each_input_is_one_source_whose_format_is_told_once(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id\n1\n")
    (tmp_path / "b.json").write_text('[{"x": 1}]')
    (tmp_path / "c.txt").write_text('\n  {"x": 1}\n')
    (tmp_path / "d.txt").write_text('\n  [{"x": 1}]')
    names = ["a.csv", "b.json", "c.txt", "d.txt"]
    found = sources(_spec(*(tmp_path / n for n in names)))
    assert [s.format for s in found] == ["csv", "json", "jsonl", "json"]
    assert [s.name for s in found] == [f"file:{tmp_path / n}" for n in names]
    # Decided once: a file rewritten afterwards is still read as what it was first seen as.
    (tmp_path / "d.txt").write_text('{"x": 2}\n')
    assert found[3].format == "json"
    assert [type(i).__name__ for i in found[3].records()] == ["Problem"]
    (program,) = sources(InputSpec(source_cmd="fetch --token=s3cret", fmt="singer"))
    assert program.format == "singer" and program.stream and program.cut() is None
    assert program.name.startswith("cmd:fetch:") and "s3cret" not in program.name
    assert "s3cret" not in repr(program)  # a command line may carry a token


def test_an_unknown_format_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text("[]")
    source = Source(_spec(tmp_path / "in.json", fmt="xml"), str(tmp_path / "in.json"))
    with pytest.raises(UsageError, match="unknown input format 'xml'"):
        _ = source.format
    assert source.cut() is None  # the ordinary reader reports it
    with pytest.raises(UsageError, match="unknown input format 'xml'"):
        list(source.records())


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("in.jsonl", b'\xef\xbb\xbf{"a": 1}\r\n\n{bad}\n{"a": 2}'),
        ("in.jsonl", b'{"a": 1}\r{"a": 2}\r{"a": 3}\r'),  # lone CR line ends
        ("in.json", b'[{"a": 1},\n {"a": "},"},\n {"a": 3}]'),  # "}," in a text
        ("in.csv", b'id,text\r\n1,"two\nlines"\r\n2,x,y\r\n3,z\r\n'),
    ],
)
def test_the_cut_gives_the_records_a_full_read_gives(
    tmp_path: Path, name: str, data: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    source = Source(_spec(path), str(path))
    full = list(source.records())
    assert all(isinstance(i, Record | Problem) for i in full) and len(full) >= 3
    assert _cut_items(source) == full  # the same values, places and problems


def test_a_record_over_the_limit_is_the_ordinary_readers_to_report(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1}\n{"a": "' + "y" * 200 + '"}\n{"a": 3}\n')
    source = Source(_spec(path, max_record_bytes=100), str(path))
    items = _cut_items(source)
    assert items == list(source.records())
    assert isinstance(items[1], Problem) and "--max-record-bytes" in items[1].message


def test_a_stream_is_never_cut_nor_opened_to_tell_its_format(tmp_path: Path) -> None:
    fifo = tmp_path / "in.pipe"
    os.mkfifo(fifo)
    source = Source(_spec(fifo), str(fifo))
    # Opening a FIFO without a writer would wait: these return at once because nothing opens.
    assert source.stream and source.format is None and source.cut() is None
    stdin = Source(_spec("-", stdin=io.BytesIO(b'{"a": 1}\n')), "-")
    assert stdin.stream and stdin.cut() is None
    assert [i.data for i in stdin.records() if isinstance(i, Record)] == [{"a": 1}]


@pytest.mark.parametrize(
    ("name", "data", "mapping", "digests"),
    [
        (
            "in.jsonl",
            '{"externalId": "a", "text": "x"}\n{"externalId": "b"}\n',
            None,
            ["16b80873499a139de12ba441d2f595be", "618e22ccd52b32109660fcde352fc243"],
        ),
        (
            "in.json",
            '[{"externalId": "a", "text": "x"},\n {"externalId": "b"}]\n',
            None,
            ["1358518b89423e544292e300b4646538", "21f6739350b31ea8593bf5864f9ebca3"],
        ),
        (
            "in.csv",
            'id,text\r\na,"x, y"\r\nb,z\r\n',
            '[fields]\nexternalId = "{id}"\n',
            ["babce04ff88d5606465f33d1272411cc", "52ae0640e3fdaf9ea6285c27e9db1c09"],
        ),
    ],
)
def test_a_ledger_written_before_still_matches_every_record(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    data: str,
    mapping: Any,
    digests: Any,
) -> None:
    # The hashes a ledger holds from earlier versions (computed by them): a re-run of an
    # unchanged file must still find every record unchanged, not send it down the full path.
    monkeypatch.chdir(tmp_path)
    Path(name).write_bytes(data.encode())
    if mapping:
        Path("m.toml").write_text(mapping)
    options = PlanOptions(source=_spec(name), mapping="m.toml" if mapping else None)
    hashed = skip.hashed(options, Source(options.source, name))
    assert hashed is not None
    assert hashed.read().hashes == digests
