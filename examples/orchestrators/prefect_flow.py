"""A Prefect flow that syncs an export into Zentrik with zsync's Python API.

    pip install prefect zsync
    ZENTRIK_API_KEY=... python examples/orchestrators/prefect_flow.py

The logic is :func:`zsync_task.sync_file` (tested against the emulator); this file only wraps
it. Not run by the test suite: Prefect is not a dependency of zsync.

A run that leaves work pending (exit 75: --max-duration reached, signals still processing) or
finds the ledger held by another run (exit 5) raises ``SyncPending``; the task's retries run
it again later, and the ledger makes the re-run continue where the last one stopped. Any
other failure (``SyncFailed``: rejected items, a bad key) is not retried: it needs a person.
Keep one
ledger per workspace on a volume that outlives the worker (or let ``zsync verify --repair``
rebuild it); and let one flow run at a time write to it.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from zsync_task import SyncPending, sync_file


def retry_if_pending(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry condition: only a run that left work for the next one is retried."""
    try:
        state.result()
    except SyncPending:
        return True
    except Exception:
        return False
    return False


@task(retries=3, retry_delay_seconds=300, retry_condition_fn=retry_if_pending)
def push_export(path: str, ledger: str) -> dict[str, Any]:
    """One zsync push; its counts become the task's result."""
    return sync_file([path], ledger=ledger, max_duration=1800)


@flow(name="zentrik-signals")
def zentrik_signals(path: str = "tickets.jsonl", ledger: str = "zsync.db") -> dict[str, Any]:
    """Sync the day's export into Zentrik Signals."""
    return push_export(path, ledger)


if __name__ == "__main__":
    zentrik_signals()
