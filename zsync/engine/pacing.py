"""Request pacing: a shared token bucket, the rate learned from 429s.

Workers call :meth:`Pacer.acquire` before every request (first attempts and retries
alike), so creates and polls share one budget. Without ``--rate`` (or ``--delay-ms``) nothing
is paced until the server answers 429; then the pacer learns the rate the server granted,
settles just below it and holds every request back until the server has had a moment to
refill. The pacer only spaces requests: how many are in flight is the limiter's alone
(:mod:`zsync.engine.limiter`, which also backs off on a 429). After a 429 the rate is probed
upwards: gently for the first seconds (the
limit is probably where it was), then faster and faster while no 429 comes (the estimate
was low, or the limit was raised), so a low first guess costs seconds, not the whole run.

The granted rate is measured between two cuts: the server's bucket was empty at both, so
the successes in between over the time in between is what it refills at, however large
its burst. That average is low when the pace was far below the limit for part of the
time (a low first guess still being probed up), so when the last second granted much more,
the two are averaged. At the first 429 there is no earlier cut: the successes since the
start stand in, over the time since the start plus one second (a bucket's burst is usually
about one second's worth), or those of the last second when that is less.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

# How far below the observed granted rate to settle after a 429.
_SETTLE = 0.97
# Upward probe, as a relative rate increase per second: _PROBE for the first _PROBE_CALM
# seconds after a 429, then doubling every _PROBE_DOUBLING seconds up to _PROBE_MAX.
_PROBE = 0.01
_PROBE_CALM = 3.0
_PROBE_DOUBLING = 1.0
_PROBE_MAX = 1.0
_PROBE_FLOOR = 1.0  # requests/s gained per second at the least (tiny learned rates)
_FIRST_GUESS = 10.0  # requests/s when a 429 arrives before anything succeeded
_WINDOW = 1.0
# The last second granted this much more than the average since the previous cut: the pace
# was far below the limit for part of that time, and the average undersells the limit.
_FAR_BELOW = 1.25
# 429s within this long of a cut belong to the same burst: one cut per burst, not one per
# request that was already in flight.
_HOLD = _WINDOW / 2


def probe_factor(quiet: float) -> float:
    """How much the learned rate has grown after ``quiet`` seconds without a 429."""
    if quiet <= 0:
        return 1.0
    calm = min(quiet, _PROBE_CALM)
    growth = _PROBE * calm
    if quiet > _PROBE_CALM:
        # g(t) = _PROBE * 2 ** ((t - calm) / doubling), capped at _PROBE_MAX: integrate it.
        k = math.log(2) / _PROBE_DOUBLING
        t_cap = _PROBE_CALM + math.log2(_PROBE_MAX / _PROBE) * _PROBE_DOUBLING
        rising = min(quiet, t_cap) - _PROBE_CALM
        growth += _PROBE * (math.exp(k * rising) - 1) / k
        if quiet > t_cap:
            growth += _PROBE_MAX * (quiet - t_cap)
    return math.exp(min(growth, 50.0))


class Pacer:
    """Thread-safe: every worker takes its request's slot here; 429s teach it the rate."""

    def __init__(
        self,
        *,
        rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        stop_event: threading.Event | None = None,
    ) -> None:
        """``rate``: the user's cap in requests per second (None: none until a 429);
        ``stop_event`` ends a wait for a slot early."""
        self._user_rate = rate if rate and rate > 0 else None
        self._learned_rate: float | None = None
        self._learned_at = 0.0
        self._clock = clock
        self._stop = stop_event or threading.Event()
        self._lock = threading.Lock()
        self._next_slot = clock()
        self._born = clock()
        self._successes: deque[float] = deque()
        self._since_cut = 0  # successes since the last cut
        self._last_cut = -1e9
        self.throttled = 0  # 429 answers seen

    # -- rate ----------------------------------------------------------------------

    def current_rate(self) -> float | None:
        """The pace now: the lower of the user's cap and the learned rate (probed upwards
        since the last 429); None when nothing is paced."""
        learned = self._learned_rate
        if learned is not None:
            quiet = self._clock() - self._learned_at
            learned = max(learned * probe_factor(quiet), learned + _PROBE_FLOOR * quiet)
        rates = [r for r in (self._user_rate, learned) if r is not None]
        return min(rates) if rates else None

    def reserve(self) -> float:
        """Take the next request slot; returns how long to wait for it (seconds)."""
        with self._lock:
            rate = self.current_rate()
            if rate is None:
                return 0.0
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / rate
        return slot - now

    def acquire(self) -> bool:
        """Wait for this request's slot. False if the run is stopping."""
        delay = self.reserve()
        if delay > 0:
            return not self._stop.wait(delay)
        return not self._stop.is_set()

    # -- feedback ------------------------------------------------------------------

    def success(self) -> None:
        """A request succeeded: counted towards the rate the server grants."""
        now = self._clock()
        with self._lock:
            self._successes.append(now)
            self._since_cut += 1
            while self._successes and self._successes[0] < now - _WINDOW:
                self._successes.popleft()

    def throttle(self) -> None:
        """A 429: count it, and once per burst learn the rate the server granted."""
        now = self._clock()
        with self._lock:
            self.throttled += 1
            if now - self._last_cut < _HOLD:
                return
            current = self.current_rate()
            recent = sum(1 for t in self._successes if t >= now - _WINDOW) / _WINDOW
            if self._learned_rate is not None:
                granted = self._since_cut / (now - self._last_cut)
                if recent > _FAR_BELOW * granted:
                    granted = (granted + recent) / 2
            else:
                # Everything granted since the start, over the time since the start plus one
                # second for the burst: a full bucket of about a second's worth makes the last
                # second alone look like up to twice the refill rate.
                since_start = self._since_cut / (now - self._born + _WINDOW)
                granted = min(recent, since_start) if since_start else recent
            self._last_cut = now
            self._since_cut = 0
            if granted:
                estimate = max(1.0, granted * _SETTLE)
            else:
                estimate = max(1.0, current / 2) if current is not None else _FIRST_GUESS
            self._learned_rate = estimate
            self._learned_at = now
            # Nobody should fire before the server has had a moment to refill.
            self._next_slot = max(self._next_slot, now + 1.0 / estimate)
