"""Singer messages -> records (with their stream), SCHEMA announcements and STATE bookmarks.

Which stream maps to which body is the shape stage's business; this module only reads the
messages, reports the malformed ones and says once which message types it ignores.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from zsync.model import Idle, Item, Problem, Record, Schema, StateMessage, Warn


def singer_messages(messages: Iterable[Record | Problem | Idle], warn: Warn) -> Iterator[Item]:
    warned: set[str] = set()
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
            else:
                yield Record(item.origin, message.get("record"), stream)
        elif kind == "STATE":
            if "value" not in message:
                yield Problem(item.origin, 'Singer STATE without a "value"')
            else:
                yield StateMessage(item.origin, message["value"])
        elif kind == "SCHEMA":
            stream = message.get("stream")
            if type(stream) is str:
                yield Schema(item.origin, stream)
        elif type(kind) is str:
            if kind not in warned:
                warned.add(kind)
                warn(f"{item.origin}: Singer message type {kind!r} is ignored")
        else:
            yield Problem(item.origin, 'not a Singer message (it needs a "type")')


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
