"""The skip path for every input: records matched by their bytes, parsed only when new.

The raw readers must agree with the ordinary readers on every file: same records, same
origins, same problems; they may only be faster.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from zsync.model import Record
from zsync.read import Cut, InputSpec, read
from zsync.read.raw import RawCsv, Unsure, json_elements, parse_json_element

MAPPING = """\
kind = "external_text"

[fields]
externalId = "{id}"
signalType = "support_ticket"
text = "{text}"
"""

CSV = (
    "id,text\r\n"
    'a,"plain"\r\n'
    "\r\n"
    'b,"two\nlines, and a ""quote"""\r\n'
    "c,no quotes at all\r\n"
    'd,"last row, no line end"'
)


def _ordinary(path: Path, **spec: Any) -> list[Any]:
    return list(read(InputSpec((str(path),), **spec)))


def test_csv_rows_as_bytes_parse_to_what_the_csv_reader_reads(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CSV.encode())
    table = RawCsv(str(path), ",")
    rows = list(table.rows())
    assert table.header == b"id,text"
    assert [table.parse(r) for r in rows] == _ordinary(path)
    assert [r.origin for r in rows] == [f"{path}:2", f"{path}:4", f"{path}:6", f"{path}:7"]


def test_a_bad_csv_row_is_left_to_the_csv_reader(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text('id,text\na,"fine"\nb,one,too many\n')
    table = RawCsv(str(path), ",")
    first, second = table.rows()
    assert table.parse(first) == _ordinary(path)[0]
    with pytest.raises(Unsure):
        table.parse(second)


ARRAY = [
    {"externalId": "a", "text": "plain"},
    {"externalId": "b", "text": "nested", "source": {"type": "manual-text", "x": [1, {}]}},
    {"externalId": "c", "text": 'has },\n and "quotes" and ] in it'},
    {"externalId": "d", "text": "after"},
]


def test_json_elements_as_bytes_parse_to_what_the_array_reader_reads(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_text(json.dumps(ARRAY[:2], indent=2))
    elements = list(json_elements(str(path)))
    assert [parse_json_element(e) for e in elements] == _ordinary(path)


def test_a_cut_json_element_is_never_taken_for_a_record(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_text(json.dumps(ARRAY))
    elements = json_elements(str(path))
    first, nested, cut = next(elements), next(elements), next(elements)
    assert [parse_json_element(first), parse_json_element(nested)] == _ordinary(path)[:2]
    with pytest.raises(Unsure):
        parse_json_element(cut)  # cut short at the "}," inside its text


@pytest.mark.parametrize("text", ["[1, 2]", '[{"a": 1}] extra', '[{"a": 1} {"b": 2}]', "[{"])
def test_what_the_raw_reader_cannot_vouch_for_it_leaves_alone(tmp_path: Path, text: str) -> None:
    path = tmp_path / "in.json"
    path.write_text(text)
    with pytest.raises(Unsure):
        for element in json_elements(str(path)):
            parse_json_element(element)


def _push(api_env: dict[str, str], *args: str) -> dict[str, Any]:
    result = run_cli(["push", "--no-poll", "--json", *args], env=api_env)
    assert result.code == 0, result.err
    return dict(json.loads(result.out))


def _counting(monkeypatch: pytest.MonkeyPatch, target: Any, name: str) -> list[int]:
    """Count the calls of ``target.name`` from now on."""
    calls = [0]
    original = getattr(target, name)

    def counted(*args: Any) -> Any:
        calls[0] += 1
        return original(*args)

    monkeypatch.setattr(target, name, counted)
    return calls


def test_an_unchanged_csv_with_a_mapping_is_not_parsed_again(
    tmp_path: Path, api_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "m.toml").write_text(MAPPING)
    (tmp_path / "in.csv").write_text(CSV)
    args = ["-i", str(tmp_path / "in.csv"), "--mapping", str(tmp_path / "m.toml")]
    assert _push(api_env, *args)["counts"]["created"] == 4
    calls = _counting(monkeypatch, Cut, "parse")
    assert _push(api_env, *args)["counts"] == {"unchanged": 4}
    assert calls[0] == 0
    # A mapping that changes what is sent makes every row go the full way once more.
    (tmp_path / "m.toml").write_text(MAPPING.replace("support_ticket", "feedback_record"))
    counts = _push(api_env, *args)["counts"]
    assert calls[0] == 4 and counts.get("updated") == 4


def test_an_unchanged_json_array_is_not_parsed_again(
    tmp_path: Path, api_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "in.json"
    records = [{"kind": "external_text", "signalType": "transcript", **r} for r in ARRAY]
    path.write_text(json.dumps(records, indent=1))
    assert _push(api_env, "-i", str(path))["counts"]["created"] == 4
    calls = _counting(monkeypatch, Cut, "parse")
    assert _push(api_env, "-i", str(path))["counts"] == {"unchanged": 4}
    # Records a and b are matched by their bytes; c holds "}," and sends the rest of the
    # file through the array reader, which finds c and d unchanged too.
    assert calls[0] == 1


def test_records_read_whole_after_the_raw_reader_gave_up_are_each_read_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.json"
    path.write_text(json.dumps(ARRAY))
    items = _ordinary(path)
    assert [i.origin for i in items if isinstance(i, Record)] == [f"{path}[{k}]" for k in range(4)]
