"""The server index over bad list answers: one clear line or a warning, never a wrong repair."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from zsync.engine.client import ZentrikClient
from zsync.engine.retry import RetryPolicy
from zsync.errors import ApiUnavailable, IncompleteListing
from zsync.truth.index import read_index, to_signal
from zsync.truth.verify import load_index

BASE = "https://zentrik.test/api"
SIGNALS = f"{BASE}/external/v1/signals"


def _signal(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "publicId": f"SIGNAL-{n}",
        "externalId": f"r-{n}",
        "status": "processed",
        "text": f"text {n}",
        "signalType": "transcript",
        **extra,
    }


def _serve(rsps: Any, signals: list[Any], *, headers: bool = True, shrink: bool = False) -> None:
    reads = [0]

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        import json
        from urllib.parse import parse_qs, urlsplit

        query = parse_qs(urlsplit(request.url).query)
        limit, offset = int(query["limit"][0]), int(query["offset"][0])
        total = len(signals) - (reads[0] if shrink else 0)
        reads[0] += 1
        page = signals[offset : min(offset + limit, total)]
        head = {"X-Total-Count": str(total), "X-Limit": str(limit), "X-Offset": str(offset)}
        return 200, head if headers else {}, json.dumps(page)

    rsps.add_callback(responses.GET, SIGNALS, callback=callback)


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def client() -> Any:
    with ZentrikClient(BASE, "k-secret") as c:
        yield c


def test_pages_through_everything_one_request_per_page(rsps: Any, client: ZentrikClient) -> None:
    _serve(rsps, [_signal(n) for n in range(250)])
    index = read_index(client, retry=RetryPolicy.instant())
    assert len(index.by_public_id) == 250 and index.complete and not index.problems
    assert index.requests == 4  # three pages and the empty page that proves the end
    assert index.find("r-7") is not None and index.find("r-7").public_id == "SIGNAL-7"  # type: ignore[union-attr]


def test_missing_headers_are_said_once_and_two_reads_to_an_empty_page_prove_it(
    rsps: Any, client: ZentrikClient
) -> None:
    _serve(rsps, [_signal(n) for n in range(150)], headers=False)
    index = read_index(client, retry=RetryPolicy.instant())
    assert len(index.by_public_id) == 150 and index.complete
    assert index.problems == [
        "the server's list sent no X-Total-Count: complete only when two reads to an empty "
        "page show the same signals"
    ]
    assert index.requests == 6


def test_a_list_that_shrinks_between_reads_is_incomplete(rsps: Any, client: ZentrikClient) -> None:
    _serve(rsps, [_signal(n) for n in range(250)], shrink=True)
    index = read_index(client, retry=RetryPolicy.instant())
    assert not index.complete
    assert any("changed while it was read" in p for p in index.problems)


def test_garbage_items_are_skipped_with_a_warning(rsps: Any, client: ZentrikClient) -> None:
    items: list[Any] = [_signal(0), "SIGNAL-1", {"externalId": "r-2"}, _signal(3), 7, None]
    _serve(rsps, items)
    index = read_index(client, retry=RetryPolicy.instant())
    assert sorted(index.by_public_id) == ["SIGNAL-0", "SIGNAL-3"]
    assert not index.complete
    assert index.problems == [
        "the server's list held 4 item(s) that are not signals (not an object, or no "
        "publicId); skipped"
    ]


def test_a_list_without_external_ids_is_said_once(rsps: Any, client: ZentrikClient) -> None:
    items = [{k: v for k, v in _signal(n).items() if k != "externalId"} for n in range(3)]
    _serve(rsps, items)
    index = read_index(client, retry=RetryPolicy.instant())
    assert not index.shows_external_id and index.by_external_id == {}
    assert index.problems == [
        "the server's list shows no externalId: signals cannot be matched to records by it"
    ]


def test_a_server_that_ignores_offset_does_not_loop(rsps: Any, client: ZentrikClient) -> None:
    page = [_signal(n) for n in range(100)]
    rsps.get(SIGNALS, json=page, headers={"X-Total-Count": "1000"})
    index = read_index(client, retry=RetryPolicy.instant())
    assert not index.complete and len(index.by_public_id) == 100
    assert "the server's list answered the same page for every offset" in index.problems
    assert index.requests <= 6


def test_an_order_that_moves_on_every_read_is_read_again_not_called_offset_blind(
    rsps: Any, client: ZentrikClient
) -> None:
    """A list reshuffled on every read (the emulator's list_order=unstable): its second page
    may show only signals the first showed. That is a moved order, read again until the
    signals seen reach the total; not "the same page for every offset" (make chaos: a run
    refused to look anything up on that misreading)."""
    import json
    import random
    from urllib.parse import parse_qs, urlsplit

    signals = [_signal(n) for n in range(101)]
    rng = random.Random(5)

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)
        limit, offset = int(query["limit"][0]), int(query["offset"][0])
        order = rng.sample(signals, len(signals))
        return 200, {"X-Total-Count": str(len(signals))}, json.dumps(order[offset : offset + limit])

    rsps.add_callback(responses.GET, SIGNALS, callback=callback)
    index = read_index(client, retry=RetryPolicy.instant())
    assert index.complete and len(index.by_public_id) == 101, index.problems
    assert not any("same page for every offset" in p for p in index.problems)


def test_a_list_that_is_not_an_array_is_one_line_exit_4(rsps: Any, client: ZentrikClient) -> None:
    rsps.get(SIGNALS, json={"data": [_signal(1)]})
    with pytest.raises(ApiUnavailable) as caught:
        load_index(client, RetryPolicy.instant())
    assert str(caught.value) == (
        "the server's list of signals is unusable: list answered 200 with JSON object, "
        "not an array of signals"
    )
    assert int(caught.value.exit_code) == 4


def test_server_fields_are_not_content() -> None:
    a = to_signal(_signal(1, processing={"status": "x"}, updatedAt="2026-01-01", name=None))
    b = to_signal(_signal(1, status="queued", jobId="job-2"))
    assert a is not None and b is not None
    assert a.field_hashes == b.field_hashes
    assert to_signal({"publicId": True}) is None and to_signal(["x"]) is None


def _pages(rsps: Any, reads: list[list[Any]], cap: int) -> None:
    """Each read of the list (a pass) serves the next list in ``reads``, ``cap`` per page, no
    totals; a read ends when an empty page is served."""
    state = {"read": 0}

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        import json
        from urllib.parse import parse_qs, urlsplit

        offset = int(parse_qs(urlsplit(request.url).query)["offset"][0])
        signals = reads[min(state["read"], len(reads) - 1)]
        page = signals[offset : offset + cap]
        if not page:
            state["read"] += 1
        return 200, {}, json.dumps(page)

    rsps.add_callback(responses.GET, SIGNALS, callback=callback)


def test_capped_pages_without_totals_are_read_to_the_empty_page(
    rsps: Any, client: ZentrikClient
) -> None:
    signals = [_signal(n) for n in range(120)]
    _pages(rsps, [signals], cap=50)
    index = read_index(client, retry=RetryPolicy.instant())
    assert len(index.by_public_id) == 120 and index.complete
    assert index.requests == 8  # two reads of three pages and an empty one


def test_without_totals_two_reads_that_disagree_are_not_complete(
    rsps: Any, client: ZentrikClient
) -> None:
    reads = [[_signal(n) for n in range(k, 60 + k)] for k in range(8)]  # shifts every read
    _pages(rsps, reads, cap=25)
    index = read_index(client, retry=RetryPolicy.instant())
    assert not index.complete
    assert "two reads disagree" in index.problems[-1]
    with pytest.raises(IncompleteListing) as caught:
        from zsync.truth.verify import complete_index

        _pages(rsps, reads, cap=25)
        complete_index(client, RetryPolicy.instant())
    assert int(caught.value.exit_code) == 4
    assert "not proven complete" in str(caught.value)


def test_without_totals_a_page_that_repeats_signals_is_not_complete(
    rsps: Any, client: ZentrikClient
) -> None:
    signals = [_signal(n) for n in range(60)]
    moved = signals[:25] + signals[20:60]  # an insert at the front shifted five into page 2
    _pages(rsps, [moved], cap=25)
    index = read_index(client, retry=RetryPolicy.instant(), max_passes=2)
    assert not index.complete
    assert "a page repeated 5 signal(s) shown before" in index.problems[-1]


def test_without_totals_a_short_page_mid_list_is_not_complete(
    rsps: Any, client: ZentrikClient
) -> None:
    signals = [_signal(n) for n in range(60)]
    state = {"calls": 0}

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        import json
        from urllib.parse import parse_qs, urlsplit

        offset = int(parse_qs(urlsplit(request.url).query)["offset"][0])
        state["calls"] += 1
        size = 10 if offset == 25 else 25  # one page came back short, more followed
        return 200, {}, json.dumps(signals[offset : offset + size])

    rsps.add_callback(responses.GET, SIGNALS, callback=callback)
    index = read_index(client, retry=RetryPolicy.instant(), max_passes=2)
    assert not index.complete
    assert "a page came back short before the end" in index.problems[-1]


def test_a_total_the_list_does_not_reach_is_caught_by_paging_to_the_empty_page(
    rsps: Any, client: ZentrikClient
) -> None:
    signals = [_signal(n) for n in range(130)]

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        import json
        from urllib.parse import parse_qs, urlsplit

        offset = int(parse_qs(urlsplit(request.url).query)["offset"][0])
        # The total says 100, but the list goes on: a stale or capped count.
        return 200, {"X-Total-Count": "100"}, json.dumps(signals[offset : offset + 100])

    rsps.add_callback(responses.GET, SIGNALS, callback=callback)
    index = read_index(client, retry=RetryPolicy.instant())
    assert len(index.by_public_id) == 130


def test_echoed_key_is_redacted_from_every_kept_value(client: ZentrikClient) -> None:
    from zsync.truth.index import _redactor

    signal = to_signal(_signal(1, jobId="job-1-k-secret", sourceKey="k-secret"), _redactor(client))
    assert signal is not None
    assert "k-secret" not in repr(signal)
    assert signal.job_id == "job-1-***"
