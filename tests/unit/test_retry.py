"""The retry policy: what is retried, how long it waits, when it gives up."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate

import pytest
import responses

from zsync.engine.client import ZentrikClient
from zsync.engine.retry import RetryPolicy, parse_retry_after
from zsync.errors import (
    AuthError,
    Rejected,
    ServerUnavailable,
    TransientError,
    TransportError,
    WarmingUp,
)
from zsync.errors import (
    RateLimited as RateLimitedError,
)

BASE = "https://zentrik.test/api"
KEY = "zk_test_retry_key_0123"
SIGNALS = f"{BASE}/external/v1/signals"


class Flaky:
    """Raises the given errors in turn, then returns ``result``; counts its calls."""

    def __init__(self, *errors: Exception, result: str = "done") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def always(make: Callable[[int], Exception]) -> Callable[[], str]:
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        raise make(calls["n"])

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


# -- parse_retry_after ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0", 0.0), ("1.5", 1.5), (" 7 ", 7.0), ("120", 120.0)],
)
def test_retry_after_seconds(header: str, expected: float) -> None:
    assert parse_retry_after(header) == expected


@pytest.mark.parametrize("header", [None, "", "  ", "soon", "-1", "nan", "inf", "3 seconds"])
def test_retry_after_garbage_means_no_hint(header: str | None) -> None:
    assert parse_retry_after(header) is None


def test_retry_after_http_date_in_the_future() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30.0)


def test_retry_after_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1_700_000_000.0) == 0.0


def test_retry_after_http_date_without_zone_is_gmt() -> None:
    now = 1_700_000_000.0
    header = formatdate(now + 12, usegmt=True).replace("GMT", "-0000")
    assert parse_retry_after(header, now=now) == pytest.approx(12.0)


# -- the policy ----------------------------------------------------------------------------


def test_transient_errors_are_retried_until_success() -> None:
    policy = RetryPolicy.instant()
    fn = Flaky(ServerUnavailable("503", 503), TransportError("reset"))
    assert policy.call(fn) == "done"
    assert fn.calls == 3
    assert len(policy.slept) == 2


def test_backoff_is_jittered_exponential_within_bounds() -> None:
    policy = RetryPolicy(initial=0.5, maximum=10.0, min_wait=0.05)
    error = ServerUnavailable("503", 503)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (6, 10.0), (12, 10.0)]:
        waits = [policy.wait_for(error, attempt) for _ in range(200)]
        assert all(0.05 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jittered, so parallel workers do not retry in lockstep


def test_retry_after_seconds_is_honoured() -> None:
    policy = RetryPolicy.instant()
    fn = Flaky(RateLimitedError("429", retry_after=7.0))
    assert policy.call(fn) == "done"
    assert policy.slept == [7.0]


@pytest.mark.parametrize("retry_after", [0.0, None])
def test_retry_after_zero_or_missing_never_busy_loops(retry_after: float | None) -> None:
    policy = RetryPolicy.instant(min_wait=0.05)
    fn = Flaky(*[RateLimitedError("429", retry_after=retry_after) for _ in range(5)])
    policy.call(fn)
    assert len(policy.slept) == 5
    assert all(wait >= 0.05 for wait in policy.slept)


def test_budget_exhausted_reraises_the_last_real_error() -> None:
    policy = RetryPolicy.instant(budget=3.0, max_attempts=1000)
    fn = always(lambda n: ServerUnavailable(f"503 service unavailable (attempt {n})", 503))
    with pytest.raises(ServerUnavailable) as caught:
        policy.call(fn)
    calls = fn.calls["n"]  # type: ignore[attr-defined]
    assert str(caught.value) == f"503 service unavailable (attempt {calls})"
    assert calls == len(policy.slept) + 1
    assert sum(policy.slept) < 3.0
    assert calls > 3  # it did retry before giving up


def test_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    policy = RetryPolicy.instant(budget=10.0)
    fn = Flaky(RateLimitedError("429 too many requests", retry_after=60.0))
    with pytest.raises(RateLimitedError):
        policy.call(fn)
    assert fn.calls == 1
    assert policy.slept == []


def test_attempts_are_bounded() -> None:
    policy = RetryPolicy.instant(max_attempts=4, budget=1e9)
    fn = always(lambda n: TransportError(f"reset {n}"))
    with pytest.raises(TransportError, match="reset 4"):
        policy.call(fn)
    assert len(policy.slept) == 3


def test_slow_attempts_count_against_the_budget() -> None:
    policy = RetryPolicy.instant(budget=0.26, initial=0.01, maximum=0.01, min_wait=0.01)

    def slow() -> str:
        time.sleep(0.1)
        raise TransportError("timed out")

    calls = Flaky()
    with pytest.raises(TransportError):
        policy.call(lambda: (calls(), slow())[1])
    assert calls.calls == 3


@pytest.mark.parametrize(
    "error",
    [
        Rejected("422 validation_failed: text is required (field text)", 422),
        AuthError("the API refused the key (401 unauthorized)"),
        ValueError("a bug"),
    ],
)
def test_permanent_errors_propagate_without_retry(error: Exception) -> None:
    policy = RetryPolicy.instant()
    fn = Flaky(error)
    with pytest.raises(type(error)) as caught:
        policy.call(fn)
    assert caught.value is error
    assert fn.calls == 1
    assert policy.slept == []


def test_on_retry_sees_each_error_attempt_and_wait() -> None:
    policy = RetryPolicy.instant()
    first = RateLimitedError("429", retry_after=2.0)
    second = ServerUnavailable("503", 503)
    seen: list[tuple[TransientError, int, float]] = []
    policy.call(Flaky(first, second), on_retry=lambda e, n, w: seen.append((e, n, w)))
    assert [(e, n) for e, n, _ in seen] == [(first, 1), (second, 2)]
    assert [w for _, _, w in seen] == policy.slept
    assert seen[0][2] == 2.0


def test_stop_event_already_set_stops_after_the_first_failure() -> None:
    stop = threading.Event()
    stop.set()
    policy = RetryPolicy.instant(stop_event=stop)
    fn = Flaky(ServerUnavailable("503", 503))
    with pytest.raises(ServerUnavailable):
        policy.call(fn)
    assert fn.calls == 1
    assert policy.slept == []


def test_stop_event_set_during_a_real_wait_ends_it_at_once() -> None:
    stop = threading.Event()
    policy = RetryPolicy(stop_event=stop)
    fn = Flaky(RateLimitedError("429", retry_after=30.0))
    timer = threading.Timer(0.05, stop.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(RateLimitedError):
            policy.call(fn)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 2.0
    assert fn.calls == 1  # no attempt after the stop


def test_stop_event_set_by_on_retry_prevents_the_next_attempt() -> None:
    stop = threading.Event()
    policy = RetryPolicy.instant(stop_event=stop)
    fn = Flaky(ServerUnavailable("503", 503))
    with pytest.raises(ServerUnavailable):
        policy.call(fn, on_retry=lambda *_: stop.set())
    assert fn.calls == 1


def test_instant_refuses_a_sleep_override() -> None:
    with pytest.raises(TypeError):
        RetryPolicy.instant(sleep=time.sleep)


# -- the policy around real client calls ---------------------------------------------------


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client() -> Iterator[ZentrikClient]:
    with ZentrikClient(BASE, KEY) as c:
        yield c


CREATED = {"publicId": "SIGNAL-7", "jobId": "job-7", "workspaceId": "ws-1"}
BODY = b'{"externalId":"r-1","signalType":"transcript","text":"hello"}'


def test_503_503_201_succeeds_on_the_third_call_with_the_same_body_and_key(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.post(SIGNALS, status=503, body="upstream down")
    rsps.post(SIGNALS, status=503, body="upstream down")
    rsps.post(SIGNALS, status=201, json=CREATED)
    policy = RetryPolicy.instant()
    receipt = policy.call(lambda: client.create_signal(BODY, "zsync:v1:abc"))
    assert receipt.public_id == "SIGNAL-7"
    assert len(rsps.calls) == 3
    assert {c.request.body for c in rsps.calls} == {BODY}
    assert {c.request.headers["Idempotency-Key"] for c in rsps.calls} == {"zsync:v1:abc"}
    assert len(policy.slept) == 2


def test_429_retry_after_header_seconds(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.post(SIGNALS, status=429, headers={"Retry-After": "4"}, json={"message": "slow down"})
    rsps.post(SIGNALS, status=201, json=CREATED)
    policy = RetryPolicy.instant()
    policy.call(lambda: client.create_signal(BODY, "k1"))
    assert policy.slept == [4.0]


def test_429_retry_after_http_date(rsps: responses.RequestsMock, client: ZentrikClient) -> None:
    when = formatdate(time.time() + 10, usegmt=True)
    rsps.post(SIGNALS, status=429, headers={"Retry-After": when})
    rsps.post(SIGNALS, status=201, json=CREATED)
    policy = RetryPolicy.instant()
    policy.call(lambda: client.create_signal(BODY, "k1"))
    assert len(policy.slept) == 1
    assert 8.0 <= policy.slept[0] <= 10.5


@pytest.mark.parametrize("header", ["0", "garbage"])
def test_429_retry_after_zero_or_garbage_still_waits(
    rsps: responses.RequestsMock, client: ZentrikClient, header: str
) -> None:
    for _ in range(3):
        rsps.post(SIGNALS, status=429, headers={"Retry-After": header})
    rsps.post(SIGNALS, status=201, json=CREATED)
    policy = RetryPolicy.instant(min_wait=0.05)
    policy.call(lambda: client.create_signal(BODY, "k1"))
    assert len(policy.slept) == 3
    assert all(wait >= 0.05 for wait in policy.slept)


def test_budget_spent_on_503s_raises_the_503(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    rsps.post(SIGNALS, status=503, json={"error": {"message": "maintenance"}})
    policy = RetryPolicy.instant(budget=5.0, max_attempts=1000)
    with pytest.raises(ServerUnavailable, match="503 service unavailable: maintenance"):
        policy.call(lambda: client.create_signal(BODY, "k1"))
    assert len(rsps.calls) == len(policy.slept) + 1 > 1


@pytest.mark.parametrize(
    ("status", "error"), [(422, Rejected), (400, Rejected), (401, AuthError), (403, AuthError)]
)
def test_client_errors_are_sent_exactly_once(
    rsps: responses.RequestsMock,
    client: ZentrikClient,
    status: int,
    error: type[Exception],
) -> None:
    rsps.post(SIGNALS, status=status, body=json.dumps({"message": "no"}))
    policy = RetryPolicy.instant()
    with pytest.raises(error):
        policy.call(lambda: client.create_signal(BODY, "k1"))
    assert len(rsps.calls) == 1
    assert policy.slept == []


def test_warming_up_get_is_retried_then_succeeds(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    front_end = '<!doctype html><html><script src="/static/index.html"></script></html>'
    rsps.get(f"{SIGNALS}/SIGNAL-7", status=404, body=front_end)
    rsps.get(f"{SIGNALS}/SIGNAL-7", status=200, json={"publicId": "SIGNAL-7", "status": "queued"})
    policy = RetryPolicy.instant()
    errors: list[TransientError] = []
    state = policy.call(
        lambda: client.get_signal("SIGNAL-7"), on_retry=lambda e, *_: errors.append(e)
    )
    assert state.status == "queued"
    assert len(rsps.calls) == 2
    assert isinstance(errors[0], WarmingUp)


def test_starting_api_is_waited_for_at_readyz(
    rsps: responses.RequestsMock, client: ZentrikClient
) -> None:
    starting = {"checks": {"database": "ok", "workspaceQueue": "starting"}}
    rsps.get(f"{BASE}/readyz", status=503, json=starting)
    rsps.get(f"{BASE}/readyz", json={"checks": {"database": "ok", "workspaceQueue": "ok"}})
    policy = RetryPolicy.instant()
    assert policy.call(client.readyz) == {"database": "ok", "workspaceQueue": "ok"}
    assert len(rsps.calls) == 2
