"""Adaptive concurrency: how many requests to keep in flight, learned from the server.

A latency-based limiter in the family of TCP Vegas and the gradient limiters of Netflix's
concurrency-limits (``VegasLimit``, ``Gradient2Limit``) and Envoy's adaptive concurrency
filter. Samples (one per attempt: its round-trip time, or that it was refused) are gathered
into windows of about one round trip each. At the end of a window:

- the window's median latency is compared with the lowest window median of the last
  half-minute (the server's latency with no queue); Vegas's estimate of the requests
  queueing at the server is ``limit * (1 - min / median)``;
- a window with refusals (429, 503, resets, timeouts) cuts the limit, by at most half and
  in proportion to the share refused (one random 503 in a hundred costs little);
- little queueing grows it: growing by half per window at the start (slow start, ended by the
  first cut, the first sign of queueing, or a step that finished no more requests per second
  than the window before, which is taken back), then a step of ``alpha`` per window, up to
  just below the limit at the last refusal, which is tried again only every 20 windows;
- much queueing (more than ``beta`` requests) shrinks it by a step;
- a window in which fewer than half the limit were ever in flight changes nothing: the run
  was limited by its input or by the rate cap, and says nothing about the server.

The limit stays within [1, ceiling]. A fixed limit (``--concurrency N``) is the same object
with ``adaptive=False``: it records samples for the report and never moves.

Beside the learned limit, a 429 backs off at once, adaptive or fixed (AIMD): the first 429 of
a burst halves the requests in flight, and each success gives back about one slot per window
of successes. :attr:`Limiter.limit` is the lower of the two, and :meth:`Limiter.allowed`
also caps it by what a known request rate can use. The limiter is the one owner of the
concurrency; the pacer (:mod:`zsync.engine.pacing`) only spaces requests. Whatever the limit
does, it only decides when the next request starts; a request's retries keep their body and
Idempotency-Key.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from zsync.model import CONCURRENCY_CEILING

CEILING = CONCURRENCY_CEILING
INITIAL = 8
# How long a window's latency counts as "the latency with no queue" (the server may change).
_MIN_RTT_SECONDS = 30.0
# A window ends after this many samples (or this many seconds with at least one sample).
_MIN_SAMPLES = 4
_MAX_WINDOW_SECONDS = 1.0
# Growth per window in slow start: half again, not double, so the overshoot into a rate
# limit the server does not announce (refused only one round trip later) stays small.
_SLOW_START = 1.5
# A slow-start step must raise the requests finished per second by this much, or it is
# taken back (HyStart's idea: more in flight that finishes no more only queues).
_PLATEAU = 1.15
# The deepest cut one window of refusals can make.
_MAX_CUT = 0.5
# After a refusal the limit grows back to just below where it was refused, and tries that
# level again only after this many windows (each try costs a refusal or two).
_HOLD_WINDOWS = 20
# Any window with a refusal cuts at least this much.
_MIN_CUT = 0.9
# 429s within this long of a backoff belong to the same burst: one cut per burst, not one per
# request that was already in flight.
_THROTTLE_HOLD = 0.5
# Concurrency allowed above what a known rate needs (see Limiter.allowed).
_RATE_HEADROOM = 1.25


@dataclass(frozen=True, slots=True)
class Change:
    """A change of the limit, for the ``-v`` log."""

    old: int
    new: int
    reason: str


class Limiter:
    """Thread-safe: workers report samples, the engine reads :attr:`limit`."""

    def __init__(
        self,
        *,
        adaptive: bool = True,
        initial: int = INITIAL,
        ceiling: int = CEILING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.adaptive = adaptive
        self.ceiling = max(1, ceiling)
        self._limit = float(min(max(1, initial), self.ceiling))
        self._clock = clock
        self._lock = threading.Lock()
        self._slow_start = True
        self._grew_from: float | None = None  # the limit before the last slow-start step
        self._throughput = 0.0  # requests finished per second in the last window
        self._dropped_at = float("inf")  # the limit at the last refusal
        self._since_drop = 0  # windows since then
        self._window: list[float] = []
        self._drops = 0
        self._window_started = clock()
        self._window_peak = 0  # most requests on the wire at once during the window
        self._on_wire = 0
        self._minima: deque[tuple[float, float]] = deque()  # (when, window median)
        # The 429 backoff (AIMD), adaptive or fixed: starts at the ceiling, so it only ever
        # lowers the limit after a 429.
        self._backoff = float(self.ceiling)
        self._last_throttle = -1e9
        self.peak = self._learned
        self.changes: list[Change] = []

    @property
    def _learned(self) -> int:
        return max(1, int(self._limit))

    @property
    def limit(self) -> int:
        """How many requests may be in flight: the learned limit, lowered by 429 backoff."""
        return max(1, int(min(self._limit, self._backoff)))

    def allowed(self, rate: float | None) -> int:
        """:attr:`limit`, for requests paced at ``rate`` per second (None: not paced).

        Little's law: more in flight than the rate times the round trip only queues at the
        pacer, and lets an upward probe of the rate overshoot by that much (adaptive only;
        a fixed limit is the user's).
        """
        limit = self.limit
        rtt = self.min_rtt
        if rate is not None and rtt is not None and self.adaptive:
            limit = min(limit, math.ceil(rate * rtt * _RATE_HEADROOM) + 1)
        return limit

    @property
    def min_rtt(self) -> float | None:
        """The lowest window median latency of the last half-minute (None before one)."""
        # The deque's medians rise from front to back (see _close_window): its front is the least.
        # Read without the lock (the engine asks on every loop).
        try:
            return self._minima[0][1]
        except IndexError:
            return None

    # -- samples (worker threads) -----------------------------------------------------

    def started(self) -> None:
        """A request is going on the wire (after any pacing wait)."""
        with self._lock:
            self._on_wire += 1
            self._window_peak = max(self._window_peak, self._on_wire)

    def finished(
        self, rtt: float | None, *, succeeded: bool = False, throttled: bool = False
    ) -> Change | None:
        """The request came back: ``rtt`` seconds, or None when it was refused or lost;
        ``succeeded`` (a 2xx) gives back some of a 429 backoff, ``throttled`` (a 429) backs
        off. A change of the learned limit is returned for the ``-v`` log."""
        with self._lock:
            self._on_wire -= 1
            if throttled:
                self._throttle()
            elif succeeded:
                # Additive increase: about one more slot per window of successes.
                self._backoff = min(float(self.ceiling), self._backoff + 1.0 / self._backoff)
            if rtt is None:
                self._drops += 1
            else:
                self._window.append(rtt)
            if not self.adaptive:
                self._window.clear()
                self._drops = 0
                return None
            now = self._clock()
            n = len(self._window) + self._drops
            if n < max(_MIN_SAMPLES, self._learned) and (
                n == 0 or now - self._window_started < _MAX_WINDOW_SECONDS
            ):
                return None
            return self._close_window(now)

    # -- the update (under the lock) ---------------------------------------------------

    def _throttle(self) -> None:
        """A 429: once per burst, halve the backoff limit (multiplicative decrease)."""
        now = self._clock()
        if now - self._last_throttle < _THROTTLE_HOLD:
            return
        self._last_throttle = now
        self._backoff = max(1.0, self._backoff / 2)

    def _close_window(self, now: float) -> Change | None:
        samples, drops, peak = self._window, self._drops, self._window_peak
        throughput = (len(samples) + drops) / max(now - self._window_started, 1e-6)
        self._window, self._drops = [], 0
        self._window_started = now
        self._window_peak = self._on_wire
        old = self._learned
        self._since_drop += 1
        if drops:
            cut = max(_MAX_CUT, min(_MIN_CUT, 1.0 - drops / (drops + len(samples))))
            self._dropped_at = self._limit
            self._since_drop = 0
            self._limit = max(1.0, self._limit * cut)
            self._slow_start = False
            return self._changed(old, f"{drops} of {drops + len(samples)} refused")
        median = statistics.median(samples)
        # A sliding minimum: the deque's front is the lowest median of the last half-minute.
        while self._minima and self._minima[0][0] < now - _MIN_RTT_SECONDS:
            self._minima.popleft()
        while self._minima and self._minima[-1][1] >= median:
            self._minima.pop()
        self._minima.append((now, median))
        if peak * 2 < self._limit:
            return None  # limited by the input or the rate, not by the server
        floor = self._minima[0][1]
        queue = self._limit * (1.0 - floor / median) if median > 0 else 0.0
        alpha = max(3.0, 0.1 * self._limit)
        beta = max(6.0, 0.2 * self._limit)
        grew_from, self._grew_from = self._grew_from, None
        if grew_from is not None and throughput < _PLATEAU * self._throughput:
            # More in flight did not finish more per second (our own CPU, or the server,
            # is the bound): back to where it was, and no more slow-start growth.
            self._slow_start = False
            self._limit = grew_from
        elif queue < alpha / 2 and self._slow_start:
            self._grew_from = self._limit
            self._limit *= _SLOW_START
        elif queue < alpha:
            self._slow_start = False
            step = max(1.0, alpha / 3)
            if self._limit + step < self._dropped_at or self._since_drop >= _HOLD_WINDOWS:
                self._limit += step
        elif queue > beta:
            self._slow_start = False
            self._limit = max(1.0, self._limit - max(1.0, alpha / 3))
        self._limit = min(float(self.ceiling), self._limit)
        self._throughput = throughput
        return self._changed(old, f"latency {median * 1000:.0f} ms, lowest {floor * 1000:.0f} ms")

    def _changed(self, old: int, reason: str) -> Change | None:
        new = self._learned
        if new == old:
            return None
        self.peak = max(self.peak, new)
        change = Change(old, new, reason)
        if len(self.changes) < 1000:
            self.changes.append(change)
        return change
