"""The logic of an orchestrator task that syncs a file into Zentrik with zsync's Python API.

Plain Python over ``zsync.push``: an Airflow, Dagster or Prefect task calls :func:`sync_file`
and lets its exception fail (or retry) the task. ``prefect_flow.py`` beside this file is the
Prefect wrapper; the test suite runs this function against the emulator.

The exit codes a scheduler must tell apart (README "Exit codes"):
0 done; 75 work still pending (the next run continues it: retry the task later);
5 another run holds the ledger (try again later); anything else needs a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zsync

# Exit codes after which the same task, run again later, finishes the job by itself.
RETRY_LATER = frozenset({75, 5})


class SyncPending(RuntimeError):
    """Work remains (exit 75) or another run holds the ledger (exit 5): retry the task."""


class SyncFailed(RuntimeError):
    """The run needs a person: item failures (1), usage (2), config or auth (3), API down (4)."""


def sync_file(
    paths: Sequence[str | Path],
    *,
    ledger: str | Path,
    mapping: str | Path | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    max_duration: float | None = None,
) -> dict[str, Any]:
    """Push ``paths`` into Zentrik; return what the task should record (counts, run id).

    The key falls back to ``ZENTRIK_API_KEY`` when ``api_key`` is None; keep it in the
    orchestrator's secret store, never in the task's parameters or logs.
    """
    result = zsync.push(
        input=list(paths),
        ledger=ledger,
        mapping=mapping,
        api_base=api_base,
        api_key=api_key,
        max_duration=max_duration,
    )
    summary = {"exit_code": int(result.exit_code), "run_id": result.run_id, **result.counts}
    if result.exit_code in RETRY_LATER:
        raise SyncPending(result.message or f"work still pending: {summary}")
    if result.exit_code != 0:
        problems = "; ".join(result.problems[:5])
        raise SyncFailed(result.message or f"exit {int(result.exit_code)}: {problems}")
    return summary
