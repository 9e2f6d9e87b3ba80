"""Seeded fault decisions and the per-key rate limit.

One ``random.Random`` behind one lock makes a seeded run reproducible for a given request
order: every decision (reset, 503, drop after commit, processing failure) draws from it, and
only when its rate is strictly between 0 and 1, so turning one fault on does not reshuffle
the others' draws at rates 0 or 1.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections.abc import Callable

from zsync.emulator.config import EmulatorConfig


class FaultInjector:
    """The emulator's seeded coin for every fault, and its per-key token buckets (``rate_limit``
    requests per second, bursts of as many)."""

    def __init__(self, config: EmulatorConfig, clock: Callable[[], float] = time.monotonic):
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._rng = random.Random(config.seed)
        # rate-limit key digest -> (tokens, time of last refill)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._bucket_rate = config.rate_limit

    def chance(self, probability: float) -> bool:
        """True with ``probability``; draws from the seeded generator only when it is strictly
        between 0 and 1."""
        if probability <= 0.0:
            return False
        if probability >= 1.0:
            return True
        with self._lock:
            return self._rng.random() < probability

    def take_token(self, credential: str) -> int | None:
        """None when the request may pass; else the Retry-After seconds (integer, >= 1)."""
        rate = self._config.rate_limit
        if rate <= 0:
            return None
        # Keyed by a digest so the presented key is never held in another structure.
        key = hashlib.sha256(credential.encode("utf-8", "replace")).hexdigest()
        burst = max(rate, 1.0)
        now = self._clock()
        with self._lock:
            if rate != self._bucket_rate:
                # A live change of the limit starts everyone with a fresh, full bucket.
                self._buckets.clear()
                self._bucket_rate = rate
            tokens, last = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))

    def reset(self) -> None:
        """Reseed the generator and refill every bucket: the next run draws as a fresh emulator."""
        with self._lock:
            self._rng = random.Random(self._config.seed)
            self._buckets.clear()


class InflightGauge:
    """API requests being answered right now: what a queueing server's latency and its
    overload refusals depend on. Always counted, so the live settings can be turned on mid-run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def enter(self, limit: int) -> int | None:
        """Admit a request: how many others are in flight, or None when ``limit`` (> 0) are."""
        with self._lock:
            others = self._count
            if 0 < limit <= others:
                return None
            self._count += 1
            return others

    def leave(self) -> None:
        """A request admitted by :meth:`enter` has been answered."""
        with self._lock:
            self._count -= 1

    @property
    def count(self) -> int:
        """Requests being answered now."""
        with self._lock:
            return self._count
