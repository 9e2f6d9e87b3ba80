"""verify as one library call: the client, the pacer and the retry policy a command needs
around :func:`zsync.truth.verify.verify`, built from the settings. ``zsync verify`` and
:func:`zsync.verify` both call :func:`verify_ledger` and only render what it returns."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from zsync.config import Settings
from zsync.engine import Pacer, RetryPolicy, ZentrikClient
from zsync.truth.verify import VerifyReport, verify


def verify_ledger(
    settings: Settings,
    *,
    repair: bool = False,
    rate: float | None = None,
    examples: int = 5,
    stop_event: threading.Event | None = None,
) -> VerifyReport:
    """Compare the ledger with the server's list (``repair``: adopt the server's truth, and
    rebuild a missing or empty ledger); list requests one at a time, at most ``rate`` a
    second. Raises the :mod:`zsync.errors` a command turns into its exit code."""
    started = time.monotonic()
    stop = stop_event or threading.Event()
    pacer = Pacer(rate=rate, stop_event=stop)
    retry = replace(RetryPolicy.for_run(settings.wait_budget), stop_event=stop)
    with ZentrikClient(settings.api_base, settings.require_key()) as client:
        report = verify(
            settings.ledger_path,
            client,
            retry=retry,
            repair_ledger=repair,
            pace=pacer.acquire,
            examples=examples,
            api_base=settings.api_base,
        )
    report.seconds = time.monotonic() - started
    return report
