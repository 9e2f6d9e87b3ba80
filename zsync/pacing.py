"""Request pacing: a shared token bucket and an adaptive (AIMD) concurrency limit.

Workers call :meth:`Pacer.acquire` before every request (first attempts and retries
alike), so creates and polls share one budget. When the server answers 429 the pacer
learns the rate it actually granted over the last second, caps itself just below it and
halves the concurrency; successes raise both back gradually.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

# How far below the observed granted rate to settle after a 429, and how fast to probe up.
_SETTLE = 0.97
_PROBE_PER_SECOND = 0.01
_PROBE_FLOOR = 1.0  # requests/s gained per second at the least
_FIRST_GUESS = 10.0  # requests/s when a 429 arrives before anything succeeded
_WINDOW = 1.0


class Pacer:
    def __init__(
        self,
        *,
        rate: float | None = None,
        concurrency: int = 8,
        clock: Callable[[], float] = time.monotonic,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.max_concurrency = max(1, concurrency)
        self._limit = float(self.max_concurrency)
        self._user_rate = rate if rate and rate > 0 else None
        self._learned_rate: float | None = None
        self._learned_at = 0.0
        self._clock = clock
        self._stop = stop_event or threading.Event()
        self._lock = threading.Lock()
        self._next_slot = clock()
        self._successes: deque[float] = deque()
        self._last_cut = -1e9
        self.throttled = 0  # 429 answers seen

    # -- rate ----------------------------------------------------------------------

    def current_rate(self) -> float | None:
        learned = self._learned_rate
        if learned is not None:
            # Probe upwards slowly: the limit may have been a burst or may have risen.
            step = max(learned * _PROBE_PER_SECOND, _PROBE_FLOOR)
            learned += step * (self._clock() - self._learned_at)
        rates = [r for r in (self._user_rate, learned) if r is not None]
        return min(rates) if rates else None

    def acquire(self) -> bool:
        """Wait for this request's slot. False if the run is stopping."""
        with self._lock:
            rate = self.current_rate()
            now = self._clock()
            if rate is None:
                return not self._stop.is_set()
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / rate
        delay = slot - now
        if delay > 0:
            return not self._stop.wait(delay)
        return not self._stop.is_set()

    # -- feedback ------------------------------------------------------------------

    def success(self) -> None:
        now = self._clock()
        with self._lock:
            self._successes.append(now)
            while self._successes and self._successes[0] < now - _WINDOW:
                self._successes.popleft()
            # Additive increase: about one more slot per window of successes.
            self._limit = min(float(self.max_concurrency), self._limit + 1.0 / self._limit)

    def throttle(self) -> None:
        now = self._clock()
        with self._lock:
            self.throttled += 1
            if now - self._last_cut < _WINDOW / 2:
                return  # one cut per burst of 429s, not one per in-flight request
            self._last_cut = now
            self._limit = max(1.0, self._limit / 2)
            granted = sum(1 for t in self._successes if t >= now - _WINDOW)
            if granted:
                estimate = max(1.0, granted * _SETTLE)
            else:
                current = self.current_rate()
                estimate = max(1.0, current / 2) if current is not None else _FIRST_GUESS
            self._learned_rate = estimate
            self._learned_at = now
            # Nobody should fire before the server has had a moment to refill.
            self._next_slot = max(self._next_slot, now + 1.0 / estimate)

    @property
    def limit(self) -> int:
        return max(1, int(self._limit))
