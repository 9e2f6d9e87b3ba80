"""Records -> create bodies as the user and the server see them: exactly the template's
fields, stable bytes/hash/key for the same record, and one clear line per bad record."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest

from zsync.model import Invalid, Prepared, Problem, Record, problem_to_invalid
from zsync.shape.body import MAX_EXTERNAL_ID, MAX_TEXT_CHARS, prepare
from zsync.shape.canonical import (
    canonical_json,
    derive_external_id,
    idempotency_key,
    payload_hash,
)

# The template's own example input (signals-import-template.txt).
TEMPLATE_TEXT = {
    "kind": "external_text",
    "externalId": "client-demo:typed-note-1",
    "name": "Customer call — export and dark mode",
    "signalType": "transcript",
    "text": "Customer asked for dark mode and CSV export of the roadmap.",
}
TEMPLATE_RAW = {
    "kind": "raw_signal",
    "externalId": "client-demo:support-ticket-1",
    "name": "Support ticket — SSO provisioning timeout",
    "source": {"type": "manual-text", "external_data": {"signalType": "support_ticket"}},
    "data": {"transcriptText": "SCIM group sync times out after 30 minutes."},
}


def ok(data: Any, **kw: Any) -> Prepared:
    result = prepare(Record("in.json[3]", data), **kw)
    assert isinstance(result, Prepared), result
    return result


def bad(data: Any, **kw: Any) -> Invalid:
    result = prepare(Record("in.json[3]", data), **kw)
    assert isinstance(result, Invalid), result
    assert "\n" not in result.message
    assert result.message.startswith("in.json[3]: ")
    return result


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if value is ...:
            out.pop(key, None)
        else:
            out[key] = value
    return out


# -- bodies ------------------------------------------------------------------------------


def test_template_examples_map_to_the_template_bodies() -> None:
    text = ok(TEMPLATE_TEXT)
    raw = ok(TEMPLATE_RAW)
    assert text.body == {k: v for k, v in TEMPLATE_TEXT.items() if k != "kind"}
    assert raw.body == {k: v for k, v in TEMPLATE_RAW.items() if k != "kind"}
    assert (text.external_id, raw.external_id) == (
        "client-demo:typed-note-1",
        "client-demo:support-ticket-1",
    )
    assert text.dropped == raw.dropped == ()
    assert text.origin == "in.json[3]"


def test_external_text_sends_exactly_its_field_list() -> None:
    record = with_(
        TEMPLATE_TEXT,
        additionalContext="from the CRM",
        productId="p-1",
        productIds=["p-1", "p-2"],
        accountId="acc-9",
        occurredAt="2024-03-01T10:00:00Z",
        source={"type": "manual-text"},  # a raw_signal field: not sent
        data={"x": 1},
        foo="bar",
    )
    prepared = ok(record)
    assert set(prepared.body) == {
        "text",
        "signalType",
        "name",
        "additionalContext",
        "productId",
        "productIds",
        "accountId",
        "occurredAt",
        "externalId",
    }
    assert prepared.dropped == ("data", "foo", "source")


def test_raw_signal_sends_exactly_its_field_list() -> None:
    record = with_(
        TEMPLATE_RAW,
        occurredAt="2024-03-01",
        integrationId="int-1",
        context={"team": "support"},
        insightIds=["i-1"],
        text="not part of a raw_signal",
        signalType="transcript",
    )
    prepared = ok(record)
    assert set(prepared.body) == {
        "source",
        "name",
        "data",
        "externalId",
        "occurredAt",
        "integrationId",
        "context",
        "insightIds",
    }
    assert prepared.dropped == ("signalType", "text")


def test_null_optional_fields_are_omitted_not_sent() -> None:
    prepared = ok(with_(TEMPLATE_TEXT, name=None, productIds=None, accountId=None))
    assert "name" not in prepared.body
    assert "productIds" not in prepared.body
    assert prepared.dropped == ()


def test_kind_with_stray_whitespace_is_accepted_like_the_template_does() -> None:
    assert ok(with_(TEMPLATE_TEXT, kind=" external_text\n")).body["text"]


# -- canonical bytes, hash, idempotency key ----------------------------------------------


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["é", 1.5, None, True]}) == (
        '{"a":["é",1.5,null,true],"b":1}'.encode()
    )
    with pytest.raises(ValueError):
        canonical_json({"a": float("nan")})


def test_prepared_carries_the_canonical_bytes_and_their_hash() -> None:
    prepared = ok(TEMPLATE_TEXT)
    assert prepared.canonical == canonical_json(prepared.body)
    assert prepared.payload_hash == hashlib.sha256(prepared.canonical).hexdigest()
    assert prepared.payload_hash == payload_hash(prepared.canonical)


def test_same_record_same_bytes_and_key_whatever_the_key_order() -> None:
    reordered = dict(reversed(list(TEMPLATE_RAW.items())))
    first, second = ok(TEMPLATE_RAW), ok(reordered)
    assert first.canonical == second.canonical
    assert idempotency_key(first.canonical) == idempotency_key(second.canonical)


def test_different_record_different_key() -> None:
    keys = {
        idempotency_key(ok(TEMPLATE_TEXT).canonical),
        idempotency_key(ok(with_(TEMPLATE_TEXT, text="Something else")).canonical),
        idempotency_key(ok(with_(TEMPLATE_TEXT, name=...)).canonical),
        idempotency_key(ok(TEMPLATE_TEXT).canonical, nonce="run-2"),
    }
    assert len(keys) == 4


def test_idempotency_key_shape_and_definition() -> None:
    canonical = ok(TEMPLATE_TEXT).canonical
    key = idempotency_key(canonical)
    assert re.fullmatch(r"zsync-[0-9a-f]{40}", key)
    expected = hashlib.sha256(b"zsync-idempotency-v1\0" + b"\0" + canonical).hexdigest()[:40]
    assert key == "zsync-" + expected


def test_fields_that_are_not_sent_do_not_change_the_key() -> None:
    plain, extra = ok(TEMPLATE_TEXT), ok(with_(TEMPLATE_TEXT, note="internal"))
    assert plain.canonical == extra.canonical
    assert extra.dropped == ("note",)


# -- externalId --------------------------------------------------------------------------


def test_missing_external_id_is_invalid_unless_derived() -> None:
    invalid = bad(with_(TEMPLATE_TEXT, externalId=...))
    assert invalid.field == "externalId"
    assert invalid.message.startswith("in.json[3]: field 'externalId': missing")


def test_derived_external_id_is_a_stable_hash_of_the_content() -> None:
    record = with_(TEMPLATE_TEXT, externalId=...)
    first = ok(record, derive_external_id=True)
    again = ok(dict(reversed(list(record.items()))), derive_external_id=True)
    other = ok(with_(record, text="Different text"), derive_external_id=True)

    assert re.fullmatch(r"zsync:[0-9a-f]{32}", first.external_id)
    assert first.external_id == again.external_id != other.external_id
    assert first.body["externalId"] == first.external_id
    assert first.canonical == canonical_json(first.body)  # the id is part of what is sent
    without = {k: v for k, v in first.body.items() if k != "externalId"}
    assert first.external_id == derive_external_id(without) == derive_external_id(first.body)


def test_an_explicit_external_id_wins_over_deriving() -> None:
    assert ok(TEMPLATE_TEXT, derive_external_id=True).external_id == TEMPLATE_TEXT["externalId"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x" * 300, "field 'externalId': is 300 characters; at most 256"),
        ("ticket\x071", "field 'externalId': contains a control character (U+0007)"),
        ("line\nbreak", "field 'externalId': contains a control character (U+000A)"),
        ("c1\x85", "field 'externalId': contains a control character (U+0085)"),
        ("", "field 'externalId': must not be empty"),
        ("   ", "field 'externalId': is only whitespace"),
        (12345, "field 'externalId': must be a string, not a number (quote it: \"12345\")"),
        (["a"], "field 'externalId': must be a string, not a list"),
    ],
)
def test_bad_external_ids_are_named(value: Any, message: str) -> None:
    invalid = bad(with_(TEMPLATE_TEXT, externalId=value))
    assert invalid.message == f"in.json[3]: {message}"
    assert invalid.field == "externalId"
    assert invalid.external_id is None


def test_external_id_limits_are_inclusive_and_unicode_is_fine() -> None:
    assert ok(with_(TEMPLATE_TEXT, externalId="é" * MAX_EXTERNAL_ID)).external_id
    assert ok(with_(TEMPLATE_TEXT, externalId="crm:ticket\u00a042"))  # NBSP is no control


def test_invalid_keeps_a_valid_external_id_for_the_ledger() -> None:
    invalid = bad(with_(TEMPLATE_TEXT, text=""))
    assert invalid.external_id == "client-demo:typed-note-1"


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "record is a list; expected an object"),
        (None, "record is null; expected an object"),
        ("text", "record is a string; expected an object"),
        (7, "record is a number; expected an object"),
    ],
)
def test_record_must_be_an_object(data: Any, message: str) -> None:
    invalid = bad(data)
    assert invalid.message == f"in.json[3]: {message}"
    assert invalid.field is None


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"kind": ...}, "kind", "missing; use external_text or raw_signal"),
        ({"kind": "foo"}, "kind", "unknown kind 'foo'; use external_text or raw_signal"),
        ({"kind": "a\nb"}, "kind", "unknown kind 'a\\nb'"),
        ({"kind": 3}, "kind", "must be a string, not a number"),
        ({"text": ...}, "text", "missing"),
        ({"text": ""}, "text", "must be a non-empty string"),
        ({"text": " \n\t"}, "text", "is only whitespace"),
        ({"text": 5}, "text", "must be a non-empty string, not a number"),
        ({"signalType": ...}, "signalType", "missing"),
        ({"signalType": ""}, "signalType", "must be a non-empty string"),
        ({"signalType": ["transcript"]}, "signalType", "not a list"),
        ({"name": 1}, "name", "must be a string, not a number"),
        ({"additionalContext": {}}, "additionalContext", "must be a string, not an object"),
        ({"productId": True}, "productId", "must be a string, not a boolean"),
        ({"accountId": 9}, "accountId", "must be a string"),
        ({"productIds": "p-1"}, "productIds", "must be a list of strings, not a string"),
        ({"productIds": ["p", 2]}, "productIds", "item [1] is a number"),
        ({"occurredAt": "yesterday"}, "occurredAt", "is not an ISO 8601 date-time: 'yesterday'"),
        ({"occurredAt": "2024-13-01"}, "occurredAt", "ISO 8601"),
        ({"occurredAt": 1709287200}, "occurredAt", "not a number"),
    ],
)
def test_external_text_field_problems_name_the_field(
    changes: dict[str, Any], field: str, message: str
) -> None:
    invalid = bad(with_(TEMPLATE_TEXT, **changes))
    assert invalid.field == field
    assert invalid.message.startswith(f"in.json[3]: field '{field}': ")
    assert message in invalid.message


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"source": ...}, "source", "missing"),
        ({"source": "manual-text"}, "source", "must be an object"),
        ({"source": {}}, "source", '"type"'),
        ({"source": {"type": 3}}, "source", '"type"'),
        ({"data": "flat"}, "data", "must be an object, not a string"),
        ({"insightIds": [1]}, "insightIds", "item [0] is a number"),
        ({"integrationId": 4}, "integrationId", "must be a string"),
        ({"occurredAt": "03/01/2024"}, "occurredAt", "ISO 8601"),
    ],
)
def test_raw_signal_field_problems_name_the_field(
    changes: dict[str, Any], field: str, message: str
) -> None:
    invalid = bad(with_(TEMPLATE_RAW, **changes))
    assert invalid.field == field
    assert message in invalid.message


@pytest.mark.parametrize(
    "stamp",
    ["2024-03-01T10:00:00Z", "2024-03-01T10:00:00.123+02:00", "2024-03-01", "2024-03-01 10:00"],
)
def test_iso_dates_are_accepted_and_sent_as_written(stamp: str) -> None:
    assert ok(with_(TEMPLATE_TEXT, occurredAt=stamp)).body["occurredAt"] == stamp


def test_text_size_limit() -> None:
    assert ok(with_(TEMPLATE_TEXT, text="a" * MAX_TEXT_CHARS))
    invalid = bad(with_(TEMPLATE_TEXT, text="a" * (MAX_TEXT_CHARS + 1)))
    assert invalid.message == (
        "in.json[3]: field 'text': is 1,000,001 characters; at most 1,000,000"
    )


def _nest(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    root = node
    for _ in range(levels - 1):
        node["x"] = {}
        node = node["x"]
    return root


def test_depth_limit_is_64_levels_including_the_record() -> None:
    assert ok(with_(TEMPLATE_RAW, data=_nest(63)))  # record + 63 levels = 64
    invalid = bad(with_(TEMPLATE_RAW, data=_nest(64)))
    assert invalid.message == "in.json[3]: field 'data': nested deeper than 64 levels"


def test_deep_nesting_in_a_field_that_is_not_sent_is_still_refused() -> None:
    invalid = bad(with_(TEMPLATE_TEXT, extra=_nest(100)))
    assert invalid.field == "extra"


def test_very_deep_values_are_refused_without_recursion_error() -> None:
    deep: list[Any] = []
    for _ in range(50_000):
        deep = [deep]
    assert bad(with_(TEMPLATE_RAW, context={"x": deep})).field == "context"


def test_unpaired_surrogate_is_named() -> None:
    invalid = bad(with_(TEMPLATE_TEXT, name="half \ud83d"))
    assert invalid.field == "name"
    assert "unpaired surrogate (U+D83D)" in invalid.message


def test_infinite_number_is_named() -> None:
    invalid = bad(with_(TEMPLATE_RAW, data={"score": float("inf")}))
    assert invalid.field == "data"
    assert "not finite" in invalid.message


def test_first_problem_wins() -> None:
    invalid = bad(with_(TEMPLATE_TEXT, text="", signalType="", name=3, externalId=""))
    assert invalid.field == "text"


def test_problem_to_invalid_keeps_the_origin_in_the_message() -> None:
    invalid = problem_to_invalid(Problem("in.json:3:17", "invalid JSON: Expecting value"))
    assert invalid == Invalid(
        "in.json:3:17", None, None, "in.json:3:17: invalid JSON: Expecting value"
    )


def test_prepare_does_not_change_the_input_record() -> None:
    record = with_(TEMPLATE_TEXT, externalId=...)
    before = json.dumps(record, sort_keys=True)
    ok(record, derive_external_id=True)
    assert json.dumps(record, sort_keys=True) == before
