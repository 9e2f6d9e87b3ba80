"""A queueing server: latency that grows with concurrency, and 503 beyond a limit. These are
what an adaptive-concurrency client has to find its level against."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import requests

from tests.emulator.testing import running_emulator
from zsync.config import DEV_API_KEY
from zsync.emulator.server import RunningEmulator

BODY = {"text": "Slow intake", "signalType": "transcript"}


def _session() -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {DEV_API_KEY}"
    return session


@contextmanager
def held_requests(emu: RunningEmulator, n: int) -> Iterator[None]:
    """``n`` creates held in flight by handle_ms, from their own connections."""

    def create() -> None:
        with _session() as session:
            session.post(f"{emu.url}/external/v1/signals", json=BODY, timeout=10)

    threads = [threading.Thread(target=create) for _ in range(n)]
    for thread in threads:
        thread.start()
    wait_until(lambda: emu.inflight == n)
    try:
        yield
    finally:
        for thread in threads:
            thread.join()


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def timed_readyz(emu: RunningEmulator) -> float:
    started = time.monotonic()
    assert requests.get(f"{emu.url}/readyz", timeout=10).status_code == 200
    return time.monotonic() - started


def test_each_request_in_flight_adds_the_cost() -> None:
    with running_emulator(inflight_cost_ms=150, handle_ms=1500) as emu:
        alone = timed_readyz(emu)
        with held_requests(emu, 2):
            crowded = timed_readyz(emu)
        truth = emu.truth()
    assert alone < 0.15
    assert 0.3 <= crowded < 1.0
    # The second held create waited for the first, and readyz for both.
    assert truth["faults"]["inflight_delay"] == 2


def test_a_request_beyond_max_inflight_is_503_and_admitted_again_later() -> None:
    with running_emulator(max_inflight=2, handle_ms=800) as emu:
        with held_requests(emu, 2):
            refused = requests.get(f"{emu.url}/readyz", timeout=10)
        wait_until(lambda: emu.inflight == 0)
        admitted = requests.get(f"{emu.url}/readyz", timeout=10)
        truth = emu.truth()
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "overloaded"
    assert admitted.status_code == 200
    assert truth["faults"]["overloaded_503"] == 1
    assert len(truth["signals"]) == 2
    assert truth["requests"]["GET /api/readyz 503"] == 1


def test_concurrent_arrivals_beyond_the_limit_are_refused() -> None:
    with running_emulator(max_inflight=3, latency_ms=600) as emu:
        barrier = threading.Barrier(8)
        statuses: list[int] = []

        def call() -> None:
            with _session() as session:
                # Connect outside the race; paths outside /api are not counted or delayed.
                session.get(f"{emu.root}/", timeout=10)
                barrier.wait()
                statuses.append(session.get(f"{emu.url}/readyz", timeout=10).status_code)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        overloaded = emu.truth()["faults"]["overloaded_503"]
    assert sorted(statuses) == [200] * 3 + [503] * 5
    assert overloaded == 5


def test_the_gauge_returns_to_zero_after_resets_errors_and_drops() -> None:
    with running_emulator(
        reset_rate=0.2, error_rate=0.2, drop_after_commit_rate=0.2, max_inflight=100
    ) as emu:

        def hammer() -> None:
            with _session() as session:
                for _ in range(25):
                    with suppress(requests.ConnectionError):
                        session.post(f"{emu.url}/external/v1/signals", json=BODY, timeout=5)

        threads = [threading.Thread(target=hammer) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wait_until(lambda: emu.inflight == 0)
        assert emu.truth()["faults"]["reset"] > 0


def test_queueing_settings_change_while_running(emu: RunningEmulator) -> None:
    emu.set_faults(max_inflight=1, inflight_cost_ms=5)
    assert emu.config.max_inflight == 1
    assert timed_readyz(emu) < 1
