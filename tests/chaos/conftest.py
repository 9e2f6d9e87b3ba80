"""Prints what the chaos suites survived at the end of the session (kills, faults by kind,
bad inputs, duplicates and losses found), so `make chaos` ends with the figures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chaos.helpers import FIGURES, LIVE

_STARTED = time.monotonic()
# The emulator's truth["faults"] keys, as a reader of the summary would name them.
_FAULT_NAMES = {
    "error_503": "503 answers",
    "reset": "connection resets",
    "dropped_after_commit": "answers lost after commit",
    "rate_limited_429": "429s with Retry-After",
    "latency": "requests delayed",
    "http_401_revoked": "401s mid-run",
    "redirect": "redirects (3xx)",
    "echoed_key": "error bodies echoing the key",
}


@pytest.fixture(autouse=True)
def _no_stray_processes() -> Iterator[None]:
    yield
    while LIVE:
        proc = LIVE.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    figures = FIGURES
    hardening = ("lease_probes", "faulty_records", "endless_peak_mb", "corrupt_tried", "key_places")
    if not any(figures[k] for k in ("records_checked", "bad_inputs", "kills", *hardening)):
        return
    faults = figures["faults"]
    kinds = ", ".join(f"{_FAULT_NAMES.get(name, name)} {n:,}" for name, n in sorted(faults.items()))
    write = terminalreporter.write_line
    terminalreporter.section("chaos summary")
    write(
        f"kills survived:        {figures['kills']} SIGKILL "
        f"({figures['kills_mid_send']} while signals were being created), "
        f"{figures['interrupts']} SIGTERM/SIGINT"
    )
    write(f"faults injected:       {kinds or 'none'}")
    write(f"API outages:           {figures['outages']} (listener stopped and restarted)")
    write(
        f"bad inputs tried:      {figures['bad_inputs']} corpus files through zsync push, "
        f"{figures['bad_records']} bad records mixed into good files"
    )
    write(f"ledger faults tried:   {figures['ledger_faults']} (each exit 5, file left as it was)")
    write(f"overlapping runs:      {figures['overlaps']} refused at once, naming the holder")
    if "outage_run_seconds" in figures:
        write(
            f"API down for good:     400-record run ended {figures['outage_run_seconds']}s "
            f"after the API died, {figures['outage_requests']:,} requests later "
            "(wait budget 2s)"
        )
    _hardening(write, figures)
    write(f"records checked:       {figures['records_checked']:,} against the emulator's truth")
    write(f"duplicates found:      {figures['duplicates']}")
    write(f"records lost:          {figures['lost']}")
    write(f"wall time:             {time.monotonic() - _STARTED:.0f}s")


def _hardening(write: Any, figures: dict[str, Any]) -> None:
    """Issue 13's figures (tests/chaos/test_hardening_*.py)."""
    if figures["lease_probes"]:
        write(
            f"runs overlapped:       {figures['overlapped']} of {figures['lease_probes']} second "
            "runs started against a live holder (paused producer, SIGSTOP)"
        )
    if figures["faulty_records"]:
        write(
            f"records blocked:       {figures['blocked']} good records held back by "
            f"{figures['faulty_records']} faulty ones among them"
        )
    if figures["endless_peak_mb"]:
        peaks = figures["endless_peak_mb"]
        write(
            f"endless line:          peak memory {max(peaks)} MB at most over {len(peaks)} runs "
            "(file, pipe, source program, JSON array), each ended by --max-duration"
        )
    if figures["corrupt_tried"]:
        write(
            f"corrupt ledgers:       {figures['corrupt_accepted']} accepted of "
            f"{figures['corrupt_tried']} (push, status and check each exit 5)"
        )
    if figures["key_places"]:
        write(
            f"key found:             {figures['key_found']} times in {figures['key_places']} "
            "places (ledger, WAL, export, show, status, check) with a server echoing it"
        )
