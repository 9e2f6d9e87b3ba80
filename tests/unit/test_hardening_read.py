"""Bounded reading and what a JSON reader says about a record (issue 13, items 3 and 7):
a record longer than the limit is that record's problem, found without holding it, and the
records after it are read; a key given twice in one object is a warning for its record."""

from __future__ import annotations

import io
import json
import os
import threading
from typing import Any

from zsync.model import Idle, Problem, Record
from zsync.read import InputSpec, read
from zsync.read.csvfile import read_csv
from zsync.read.jsonfile import read_records
from zsync.read.jsonl import pipe_lines

LIMIT = 1000


class Trickle(io.RawIOBase):
    """A stream that hands out at most `step` bytes per read, as a slow pipe does."""

    def __init__(self, data: bytes, step: int = 300) -> None:
        self.data, self.step = memoryview(data), step

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self.step, len(self.data))
        b[:n] = self.data[:n]
        self.data = self.data[n:]
        return n


def _shown(found: list[Any]) -> list[tuple[str, Any]]:
    return [
        (x.origin, x.data) if isinstance(x, Record) else (x.origin, "PROBLEM: " + x.message)
        for x in found
        if not isinstance(x, Idle)
    ]


def _read(data: bytes, fmt: str | None, warn: list[str] | None = None) -> list[Any]:
    stream = io.BufferedReader(Trickle(data))
    sink = warn.append if warn is not None else (lambda _m: None)
    return list(read_records("-", fmt, stdin=stream, max_bytes=LIMIT, warn=sink))


TOO_LONG = f"PROBLEM: record is longer than {LIMIT:,} bytes (--max-record-bytes); skipped"


def test_an_over_long_jsonl_line_is_one_problem_and_the_next_lines_are_read() -> None:
    data = b'{"a": 1}\n{"big": "' + b"x" * 50_000 + b'"}\n{"b": 2}\n'
    assert _shown(_read(data, "jsonl")) == [
        ("<stdin>:1", {"a": 1}),
        ("<stdin>:2", TOO_LONG),
        ("<stdin>:3", {"b": 2}),
    ]


def test_an_over_long_array_element_is_skipped_by_its_brackets() -> None:
    big = {"text": "x" * 20_000, "tricky": ['"]},{', '\\"'], "n": [[{"a": "]"}]]}
    data = json.dumps([{"a": 1}, big, {"b": 2}, "y" * 5000, {"c": 3}]).encode()
    found = _shown(_read(data, "json"))
    at = data.index(b'"yyy') + 1
    assert [origin for origin, _ in found] == [
        "<stdin>[0]",
        "<stdin>:1:12",
        "<stdin>[2]",
        f"<stdin>:1:{at}",
        "<stdin>[4]",
    ]
    assert found[1][1] == TOO_LONG + " (record [1])"
    assert found[2][1] == {"b": 2} and found[4][1] == {"c": 3}


def test_an_endless_element_hands_back_control_while_it_is_skipped() -> None:
    """An Idle now and then while skipping: the planner can act on a time budget."""
    reader = read_records(
        "-", "json", stdin=io.BufferedReader(Endless(b'[{"a": "', b"y")), max_bytes=LIMIT
    )
    assert isinstance(next(reader), Problem)
    assert all(isinstance(next(reader), Idle) for _ in range(3))


def test_an_endless_jsonl_line_hands_back_control_while_it_is_skipped() -> None:
    reader = read_records("-", "jsonl", stdin=io.BufferedReader(Endless(b"")), max_bytes=LIMIT)
    assert isinstance(next(reader), Problem)
    assert all(isinstance(next(reader), Idle) for _ in range(3))


class Endless(io.RawIOBase):
    """`head`, then `fill` for ever (/dev/zero behind a prefix)."""

    def __init__(self, head: bytes, fill: bytes = b"\0") -> None:
        self.head, self.fill = head, fill

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = len(b)
        if self.head:
            n = min(n, len(self.head))
            b[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        b[:n] = self.fill * n
        return n


def test_an_over_long_csv_line_is_its_rows_problem() -> None:
    data = b"a,b\n1,one\n2," + b"x" * 50_000 + b"\n3,three\n"
    stream = io.BufferedReader(Trickle(data))
    found = _shown(list(read_csv("-", stdin=stream, max_bytes=LIMIT)))  # type: ignore[arg-type]
    assert found == [
        ("<stdin>:2", {"a": "1", "b": "one"}),
        ("<stdin>:3", TOO_LONG),
        ("<stdin>:4", {"a": "3", "b": "three"}),
    ]


def test_an_over_long_line_on_a_pipe_is_dropped_as_it_arrives() -> None:
    read_end, write_end = os.pipe()
    data = b'{"a": 1}\n' + b"z" * 300_000 + b'\n{"b": 2}\n'

    def write() -> None:
        try:
            os.write(write_end, data)
        except BrokenPipeError:
            pass  # the reader gave up (a failing test)
        finally:
            os.close(write_end)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        got = [x for x in pipe_lines(read_end, "fetch.py", idle=5, max_bytes=LIMIT) if x]
    finally:
        os.close(read_end)  # first: a writer still blocked on a full pipe gets EPIPE
        writer.join()
    assert [(origin, type(raw).__name__) for origin, raw in got] == [
        ("fetch.py:1", "bytes"),
        ("fetch.py:2", "Oversized"),
        ("fetch.py:3", "bytes"),
    ]
    assert got[2][1] == b'{"b": 2}\n'


def test_a_key_given_twice_is_one_warning_for_its_record() -> None:
    warnings: list[str] = []
    data = b'{"a": 1, "a": 2, "b": {"c": 1, "c": 2}}\n{"a": 1}\n{"x": 1, "x": 2}\n'
    found = _shown(_read(data, "jsonl", warnings))
    assert found[0] == ("<stdin>:1", {"a": 2, "b": {"c": 2}})  # the last one wins, as before
    assert warnings == [
        "<stdin>:1: keys 'c', 'a' given twice in one object; the last value is used",
        "<stdin>:3: key 'x' given twice in one object; the last value is used",
    ]
    warnings.clear()
    _read(b'[{"a": 1}, {"k": 1, "k": 2}]', "json", warnings)
    assert warnings == ["<stdin>[1]: key 'k' given twice in one object; the last value is used"]


def test_warnings_reach_the_caller_of_read(tmp_path: Any) -> None:
    (tmp_path / "in.jsonl").write_bytes(b'{"a": 1, "a": 2}\n')
    warnings: list[str] = []
    spec = InputSpec((str(tmp_path / "in.jsonl"),))
    list(read(spec, warn=warnings.append))
    assert len(warnings) == 1 and "'a' given twice" in warnings[0]
