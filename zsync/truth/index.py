"""The server index: the list endpoint read page by page into externalId -> signal.

Bounded (a cap on passes and on signals), paced (each request waits for the run's rate
budget), and resumable (a transient failure retries that page, not the whole listing).

A listing is trusted as **complete** only when proven: every pass pages by offset until the
server answers an empty page (a short page proves nothing: a server may cap its pages below
the limit asked); no page repeats a signal the pass already saw or comes back short in the
middle of the list. With ``X-Total-Count`` the distinct signals read must reach a total that
held still; without it, two passes in a row must read the same signals. The list's order is
undocumented, so an order that shifts between pages is met by reading again while a pass
still finds new signals, up to ``max_passes``. Everything else is ``complete = False`` with
one line in ``problems`` saying why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zsync.engine import ListPage, RetryPolicy, ZentrikClient
from zsync.errors import ApiError, TransientError
from zsync.ledger import Anchor
from zsync.model import ServerIndex, ServerSignal
from zsync.shape.canonical import field_hashes

PAGE = 100  # the documented maximum
MAX_SIGNALS = 5_000_000
# Fields the server adds to a signal: not part of what a record sends.
SERVER_FIELDS = frozenset(
    {"publicId", "jobId", "workspaceId", "status", "createdAt", "updatedAt", "processing", "error"}
)


def to_signal(item: Any, redact: Callable[[str], str] | None = None) -> ServerSignal | None:
    """A listed item as a signal; None when it is not one (no object, no publicId). Every text
    kept from it passes through ``redact``: it is stored in the ledger and printed."""
    if not isinstance(item, dict):
        return None
    public_id = item.get("publicId")
    if not isinstance(public_id, str | int) or isinstance(public_id, bool) or public_id == "":
        return None
    clean = redact or _same
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
        public_id=clean(str(public_id)),
        external_id=clean(external_id) if isinstance(external_id, str) and external_id else None,
        source_key=clean(source_key) if isinstance(source_key, str) else None,
        status=clean(status.strip().lower()) if isinstance(status, str) else None,
        field_hashes=hashes,
        job_id=clean(job_id) if isinstance(job_id, str) else None,
    )


def _same(text: str) -> str:
    return text


class _Pass:
    """One read of the list from offset 0 to its empty page."""

    def __init__(self) -> None:
        self.totals: list[int] = []
        self.headers_missing = False
        self.garbage = 0
        self.items = 0
        self.ids: set[str] = set()
        self.repeated = 0  # signals a page showed that an earlier page of this pass showed
        self.shrank = False  # a short page with more pages after it
        self.offset_ignored = False
        self.first_page: list[str] | None = None  # the publicIds of the pass's first page
        self.capped = False
        self.last: str | None = None  # the publicId listed last, at the list's end

    @property
    def moved(self) -> bool:
        """Did the list move under this pass (a page repeated signals or shrank)?"""
        return self.repeated > 0 or self.shrank


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
    listing becomes one line in ``problems`` and, unless the listing is proven complete,
    ``complete = False`` (see :func:`zsync.truth.verify.complete_index` for callers that
    must not act on anything less)."""
    policy = retry or RetryPolicy()
    index = ServerIndex()
    saw_external_key = False
    redact = _redactor(client)
    previous: _Pass | None = None
    for number in range(max_passes):
        current = _Pass()

        def fetch(offset: int) -> ListPage:
            if pace is not None and not pace():
                raise InterruptedError("stopped")
            index.requests += 1
            return client.list_page(page_size, offset)

        before = len(index.by_public_id)
        saw_external_key |= _read_pass(index, current, fetch, max_signals, policy, redact)
        index.last_public_id = current.last
        # Another pass only while passes still find signals (an order that shifts per read),
        # or, without a total, until two passes in a row agree.
        stalled = number > 0 and len(index.by_public_id) == before and bool(current.totals)
        if _settled(index, current, previous, stalled or number + 1 == max_passes):
            break
        previous = current
    index.shows_external_id = saw_external_key or not index.by_public_id
    if not index.shows_external_id:
        index.problems.append(
            "the server's list shows no externalId: signals cannot be matched to records by it"
        )
    return index


def _redactor(client: ZentrikClient) -> Callable[[str], str]:
    """The client's own redaction of server values (the key, should the server echo it)."""

    def redact(text: str) -> str:
        return client._redacted(text) or ""

    return redact


def _read_pass(
    index: ServerIndex,
    current: _Pass,
    fetch: Callable[[int], ListPage],
    max_signals: int,
    policy: RetryPolicy,
    redact: Callable[[str], str],
) -> bool:
    """Read one pass into ``index``, by offset until an empty page; True when any item
    carried an externalId key."""
    saw_external_key = False
    offset = 0
    longest = 0  # the longest page so far: a shorter one is the end, or the list moved
    short_at: int | None = None
    while True:
        page = policy.call(lambda offset=offset: fetch(offset))  # type: ignore[misc]
        if page.total is None:
            current.headers_missing = True
        else:
            current.totals.append(page.total)
        if not page.items:
            return saw_external_key
        if short_at is not None:
            current.shrank = True  # a short page, then more: signals may have slid past
        fresh = 0
        page_ids: list[str] = []  # the page's signals, in order
        for item in page.items:
            signal = to_signal(item, redact)
            if signal is None:
                current.garbage += 1
                continue
            page_ids.append(signal.public_id)
            saw_external_key |= "externalId" in item
            if signal.public_id in current.ids:
                current.repeated += 1
                continue
            fresh += 1
            current.ids.add(signal.public_id)
            current.last = signal.public_id
            _add(index, signal)
        if current.first_page is None:
            current.first_page = page_ids
        elif page_ids and not fresh:
            # Nothing new at this offset: the first page again means the offset is not
            # honoured; other signals already shown mean the order moved (another pass reads it).
            current.offset_ignored = page_ids == current.first_page
            return saw_external_key
        current.items += len(page.items)
        offset += len(page.items)
        if len(page.items) < longest:
            short_at = offset
        longest = max(longest, len(page.items))
        if len(index.by_public_id) > max_signals:
            current.capped = True
            return saw_external_key


def _add(index: ServerIndex, signal: ServerSignal) -> None:
    if signal.public_id in index.by_public_id:
        return
    index.by_public_id[signal.public_id] = signal
    if signal.external_id is not None:
        index.by_external_id.setdefault(signal.external_id, []).append(signal)


def _keep_only(index: ServerIndex, ids: set[str]) -> None:
    """Forget signals an earlier pass saw that the agreeing passes no longer show."""
    if len(ids) == len(index.by_public_id):
        return
    signals = [s for p, s in index.by_public_id.items() if p in ids]
    index.by_public_id.clear()
    index.by_external_id.clear()
    for signal in signals:
        _add(index, signal)


def _settled(index: ServerIndex, current: _Pass, previous: _Pass | None, last: bool) -> bool:
    """Is the listing proven complete (or past helping)? Sets ``complete`` and ``problems``."""
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
    if not problems and total is None:
        why = _unproven_without_total(current, previous)
        if why is None:
            _keep_only(index, current.ids)  # what the agreeing reads show, nothing older
        else:
            problems.append(why)
    elif not problems and total is not None and len(index.by_public_id) + current.garbage < total:
        problems.append(
            f"the server's list showed {len(index.by_public_id)} distinct signals of the "
            f"{total} it counts (its order shifts between pages?)"
        )
    index.complete = not problems
    fixable = not current.garbage and not current.offset_ignored and not current.capped
    if index.complete or last or not fixable:
        if current.headers_missing:
            problems.insert(
                0,
                "the server's list sent no X-Total-Count: complete only when two reads to an "
                "empty page show the same signals",
            )
        index.problems = problems
        return True
    return False


def _unproven_without_total(current: _Pass, previous: _Pass | None) -> str | None:
    """Why a listing without a total is not proven (yet); None once two reads agree."""
    if current.moved:
        how = (
            f"a page repeated {current.repeated} signal(s) shown before"
            if current.repeated
            else "a page came back short before the end"
        )
        return f"the server's list moved while it was read ({how}) and gives no total to check"
    if previous is None:
        return "the server's list gives no total and was read only once"
    if previous.moved or previous.ids != current.ids:
        return (
            f"the server's list gives no total and two reads disagree ({len(previous.ids)} "
            f"then {len(current.ids)} signals)"
        )
    return None


def anchor_of_listing(
    client: ZentrikClient, retry: RetryPolicy, index: ServerIndex, own: int, run_id: int
) -> tuple[Anchor | None, int]:
    """The anchor at the end of a complete listing, and the requests made for it: none when
    the listing saw its last signal, else one request for it; None when there is none to be
    had (the ledger then reads the list again the next time it creates)."""
    count = len(index.by_public_id)
    if not index.complete:
        return None, 0
    if count == 0:
        return Anchor(0, "", own, run_id), 0
    if index.last_public_id in index.by_public_id:
        return Anchor(count, index.last_public_id, own, run_id), 0
    try:
        page = retry.call(lambda: client.list_page(1, count - 1))
    except (TransientError, ApiError):
        return None, 1
    last = to_signal(page.items[0]) if page.items else None
    if last is None or page.total not in (None, count):
        return None, 1
    return Anchor(count, last.public_id, own, run_id), 1
