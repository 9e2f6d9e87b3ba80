"""Singer upserts in the planner: the last version of a record wins within a run, and a
bookmark never passes a version that is not recorded (the order of ledger writes)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_bookmarks import feed, ledger, rec, singer, state
from zsync import read
from zsync.model import Event, RunResult, SendJob, UpdateJob
from zsync.plan import push_feeder, upsert


def bookmark(db: Any) -> str | None:
    return db.meta.get("bookmark:" + (read.source_id(singer().source) or ""))


def jobs(batches: list[list[Any]]) -> list[tuple[str, str]]:
    out = []
    for job in (j for b in batches for j in b):
        if isinstance(job, SendJob):
            out.append(("send", job.payload.decode()))
        elif isinstance(job, UpdateJob):
            out.append(("update", job.fields.get("text")))
    return out


def test_versions_in_one_batch_send_only_the_last() -> None:
    db = ledger()
    result = RunResult("push")
    options = singer(rec(1, "v1"), rec(2), rec(1, "v2"), rec(1, "v3"), state(1))
    batches = [
        list(b) for b in push_feeder(db, options, result, lambda _e: None, mappings=None, run_id=1)
    ]
    assert db.log == ["intents e1,e2", 'bookmark {"n":1}']
    sent = jobs(batches)
    assert len(sent) == 2 and '"text":"v3"' in sent[0][1]
    assert result.counts["superseded"] == 2 and result.exit_code == 0


def test_a_new_version_after_a_state_holds_every_later_state_until_it_is_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(upsert, "WAIT_SECONDS", 0.0)  # no engine here: v1 is never answered
    db = ledger()
    result = RunResult("push")
    events: list[Event] = []
    options = singer(rec(1, "v1"), state(1), rec(1, "v2"), rec(2), state(2))
    list(push_feeder(db, options, result, events.append, mappings=None, run_id=1))
    # v1 is recorded before the first STATE; v2 is not recorded, so the STATE after it is
    # not saved: the tap sends v2 again next run
    assert db.log == ["intents e1", 'bookmark {"n":1}', "intents e2"]
    assert result.counts["deferred"] == 1 and result.exit_code == 75
    assert any(e.kind == "warning" and "bookmark not advanced" in e.message for e in events)


def _accepted(db: Any, text: str) -> None:
    feed(db, singer(rec(1, text), state(0)))
    db.conn.execute("UPDATE items SET status = 'processed', public_id = 'SIGNAL-1'")
    db.log.clear()


def test_a_change_undone_later_in_the_run_sends_nothing_and_releases_the_state() -> None:
    db = ledger()
    _accepted(db, "A")
    batches = feed(db, singer(rec(1, "B"), state(1), rec(1, "A"), state(2)))
    assert jobs(batches) == []
    assert db.log == ['bookmark {"n":2}']  # not after B (held), but after A again


def test_a_record_changed_twice_in_a_run_is_updated_once_to_its_last_version() -> None:
    db = ledger()
    _accepted(db, "A")
    batches = feed(db, singer(rec(1, "B"), state(1), rec(1, "C"), state(2)))
    assert jobs(batches) == [("update", "C")]
    assert db.log == []  # the update is recorded when it lands: no STATE passes before it
    assert bookmark(db) == '{"n":0}'
