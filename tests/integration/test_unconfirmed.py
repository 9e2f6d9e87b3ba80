"""A run never reports "done" over intents the server never confirmed: whatever path left an
item `pending` (recorded, not answered), the run exits 75 with one line, and the next run
sends it. (make chaos once ended push and reconcile with exit 0 and 47 items pending.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from zsync import operations
from zsync.engine import worker
from zsync.errors import IncompleteListing


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


def test_sends_in_doubt_a_failed_lookup_leaves_are_counted_by_the_run_itself(
    api_env: dict[str, str], emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the run's sends, the in-doubt step waits a horizon out, then its lookup fails
    (a list that cannot be proven complete): the run says how many stay unchecked and counts
    them pending. make chaos once found that run forgetting them (pending: 0, exit 0)."""
    _write(Path("in.jsonl"), 3)
    with monkeypatch.context() as patch:
        patch.setattr(worker.Worker, "_create", lambda self, job, tally: None)
        assert run_cli(["push", "-i", "in.jsonl", "--no-poll"], env=api_env).code == 75

    def unprovable(*_args: Any) -> Any:
        raise IncompleteListing("the server's list answered the same page for every offset")

    with monkeypatch.context() as patch:
        patch.setattr(operations, "load_index", unprovable)
        second = run_cli(["push", "-i", "in.jsonl", "--no-poll", "--json"], env=api_env)
    assert second.code == 75, second.err
    assert "3 send(s) in doubt stay unchecked until the next run" in second.err
    assert json.loads(second.out)["counts"]["pending"] == 3
    assert "still pending in the ledger" not in second.err  # not left to the last guard
    assert emulator.truth()["creates_by_external_id"] == {}

    third = run_cli(["push", "-i", "in.jsonl", "--no-poll"], env=api_env)
    assert third.code == 0, third.err
    assert emulator.truth()["creates_by_external_id"] == {f"u-{i}": 1 for i in range(3)}
