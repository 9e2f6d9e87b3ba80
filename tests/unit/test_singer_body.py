"""A Singer record without a mapping: its identity (documented in zsync/shape/singer_body.py
and docs/meltano.md) and its text, and the protocol errors that end the input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from zsync.model import Record
from zsync.shape import Shaper, SingerBody
from zsync.shape.singer_body import identity, record_text


def shaped(data: dict[str, Any], key: tuple[str, ...] = ("id",), **body: Any) -> dict[str, Any]:
    shaper = Shaper(None, derive_external_id=False, warn=print, singer=SingerBody(**body))
    prepared = shaper(Record("in:1", data, "tickets", key))
    assert prepared is not None and not hasattr(prepared, "message"), prepared
    return prepared.body  # type: ignore[union-attr]


def test_identity_is_the_stream_and_its_key_values_escaped() -> None:
    assert identity("users", ("id",), {"id": 7}) == "users:7"
    assert identity("orders", ("shop", "no"), {"shop": "a,b", "no": 1}) == "orders:a%2Cb,1"
    assert identity("test:Special%", ("k",), {"k": "x:y\n"}) == "test%3ASpecial%25:x%3Ay%0A"
    assert identity("s", ("k",), {"k": None}) == "s:null"
    long = identity("s", ("k",), {"k": "x" * 400})
    assert len(long) == 256 and long.startswith("s:xxx") and long[-41] == "~"
    assert long != identity("s", ("k",), {"k": "x" * 401})


def test_without_key_properties_the_identity_is_the_content_without_singer_metadata() -> None:
    one = identity("events", (), {"a": 1, "_sdc_extracted_at": "2024-01-01"})
    assert one == identity("events", (), {"a": 1, "_sdc_extracted_at": "2025-06-01"})
    assert one != identity("events", (), {"a": 2})
    assert one.startswith("events:~") and len(one) == len("events:~") + 32


def test_the_text_is_readable_stable_and_bounded() -> None:
    record = {
        "z": "last",
        "id": 3,
        "info": {"weather": "sunny", "tags": ["a", "b"], "empty": {}},
        "items": [{"sku": "A1"}, {"sku": "B2"}],
        "note": "two\nlines",
        "ctl": "nul\x00here\ttab",
        "ok": True,
        "none": None,
        "_sdc_batched_at": "2024-01-01",
    }
    assert record_text(record) == "\n".join(
        [
            "ctl: nul\\u0000here\ttab",
            "id: 3",
            "info.empty: {}",
            "info.tags: a, b",
            "info.weather: sunny",
            "items[0].sku: A1",
            "items[1].sku: B2",
            "none: null",
            "note: two\n  lines",
            "ok: true",
            "z: last",
        ]
    )
    assert record_text(dict(reversed(record.items()))) == record_text(record)
    big = record_text({f"f{i:03}": "v" * 3000 for i in range(100)})
    assert len(big) < 21_000 and big.endswith("more lines)")
    assert "v" * 2000 + "…" in big and "v" * 2001 not in big
    assert record_text({}) == "(no fields)"


def test_without_a_mapping_a_record_becomes_external_text_named_by_a_template() -> None:
    body = shaped({"id": 1, "subject": "Export slow"}, name_template="[{subject}]")
    assert body == {
        "externalId": "tickets:1",
        "signalType": "tickets",
        "name": "[Export slow]",
        "text": "id: 1\nsubject: Export slow",
    }
    assert "name" not in shaped({"id": 2}, name_template="{subject}")  # no subject: no name
    assert shaped({"id": 1}, signal_type="support_ticket")["signalType"] == "support_ticket"


def test_a_record_already_in_zentriks_shape_keeps_it_and_its_own_id() -> None:
    mine = {"kind": "external_text", "text": "t", "signalType": "s", "id": 4}
    assert shaped({**mine, "externalId": "own-4"})["externalId"] == "own-4"
    assert shaped(mine)["externalId"] == "tickets:4"


def singer_file(*messages: dict[str, Any]) -> str:
    Path("in.singer").write_text("".join(json.dumps(m) + "\n" for m in messages))
    return "in.singer"


SCHEMA = {"type": "SCHEMA", "stream": "t", "schema": {"properties": {}}, "key_properties": ["id"]}


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"type": "RECORD", "stream": "t", "record": {"id": 1}}],
         "in.singer:1: Singer stream 't': RECORD before its SCHEMA"),
        ([SCHEMA, {"type": "RECORD", "stream": "t", "record": {"x": 1}}],
         "in.singer:2: Singer stream 't': record has no key property 'id'"),
        ([{**SCHEMA, "schema": {"type": "object"}}],
         "in.singer:1: Singer stream 't': SCHEMA has no \"properties\" object"),
        ([{**SCHEMA, "key_properties": "id"}], "key_properties must be a list of names"),
    ],
)  # fmt: skip
def test_a_protocol_error_is_one_line_and_exit_1(
    messages: list[dict[str, Any]], expected: str
) -> None:
    result = run_cli(["preview", "--format", "singer", "--input", singer_file(*messages)])
    assert result.code == 1
    (line,) = result.err.splitlines()
    assert line.startswith("zsync: error: in.singer:") and expected in line


def test_a_bad_name_template_is_refused_before_anything_is_read() -> None:
    args = [
        "preview",
        "--format",
        "singer",
        "--input",
        singer_file(SCHEMA),
        "--name-template",
        "{a",
    ]
    result = run_cli(args)
    assert result.code == 2 and "name template '{a'" in result.err
