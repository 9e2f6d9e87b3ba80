"""``zsync ui`` without a browser: what it refuses and how, and what its pages hold."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import zsync.ui
from tests.conftest import run_cli
from zsync.model import NEEDS_LOOK


def test_without_the_extra_it_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zsync.ui, "missing", lambda: "datasette")
    result = run_cli(["ui"])
    assert result.code == 3
    assert result.err == 'zsync: error: zsync ui needs the ui extra: pip install "zsync[ui]"\n'


def test_a_missing_ledger_is_refused_in_one_line() -> None:
    pytest.importorskip("datasette", reason="the ui extra is not installed")
    result = run_cli(["ui", "--ledger", "nothing.db", "--port", "0"])
    assert result.code == 5
    assert result.err.count("\n") == 1 and "nothing.db" in result.err


def test_a_port_in_use_is_a_usage_error(nightly_ledger: Path) -> None:
    pytest.importorskip("datasette", reason="the ui extra is not installed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli(["ui", "--ledger", str(nightly_ledger), "--port", str(port)])
    assert result.code == 2
    assert result.err.count("\n") == 1 and f"--port {port}" in result.err


def _get(ledger: Path, *paths: str) -> list[Any]:
    from zsync.ui.app import build

    ds = build(ledger)

    async def fetch() -> list[Any]:
        await ds.invoke_startup()
        return [await ds.client.get(p) for p in paths]

    return asyncio.run(fetch())


def test_front_page_is_the_dashboard_with_the_ledgers_numbers(nightly_ledger: Path) -> None:
    pytest.importorskip("datasette", reason="the ui extra is not installed")
    front, page = _get(nightly_ledger, "/", "/-/zsync")
    assert front.status_code == 302 and front.headers["location"] == "/-/zsync"
    assert page.status_code == 200
    with sqlite3.connect(nightly_ledger) as conn:
        items = conn.execute("SELECT count(*) FROM items").fetchone()[0]
        marks = ",".join("?" * len(NEEDS_LOOK))
        needs = conn.execute(
            f"SELECT count(*) FROM items WHERE status IN ({marks})", sorted(NEEDS_LOOK)
        ).fetchone()[0]
    assert f'<span data-value="items">{items}</span>' in page.text
    assert f'<span data-value="needs">{needs}</span>' in page.text
    assert '<span data-value="run">3</span>' in page.text


def test_readme_recipes_are_canned_queries(nightly_ledger: Path) -> None:
    pytest.importorskip("datasette", reason="the ui extra is not installed")
    rejected, per_day, timeline = _get(
        nightly_ledger,
        "/ledger/rejected_recently.json?_shape=array",
        "/ledger/processing_per_day.json?_shape=array",
        "/ledger/timeline.json?_shape=array&external_id=helpdesk:1003",
    )
    assert {r["external_id"] for r in rejected.json()} == {"helpdesk:1003", "helpdesk:1021"}
    assert per_day.json() and set(per_day.json()[0]) == {"day", "seconds"}
    assert [e["kind"] for e in timeline.json()] == ["rejected"]


def test_the_ledger_cannot_be_written_through_the_ui(nightly_ledger: Path) -> None:
    pytest.importorskip("datasette", reason="the ui extra is not installed")
    from zsync.ui.app import build

    db = build(nightly_ledger).get_database("ledger")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        asyncio.run(db.execute_write("DELETE FROM runs"))
    with sqlite3.connect(nightly_ledger) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 3


def test_text_from_records_and_the_server_is_shown_not_run(
    emulator: Any, api_env: dict[str, str]
) -> None:
    pytest.importorskip("datasette", reason="the ui extra is not installed")
    hostile = "<script>alert(1)</script>"
    record = {"kind": "external_text", "externalId": hostile, "signalType": "x", "text": ""}
    Path("in.jsonl").write_text(json.dumps(record) + "\n")
    assert run_cli(["push", "--input", "in.jsonl"], env=api_env).code == 1
    (page,) = _get(Path("zsync.db"), "/-/zsync")
    assert hostile not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
