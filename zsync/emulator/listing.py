"""How the list endpoint answers: the documented shape (a bare array, totals in headers) or one
of the variants and faults a client must survive."""

from __future__ import annotations

from typing import Any

from zsync.emulator.config import EmulatorConfig
from zsync.emulator.state import Answer, encode

# With list_fault "garbage-items", items at these positions (counted across pages, modulo
# GARBAGE_EVERY) are broken: one is a bare string, one an object without publicId.
GARBAGE_EVERY = 4
_NOT_AN_OBJECT = 1
_NO_PUBLIC_ID = 3


def list_answer(
    page: list[dict[str, Any]], total: int, limit: int, offset: int, config: EmulatorConfig
) -> Answer:
    """The 200 for one page of the list: a bare array with X-Total-Count, X-Limit and X-Offset,
    or, when the config asks for one, a variant (externalIds hidden, a page cap) or a fault
    (``garbage-items``, ``no-headers``, ``not-array``)."""
    items: list[Any] = page
    every = config.list_drops_external_id_every
    if config.list_hides_external_id:
        items = [_without_external_id(item) for item in items]
    elif every:
        items = [
            _without_external_id(item) if (offset + n) % every == 0 else item
            for n, item in enumerate(items)
        ]
    fault = config.list_fault
    if fault == "garbage-items":
        items = [_garbage(item, offset + n) for n, item in enumerate(items)]
    cap = config.list_page_cap
    shown = min(limit, cap) if cap else limit
    headers = {"X-Total-Count": str(total), "X-Limit": str(shown), "X-Offset": str(offset)}
    if fault == "no-headers":
        headers = {}
    body: object = {"data": items} if fault == "not-array" else items
    return Answer(200, encode(body), headers)


def _without_external_id(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "externalId"}


def _garbage(item: dict[str, Any], position: int) -> Any:
    slot = position % GARBAGE_EVERY
    if slot == _NOT_AN_OBJECT:
        return item["publicId"]
    if slot == _NO_PUBLIC_ID:
        return {k: v for k, v in item.items() if k != "publicId"}
    return item
