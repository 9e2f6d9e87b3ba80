"""Test helpers: an emulator on a free port that is always stopped afterwards.

In a conftest: ``from tests.emulator.testing import emulator`` makes the ``emulator`` fixture
available; ``emulator_fixture(name=..., **overrides)`` makes variants (e.g. a rate-limited one).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from zsync.emulator.config import EmulatorConfig
from zsync.emulator.server import RunningEmulator, start_emulator

# Fast processing keeps tests that wait for `processed` short; a fixed seed keeps fault
# draws reproducible; inspection is on because tests assert the server's truth.
TEST_DEFAULTS: dict[str, Any] = {
    "port": 0,
    "inspect": True,
    "process_seconds": 0.2,
    "seed": 1234,
}

__all__ = [
    "TEST_DEFAULTS",
    "EmulatorConfig",
    "RunningEmulator",
    "emulator",
    "emulator_fixture",
    "running_emulator",
    "start_emulator",
]


@contextlib.contextmanager
def running_emulator(**overrides: Any) -> Iterator[RunningEmulator]:
    """An emulator with the test defaults (free port, inspection on), stopped on exit."""
    running = start_emulator(EmulatorConfig(**{**TEST_DEFAULTS, **overrides}))
    try:
        yield running
    finally:
        running.stop()


def emulator_fixture(
    name: str = "emulator", **overrides: Any
) -> Callable[[], Iterator[RunningEmulator]]:
    """A function-scoped pytest fixture called ``name`` yielding an emulator with ``overrides``."""

    def fixture() -> Iterator[RunningEmulator]:
        with running_emulator(**overrides) as running:
            yield running

    fixture.__name__ = name
    return pytest.fixture(name=name)(fixture)


emulator = emulator_fixture()
