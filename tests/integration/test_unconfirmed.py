"""A run never reports "done" over intents the server never confirmed: whatever path left an
item `pending` (recorded, not answered), the run exits 75 with one line, and the next run
sends it. (make chaos once ended push and reconcile with exit 0 and 47 items pending.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from zsync.engine import worker


def _write(path: Path, n: int) -> None:
    rows = (
        {"kind": "external_text", "externalId": f"u-{i}", "signalType": "note", "text": f"t{i}"}
        for i in range(n)
    )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_items_a_run_left_pending_make_it_exit_75_and_the_next_run_sends_them(
    api_env: dict[str, str], emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(Path("in.jsonl"), 3)
    with monkeypatch.context() as patch:
        # A send path that gives no outcome (as a send held in doubt does): the intent stays.
        patch.setattr(worker.Worker, "_create", lambda self, job, tally: None)
        first = run_cli(["push", "-i", "in.jsonl", "--no-poll"], env=api_env)
    assert first.code == 75, first.err
    assert "3 item(s) still pending in the ledger" in first.err
    assert emulator.truth()["creates_by_external_id"] == {}

    second = run_cli(["push", "-i", "in.jsonl", "--no-poll"], env=api_env)
    assert second.code == 0, second.err
    assert emulator.truth()["creates_by_external_id"] == {f"u-{i}": 1 for i in range(3)}
