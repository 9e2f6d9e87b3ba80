"""CSV input as a person exports it: headers, odd delimiters, BOMs, multi-line cells, and
the one bad row that must not take the rest of the file down with it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from zsync.errors import InputError
from zsync.model import Prepared, Problem, Record
from zsync.read.csvfile import read_csv


def rows(data: bytes, delimiter: str | None = None) -> list[Record | Problem]:
    return list(read_csv("-", delimiter, stdin=io.BufferedReader(io.BytesIO(data))))  # type: ignore[arg-type]


def shown(items: list[Record | Problem]) -> list[tuple[str, Any]]:
    return [
        (i.origin, i.data) if isinstance(i, Record) else (i.origin, "!" + i.message) for i in items
    ]


def test_header_and_rows_become_flat_records_with_their_line() -> None:
    data = b"id,comment,score\n1,Great app,9\n2,,3\n"
    assert shown(rows(data)) == [
        ("<stdin>:2", {"id": "1", "comment": "Great app", "score": "9"}),
        ("<stdin>:3", {"id": "2", "comment": "", "score": "3"}),
    ]


@pytest.mark.parametrize("sep", [";", "\t", "|", ","])
def test_the_delimiter_is_detected(sep: str) -> None:
    data = f'id{sep}text{sep}when\n1{sep}"a, b; c"{sep}2024\n2{sep}d{sep}2025\n'.encode()
    [first, second] = rows(data)
    assert isinstance(first, Record) and first.data == {
        "id": "1",
        "text": "a, b; c",
        "when": "2024",
    }
    assert isinstance(second, Record)


def test_an_explicit_delimiter_wins_over_detection() -> None:
    data = b"a;b\n1;2\n"
    assert shown(rows(data, ",")) == [("<stdin>:2", {"a;b": "1;2"})]


def test_a_single_column_file_reads_with_the_default_delimiter() -> None:
    assert shown(rows(b"text\nhello there\n")) == [("<stdin>:2", {"text": "hello there"})]


def test_bom_crlf_and_no_final_newline() -> None:
    data = b"\xef\xbb\xbfid,text\r\n1,caf\xc3\xa9\r\n2,x"
    assert shown(rows(data)) == [
        ("<stdin>:2", {"id": "1", "text": "café"}),
        ("<stdin>:3", {"id": "2", "text": "x"}),
    ]


def test_quoted_multi_line_fields_keep_the_line_their_row_starts_on() -> None:
    data = b'id,text\n1,"line one\nline two\n\nline four"\n2,"say ""hi"", then, go"\n3,plain\n'
    assert shown(rows(data)) == [
        ("<stdin>:2", {"id": "1", "text": "line one\nline two\n\nline four"}),
        ("<stdin>:6", {"id": "2", "text": 'say "hi", then, go'}),
        ("<stdin>:7", {"id": "3", "text": "plain"}),
    ]


def test_ragged_rows_are_problems_and_the_rest_proceed() -> None:
    data = b"id,text,score\n1,a,1\n2,b\n3,c,3,extra\n4,d,4,,\n5,e,5\n"
    assert shown(rows(data)) == [
        ("<stdin>:2", {"id": "1", "text": "a", "score": "1"}),
        ("<stdin>:3", "!row has 2 fields; the header has 3 (delimiter ',')"),
        ("<stdin>:4", "!row has 4 fields; the header has 3 (delimiter ',')"),
        # trailing empty cells (a spreadsheet's extra columns) are not ragged
        ("<stdin>:5", {"id": "4", "text": "d", "score": "4"}),
        ("<stdin>:6", {"id": "5", "text": "e", "score": "5"}),
    ]


def test_an_undecodable_row_is_a_problem_for_that_row_only() -> None:
    data = b'id,text\n1,ok\n2,"bad \xff\nspans"\n3,fine\n'
    assert shown(rows(data)) == [
        ("<stdin>:2", {"id": "1", "text": "ok"}),
        ("<stdin>:3", "!not UTF-8 (byte 0xff)"),
        ("<stdin>:5", {"id": "3", "text": "fine"}),
    ]


def test_bad_quoting_is_a_problem_for_that_row() -> None:
    data = b'id,text\n1,"closed"then more\n2,fine\n'
    [bad, good] = rows(data)
    assert isinstance(bad, Problem) and bad.origin == "<stdin>:2"
    assert bad.message.startswith("bad CSV quoting")
    assert isinstance(good, Record) and good.origin == "<stdin>:3"


def test_an_unclosed_quote_says_what_happened() -> None:
    data = b'id,text\n1,ok\n2,"never closed\n3,lost\n'
    assert shown(rows(data)) == [
        ("<stdin>:2", {"id": "1", "text": "ok"}),
        ("<stdin>:3", "!a quoted field is never closed (the rest of the input was read into it)"),
    ]


def test_blank_lines_are_skipped_and_header_names_are_trimmed() -> None:
    data = b"\n id , text \n\n1,a\n\n2,b\n"
    assert shown(rows(data)) == [
        ("<stdin>:4", {"id": "1", "text": "a"}),
        ("<stdin>:6", {"id": "2", "text": "b"}),
    ]


def test_an_unnamed_column_is_not_read() -> None:
    assert shown(rows(b"id,text,\n1,a,junk\n")) == [("<stdin>:2", {"id": "1", "text": "a"})]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "file is empty (a CSV input needs a header row)"),
        (b"  \n\n", "file is empty (a CSV input needs a header row)"),
        (b"id,id\n1,2\n", "header names column 'id' twice"),
        (b",,\n1,2,3\n", "header row has no column names"),
        (b"id,t\xffx\n1,2\n", "header row is not UTF-8 (byte 0xff)"),
    ],
)
def test_a_bad_header_stops_the_file_with_one_problem(data: bytes, message: str) -> None:
    [problem] = rows(data)
    assert isinstance(problem, Problem) and problem.message == message


def test_long_cells_and_rows_beyond_the_sniff_window() -> None:
    long_text = "word " * 60_000  # 300 KB: over the csv module's default field limit
    data = b"id,text\n" + b"".join(f"{i},row {i}\n".encode() for i in range(5000))
    data += f'5000,"{long_text}"\n'.encode()
    items = rows(data)
    assert len(items) == 5001 and all(isinstance(i, Record) for i in items)
    last = items[-1]
    assert isinstance(last, Record) and last.origin == "<stdin>:5002"
    assert last.data["text"] == long_text


def test_files_by_path() -> None:
    Path("s.csv").write_bytes(b"a,b\n1,2\n")
    assert shown(list(read_csv("s.csv"))) == [("s.csv:2", {"a": "1", "b": "2"})]
    with pytest.raises(InputError, match=r"^nope\.csv: no such file$"):
        read_csv("nope.csv")


def test_a_tsv_file_is_tab_separated_and_goes_through_its_mapping() -> None:
    from zsync.plan import PlanOptions
    from zsync.read import InputSpec
    from zsync.views import preview

    Path("s.tsv").write_text("id\tnote\n1\ta, b; c\n")
    Path("m.toml").write_text(
        'kind = "external_text"\n[fields]\nexternalId = "s:{id}"\ntext = "{note}"\n'
        'signalType = "feedback_record"\n'
    )
    [item] = preview(PlanOptions(source=InputSpec(inputs=("s.tsv",)), mapping="m.toml"), 5).items
    assert isinstance(item, Prepared) and item.origin == "s.tsv:2"
    assert item.body == {
        "externalId": "s:1",
        "text": "a, b; c",
        "signalType": "feedback_record",
    }
