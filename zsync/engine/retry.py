"""The one retry policy: what is retried, how long to wait, when to give up.

Only :class:`~zsync.errors.TransientError` is retried, always with the same request (same body,
same Idempotency-Key). A ``Retry-After`` from the server wins over our own backoff; otherwise
the wait is full-jitter exponential. The time budget (``EVAL_API_WAIT_SECONDS``) is the
limit, as in the import template: a failure that comes before it is retried, and no wait
carries a call past it (the last wait is shortened so one more attempt starts at the
deadline). A call gives up when its budget is spent, when the server's own ``Retry-After``
lies beyond it, when an explicit ``max_attempts`` is reached (none by default: a hidden cap
would end a call long before its budget), or when the stop event is set (SIGTERM), and then
re-raises the last real error so the caller sees what actually went wrong.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from zsync.errors import TransientError

T = TypeVar("T")

OnRetry = Callable[[TransientError, int, float], None]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or None when it says nothing usable.

    Accepts delta-seconds (fractions tolerated) and HTTP-dates; a date in the past means 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are always GMT; a "-0000" zone parses as naive.
        when = when.replace(tzinfo=UTC)
    try:
        target = when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, target - current)


class _StopAtBudget(stop_base):
    """Stop once the budget is spent, or when the next wait (a server's Retry-After; our own
    waits are shortened to fit) would end past it. Measured in policy time (see _CallState)."""

    def __init__(self, budget: float, call: _CallState, min_wait: float) -> None:
        self.budget = budget
        self.call = call
        self.min_wait = min_wait  # less than this left: no attempt worth a wait remains

    def __call__(self, retry_state: RetryCallState) -> bool:
        left = self.budget - self.call.elapsed(retry_state)
        return left <= 0 or left < self.min_wait or retry_state.upcoming_sleep > left + 1e-9


class _StopOnEvent(stop_base):
    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.event.is_set()


class _Wait(wait_base):
    def __init__(self, policy: RetryPolicy, call: _CallState) -> None:
        self.policy = policy
        self.call = call

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        wait = self.policy.wait_for(error, retry_state.attempt_number)
        if getattr(error, "retry_after", None) is not None:
            return wait  # the server's word: never shortened (past the budget, we stop)
        # Our own backoff never carries a call past its budget: the last attempt is made
        # at the deadline rather than given up before it.
        left = self.policy.budget - self.call.elapsed(retry_state)
        return max(0.0, min(wait, left))


# Multiplies every backoff (never a server's Retry-After). 1.0 but under set_testing().
_backoff_scale = 1.0
# A cap on attempts a test suite may ask for; None (no cap) but under set_testing().
_testing_attempts: int | None = None


def set_testing(scale: float | None = 0.01, *, max_attempts: int | None = None) -> None:
    """For test suites: retries wait ``scale`` times as long (still real, still bounded);
    None restores real waits. ``max_attempts`` caps a run's attempts per request: waits a
    hundredth as long spend a 120 s budget in thousands of attempts, so a test that leaves
    an endpoint unanswered asks for a cap to end in milliseconds. A real run has none: its
    budget alone ends a call. The switch lives here, in code, not in user settings."""
    global _backoff_scale, _testing_attempts
    _backoff_scale = 1.0 if scale is None else max(0.0, scale)
    _testing_attempts = None if scale is None else max_attempts


@dataclass
class _CallState:
    first_attempt: float  # seconds the first attempt took, made before tenacity starts
    last: TransientError | None = None
    real_slept: float = 0.0

    def elapsed(self, retry_state: RetryCallState) -> float:
        """Policy time since the call began: the real time spent outside waits plus the
        waits as requested, so a policy whose sleep does not really sleep (tests) takes
        exactly the decisions a real one would."""
        spent = self.first_attempt + (retry_state.seconds_since_start or 0.0)
        return spent - self.real_slept + retry_state.idle_for


@dataclass
class RetryPolicy:
    """How one call is retried: the time budget, the backoff, the attempts (see the module)."""

    budget: float = 120.0
    max_attempts: int | None = None  # None: only the budget ends a call, as in the template
    initial: float = 0.5
    maximum: float = 10.0
    min_wait: float = 0.05
    stop_event: threading.Event | None = None
    sleep: Callable[[float], None] | None = None
    # Waits the instant policy would have done; only filled by :meth:`instant`.
    slept: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.min_wait < 0 or self.initial < 0 or self.maximum < 0 or self.budget < 0:
            raise ValueError("retry times must not be negative")

    @classmethod
    def for_run(cls, budget: float) -> RetryPolicy:
        """The policy of a run: ``budget`` seconds of retrying per request at the most."""
        s = _backoff_scale
        return cls(
            budget=budget,
            max_attempts=_testing_attempts,
            initial=0.5 * s,
            maximum=10.0 * s,
            min_wait=0.05 * s,
        )

    @classmethod
    def instant(cls, **kw: Any) -> RetryPolicy:
        """Same decisions as a real policy, but waits are only recorded in ``.slept``."""
        if "sleep" in kw:
            raise TypeError("instant() records its own waits; do not pass sleep")
        policy = cls(**kw)
        policy.sleep = policy.slept.append
        return policy

    def wait_for(self, error: BaseException | None, attempt_number: int) -> float:
        """Seconds to wait after failed attempt ``attempt_number`` (1-based) with ``error``."""
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after >= 0:
            return max(float(retry_after), self.min_wait)
        ceiling = min(self.maximum, self.initial * 2.0 ** min(attempt_number - 1, 60))
        return random.uniform(self.min_wait, max(self.min_wait, ceiling))

    def call(self, fn: Callable[[], T], *, on_retry: OnRetry | None = None) -> T:
        """Run ``fn`` until it succeeds, a non-transient error occurs, or retrying is over."""
        # The first attempt runs bare: setting up tenacity for every request cost more than
        # the rest of the worker's own bookkeeping. Its error is handed to tenacity as the
        # outcome of attempt 1, so every decision after it is tenacity's, as before.
        started = time.monotonic()
        try:
            return fn()
        except TransientError as exc:
            first: list[TransientError] = [exc]
        state = _CallState(time.monotonic() - started)

        def attempt() -> T:
            if first:
                raise first.pop()
            return fn()

        def before_sleep(retry_state: RetryCallState) -> None:
            outcome = retry_state.outcome
            error = outcome.exception() if outcome is not None else None
            if not isinstance(error, TransientError):  # only transient errors are retried
                return
            state.last = error
            if on_retry is not None:
                on_retry(error, retry_state.attempt_number, retry_state.upcoming_sleep)

        def sleep(seconds: float) -> None:
            started = time.monotonic()
            try:
                if self.sleep is not None:
                    self.sleep(seconds)
                elif self.stop_event is not None:
                    self.stop_event.wait(seconds)
                else:
                    time.sleep(seconds)
            finally:
                state.real_slept += time.monotonic() - started
            if self.stop_event is not None and self.stop_event.is_set() and state.last:
                # Stopped while waiting: no further attempt, the caller gets the real error.
                raise state.last

        stop: stop_base = _StopAtBudget(self.budget, state, self.min_wait)
        if self.max_attempts is not None:
            stop = stop | stop_after_attempt(self.max_attempts)
        if self.stop_event is not None:
            stop = stop | _StopOnEvent(self.stop_event)
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=_Wait(self, state),
            stop=stop,
            before_sleep=before_sleep,
            sleep=sleep,
            reraise=True,
        )
        return retrying(attempt)
