"""Singer messages -> records (with their stream and key), SCHEMA announcements and STATE
bookmarks; the protocol's order checked on the way.

Which stream maps to which body is the shape stage's business; this module only reads the
messages, reports the malformed ones and says once which message types it ignores. A stream
that breaks the protocol (a RECORD before its SCHEMA, a record without a key property, a
SCHEMA without properties) ends the input with :class:`ProtocolError`: what came before it
is planned and recorded, and nothing after it is read, so no bookmark passes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from zsync.model import Idle, Item, Problem, Record, Schema, StateMessage, Warn
from zsync.read.command import SourceFailed


class ProtocolError(SourceFailed):
    """The Singer stream broke the protocol: the input ends here (exit 1), like a source
    program that failed after what it emitted was recorded."""


def singer_messages(messages: Iterable[Record | Problem | Idle], warn: Warn) -> Iterator[Item]:
    """Records carry their stream and the key_properties of its latest SCHEMA."""
    warned: set[str] = set()
    keys: dict[str, tuple[str, ...]] = {}  # stream -> key_properties of its SCHEMA
    for item in messages:
        if type(item) is not Record:
            yield item
            continue
        message = item.data
        kind = message.get("type") if type(message) is dict else None
        if kind == "RECORD":
            stream = message.get("stream")
            if type(stream) is not str or not stream:
                yield Problem(item.origin, 'Singer RECORD without a "stream" name')
                continue
            record = message.get("record")
            key = keys.get(stream)
            if key is None:
                raise ProtocolError(
                    f"{item.origin}: Singer stream {stream!r}: RECORD before its SCHEMA"
                )
            if type(record) is dict:
                missing = next((k for k in key if k not in record), None)
                if missing is not None:
                    raise ProtocolError(
                        f"{item.origin}: Singer stream {stream!r}: record has no key "
                        f"property {missing!r}"
                    )
            yield Record(item.origin, record, stream, key)
        elif kind == "STATE":
            if "value" not in message:
                yield Problem(item.origin, 'Singer STATE without a "value"')
            else:
                yield StateMessage(item.origin, message["value"])
        elif kind == "SCHEMA":
            stream = message.get("stream")
            if type(stream) is not str or not stream:
                yield Problem(item.origin, 'Singer SCHEMA without a "stream" name')
                continue
            keys[stream] = _key_properties(item.origin, stream, message)
            yield Schema(item.origin, stream)
        elif type(kind) is str:
            if kind not in warned:
                warned.add(kind)
                warn(f"{item.origin}: Singer message type {kind!r} is ignored")
        else:
            yield Problem(item.origin, 'not a Singer message (it needs a "type")')


def _key_properties(origin: str, stream: str, message: dict[str, Any]) -> tuple[str, ...]:
    """A SCHEMA's key_properties (none given: none), checked as the Singer SDK checks them."""
    where = f"{origin}: Singer stream {stream!r}: SCHEMA"
    schema = message.get("schema")
    if type(schema) is not dict or type(schema.get("properties")) is not dict:
        raise ProtocolError(f'{where} has no "properties" object')
    key = message.get("key_properties")
    if key is None:
        return ()
    if type(key) is not list or any(type(k) is not str for k in key):
        raise ProtocolError(
            f"{where}: key_properties must be a list of names, not {json.dumps(key)[:80]}"
        )
    return tuple(key)


def state_lines(
    items: Iterable[Record | Problem | Idle],
) -> Iterator[Record | Problem | StateMessage | Idle]:
    """A source program's bookmark is a line that is exactly {"type": "STATE", "value": ...}."""
    for item in items:
        data = item.data if type(item) is Record else None
        if (
            type(data) is dict
            and data.get("type") == "STATE"
            and "value" in data
            and len(data) == 2
        ):
            assert type(item) is Record
            yield StateMessage(item.origin, data["value"])
        else:
            yield item
