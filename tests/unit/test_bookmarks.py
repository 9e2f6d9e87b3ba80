"""The bookmark is written to the ledger only after every record before it is: the order of
ledger writes as the planner makes them, one STATE at a time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zsync import read
from zsync.ledger import Ledger
from zsync.ledger.items import ItemsTable
from zsync.ledger.meta import MetaTable
from zsync.model import Event, Intent, RunResult, SendJob, UpdateJob
from zsync.plan import PlanOptions, push_feeder
from zsync.read import InputSpec


class LoggingItems(ItemsTable):
    """The items table, noting each write in the ledger's log."""

    def __init__(self, ledger: LoggingLedger) -> None:
        super().__init__(ledger)
        self.log = ledger.log

    def record_intents(self, intents: Sequence[Intent], run_id: int) -> None:
        self.log.append("intents " + ",".join(i.external_id for i in intents))
        super().record_intents(intents, run_id)

    def record_invalid(self, rows: Sequence[tuple[str | None, str, str]], run_id: int) -> None:
        self.log.append("invalid " + ",".join(origin for _e, origin, _m in rows))
        super().record_invalid(rows, run_id)


class LoggingMeta(MetaTable):
    """The meta table, noting each bookmark written in the ledger's log."""

    def __init__(self, ledger: LoggingLedger) -> None:
        super().__init__(ledger)
        self.log = ledger.log

    def set(self, key: str, value: str) -> None:
        if key.startswith("bookmark:"):
            self.log.append(f"bookmark {value}")
        super().set(key, value)


class LoggingLedger(Ledger):
    """A ledger whose items and meta tables log their writes, in order, in ``log``."""

    log: list[str]


def ledger(path: str = "zsync.db") -> LoggingLedger:
    opened = LoggingLedger.open(Path(path))
    assert isinstance(opened, LoggingLedger)
    opened.log = []
    opened.items = LoggingItems(opened)
    opened.meta = LoggingMeta(opened)
    return opened


def rec(i: int, text: str = "t") -> dict[str, Any]:
    record = {"kind": "external_text", "externalId": f"e{i}", "signalType": "s", "text": text}
    return {"type": "RECORD", "stream": "s", "record": record}


def state(n: int) -> dict[str, Any]:
    return {"type": "STATE", "value": {"n": n}}


SCHEMA = {"type": "SCHEMA", "stream": "s", "schema": {"properties": {}}, "key_properties": []}


def singer(*messages: dict[str, Any]) -> PlanOptions:
    """A Singer file of the messages, after the SCHEMA of their stream (on line 1)."""
    lines = [SCHEMA, *messages] if messages else []
    Path("in.singer.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    return PlanOptions(source=InputSpec(inputs=("in.singer.jsonl",), fmt="singer"))


def feed(db: Ledger, options: PlanOptions, events: list[Event] | None = None) -> list[list[Any]]:
    run_id = db.runs.start("push", {})
    sink = events if events is not None else []
    return [
        list(b)
        for b in push_feeder(
            db, options, RunResult("push"), sink.append, mappings=None, run_id=run_id
        )
    ]


def test_each_bookmark_is_saved_after_the_records_before_it_and_before_those_after() -> None:
    db = ledger()
    bad = {"type": "RECORD", "stream": "s", "record": {"kind": "external_text"}}
    options = singer(rec(1), bad, state(2), rec(3), rec(4), state(4), state(5), rec(6))
    batches = feed(db, options)
    assert db.log == [
        "invalid in.singer.jsonl:3",
        "intents e1",
        'bookmark {"n":2}',
        "intents e3,e4",
        'bookmark {"n":4}',
        'bookmark {"n":5}',
        "intents e6",
    ]
    # the last (empty) batch: unfinished items of earlier runs, of which there are none
    assert [[j.external_id for j in b] for b in batches] == [["e1"], ["e3", "e4"], [], ["e6"], []]
    assert all(isinstance(j, SendJob) for b in batches for j in b)
    assert db.meta.get("bookmark:" + (read.source_id(options.source) or "")) == '{"n":5}'


def test_a_run_that_stops_early_keeps_the_bookmark_of_what_it_recorded() -> None:
    db = ledger()
    options = singer(rec(1), state(1), rec(2), state(2))
    feeder = push_feeder(db, options, RunResult("push"), lambda _e: None, mappings=None, run_id=1)
    next(feeder)  # the engine took the first batch, then the process died
    feeder.close()
    assert db.log == ["intents e1", 'bookmark {"n":1}']


def test_an_update_not_yet_applied_holds_the_bookmark_for_the_rest_of_the_run() -> None:
    db = ledger()
    feed(db, singer(rec(1), state(1)))
    db.conn.execute("UPDATE items SET status = 'processed', public_id = 'SIGNAL-1'")
    db.log.clear()
    events: list[Event] = []
    batches = feed(db, singer(rec(1, "changed"), state(2), rec(3), state(3)), events)
    # the change is planned once the input has ended (a later version would have won)
    assert [type(j) for b in batches for j in b] == [SendJob, UpdateJob]
    assert db.log == ["intents e3"]  # no bookmark: the update is recorded only when it lands
    assert [e.kind for e in events].count("warning") == 1
    assert db.meta.get("bookmark:" + (read.source_id(singer().source) or "")) == '{"n":1}'


def test_on_change_skip_does_not_hold_the_bookmark() -> None:
    db = ledger()
    feed(db, singer(rec(1), state(1)))
    db.conn.execute("UPDATE items SET status = 'processed', public_id = 'SIGNAL-1'")
    options = singer(rec(1, "changed"), state(2))
    options.on_change = "skip"
    feed(db, options)
    assert db.meta.get("bookmark:" + (read.source_id(options.source) or "")) == '{"n":2}'


def test_a_dry_run_saves_no_bookmark_and_writes_no_state_file() -> None:
    db = ledger()
    options = singer(rec(1), state(1))
    options.dry_run = True
    options.state_file = "state.json"
    feed(db, options)
    assert db.log == []
    assert not Path("state.json").exists()


def test_the_state_file_follows_the_saved_bookmark() -> None:
    db = ledger()
    options = singer(rec(1), state(1))
    options.state_file = "state.json"
    feed(db, options)
    assert json.loads(Path("state.json").read_text()) == {"n": 1}
    Path("state.json").unlink()
    options = singer()  # a run that saves nothing new still restores the file first
    options.state_file = "state.json"
    feed(db, options)
    assert json.loads(Path("state.json").read_text()) == {"n": 1}


def test_a_first_run_gives_a_tap_an_empty_state_file_but_keeps_one_that_exists() -> None:
    db = ledger()
    options = singer()
    options.state_file = "new.json"
    feed(db, options)
    assert Path("new.json").read_text() == "{}\n"
    Path("mine.json").write_text('{"bookmarks": {"x": 1}}')
    options.state_file = "mine.json"
    feed(db, options)
    assert Path("mine.json").read_text() == '{"bookmarks": {"x": 1}}'


def test_bookmark_keys() -> None:
    cmd = InputSpec(inputs=(), source_cmd="python3 -u fetch.py --token s3cret")
    key = read.source_id(cmd)
    assert key is not None and key.startswith("cmd:fetch.py:") and "s3cret" not in key
    assert read.source_id(InputSpec(inputs=("-",), fmt="singer")) == "stdin"
    file_key = read.source_id(InputSpec(inputs=("t.jsonl",), fmt="singer"))
    assert file_key == f"file:{Path('t.jsonl').resolve()}"
    assert read.source_id(InputSpec(inputs=("t.jsonl",))) is None
