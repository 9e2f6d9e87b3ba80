"""The adaptive concurrency limiter, driven by a simulated server (no real time passes)."""

from __future__ import annotations

from zsync.engine.limiter import CEILING, Limiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _round(limiter: Limiter, clock: Clock, rtt: float, *, refused: int = 0) -> None:
    """One round trip with the limiter's limit in flight: ``refused`` of them refused."""
    n = limiter.limit
    for _ in range(n):
        limiter.started()
    clock.now += rtt
    for k in range(n):
        limiter.finished(None if k < refused else rtt)


def test_flat_latency_grows_the_limit_to_the_ceiling() -> None:
    clock = Clock()
    limiter = Limiter(clock=clock)
    assert limiter.limit == 8
    for _ in range(20):
        _round(limiter, clock, 0.2)
    assert limiter.limit == CEILING
    assert limiter.peak == CEILING


def test_slow_start_grows_by_half_per_round_trip() -> None:
    clock = Clock()
    limiter = Limiter(clock=clock)
    _round(limiter, clock, 0.2)
    _round(limiter, clock, 0.2)
    assert limiter.limit == 18


def test_refusals_cut_the_limit_at_most_by_half() -> None:
    clock = Clock()
    limiter = Limiter(initial=32, clock=clock)
    _round(limiter, clock, 0.2, refused=32)
    assert limiter.limit == 16
    _round(limiter, clock, 0.2, refused=1)  # one in sixteen refused: a small cut
    assert limiter.limit == 14


def test_after_a_refusal_the_limit_stays_below_it_and_tries_again_later() -> None:
    clock = Clock()
    limiter = Limiter(initial=16, clock=clock)
    _round(limiter, clock, 0.2, refused=2)  # slow start ends at the first refusal
    assert limiter.limit == 14
    seen = []
    for _ in range(25):
        _round(limiter, clock, 0.2)
        seen.append(limiter.limit)
    assert seen[0] == 15 and max(seen[:19]) == 15  # not by half, and not up to 16 yet
    assert seen[-1] >= 16  # later it tries the refused level again


def test_a_queueing_server_holds_the_limit_where_latency_starts_to_climb() -> None:
    """Latency = 20 ms + 5 ms per other request in flight (the emulator's queueing server)."""
    clock = Clock()
    limiter = Limiter(clock=clock)
    seen = []
    for _ in range(60):
        n = limiter.limit
        _round(limiter, clock, 0.020 + 0.005 * (n - 1))
        seen.append(limiter.limit)
    assert max(seen[20:]) <= 16  # never runs away to the ceiling
    assert min(seen[20:]) >= 4


def test_latency_inflation_shrinks_the_limit() -> None:
    clock = Clock()
    limiter = Limiter(initial=40, clock=clock)
    limiter._slow_start = False
    _round(limiter, clock, 0.1)
    for _ in range(5):
        _round(limiter, clock, 0.3)  # three times the lowest latency: a long queue
    assert limiter.limit < 40


def test_a_window_limited_by_the_input_changes_nothing() -> None:
    clock = Clock()
    limiter = Limiter(clock=clock)
    for _ in range(10):
        limiter.started()
        clock.now += 0.3
        limiter.finished(0.3)  # one request at a time: nothing learned about the server
    assert limiter.limit == 8


def test_a_fixed_limit_never_moves() -> None:
    clock = Clock()
    limiter = Limiter(adaptive=False, initial=5, ceiling=5, clock=clock)
    for _ in range(10):
        _round(limiter, clock, 0.2)
    _round(limiter, clock, 0.2, refused=5)
    assert limiter.limit == 5 and limiter.peak == 5 and not limiter.changes


def test_a_429_halves_even_a_fixed_limit_once_per_burst() -> None:
    clock = Clock()
    limiter = Limiter(adaptive=False, initial=8, ceiling=8, clock=clock)
    for _ in range(8):  # the whole burst in flight is answered 429: one cut
        limiter.started()
        limiter.finished(None, throttled=True)
    assert limiter.limit == 4 and limiter.allowed(1000.0) == 4
    clock.now += 1
    limiter.started()
    limiter.finished(None, throttled=True)  # a second burst
    assert limiter.limit == 2


def test_successes_bring_the_concurrency_back_after_429s() -> None:
    clock = Clock()
    limiter = Limiter(adaptive=False, initial=8, ceiling=8, clock=clock)
    limiter.finished(0.01, succeeded=True)
    limiter.finished(None, throttled=True)
    clock.now += 1
    limiter.finished(None, throttled=True)
    assert limiter.limit == 2
    for _ in range(40):
        limiter.finished(0.01, succeeded=True)
    assert limiter.limit == 8


def test_a_known_rate_caps_an_adaptive_limit_by_the_round_trip() -> None:
    clock = Clock()
    limiter = Limiter(clock=clock)
    for _ in range(3):
        _round(limiter, clock, 0.1)
    assert limiter.allowed(None) == limiter.limit > 4
    assert limiter.allowed(20.0) == 4  # 20/s for 0.1 s, with a quarter's headroom, plus one


def test_changes_are_reported_with_a_reason() -> None:
    clock = Clock()
    limiter = Limiter(clock=clock)
    _round(limiter, clock, 0.2)
    _round(limiter, clock, 0.2, refused=16)
    first, second = limiter.changes
    assert (first.old, first.new) == (8, 12) and "latency 200 ms" in first.reason
    assert (second.old, second.new) == (12, 6) and "12 of 12 refused" in second.reason
