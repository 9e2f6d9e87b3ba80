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


def render(result: RunResult, ledger: Ledger) -> str:
    command = _label(result.command)
    out: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{labels} {value:g}" for labels, value in samples)

    metric(
        "zsync_run_items",
        "gauge",
        "Items by outcome in the last run of each command.",
        [
            (f'{{command="{command}",outcome="{_label(k)}"}}', v)
            for k, v in sorted(result.counts.items())
        ],
    )
    metric(
        "zsync_run_duration_seconds",
        "gauge",
        "Wall time of the last run.",
        [(f'{{command="{command}"}}', round(result.duration, 3))],
    )
    metric(
        "zsync_run_exit_code",
        "gauge",
        "Exit code of the last run.",
        [(f'{{command="{command}"}}', int(result.exit_code))],
    )
    metric(
        "zsync_run_requests",
        "gauge",
        "HTTP answers in the last run, by status.",
        [
            (f'{{command="{command}",status="{_label(k)}"}}', v)
            for k, v in sorted(result.requests.items())
        ],
    )
    metric(
        "zsync_run_rate_limited",
        "gauge",
        "429 answers in the last run.",
        [(f'{{command="{command}"}}', result.throttled)],
    )
    limits = [(k.removeprefix("limit_"), v) for k, v in result.concurrency.items() if "limit" in k]
    if limits:
        metric(
            "zsync_run_concurrency_limit",
            "gauge",
            "Requests-in-flight limit of the last run: the highest reached and the last.",
            [(f'{{command="{command}",which="{k}"}}', v) for k, v in limits],
        )
    counts = ledger.counts_by_status()
    metric(
        "zsync_ledger_items",
        "gauge",
        "Items in the ledger by status.",
        [(f'{{status="{_label(k)}"}}', v) for k, v in sorted(counts.items())],
    )
    metric(
        "zsync_items_pending",
        "gauge",
        "Items not yet settled (pending, submitted, error, conflict).",
        [("", sum(counts.get(s, 0) for s in UNFINISHED))],
    )
    last_ok = _epoch(ledger.last_success())
    if last_ok is not None:
        metric(
            "zsync_last_success_timestamp_seconds",
            "gauge",
            "When a run last finished with exit 0.",
            [("", round(last_ok, 3))],
        )
    metric(
        "zsync_last_run_timestamp_seconds",
        "gauge",
        "When this file was written.",
        [("", round(time.time(), 3))],
    )
    return "\n".join(out) + "\n"


def write(path: Path, text: str) -> None:
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
