"""What the dashboard shows, from the rows of its queries: the headline numbers, the tables
and the charts (``charts``). Pure Python (no Datasette), so it is tested without a server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from zsync.model import NEEDS_LOOK, Status
from zsync.ui.charts import (
    Row,
    causes_chart,
    duration,
    durations_chart,
    exit_label,
    exit_tone,
    histogram_chart,
    order,
    outcomes_chart,
    statuses_chart,
    trend_chart,
)
from zsync.ui.queries import CHART_RUNS


def counts_text(counts_json: str | None) -> str:
    """A run's counts in one line, most telling first: ``10 created, 6 processed, 4 failed``."""
    counts: dict[str, int] = json.loads(counts_json) if counts_json else {}
    shown = [k for k in order(list(counts)) if counts[k] and k != "attempted"]
    return ", ".join(f"{counts[k]:,} {k}" for k in shown)


@dataclass
class Chart:
    """One chart card: its title, a line saying what it shows, its spec, and its query."""

    slug: str
    title: str
    note: str
    spec: dict[str, Any]
    query: str
    empty: str = ""

    @property
    def has_data(self) -> bool:
        """False when there is nothing to draw (the card then says why)."""
        values = self.spec["data"]["values"]
        return bool(values)


@dataclass
class Page:
    """Everything the dashboard template renders."""

    runs: list[Row]
    last_run: Row | None
    statuses: list[Row]
    items_total: int
    needs_total: int
    needs_breakdown: str
    needs: list[Row]
    causes: list[Row]
    processing: Row | None
    bookmarks: list[Row]
    binding: dict[str, str]
    lock: str
    charts: list[Chart] = field(default_factory=list)


def _run_row(r: Row) -> Row:
    return {
        **r,
        "took": duration(r["seconds"]),
        "exit": exit_label(r["exit_code"]),
        "tone": exit_tone(r["exit_code"]),
        "summary": counts_text(r["counts"]),
    }


def _processing(r: Row) -> Row:
    return {**r, **{f"{k}_text": duration(r[f"{k}_seconds"]) for k in ("median", "p90", "max")}}


def _need_row(r: Row) -> Row:
    """The reason without the origin it starts with (shown in its own column)."""
    origin, reason = r.get("origin"), r.get("reason") or ""
    return {**r, "reason": reason.removeprefix(f"{origin}: ") if origin else reason}


def build(data: dict[str, list[Row]], lease: list[Row], recent: int = 10) -> Page:
    """The page, from each query's rows (keyed by query name) and the lease row, if any."""
    runs = [_run_row(r) for r in data["runs"]]
    statuses = data["statuses"]
    by_status = {r["status"]: r["items"] for r in statuses}
    needs_counts = [(s, by_status.get(s.value, 0)) for s in Status if s in NEEDS_LOOK]
    trend = data["processing_trend"]
    lock = "free"
    if lease:
        holder = lease[0]
        lock = (
            f"held by run #{holder['run_id']} ({holder['command']}, pid {holder['pid']} on "
            f"{holder['host']}) since {holder['acquired_at']}"
        )
    chart_runs = list(reversed(data["runs"][:CHART_RUNS]))
    page = Page(
        runs=runs[:recent],
        last_run=runs[0] if runs else None,
        statuses=statuses,
        items_total=sum(by_status.values()),
        needs_total=sum(n for _s, n in needs_counts),
        needs_breakdown=" · ".join(f"{n:,} {s.value}" for s, n in needs_counts if n),
        needs=[_need_row(r) for r in data["needs_a_person"]],
        causes=data["failure_causes"],
        processing=_processing(trend[-1]) if trend else None,
        bookmarks=data["bookmarks"],
        binding={r["key"]: r["value"] for r in data["binding"]},
        lock=lock,
    )
    page.charts = [
        Chart(
            "outcomes",
            "Records per run",
            "What each run did, by outcome (unchanged records are left out).",
            outcomes_chart(data["run_outcomes"]),
            "run_outcomes",
            "No run has handled a record yet.",
        ),
        Chart(
            "durations",
            "Run duration and exit code",
            "How long each run took; green exit 0, amber 75 (continued next run), red other.",
            durations_chart([r for r in chart_runs if r["seconds"] is not None]),
            "runs",
            "No finished runs yet.",
        ),
        Chart(
            "failure-trend",
            "Failures per run, by cause",
            "Is a cause growing? Failed, rejected, invalid, conflict and error events.",
            causes_chart(data["failure_trend"]),
            "failure_trend",
            "No failures recorded.",
        ),
        Chart(
            "processing-histogram",
            "How long processing takes",
            f"Signals by time from create to processed, last {CHART_RUNS} runs.",
            histogram_chart(data["processing_histogram"]),
            "processing_histogram",
            "No signal processed yet.",
        ),
        Chart(
            "processing-trend",
            "Processing time per run",
            "Median and 90th percentile, create to processed.",
            trend_chart(trend[-CHART_RUNS:]),
            "processing_trend",
            "No signal processed yet.",
        ),
        Chart(
            "statuses",
            "Items by status now",
            f"{page.items_total:,} items in the ledger.",
            statuses_chart(statuses),
            "statuses",
            "The ledger holds no items yet.",
        ),
    ]
    return page
