"""``zsync ui`` in a real browser: the operating system's Chromium, driven by Playwright, over
a ledger of three nightly pushes with failures. Every chart draws, the page shows the ledger's
numbers and failure reasons, nothing is fetched from anywhere but the UI itself, and a push
runs while the UI serves the same ledger.

Set ZSYNC_UI_SCREENSHOT=docs/ui.png to refresh the README's screenshot.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import run_cli
from tests.ui.conftest import push, tickets
from tests.zsync_cmd import ZSYNC
from zsync.model import NEEDS_LOOK

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHARTS = {
    "outcomes",
    "durations",
    "failure-trend",
    "processing-histogram",
    "processing-trend",
    "statuses",
}
# Read at import: the autouse fixture clears every ZSYNC_ variable before a test runs.
SCREENSHOT = os.environ.get("ZSYNC_UI_SCREENSHOT")
SCREENSHOT_PATH = Path(SCREENSHOT).resolve() if SCREENSHOT else None

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytest.importorskip("datasette", reason='the ui extra is not installed: pip install "zsync[ui]"')
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)


@contextmanager
def serving(ledger: Path) -> Iterator[str]:
    """``zsync ui`` in a subprocess on a free port; yields its URL, stops it afterwards."""
    with subprocess.Popen(
        [*ZSYNC, "ui", "--ledger", str(ledger), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # printed once it listens
            found = re.search(r" at (http://127\.0\.0\.1:\d+/) ", line)
            assert found, f"{line!r} {proc.stderr.read() if proc.stderr else ''}"
            yield found.group(1)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def ledger_numbers(ledger: Path) -> dict[str, Any]:
    with sqlite3.connect(ledger) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM items GROUP BY status"))
        last_run, exit_code = conn.execute(
            "SELECT id, exit_code FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
    needs = {s: n for s, n in statuses.items() if s in NEEDS_LOOK}
    return {"statuses": statuses, "needs": needs, "run": last_run, "exit": exit_code}


def wait_for_charts(page: Any) -> None:
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-chart]')].every(e => e.dataset.drawn)"
    )


def assert_every_chart_drew(page: Any) -> None:
    charts = page.locator("[data-chart]")
    slugs = {charts.nth(i).get_attribute("data-chart") for i in range(charts.count())}
    assert slugs == CHARTS
    for slug in CHARTS:
        chart = page.locator(f'[data-chart="{slug}"]')
        assert chart.get_attribute("data-drawn") == "yes", chart.inner_text()
        box = chart.locator("svg").first.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 100, slug
        assert chart.locator(".role-mark path").count() > 0, f"{slug}: no marks drawn"


def assert_numbers_are_the_ledgers(page: Any, ledger: Path) -> None:
    want = ledger_numbers(ledger)
    value = lambda name: page.locator(f'[data-value="{name}"]').inner_text()  # noqa: E731
    assert value("items") == str(sum(want["statuses"].values()))
    assert value("needs") == str(sum(want["needs"].values()))
    assert value("run") == str(want["run"])
    assert value("exit") == str(want["exit"])
    bars = page.locator('[data-chart="statuses"] .role-mark path')
    labels = {bars.nth(i).get_attribute("aria-label") for i in range(bars.count())}
    for status, n in want["statuses"].items():
        assert any(f"status: {status}" in (x or "") and f"items: {n}" in (x or "") for x in labels)


def test_dashboard_in_chromium(
    nightly_ledger: Path, api_env: dict[str, str], emulator: Any
) -> None:
    with serving(nightly_ledger) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        assert urlsplit(page.url).path == "/-/zsync"
        wait_for_charts(page)
        assert_every_chart_drew(page)
        assert_numbers_are_the_ledgers(page, nightly_ledger)

        # The failure causes are `zsync errors`' own, with their counts.
        causes = json.loads(run_cli(["errors", "--json"]).out)
        rows = page.locator('[data-table="causes"] tbody tr')
        shown = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())]
        counts = [int(rows.nth(i).locator("td").first.inner_text()) for i in range(rows.count())]
        assert shown == [c["cause"] for c in causes] and counts == [c["count"] for c in causes]
        assert any("transcript too short" in s for s in shown)
        assert any("rejected_by_rule" in s for s in shown)

        # Every item that needs a person is listed, and its id opens its timeline.
        want = ledger_numbers(nightly_ledger)
        ids = page.locator('[data-table="needs"] tbody tr td:first-child a')
        assert ids.count() == sum(want["needs"].values())
        ids.filter(has_text=re.compile(r"^helpdesk:1003$")).click()
        page.wait_for_load_state()
        assert "external_id=helpdesk%3A1003" in page.url or "helpdesk:1003" in page.url
        assert "rejected_by_rule" in page.locator("table.rows-and-columns").inner_text()

        if SCREENSHOT_PATH:
            page.goto(url)
            wait_for_charts(page)
            page.screenshot(path=SCREENSHOT_PATH, full_page=True)

        # A push runs while the UI serves the same ledger; the UI then shows its run.
        emulator.set_faults(fail_rate=0.0, reject_external_ids=[])
        assert push(api_env, tickets(1000, 1036)) == 0
        page.goto(url)
        wait_for_charts(page)
        assert page.locator('[data-value="run"]').inner_text() == "4"
        assert_every_chart_drew(page)
        assert_numbers_are_the_ledgers(page, nightly_ledger)
        browser.close()

    outside = [u for u in requested if urlsplit(u).scheme != "data" and not u.startswith(url)]
    assert outside == [], "the dashboard fetched from outside the UI"
    assert errors == [], "the page logged errors"
