"""The server index: the list endpoint read page by page into externalId -> signal.

Bounded (a cap on passes and on signals), paced (each request waits for the run's rate
budget), and resumable (a transient failure retries that page, not the whole listing). The
list's order is undocumented, so a listing is trusted as complete only when the number of
distinct signals read equals the total the server claims and that total held still; an
order that shifts between pages is met by reading again while a pass still finds new
signals, up to ``max_passes``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zsync.client import ListPage, ZentrikClient
from zsync.model import ServerIndex, ServerSignal
from zsync.retry import RetryPolicy
from zsync.shape.canonical import field_hashes

PAGE = 100  # the documented maximum
MAX_SIGNALS = 5_000_000
# Fields the server adds to a signal: not part of what a record sends.
SERVER_FIELDS = frozenset(
    {"publicId", "jobId", "workspaceId", "status", "createdAt", "updatedAt", "processing", "error"}
)


def to_signal(item: Any) -> ServerSignal | None:
    """A listed item as a signal; None when it is not one (no object, no publicId)."""
    if not isinstance(item, dict):
        return None
    public_id = item.get("publicId")
    if not isinstance(public_id, str | int) or isinstance(public_id, bool) or public_id == "":
        return None
    external_id = item.get("externalId")
    source_key = item.get("sourceKey")
    status = item.get("status")
    job_id = item.get("jobId")
    body = {k: v for k, v in item.items() if k not in SERVER_FIELDS and v is not None}
    try:
        hashes = field_hashes(body)
    except (TypeError, ValueError):
        return None
    return ServerSignal(
        public_id=str(public_id),
        external_id=external_id if isinstance(external_id, str) and external_id else None,
        source_key=source_key if isinstance(source_key, str) else None,
        status=status.strip().lower() if isinstance(status, str) else None,
        field_hashes=hashes,
        job_id=job_id if isinstance(job_id, str) else None,
    )


class _Pass:
    """One read of the list from offset 0 to its end."""

    def __init__(self) -> None:
        self.totals: list[int] = []
        self.headers_missing = False
        self.garbage = 0
        self.items = 0
        self.offset_ignored = False
        self.capped = False


def read_index(
    client: ZentrikClient,
    *,
    retry: RetryPolicy | None = None,
    pace: Callable[[], bool] | None = None,
    page_size: int = PAGE,
    max_passes: int = 8,
    max_signals: int = MAX_SIGNALS,
) -> ServerIndex:
    """Read every signal the key's workspace lists. Raises the client's errors (after the
    retry policy) when a page cannot be read at all; anything odd that still leaves a usable
    listing becomes one line in ``problems`` and, when signals may be missing,
    ``complete = False``."""
    policy = retry or RetryPolicy()
    index = ServerIndex()
    saw_external_key = False
    for number in range(max_passes):
        current = _Pass()

        def fetch(offset: int) -> ListPage:
            if pace is not None and not pace():
                raise InterruptedError("stopped")
            index.requests += 1
            return client.list_page(page_size, offset)

        before = len(index.by_public_id)
        saw_external_key |= _read_pass(index, current, fetch, page_size, max_signals, policy)
        # Another pass only while passes still find signals (an order that shifts per read).
        stalled = number > 0 and len(index.by_public_id) == before
        if _settled(index, current, stalled or number + 1 == max_passes):
            break
    index.shows_external_id = saw_external_key or not index.by_public_id
    if not index.shows_external_id:
        index.problems.append(
            "the server's list shows no externalId: signals cannot be matched to records by it"
        )
    return index


def _read_pass(
    index: ServerIndex,
    current: _Pass,
    fetch: Callable[[int], ListPage],
    page_size: int,
    max_signals: int,
    policy: RetryPolicy,
) -> bool:
    """Read one pass into ``index``; True when any item carried an externalId key."""
    saw_external_key = False
    offset = 0
    first_id: str | None = None
    while True:
        page = policy.call(lambda offset=offset: fetch(offset))  # type: ignore[misc]
        if page.total is None:
            current.headers_missing = True
        else:
            current.totals.append(page.total)
        limit = min(page_size, page.limit) if page.limit else page_size
        for n, item in enumerate(page.items):
            signal = to_signal(item)
            if signal is None:
                current.garbage += 1
                continue
            if n == 0 and offset == 0:
                first_id = signal.public_id
            elif n == 0 and signal.public_id == first_id and len(page.items) >= limit:
                current.offset_ignored = True  # the same first page again: offset ignored
                return saw_external_key
            saw_external_key |= "externalId" in item
            _add(index, signal)
        current.items += len(page.items)
        offset += len(page.items)
        if len(index.by_public_id) > max_signals:
            current.capped = True
            return saw_external_key
        if not page.items or len(page.items) < limit:
            return saw_external_key
        if page.total is not None and offset >= page.total:
            return saw_external_key


def _add(index: ServerIndex, signal: ServerSignal) -> None:
    if signal.public_id in index.by_public_id:
        return
    index.by_public_id[signal.public_id] = signal
    if signal.external_id is not None:
        index.by_external_id.setdefault(signal.external_id, []).append(signal)


def _settled(index: ServerIndex, current: _Pass, last: bool) -> bool:
    """Is the listing complete (or past helping)? Sets ``complete`` and ``problems``."""
    problems: list[str] = []
    if current.garbage:
        problems.append(
            f"the server's list held {current.garbage} item(s) that are not signals "
            "(not an object, or no publicId); skipped"
        )
    if current.offset_ignored:
        problems.append("the server's list answered the same page for every offset")
    if current.capped:
        problems.append(f"the server's list holds more than {len(index.by_public_id):,} signals")
    if len(set(current.totals)) > 1:
        problems.append(
            f"the server's list changed while it was read (X-Total-Count "
            f"{current.totals[0]} then {current.totals[-1]})"
        )
    total = current.totals[-1] if current.totals else None
    short = total is not None and len(index.by_public_id) + current.garbage < total
    if short and not problems:
        problems.append(
            f"the server's list showed {len(index.by_public_id)} distinct signals of the "
            f"{total} it counts (its order shifts between pages?)"
        )
    index.complete = not problems
    fixable = not current.garbage and not current.offset_ignored and not current.capped
    if index.complete or last or not fixable:
        if current.headers_missing:
            problems.insert(
                0, "the server's list sent no X-Total-Count: read until a page came back short"
            )
        index.problems = problems
        return True
    return False
