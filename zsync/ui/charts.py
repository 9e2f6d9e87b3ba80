"""The dashboard's charts as Vega-Lite specs (drawn in the browser by vega-embed), and the
colours and labels they share with the page's tables."""

from __future__ import annotations

from collections import Counter
from typing import Any

from zsync.errors import ExitCode

Row = dict[str, Any]

# One colour per outcome and status, the same on every chart: green done, red failed, ...
COLOURS: dict[str, str] = {
    "processed": "#2e9e5b",
    "created": "#4c78a8",
    "updated": "#72b7b2",
    "replayed": "#9ecae9",
    "requeued": "#b5a1d8",
    "submitted": "#e6b422",
    "pending": "#a0a0a0",
    "failed": "#d94a4a",
    "rejected": "#f08c2e",
    "invalid": "#9b5fb5",
    "error": "#e57fb0",
    "conflict": "#8c6d4f",
    "deleted": "#6f6f6f",
    "duplicate": "#c9a227",
    "deferred": "#bdbdbd",
}
_SPARE = ("#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39")
CAUSE_COLOURS = ("#a83232", "#c26a12", "#6e3f85", "#b35a85", "#5e4a36", "#2f5d8a", "#444444")


_EXIT_WORDS = {
    ExitCode.OK: "ok",
    ExitCode.ITEMS_FAILED: "item failures",
    ExitCode.USAGE: "usage",
    ExitCode.CONFIG: "config or auth",
    ExitCode.UNAVAILABLE: "API unavailable",
    ExitCode.LEDGER: "ledger locked or unusable",
    ExitCode.INTERNAL: "internal error",
    ExitCode.PENDING: "more to do",
    ExitCode.INTERRUPTED: "interrupted",
}


def exit_label(code: int | None) -> str:
    """A run's exit code as a short label: ``1 item failures``, ``75 more to do``."""
    if code is None:
        return "did not finish"
    try:
        return f"{code} {_EXIT_WORDS[ExitCode(code)]}"
    except (ValueError, KeyError):
        return str(code)


def exit_tone(code: int | None) -> str:
    """The colour class of an exit code: good, wait (75: the next run continues) or bad."""
    if code == ExitCode.OK:
        return "good"
    if code == ExitCode.PENDING or code is None:
        return "wait"
    return "bad"


def duration(seconds: float | None) -> str:
    """Seconds as a person reads them: ``0.04 s``, ``2.5 s``, ``3.2 min``, ``1.5 h``."""
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _scale(domain: list[str], colours: dict[str, str]) -> dict[str, Any]:
    spare = iter(_SPARE * (1 + len(domain) // len(_SPARE)))
    return {"domain": domain, "range": [colours.get(d) or next(spare) for d in domain]}


def order(values: list[str]) -> list[str]:
    """The distinct values in :data:`COLOURS`' order (done first, problems after), unknown ones
    last, alphabetically: every chart and table lists outcomes the same way."""
    known = list(COLOURS)
    return sorted(set(values), key=lambda v: (known.index(v) if v in known else len(known), v))


def _base(rows: list[Row], mark: dict[str, Any], encoding: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": {"values": rows},
        "mark": {"tooltip": True, **mark},
        "encoding": encoding,
        "width": "container",
        "height": 220,
        "config": {
            "view": {"stroke": None},
            "axis": {"labelFontSize": 12, "titleFontSize": 12, "grid": True},
            "legend": {"labelFontSize": 12, "titleFontSize": 12, "orient": "bottom"},
        },
    }


# Run numbers upright; with many runs on a narrow chart, every other one (no overlaps).
_RUN_AXIS = {
    "field": "run",
    "type": "ordinal",
    "title": "run",
    "axis": {"labelAngle": 0, "labelOverlap": "greedy"},
}


def outcomes_chart(rows: list[Row]) -> dict[str, Any]:
    """Grouped bars: records per outcome, per run (an item is often created and processed
    in the same run, so the outcomes overlap and are not stacked)."""
    domain = order([r["outcome"] for r in rows])
    return _base(
        rows,
        {"type": "bar"},
        {
            "x": _RUN_AXIS,
            "xOffset": {"field": "outcome", "sort": domain},
            "y": {"field": "records", "type": "quantitative", "title": "records"},
            "color": {
                "field": "outcome",
                "type": "nominal",
                "title": None,
                "scale": _scale(domain, COLOURS),
            },
            "tooltip": [
                {"field": "run", "title": "run"},
                {"field": "started_at", "title": "started (UTC)"},
                {"field": "outcome"},
                {"field": "records"},
            ],
        },
    )


def durations_chart(runs: list[Row]) -> dict[str, Any]:
    """Bars: each run's duration, coloured by its exit code."""
    rows = [
        {
            "run": r["run"],
            "seconds": r["seconds"],
            "exit": exit_label(r["exit_code"]),
            "started_at": r["started_at"],
            "command": r["command"],
        }
        for r in runs
    ]
    labels = sorted(
        {r["exit"] for r in rows}, key=lambda s: int(s.split()[0]) if s[0].isdigit() else 999
    )
    tones = {"good": "#2e9e5b", "wait": "#e6b422", "bad": "#d94a4a"}
    colours = {label: tones[exit_tone(_code(label))] for label in labels}
    return _base(
        rows,
        {"type": "bar"},
        {
            "x": _RUN_AXIS,
            "y": {"field": "seconds", "type": "quantitative", "title": "seconds"},
            "color": {
                "field": "exit",
                "type": "nominal",
                "title": "exit",
                "scale": {"domain": labels, "range": [colours[x] for x in labels]},
            },
            "tooltip": [
                {"field": "run"},
                {"field": "command"},
                {"field": "started_at", "title": "started (UTC)"},
                {"field": "seconds"},
                {"field": "exit"},
            ],
        },
    )


def _code(label: str) -> int | None:
    head = label.split()[0]
    return int(head) if head.isdigit() else None


def histogram_chart(rows: list[Row]) -> dict[str, Any]:
    """Bars: signals per processing-time bucket, buckets in order of time."""
    order = [r["bucket"] for r in sorted(rows, key=lambda r: r["bucket_order"])]
    return _base(
        rows,
        {"type": "bar", "color": COLOURS["processed"]},
        {
            "x": {
                "field": "bucket",
                "type": "ordinal",
                "sort": order,
                "title": "created → processed",
                "axis": {"labelAngle": 0},
            },
            "y": {"field": "signals", "type": "quantitative", "title": "signals"},
            "tooltip": [{"field": "bucket", "title": "time"}, {"field": "signals"}],
        },
    )


def trend_chart(rows: list[Row]) -> dict[str, Any]:
    """Lines: median and 90th percentile processing time, per run."""
    long = [
        {"run": r["run"], "seconds": r[key], "measure": name, "signals": r["signals"]}
        for r in rows
        for key, name in (("median_seconds", "median"), ("p90_seconds", "90th percentile"))
    ]
    return _base(
        long,
        {"type": "line", "point": True},
        {
            "x": _RUN_AXIS,
            "y": {"field": "seconds", "type": "quantitative", "title": "seconds"},
            "color": {
                "field": "measure",
                "type": "nominal",
                "title": None,
                "scale": {"domain": ["median", "90th percentile"], "range": ["#4c78a8", "#f08c2e"]},
            },
            "tooltip": [
                {"field": "run"},
                {"field": "measure"},
                {"field": "seconds"},
                {"field": "signals"},
            ],
        },
    )


def statuses_chart(rows: list[Row]) -> dict[str, Any]:
    """Horizontal bars: items per status, labelled with their count."""
    domain = order([r["status"] for r in rows])
    spec = _base(
        rows,
        {"type": "bar"},
        {
            "y": {"field": "status", "type": "nominal", "sort": "-x", "title": None},
            "x": {"field": "items", "type": "quantitative", "title": "items"},
            "color": {"field": "status", "scale": _scale(domain, COLOURS), "legend": None},
            "tooltip": [{"field": "status"}, {"field": "items"}],
        },
    )
    spec["height"] = {"step": 26}
    return spec


def cause_colours(causes: list[str]) -> dict[str, str]:
    """The first cause of each status in its status's colour, any further one in a spare."""
    taken: set[str] = set()
    spare = iter(CAUSE_COLOURS * (1 + len(causes) // len(CAUSE_COLOURS)))
    colours: dict[str, str] = {}
    for cause in causes:
        status = cause.split(" ", 1)[0]
        if status in COLOURS and status not in taken:
            taken.add(status)
            colours[cause] = COLOURS[status]
        else:
            colours[cause] = next(spare)
    return colours


def causes_chart(rows: list[Row]) -> dict[str, Any]:
    """Stacked bars: failure events per run, by cause."""
    totals: Counter[str] = Counter()
    for r in rows:
        totals[r["cause"]] += r["events"]
    domain = [cause for cause, _n in totals.most_common()]
    colours = cause_colours(domain)
    return _base(
        rows,
        {"type": "bar"},
        {
            "x": _RUN_AXIS,
            "y": {"field": "events", "type": "quantitative", "title": "failures"},
            "color": {
                "field": "cause",
                "type": "nominal",
                "title": None,
                "scale": _scale(domain, colours),
                "legend": {"labelLimit": 360, "columns": 1},
            },
            "tooltip": [{"field": "run"}, {"field": "cause"}, {"field": "events"}],
        },
    )
