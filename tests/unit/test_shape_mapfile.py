"""Mapping files: what a user writes in TOML and the record (or the one-line error) it gives."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from zsync.model import Invalid, Prepared, Record
from zsync.shape.body import prepare
from zsync.shape.mapfile import Mapping, MappingError
from zsync.shape.mapload import load
from zsync.shape.templates import parse_template, to_iso8601

HEADER = 'kind = "external_text"\n[fields]\nexternalId = "t:{id}"\nsignalType = "support_ticket"\n'


def write(text: str, name: str = "m.toml") -> str:
    Path(name).write_text(textwrap.dedent(text))
    return name


def mapping(fields: str, head: str = HEADER) -> Mapping:
    loaded = load(write(head + textwrap.dedent(fields)))
    assert loaded.default is not None
    return loaded.default


def mapped(m: Mapping, data: Any, origin: str = "in.csv:2") -> dict[str, Any]:
    out = m.apply(Record(origin, data))
    assert isinstance(out, Record), out
    assert isinstance(out.data, dict)
    return out.data


def refused(m: Mapping, data: Any, origin: str = "in.csv:2") -> Invalid:
    out = m.apply(Record(origin, data))
    assert isinstance(out, Invalid), out
    assert out.message.startswith(f"{origin}: ") and "\n" not in out.message
    return out


def value(spec: str, data: dict[str, Any], key: str = "name") -> Any:
    m = mapping(f'text = "x"\n{key} = {spec}\n')
    return mapped(m, {"id": 1, **data}).get(key)


def load_error(text: str) -> str:
    with pytest.raises(MappingError) as info:
        load(write(text))
    message = str(info.value)
    assert message.startswith("mapping m.toml") and "\n" not in message
    return message


# -- a whole mapping, through prepare --------------------------------------------------------


FULL = """\
kind = "external_text"            # or "raw_signal"
sourceKey = "helpdesk.tickets.v1"
[fields]
externalId = "helpdesk:{ticket_id}"
text = { template = "{subject}\\n\\n{body}", transforms = ["strip", { truncate = 30 }] }
signalType = "support_ticket"
name = "{subject}"
occurredAt = { template = "{created_at}", transforms = ["iso8601"] }
productIds = { field = "products" }
accountId = { template = "{customer.id}", default = "unknown" }
"""


def test_a_helpdesk_record_becomes_the_create_body_with_source_key() -> None:
    m = load(write(FULL)).default
    assert m is not None
    record = {
        "ticket_id": 48121,
        "subject": "Export times out",
        "body": "  The CSV export spins forever for big workspaces.  ",
        "created_at": "2024-03-01 14:05:00",
        "products": ["PROD-1", "PROD-2"],
        "customer": {"id": "acme"},
        "internal_notes": "not sent",
    }
    prepared = prepare(m.apply(Record("t.jsonl:1", record)))  # type: ignore[arg-type]
    assert isinstance(prepared, Prepared), prepared
    assert prepared.body == {
        "sourceKey": "helpdesk.tickets.v1",
        "externalId": "helpdesk:48121",
        "text": "Export times out\n\n  The CSV ex",  # strip works on the whole text
        "signalType": "support_ticket",
        "name": "Export times out",
        "occurredAt": "2024-03-01T14:05:00Z",
        "productIds": ["PROD-1", "PROD-2"],
        "accountId": "acme",
    }
    # sourceKey is named as a field the template does not send; the Shaper, which knows the
    # mapping asked for it, does not warn about it (tests/unit/test_template_contract.py).
    assert prepared.dropped == ("sourceKey",)


def test_optional_fields_that_are_missing_are_left_out_and_defaults_fill_in() -> None:
    m = load(write(FULL)).default
    assert m is not None
    out = mapped(m, {"ticket_id": "7", "subject": "Hi", "body": "b"})
    assert "occurredAt" not in out and "productIds" not in out and "name" in out
    assert out["accountId"] == "unknown"


def test_raw_signal_objects_hold_templates_and_literals() -> None:
    m = mapping(
        """\
        source = { type = "helpdesk", ticket = "{id}", meta = { value = { field = "kept as is" } } }
        data = { transcriptText = "{body}", score = { field = "score" }, empty = "{nope}" }
        insightIds = ["INS-{a}", "INS-{b}"]
        """,
        head='kind = "raw_signal"\n[fields]\nexternalId = "r:{id}"\n',
    )
    out = mapped(m, {"id": 3, "body": "hello", "score": 9, "a": "1"})
    assert out == {
        "kind": "raw_signal",
        "externalId": "r:3",
        "source": {"type": "helpdesk", "ticket": "3", "meta": {"field": "kept as is"}},
        "data": {"transcriptText": "hello", "score": 9},
        "insightIds": ["INS-1"],
    }
    assert isinstance(prepare(Record("x", out)), Prepared)


def test_a_plain_record_with_source_key_keeps_it() -> None:
    base = {"kind": "raw_signal", "externalId": "a", "source": {"type": "manual-text"}}
    prepared = prepare(Record("in.json[0]", {**base, "sourceKey": "crm.v1"}))
    assert isinstance(prepared, Prepared) and prepared.body["sourceKey"] == "crm.v1"
    assert prepared.dropped == ("sourceKey",)  # sent, but named: the template does not send it
    bad = prepare(Record("in.json[0]", {**base, "sourceKey": " "}))
    assert isinstance(bad, Invalid) and bad.field == "sourceKey"


# -- templates -------------------------------------------------------------------------------


def test_templates_read_nested_keys_numbers_booleans_and_escaped_braces() -> None:
    data = {"c": {"name": "Ada", "vip": True}, "n": 4, "f": 1.5}
    assert value('"{c.name} ({n}/{f}) {c.vip} {{x}}"', data) == "Ada (4/1.5) true {x}"


def test_a_key_with_dots_wins_over_the_nested_reading() -> None:
    assert value('"{customer.id}"', {"customer.id": "flat", "customer": {"id": "deep"}}) == "flat"


@pytest.mark.parametrize(
    "data",
    [{"a": 5}, {"a": {"keys": None}}, {"a": "text"}, {"a": [1, 2]}],
    ids=["int-attribute", "null-key", "str-attribute", "list"],
)
def test_a_template_reads_only_dictionary_keys_never_attributes(data: dict[str, Any]) -> None:
    # {a.real} or {a.upper} would be attributes under str.format; here they are just absent.
    m = mapping('text = "{a.real}{a.upper}{a.keys}"\n')
    assert refused(m, {"id": 1, **data}).field == "text"


def test_a_missing_required_value_names_the_record_the_field_and_the_mapping_line() -> None:
    m = load(write(FULL)).default
    assert m is not None
    bad = refused(m, {"subject": "Hi", "body": "b"}, origin="tickets.jsonl:12")
    assert bad.field == "externalId" and bad.external_id is None
    assert bad.message == (
        "tickets.jsonl:12: field 'externalId' (mapping m.toml:4): template "
        "'helpdesk:{ticket_id}' needs 'ticket_id', which is missing in this record "
        "(the record has: body, subject); externalId is required"
    )
    bad = refused(m, {"ticket_id": 1, "subject": "Hi", "body": None})
    assert bad.field == "text" and bad.external_id == "helpdesk:1"
    assert "(mapping m.toml:5)" in bad.message and "'body', which is null" in bad.message


def test_an_empty_value_in_the_external_id_is_missing_but_elsewhere_it_is_text() -> None:
    m = mapping('text = "{subject}: {body}"\n')
    assert mapped(m, {"id": 1, "subject": "S", "body": ""})["text"] == "S: "
    bad = refused(m, {"id": "", "subject": "S", "body": "b"})
    assert bad.field == "externalId" and "which is empty" in bad.message


def test_a_list_or_object_inside_a_template_is_refused_per_record() -> None:
    m = mapping('text = "{tags}"\n')
    bad = refused(m, {"id": 1, "tags": ["a", "b"]})
    assert "'tags' is a list" in bad.message


def test_a_record_that_is_not_an_object_is_invalid() -> None:
    m = mapping('text = "x"\n')
    assert "record is a list" in refused(m, [1, 2]).message


def test_a_field_spec_keeps_the_raw_value_and_null_counts_as_missing() -> None:
    assert value('{ field = "p" }', {"p": ["a"]}, key="productIds") == ["a"]
    assert value('{ field = "p" }', {"p": None}, key="productIds") is None
    assert value('{ field = "q.r" }', {"q": {"r": "deep"}}) == "deep"


def test_toml_dates_are_sent_as_iso_8601() -> None:
    assert value("2024-03-01T10:00:00Z", {}, key="occurredAt") == "2024-03-01T10:00:00Z"
    assert value("2024-03-01", {}, key="occurredAt") == "2024-03-01"


def test_parse_template() -> None:
    assert parse_template("a{b}c{d.e}{{}}") == ("a", ("b",), "c", ("d", "e"), "{}")
    assert parse_template("{ spaced name }") == (("spaced name",),)


# -- transforms (every one) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transforms", "given", "expected"),
    [
        ('["strip"]', "  a b  ", "a b"),
        ('["collapse_whitespace"]', " a \n\t b  c ", "a b c"),
        ('["lower"]', "MiXed", "mixed"),
        ('["upper"]', "MiXed", "MIXED"),
        ("[{ truncate = 3 }]", "abcdef", "abc"),
        ("[{ truncate = 10 }]", "abc", "abc"),
        ('["strip", { truncate = 2 }]', "  abc", "ab"),
        ('[{ join = ", " }]', ["a", "b", 3], "a, b, 3"),
        ('[{ join = "," }]', "already text", "already text"),
        ('[{ split = ";" }]', " a; b ;;c ", ["a", "b", "c"]),
        ('[{ split = ";" }, "upper"]', "a;b", ["A", "B"]),
        ('["strip"]', ["  a ", "b "], ["a", "b"]),
        ('[{ default = "none" }]', "", "none"),
        ('[{ default = "none" }]', None, "none"),
        ('[{ default = "none" }]', "x", "x"),
        ('["iso8601"]', "2024-03-01T14:05:00+02:00", "2024-03-01T14:05:00+02:00"),
        ('["strip"]', 42, "42"),
    ],
)
def test_transform(transforms: str, given: Any, expected: Any) -> None:
    assert value(f'{{ field = "v", transforms = {transforms} }}', {"v": given}) == expected


def test_default_applies_to_a_missing_template_and_a_missing_field() -> None:
    assert value('{ template = "{nope}", default = "n/a" }', {}) == "n/a"
    assert value('{ field = "nope", transforms = [{ default = "n/a" }] }', {}) == "n/a"
    assert value('{ field = "nope", default = ["x"] }', {}, key="productIds") == ["x"]


def test_a_transform_on_an_object_is_a_record_error() -> None:
    m = mapping('text = { field = "v", transforms = ["strip"] }\n')
    bad = refused(m, {"id": 1, "v": {"a": 1}})
    assert bad.field == "text" and "strip" in bad.message and "an object" in bad.message
    m = mapping('text = { field = "v", transforms = [{ join = "," }] }\n')
    assert "join" in refused(m, {"id": 1, "v": [{"a": 1}]}).message


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2024-03-01T14:05:00Z", "2024-03-01T14:05:00Z"),
        ("2024-03-01T14:05:00.123456Z", "2024-03-01T14:05:00.123456Z"),
        ("2024-03-01T14:05:00-05:00", "2024-03-01T14:05:00-05:00"),
        ("2024-03-01 14:05:00", "2024-03-01T14:05:00Z"),  # naive: UTC
        ("2024-03-01", "2024-03-01T00:00:00Z"),
        ("2024-03-01 14:05:00 UTC", "2024-03-01T14:05:00Z"),
        ("2024/03/01 14:05", "2024-03-01T14:05:00Z"),
        ("1 Mar 2024", "2024-03-01T00:00:00Z"),
        ("March 1, 2024", "2024-03-01T00:00:00Z"),
        ("Fri, 01 Mar 2024 14:05:00 +0000", "2024-03-01T14:05:00Z"),
        (1709301900, "2024-03-01T14:05:00Z"),
        (1709301900.5, "2024-03-01T14:05:00.500000Z"),
        ("1709301900", "2024-03-01T14:05:00Z"),
        (1709301900000, "2024-03-01T14:05:00Z"),  # milliseconds
    ],
)
def test_iso8601(given: Any, expected: str) -> None:
    assert to_iso8601(given) == expected
    assert isinstance(
        prepare(
            Record(
                "x",
                {
                    "kind": "raw_signal",
                    "externalId": "a",
                    "source": {"type": "t"},
                    "occurredAt": to_iso8601(given),
                },
            )
        ),
        Prepared,
    )


@pytest.mark.parametrize("given", ["03/01/2024", "yesterday", "", True, [1], 10**20])
def test_iso8601_refuses_what_it_cannot_read_for_sure(given: Any) -> None:
    m = mapping('occurredAt = { field = "v", transforms = ["iso8601"] }\ntext = "x"\n')
    data = {"id": 1, "v": given}
    out = m.apply(Record("in.csv:2", data))
    if given == "":
        assert isinstance(out, Record) and "occurredAt" not in out.data  # empty: not sent
    else:
        assert isinstance(out, Invalid) and out.field == "occurredAt", out


# -- streams ---------------------------------------------------------------------------------


def test_streams_have_their_own_mapping_and_inherit_kind_and_source_key() -> None:
    loaded = load(
        write(
            """\
            kind = "external_text"
            sourceKey = "zendesk.v1"
            [streams.tickets.fields]
            externalId = "zd:{id}"
            text = "{description}"
            signalType = "support_ticket"
            [streams.users]
            kind = "raw_signal"
            sourceKey = "zendesk.users.v1"
            [streams.users.fields]
            externalId = "zdu:{id}"
            source = { type = "zendesk-user" }
            """
        )
    )
    assert loaded.default is None and loaded.for_stream("other") is None
    tickets, users = loaded.for_stream("tickets"), loaded.for_stream("users")
    assert tickets is not None and users is not None
    assert mapped(tickets, {"id": 1, "description": "d"})["sourceKey"] == "zendesk.v1"
    assert mapped(users, {"id": 1})["sourceKey"] == "zendesk.users.v1"
    assert mapped(users, {"id": 1})["kind"] == "raw_signal"


def test_the_top_level_mapping_serves_streams_without_their_own() -> None:
    loaded = load(write(HEADER + 'text = "x"\n'))
    assert loaded.for_stream("anything") is loaded.default is not None


# -- load errors (every one names the file and line) ------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('kind = "external_text"\n[fields\n', "mapping m.toml:2:8: invalid TOML: "),
        ('kind = "x"\nkinds = 1\n', "mapping m.toml:2: unknown key 'kinds'"),
        ('[fields]\nexternalId = "{a}"\n', "mapping m.toml: kind is missing"),
        ('kind = "note"\n[fields]\nexternalId = "{a}"\n', "mapping m.toml:1: unknown kind 'note'"),
        ('kind = "external_text"\nfields = 3\n', "mapping m.toml:2: fields must be a table"),
        ('kind = "external_text"\n', "mapping m.toml: no [fields] table"),
        ("kind = 3\n[streams.a]\n", "mapping m.toml:1: kind must be a string"),
        ('kind = "external_text"\nsourceKey = ""\n', "mapping m.toml:2: sourceKey must be"),
        ('kind = "external_text"\nstreams = 1\n', "mapping m.toml:2: streams must be tables"),
        ('kind = "raw_signal"\n[streams]\na = 1\n', "mapping m.toml:3: streams.a must be a table"),
        ('kind = "raw_signal"\n[streams.a]\nfield = 1\n', "mapping m.toml:3: unknown key 'field'"),
        (
            'kind = "raw_signal"\n[streams.a]\nkind = "raw_signal"\n',
            "mapping m.toml:2: [streams.a] needs",
        ),
    ],
)
def test_file_level_errors(text: str, expected: str) -> None:
    assert load_error(text).startswith(expected)


FIELD_ERRORS = [
    ('extra = "x"', "external_text has no field 'extra'"),
    ('sourceKey = "x"', "(sourceKey is set at the top of the file)"),
    ('text = "{a!r}"', "no conversions (!)"),
    ('text = "{a:>10}"', "format specs (:)"),
    ('text = "{a.__class__}"', "names starting with '__' are refused"),
    ('text = "{a[0]}"', "indexing ([])"),
    ('text = "{}"', "empty placeholder {}"),
    ('text = "{a..b}"', "empty part between dots"),
    ('text = "open {a"', "is never closed"),
    ('text = "a } b"', "single '}'"),
    ('text = "{a{b}}"', "'{' inside the placeholder"),
    ('text = { template = "{a}", upper = true }', "unknown key 'upper'"),
    ('text = { template = "{a}", field = "a" }', "use one of template, field or value"),
    ("text = { template = 3 }", "template must be a string"),
    ('text = { field = "" }', "field must name a record field"),
    ('text = { field = "a.__dict__" }', "names starting with '__' are refused"),
    ('text = { field = "a", transforms = "strip" }', "transforms must be a list"),
    ('text = { field = "a", transforms = ["shout"] }', "unknown transform 'shout'"),
    ('text = { field = "a", transforms = ["truncate"] }', "needs a value: { truncate = ... }"),
    ('text = { field = "a", transforms = [{ truncate = 0 }] }', "truncate needs a whole number"),
    ('text = { field = "a", transforms = [{ truncate = "9" }] }', "truncate needs a whole number"),
    ('text = { field = "a", transforms = [{ join = 1 }] }', "join needs a separator string"),
    ('text = { field = "a", transforms = [{ split = "" }] }', "split needs a separator string"),
    ('text = { field = "a", transforms = [{ strip = 1 }] }', "transform 'strip' takes no value"),
    ('text = { field = "a", transforms = [{ shout = 1 }] }', "unknown transform 'shout'"),
    ('text = { field = "a", transforms = [{ join = ",", split = "," }] }', "a transform is a"),
    ('text = { field = "a", transforms = [3] }', "a transform is a name"),
]


@pytest.mark.parametrize(("line", "expected"), FIELD_ERRORS)
def test_field_errors_name_the_line_of_the_field(line: str, expected: str) -> None:
    message = load_error(HEADER + "# a comment\n" + line + "\n")
    assert message.startswith("mapping m.toml:6: "), message
    assert expected in message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ('externalId = "{a}"\ntext = "x"\n', "m.toml:2: fields.signalType is missing"),
        ('signalType = "s"\ntext = "x"\n', "m.toml:2: fields.externalId is missing"),
        ('externalId = "{a}"\nsignalType = "s"\n', "m.toml:2: fields.text is missing"),
        ('externalId = "fixed"\nsignalType = "s"\ntext = "x"\n', "m.toml:3: externalId must come"),
        ('externalId = { template = "{a}", default = "x" }\n', "m.toml:3: externalId cannot have"),
        (
            'externalId = { field = "a", transforms = [{ default = "x" }] }\n',
            "m.toml:3: externalId cannot have a default",
        ),
    ],
)
def test_required_fields_and_a_stable_external_id(fields: str, expected: str) -> None:
    assert expected in load_error('kind = "external_text"\n[fields]\n' + fields)


def test_raw_signal_needs_source() -> None:
    message = load_error('kind = "raw_signal"\n[fields]\nexternalId = "{a}"\n')
    assert message == "mapping m.toml:2: fields.source is missing; raw_signal needs it"


def test_errors_in_a_stream_name_its_line() -> None:
    text = 'kind = "raw_signal"\n[streams.a.fields]\nexternalId = "{id}"\nsource = "{x!s}"\n'
    assert load_error(text).startswith("mapping m.toml:4: source: placeholder {x!s}")


def test_unreadable_files() -> None:
    with pytest.raises(MappingError, match=r"^mapping nope.toml: no such file$"):
        load("nope.toml")
    Path("m.toml").write_bytes(b'kind = "external_text"\nname = "\xff"\n')
    with pytest.raises(MappingError, match=r"^mapping m.toml:2: not UTF-8$"):
        load("m.toml")


def test_a_misspelled_spec_key_fails_at_load_time_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        'kind = "external_text"\n[fields]\nexternalId = "{id}"\n'
        'text = { templat = "{body}" }\nsignalType = "support_ticket"\n'
    )
    with pytest.raises(MappingError) as err:
        load(str(path))
    message = str(err.value)
    assert f"{path}:4" in message and "'templat'" in message
    assert "did you mean 'template'?" in message
