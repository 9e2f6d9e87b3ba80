"""The skip path's shortcuts must not change what they compute.

The fast canonical JSON must be byte-for-byte the encoder's, or every record of an old
ledger would look changed (and a resend would carry a new Idempotency-Key); the compact set
of seen ids must answer exactly as a set does."""

from __future__ import annotations

import random

import pytest

from zsync.plan.seen import IdSet
from zsync.shape.canonical import _string_json, body_json, canonical_json, encode


def encoder(value: object) -> bytes:
    """The reference: json's own encoder with zsync's canonical settings."""
    return encode(value).encode()


# Everything the encoder treats specially, plus characters that only look special.
_SPECIAL = ['"', "\\", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f", "\x85"]
_UNICODE = ["é", "ü", "\u2028", "\u2029", "\ufeff", "日", "😀", "/", "<", "'"]
_PLAIN = list("abc xyz 019")


@pytest.mark.parametrize("length", [0, 1, 12, 255, 256, 257, 5000])
@pytest.mark.parametrize(
    "alphabet",
    [
        _PLAIN,
        _PLAIN + _UNICODE,
        [*_PLAIN, '"', "\\", "\n", "\r", "\t"],  # the escapes the fast path applies itself
        _PLAIN + _SPECIAL + _UNICODE,  # and the rare ones that send it to the encoder
    ],
)
def test_strings_are_encoded_exactly_as_the_json_encoder_does(
    alphabet: list[str], length: int
) -> None:
    rng = random.Random(length * 31 + len(alphabet))
    for _ in range(50):
        text = "".join(rng.choice(alphabet) for _ in range(length))
        assert _string_json(text) == encoder(text)
        assert canonical_json(text) == encoder(text)


def test_a_body_is_encoded_exactly_as_the_json_encoder_does() -> None:
    long_text = 'Agent: "hello"\nCustomer: C:\\path\tcafé 😀 ' * 40
    body = {
        "text": long_text,
        "signalType": "transcript",
        "productIds": ["p1", long_text],
        "externalId": "ext-1",
        "occurredAt": "2026-01-01T00:00:00Z",
        "data": {"z": 1, "a": [1.5, None, True, False, {"k": long_text}]},
        "name": "\x01odd",
    }
    assert body_json(body) == encoder(body)
    assert canonical_json(body) == encoder(body)
    assert canonical_json({}) == encoder({}) == b"{}"
    assert canonical_json({1: "a"}) == encoder({1: "a"})  # not a body: the encoder's path


@pytest.mark.parametrize("text", ["\ud800", "x" * 300 + "\udfff"])
def test_a_lone_surrogate_fails_as_the_encoder_does(text: str) -> None:
    for fn in (encoder, _string_json, canonical_json):
        with pytest.raises(UnicodeEncodeError):
            fn(text)


def test_the_compact_id_set_answers_as_a_set_does() -> None:
    rng = random.Random(5)
    keys = [rng.getrandbits(64) - 2**63 for _ in range(20_000)]
    keys += [hash(f"rec-{i}") for i in range(20_000)] + [0, 1, -1, 2**63 - 1, -(2**63)]
    ids, reference = IdSet(), set()
    for key in keys[::2]:  # grows through several doublings
        assert ids.add(key) is ((key or 1) not in reference)
        reference.add(key or 1)
    for key in keys:
        assert (key in ids) is ((key or 1) in reference)
        assert ids.add(key) is ((key or 1) not in reference)
        reference.add(key or 1)
    assert len(ids) == len(reference)
    assert "rec-1" not in ids
