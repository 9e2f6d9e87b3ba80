"""The pacer on a fake clock: the user's cap, what a 429 teaches it, and how it recovers.

The last tests drive it, with the limiter that decides the concurrency, against a simulated
server token bucket (the emulator's: a burst of one second's worth) the way the engine does,
and check what a user would notice: the run takes about requests / rate, and few requests
are answered 429.
"""

from __future__ import annotations

import heapq
import math

import pytest

from zsync.engine.limiter import Limiter
from zsync.engine.pacing import Pacer, probe_factor


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_without_a_rate_or_a_429_nothing_waits() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    assert [pacer.reserve() for _ in range(100)] == [0.0] * 100


def test_a_rate_spaces_requests_evenly() -> None:
    clock = Clock()
    pacer = Pacer(rate=50, clock=clock)
    waits = [pacer.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.02, 0.04, 0.06, 0.08])


def test_the_first_429_discounts_the_burst_of_a_full_bucket() -> None:
    """A server granting 100/s with a burst of 100: 200 successes in the first second."""
    clock = Clock()
    pacer = Pacer(clock=clock)
    for _ in range(200):
        clock.now += 0.005
        pacer.success()
    pacer.throttle()
    assert pacer.current_rate() == pytest.approx(100 * 0.97)
    for _ in range(7):  # the rest of the burst: counted, but one cut
        pacer.throttle()
    assert pacer.throttled == 8
    assert pacer.current_rate() == pytest.approx(100 * 0.97)


def test_later_429s_measure_what_was_granted_since_the_last_one() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    for _ in range(100):
        clock.now += 0.002  # a fast burst: 100 in 0.2 s
        pacer.success()
    pacer.throttle()
    for _ in range(100):  # then 50/s for two seconds
        clock.now += 0.02
        pacer.success()
    pacer.throttle()
    assert pacer.current_rate() == pytest.approx(50 * 0.97, rel=0.02)


def test_a_429_before_any_success_starts_slow() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    pacer.throttle()
    assert pacer.current_rate() == pytest.approx(10.0)


def test_the_user_rate_is_never_exceeded() -> None:
    clock = Clock()
    pacer = Pacer(rate=20, clock=clock)
    for _ in range(100):
        clock.now += 0.01
        pacer.success()
    pacer.throttle()
    clock.now += 600  # a long quiet time: the learned rate has grown far past 20
    assert pacer.current_rate() == 20


def test_the_probe_is_gentle_at_first_and_then_speeds_up() -> None:
    assert probe_factor(0) == 1.0
    assert probe_factor(3.0) < 1.035  # right after a 429 the limit is where it was
    assert probe_factor(10.0) > 2.0  # a long quiet spell: the estimate was low
    assert probe_factor(1e6) == pytest.approx(math.exp(50))


def simulate(
    requests: int, rate: float, burst: float, latency: float, concurrency: int = 8
) -> tuple[float, int]:
    """(seconds, 429 answers) for ``requests`` through a token bucket of ``rate``/``burst``.

    Like the engine with ``--concurrency``: a job starts while fewer than the limiter's limit
    are in flight; every attempt takes a slot from the pacer; a 429 throttles both (the pacer
    learns the rate, the limiter backs off) and waits its Retry-After (whole seconds, at least
    one, as the emulator sends) before the same job tries again.
    """
    clock = Clock()
    start = clock.now
    pacer = Pacer(clock=clock)
    limiter = Limiter(adaptive=False, initial=concurrency, ceiling=concurrency, clock=clock)
    tokens, refilled = burst, clock.now
    events: list[tuple[float, int, str]] = []
    seq = waiting = inflight = limited = 0
    waiting = requests

    def later(delay: float, kind: str) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (clock.now + delay, seq, kind))

    def start_jobs() -> None:
        nonlocal waiting, inflight
        while waiting and inflight < limiter.allowed(pacer.current_rate()):
            waiting -= 1
            inflight += 1
            later(pacer.reserve() + latency / 2, "arrive")

    start_jobs()
    while events:
        clock.now, _, kind = heapq.heappop(events)
        if kind == "arrive":
            tokens = min(burst, tokens + (clock.now - refilled) * rate)
            refilled = clock.now
            if tokens >= 1:
                tokens -= 1
                later(latency / 2, "ok")
            else:
                limited += 1
                later(latency / 2, "429")
        elif kind == "ok":
            pacer.success()
            limiter.finished(latency, succeeded=True)
            inflight -= 1
            start_jobs()
        elif kind == "429":
            pacer.throttle()
            limiter.finished(None, throttled=True)
            retry_after = max(1, math.ceil((1 - tokens) / rate))
            later(retry_after + pacer.reserve() + latency / 2, "arrive")
    return clock.now - start, limited


@pytest.mark.parametrize("latency", [0.002, 0.02])
@pytest.mark.parametrize("concurrency", [8, 16])
def test_against_a_rate_limit_the_run_takes_about_the_ideal_time(
    latency: float, concurrency: int
) -> None:
    seconds, limited = simulate(2000, rate=100, burst=100, latency=latency, concurrency=concurrency)
    ideal = 2000 / 100
    assert seconds <= 1.1 * ideal
    assert limited < 0.02 * 2000


def test_a_burst_larger_than_one_second_is_measured_not_assumed() -> None:
    seconds, limited = simulate(2000, rate=50, burst=150, latency=0.002)
    assert seconds <= 1.1 * 2000 / 50
    assert limited < 0.02 * 2000


def test_a_bucket_with_a_small_burst_does_not_leave_the_run_crawling() -> None:
    # The first 429 comes after 10 successes: the first guess is far too low, and the
    # probe must find the real limit within seconds.
    seconds, limited = simulate(4000, rate=200, burst=10, latency=0.002)
    assert seconds <= 3 * 4000 / 200
    assert limited < 0.02 * 4000
