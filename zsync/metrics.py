"""Prometheus text-format metrics for node_exporter's textfile collector.

Written at the end of every run, atomically (temp file + rename in the same directory), so
the collector never reads half a file.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

from zsync.errors import UsageError
from zsync.ledger import Ledger
from zsync.model import UNFINISHED, RunResult


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


Sample = tuple[str, int | float]


def _number(value: int | float) -> str:
    """Exact: integers as integers, other numbers at full precision (``%g`` kept only six
    digits, so a timestamp was off by up to ±83 minutes and counts over a million rounded)."""
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _metric(name: str, kind: str, help_: str, samples: list[Sample]) -> list[str]:
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
    lines.extend(f"{name}{labels} {_number(value)}" for labels, value in samples)
    return lines


def _run_metrics(result: RunResult) -> list[str]:
    command = f'command="{_label(result.command)}"'
    return [
        *_metric(
            "zsync_run_items",
            "gauge",
            "Items by outcome in the last run of each command.",
            [(f'{{{command},outcome="{_label(k)}"}}', v) for k, v in sorted(result.counts.items())],
        ),
        *_metric(
            "zsync_run_duration_seconds",
            "gauge",
            "Wall time of the last run.",
            [(f"{{{command}}}", result.duration)],
        ),
        *_metric(
            "zsync_run_exit_code",
            "gauge",
            "Exit code of the last run.",
            [(f"{{{command}}}", int(result.exit_code))],
        ),
        *_metric(
            "zsync_run_requests",
            "gauge",
            "HTTP answers in the last run, by status.",
            [
                (f'{{{command},status="{_label(k)}"}}', v)
                for k, v in sorted(result.requests.items())
            ],
        ),
        *_metric(
            "zsync_run_rate_limited",
            "gauge",
            "429 answers in the last run.",
            [(f"{{{command}}}", result.throttled)],
        ),
        *_concurrency_metric(result, command),
    ]


def _concurrency_metric(result: RunResult, command: str) -> list[str]:
    limits = [(k.removeprefix("limit_"), v) for k, v in result.concurrency.items() if "limit" in k]
    if not limits:
        return []
    return _metric(
        "zsync_run_concurrency_limit",
        "gauge",
        "Requests-in-flight limit of the last run: the highest reached and the last.",
        [(f'{{{command},which="{k}"}}', v) for k, v in limits],
    )


def _ledger_metrics(ledger: Ledger) -> list[str]:
    counts = ledger.items.counts_by_status()
    lines = [
        *_metric(
            "zsync_ledger_items",
            "gauge",
            "Items in the ledger by status.",
            [(f'{{status="{_label(k)}"}}', v) for k, v in sorted(counts.items())],
        ),
        *_metric(
            "zsync_items_pending",
            "gauge",
            "Items not yet settled (pending, submitted, error, conflict).",
            [("", sum(counts.get(s, 0) for s in UNFINISHED))],
        ),
    ]
    last_ok = _epoch(ledger.runs.last_success())
    if last_ok is not None:
        lines += _metric(
            "zsync_last_success_timestamp_seconds",
            "gauge",
            "When a run last finished with exit 0.",
            [("", last_ok)],
        )
    return lines


def render(result: RunResult, ledger: Ledger) -> str:
    """The Prometheus text format (node_exporter's textfile collector)."""
    lines = _run_metrics(result) + _ledger_metrics(ledger)
    lines += _metric(
        "zsync_last_run_timestamp_seconds",
        "gauge",
        "When this file was written.",
        [("", time.time())],
    )
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename, readable by the collector's user;
    UsageError when its directory does not exist (a typo must not create one)."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"--metrics-file {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # the collector runs as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
