"""What the dashboard says about runs a person must notice: one that did not finish, one that
left work for the next run, and a ledger with nothing in it yet."""

from __future__ import annotations

from typing import Any

from zsync.ui import page

EMPTY: dict[str, list[Any]] = {
    name: []
    for name in (
        "runs",
        "run_outcomes",
        "processing_histogram",
        "processing_trend",
        "statuses",
        "failure_causes",
        "failure_trend",
        "bookmarks",
        "needs_a_person",
        "binding",
    )
}


def run(n: int, exit_code: int | None, seconds: float | None) -> dict[str, Any]:
    return {
        "run": n,
        "command": "push",
        "started_at": f"2026-12-0{n}T02:15:00.000Z",
        "finished_at": None if seconds is None else f"2026-12-0{n}T02:20:00.000Z",
        "seconds": seconds,
        "exit_code": exit_code,
        "counts": None if exit_code is None else '{"attempted": 3, "created": 3, "pending": 1}',
        "host": "h",
        "pid": 1,
    }


def test_a_run_that_did_not_finish_says_so_and_is_not_drawn_as_a_duration() -> None:
    lease = [{"run_id": 2, "pid": 41, "host": "h", "command": "push", "acquired_at": "2026-12-02"}]
    built = page.build({**EMPTY, "runs": [run(2, None, None), run(1, 75, 300.0)]}, lease)
    assert built.last_run is not None
    assert built.last_run["exit"] == "did not finish" and built.last_run["tone"] == "wait"
    assert built.runs[1]["exit"] == "75 more to do" and built.runs[1]["took"] == "5.0 min"
    assert built.runs[1]["summary"] == "3 created, 1 pending"
    assert built.lock.startswith("held by run #2 (push, pid 41 on h)")
    durations = next(c for c in built.charts if c.slug == "durations")
    assert [r["run"] for r in durations.spec["data"]["values"]] == [1]


def test_an_empty_ledger_draws_no_chart_and_says_why() -> None:
    built = page.build(EMPTY, [])
    assert built.last_run is None and built.items_total == 0 and built.needs_total == 0
    assert built.lock == "free"
    assert all(not c.has_data and c.empty for c in built.charts)
