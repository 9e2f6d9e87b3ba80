"""Reading inputs as a user meets it: records with their origin, and one clear line for
each thing that is wrong, without losing the good records around it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zsync.errors import InputError, UsageError
from zsync.model import Problem, Record
from zsync.read import files, jsonarray, jsonfile
from zsync.read.files import detect_format
from zsync.read.jsonfile import read_records
from zsync.read.jsonl import pipe_lines

GOOD = {"kind": "external_text", "externalId": "a-1", "signalType": "transcript", "text": "hi"}


def items(data: bytes, fmt: str | None = "json") -> list[Record | Problem]:
    return list(read_records("-", fmt, stdin=io.BytesIO(data)))


def summary(found: list[Record | Problem]) -> list[tuple[str, Any]]:
    return [
        (x.origin, x.data) if isinstance(x, Record) else (x.origin, "PROBLEM: " + x.message)
        for x in found
    ]


def problems(found: list[Record | Problem]) -> list[Problem]:
    return [x for x in found if isinstance(x, Problem)]


def records(found: list[Record | Problem]) -> list[Record]:
    return [x for x in found if isinstance(x, Record)]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- format ------------------------------------------------------------------------------


def test_format_flag_wins_over_extension_and_ndjson_means_jsonl(in_tmp: Path) -> None:
    Path("in.json").write_text("[]")
    assert detect_format("in.json", "jsonl") == "jsonl"
    assert detect_format("in.json", "NDJSON") == "jsonl"
    assert detect_format("in.jsonl", "json") == "json"


def test_format_from_extension_without_opening_the_file() -> None:
    assert detect_format("missing.json", None) == "json"
    assert detect_format("missing.JSONL", None) == "jsonl"
    assert detect_format("missing.ndjson", None) == "jsonl"


def test_format_sniffed_from_first_byte_for_other_names(in_tmp: Path) -> None:
    Path("export.txt").write_bytes(b"\xef\xbb\xbf \n [ {}]")
    Path("lines.txt").write_text('{"a": 1}\n')
    assert detect_format("export.txt", None) == "json"
    assert detect_format("lines.txt", None) == "jsonl"
    assert detect_format("-", None, stdin=io.BufferedReader(io.BytesIO(b"  [1]"))) == "json"


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown input format 'csv'"):
        detect_format("in.csv", "csv")


def test_sniffing_stdin_loses_no_bytes() -> None:
    assert summary(items(b'  [{"a": 1}]', None)) == [("<stdin>[0]", {"a": 1})]
    assert summary(items(b'{"a": 1}\n{"b": 2}\n', None)) == [
        ("<stdin>:1", {"a": 1}),
        ("<stdin>:2", {"b": 2}),
    ]


# -- opening -----------------------------------------------------------------------------


def test_missing_file_is_one_input_error_line(in_tmp: Path) -> None:
    with pytest.raises(InputError) as err:
        read_records("nope.json")
    assert str(err.value) == "nope.json: no such file"


def test_directory_is_an_input_error(in_tmp: Path) -> None:
    Path("dir.json").mkdir()
    with pytest.raises(InputError, match=r"^dir\.json: is a directory"):
        read_records("dir.json")


def test_a_reader_that_is_never_used_holds_no_file_open(in_tmp: Path) -> None:
    Path("in.json").write_text("[]")
    reader = read_records("in.json")
    del reader  # an open file would raise ResourceWarning (an error under pytest here)


def test_read_failure_is_an_input_error() -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            raise OSError(5, "Input/output error")

    with pytest.raises(InputError, match=r"^<stdin>: read failed: input/output error$"):
        list(read_records("-", "jsonl", stdin=io.BufferedReader(Broken())))


def test_file_origins_use_the_name_as_given(in_tmp: Path) -> None:
    Path("in.json").write_text(json.dumps([GOOD, GOOD]))
    Path("in.jsonl").write_text(json.dumps(GOOD) + "\n\n" + json.dumps(GOOD) + "\n")
    assert [x.origin for x in read_records("in.json")] == ["in.json[0]", "in.json[1]"]
    assert [x.origin for x in read_records("in.jsonl")] == ["in.jsonl:1", "in.jsonl:3"]


# -- JSON array --------------------------------------------------------------------------


def test_numbers_keep_their_type() -> None:
    found = items(b'[{"i": 12345678901234567890, "f": 1.5, "e": 1e3, "neg": -0}]')
    data = records(found)[0].data
    assert data == {"i": 12345678901234567890, "f": 1.5, "e": 1000.0, "neg": 0}
    assert [type(data[k]) for k in ("i", "f", "e", "neg")] == [int, float, float, int]


def test_empty_input_is_a_problem_but_an_empty_array_is_not() -> None:
    assert summary(items(b"")) == [("<stdin>", "PROBLEM: file is empty")]
    assert summary(items(b" \n\t ")) == [("<stdin>", "PROBLEM: file is empty")]
    assert summary(items(b"\xef\xbb\xbf")) == [("<stdin>", "PROBLEM: file is empty")]
    assert items(b"[]") == []
    assert items(b" [ \n ] \n") == []


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b'{"kind": "external_text"}', "an object"),
        (b'"text"', "a string"),
        (b"42", "a number"),
        (b"true", "a boolean"),
        (b"null", "null"),
    ],
)
def test_wrong_top_level_type_is_one_problem(data: bytes, kind: str) -> None:
    found = items(b"\n  " + data)
    assert len(found) == 1
    assert found[0].origin == "<stdin>:2:3"
    assert isinstance(found[0], Problem)
    assert found[0].message.startswith(f"top-level value is {kind}; expected an array of records")


def test_bom_is_accepted() -> None:
    assert summary(items(b'\xef\xbb\xbf[{"a": "\xc3\xa9"}]')) == [("<stdin>[0]", {"a": "é"})]


def test_syntax_error_mid_array_keeps_the_records_before_it_with_exact_position() -> None:
    text = '[\n  {"a": 1},\n  {"b": 2},\n  {"c": 3 "d": 4},\n  {"e": 5}\n]'
    with pytest.raises(json.JSONDecodeError) as reference:
        json.loads(text)

    found = items(text.encode())

    assert summary(found) == [
        ("<stdin>[0]", {"a": 1}),
        ("<stdin>[1]", {"b": 2}),
        (
            f"<stdin>:{reference.value.lineno}:{reference.value.colno}",
            "PROBLEM: invalid JSON: Expecting ',' delimiter (record [2])",
        ),
    ]


def test_missing_comma_between_records() -> None:
    found = items(b'[{"a": 1}\n {"b": 2}]')
    assert summary(found)[-1] == (
        "<stdin>:2:2",
        "PROBLEM: invalid JSON: Expecting ',' delimiter (after record [0])",
    )


def test_column_counts_characters_not_bytes() -> None:
    found = items('[{"é": "ü"} x]'.encode())
    assert found[-1].origin == "<stdin>:1:13"


@pytest.mark.parametrize(
    "data",
    [b'[{"a": 1}, {"b": "cut', b'[{"a": 1}, {"b": 2', b'[{"a": 1},', b'[{"a": 1}', b"[{", b"[tr"],
)
def test_truncated_file_says_unexpected_end(data: bytes) -> None:
    found = items(data)
    last = found[-1]
    assert isinstance(last, Problem)
    assert last.message.startswith("unexpected end of file")
    assert last.origin == f"<stdin>:1:{len(data) + 1}"
    assert all(isinstance(x, Record) for x in found[:-1])


def test_trailing_data_after_the_array_is_reported_after_its_records() -> None:
    assert summary(items(b'[{"a": 1}]\n\n[2]')) == [
        ("<stdin>[0]", {"a": 1}),
        ("<stdin>:3:1", "PROBLEM: invalid JSON: extra data after the closing ']'"),
    ]


@pytest.mark.parametrize("word", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_and_reading_goes_on(word: str) -> None:
    found = items(f'[{{"a": 1}},\n {{"s": "NaN", "b": {word}}}, {{"c": 3}}]'.encode())
    assert summary(found) == [
        ("<stdin>[0]", {"a": 1}),
        (
            "<stdin>:2:20",
            f"PROBLEM: {word.lstrip('-')} is not valid JSON (use null or a string) (record [1])",
        ),
        ("<stdin>[2]", {"c": 3}),
    ]


def test_huge_integer_is_refused_without_traceback_and_reading_goes_on() -> None:
    found = items(b'[{"n": ' + b"7" * 5000 + b'}, {"c": 3}]')
    assert summary(found) == [
        ("<stdin>:1:2", "PROBLEM: number has too many digits (over 4300) (record [0])"),
        ("<stdin>[1]", {"c": 3}),
    ]


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    found = items(b"[" * 100_000)
    assert summary(found) == [
        ("<stdin>:1:2", "PROBLEM: nesting deeper than 64 levels (record [0])"),
    ]


def test_a_deep_element_is_skipped_and_reading_goes_on() -> None:
    deep = b"[" * 10_000 + b'"]]", {"x": "[{"}' + b"]" * 10_000
    found = items(b'[{"a": 1}, ' + deep + b', {"b": 2},\n {"c": "\\"]"}]')
    assert summary(found) == [
        ("<stdin>[0]", {"a": 1}),
        ("<stdin>:1:12", "PROBLEM: nesting deeper than 64 levels (record [1])"),
        ("<stdin>[2]", {"b": 2}),
        ("<stdin>[3]", {"c": '"]'}),
    ]


def test_moderately_deep_records_are_left_to_mapping_to_refuse() -> None:
    # 100 levels parse fine; mapping refuses them per record, so the rest still lands.
    found = items(b"[" + b"[" * 100 + b"]" * 100 + b', {"a": 1}]')
    assert [type(x) for x in found] == [Record, Record]


def test_non_utf8_byte_blames_only_its_record() -> None:
    found = items(b'[{"a": 1},\n {"b": "caf\xe9 au lait"}, {"c": 3}]')
    assert summary(found) == [
        ("<stdin>[0]", {"a": 1}),
        ("<stdin>:2:12", "PROBLEM: not UTF-8 (byte 0xe9) (record [1])"),
        ("<stdin>[2]", {"c": 3}),
    ]


def test_non_utf8_byte_outside_a_string_stops_with_its_position() -> None:
    found = items(b'[{"a": 1}, \xff{"c": 3}]')
    assert summary(found) == [
        ("<stdin>[0]", {"a": 1}),
        ("<stdin>:1:12", "PROBLEM: not UTF-8 (byte 0xff)"),
    ]


def test_escaped_lone_surrogate_passes_through_for_mapping_to_refuse() -> None:
    assert records(items(b'[{"t": "\\ud83d"}]'))[0].data == {"t": "\ud83d"}


def test_record_larger_than_a_read_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "x" * 3_000_000
    data = json.dumps([{"a": 1}, {"t": text}, {"b": 2}]).encode()
    assert summary(items(data)) == [
        ("<stdin>[0]", {"a": 1}),
        ("<stdin>[1]", {"t": text}),
        ("<stdin>[2]", {"b": 2}),
    ]


class Trickle(io.RawIOBase):
    """A pipe that hands over a few bytes at a time."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data = data
        self.step = step
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        piece = self.data[self.pos : self.pos + min(self.step, len(b))]
        b[: len(piece)] = piece
        self.pos += len(piece)
        return len(piece)

    def read1(self, n: int = -1) -> bytes:
        return self.read(min(n, self.step) if n > 0 else self.step) or b""


TRICKY = [
    b'\xef\xbb\xbf[{"a": "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "n": 12345.678e-3},'
    b" -12.5e+3, true,"
    b' null, "s\\"q\\\\", {"b": [1, 2, {"c": "\\u00e9\\ud83d\\ude00"}]}]',
    b'[{"a": 1},\n {"b": NaN}, {"c": "caf\xe9"}, 123456789012345678901234567890]',
    b'[{"a": 1},\n {"b": 2} x]',
    b'[{"a": 1}, {"b": "unterminated',
    b'{"a": 1}\n\n{"b": NaN}\n{"c": "\xff"}\n\xef\xbb\xbf{"d" 1}\n  \n[1]\n{"e": "end"}',
]


@pytest.mark.parametrize("step", [1, 2, 3, 5, 7, 64])
@pytest.mark.parametrize("case", range(len(TRICKY)))
def test_any_split_of_the_input_reads_the_same(
    case: int, step: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = TRICKY[case]
    fmt = "jsonl" if case == len(TRICKY) - 1 else "json"
    whole = items(data, fmt)
    for module in (files, jsonarray, jsonfile):  # also exercise the growing reads
        monkeypatch.setattr(module, "CHUNK", 8)
    split = list(read_records("-", fmt, stdin=Trickle(data, step)))  # type: ignore[arg-type]
    assert summary(split) == summary(whole)


@pytest.mark.parametrize(
    ("fmt", "head", "rest", "origin"),
    [
        ("json", b"[", b', {"kind": "external_text", "text": "second', "<stdin>[0]"),
        (None, b" [", b', {"kind": "external_text", "text": "second', "<stdin>[0]"),
        ("jsonl", b"", b'\n{"kind": "external_text", "te', "<stdin>:1"),
        (None, b"", b'\n{"kind": "external_text", "te', "<stdin>:1"),
    ],
)
def test_records_from_a_slow_pipe_arrive_before_it_ends(
    fmt: str | None, head: bytes, rest: bytes, origin: str
) -> None:
    data = head + json.dumps(GOOD).encode() + rest
    pieces = [data[:20], data[20:]]  # the first record arrives in two writes

    class Stalled(io.RawIOBase):
        """Has two pieces of input so far; asking for more would block a real pipe."""

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            assert pieces, "waited for more input than the first record needed"
            piece = pieces.pop(0)
            b[: len(piece)] = piece
            return len(piece)

    reader = read_records("-", fmt, stdin=io.BufferedReader(Stalled()))
    assert next(reader) == Record(origin, GOOD)


def test_a_pipe_gives_each_line_when_complete_and_says_when_it_is_quiet() -> None:
    read_end, write_end = os.pipe()
    try:
        lines = pipe_lines(read_end, "fetch.py", idle=0.01)
        os.write(write_end, b'\xef\xbb\xbf{"a": 1}\n\n{"b": ')
        assert next(lines) == ("fetch.py:1", b'{"a": 1}\n')  # BOM gone, as in a file
        assert next(lines) is None  # half a line so far: nothing to give, and it says so
        os.write(write_end, b"2}\r\n")
        assert next(lines) == ("fetch.py:3", b'{"b": 2}\r\n')
        tail, end = b"x" * 200_000, write_end  # a last line longer than a pipe holds
        write_end = -1
        writer = threading.Thread(target=lambda: (os.write(end, tail), os.close(end)))
        writer.start()
        rest = [x for x in lines if x is not None]
        writer.join()
        assert rest == [("fetch.py:4", b"x" * 200_000)]
    finally:
        os.close(read_end)
        if write_end != -1:
            os.close(write_end)


# -- JSONL -------------------------------------------------------------------------------


def test_jsonl_one_broken_line_among_good_ones() -> None:
    data = b'{"a": 1}\n\n{"b": 2\n   \n{"c": 3}\r\n'
    assert summary(items(data, "jsonl")) == [
        ("<stdin>:1", {"a": 1}),
        ("<stdin>:3:8", "PROBLEM: invalid JSON: unexpected end of line (is the record cut short?)"),
        ("<stdin>:5", {"c": 3}),
    ]


def test_jsonl_syntax_error_names_line_and_column() -> None:
    assert summary(items(b'{"a": 1}\n{"a" 1}\n', "jsonl"))[1] == (
        "<stdin>:2:6",
        "PROBLEM: invalid JSON: Expecting ':' delimiter",
    )


def test_jsonl_non_utf8_blames_only_that_line() -> None:
    data = b'{"a": 1}\n{"b": "caf\xe9"}\n{"c": 3}'
    assert summary(items(data, "jsonl")) == [
        ("<stdin>:1", {"a": 1}),
        ("<stdin>:2", "PROBLEM: not UTF-8 (byte 0xe9 at column 11)"),
        ("<stdin>:3", {"c": 3}),
    ]


def test_jsonl_bom_nan_and_deep_nesting() -> None:
    data = b'\xef\xbb\xbf{"a": 1}\n{"b": Infinity}\n' + b"[" * 100_000 + b'\n{"c": 3}\n'
    assert summary(items(data, "jsonl")) == [
        ("<stdin>:1", {"a": 1}),
        ("<stdin>:2:7", "PROBLEM: Infinity is not valid JSON (use null or a string)"),
        ("<stdin>:3", "PROBLEM: nesting deeper than 64 levels"),
        ("<stdin>:4", {"c": 3}),
    ]


def test_empty_jsonl_is_zero_records_not_a_problem() -> None:
    assert items(b"", "jsonl") == []
    assert items(b"\n\n", "jsonl") == []


def test_every_problem_is_one_line() -> None:
    hostile = b'[{"a": 1}, {"b": "x\ny"}]'
    found = items(hostile) + items(b'{"a": "x\n"}\n', "jsonl")
    assert problems(found)
    assert all("\n" not in p.message and "\n" not in p.origin for p in problems(found))


def test_file_name_with_a_newline_stays_on_one_line(in_tmp: Path) -> None:
    Path("a\nb.json").write_text("{}")
    [problem] = read_records("a\nb.json")
    assert "\n" not in problem.origin
    assert problem.origin.startswith("a\\nb.json:")


# -- memory ----------------------------------------------------------------------------


def _write_records(path: Path, n: int, array: bool) -> None:
    with path.open("w") as f:
        f.write("[\n" if array else "")
        for i in range(n):
            record = dict(GOOD, externalId=f"id-{i}", text=f"note {i} " + "x" * 60)
            sep = ",\n" if array and i else ""
            f.write(sep + json.dumps(record) + ("" if array else "\n"))
        f.write("\n]\n" if array else "")


def _count(found: Iterator[Record | Problem]) -> int:
    n = 0
    for item in found:
        assert isinstance(item, Record)
        n += 1
    return n


# Peak RSS of a fresh interpreter that streams the file, minus its peak before reading.
# Real memory (C allocations included) and fast, unlike tracemalloc at this size.
_RSS_PROBE = """
import resource, sys
from zsync.model import Record
from zsync.read.jsonfile import read_records
list(read_records(sys.argv[2]))  # warm up on a small file: imports, caches
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = sum(1 for item in read_records(sys.argv[1]) if isinstance(item, Record))
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(n, grown * 1024)
"""


@pytest.mark.parametrize("name", ["big.json", "big.jsonl"])
def test_memory_stays_flat_while_streaming_200k_records(in_tmp: Path, name: str) -> None:
    _write_records(Path(name), 200_000, array=name.endswith(".json"))
    _write_records(Path("warm" + name[3:]), 100, array=name.endswith(".json"))
    assert Path(name).stat().st_size > 30_000_000  # far more than the limit below

    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, name, "warm" + name[3:]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    assert int(out[0]) == 200_000
    assert int(out[1]) < 20_000_000


@pytest.mark.parametrize("name", ["mid.json", "mid.jsonl"])
def test_python_allocations_stay_flat_while_streaming(in_tmp: Path, name: str) -> None:
    _write_records(Path(name), 20_000, array=name.endswith(".json"))  # ~2.5 MB of input

    tracemalloc.start()
    try:
        n = _count(read_records(name))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert n == 20_000
    assert peak < 1_000_000  # a list of these records alone would take over 10 MB
