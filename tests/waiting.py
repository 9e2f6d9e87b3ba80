"""Waiting on a condition, never on a fixed sleep: a test that waits must not depend on how
fast the machine (or the emulator's real clock) happens to be that day."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], object], what: str, *, timeout: float = 30.0, every: float = 0.02
) -> None:
    """Return as soon as ``condition()`` is true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def wait_seconds(seconds: float) -> None:
    """Let at least ``seconds`` pass on the monotonic clock (the emulator's clock): for a
    test that needs time to have passed, however long its other steps took."""
    until = time.monotonic() + seconds
    wait_until(lambda: time.monotonic() >= until, f"{seconds:g} s to pass", timeout=seconds + 30)
