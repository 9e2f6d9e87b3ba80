"""The plan's side of server truth: adopted rows, signals known gone, prune safety."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zsync.ledger import Ledger
from zsync.model import (
    ADOPTED_HASH,
    Intent,
    ItemRow,
    Outcome,
    Prepared,
    Record,
    RunResult,
    SendJob,
    ServerSignal,
    Status,
)
from zsync.plan.decide import decide, plan_one
from zsync.plan.options import PlanOptions
from zsync.shape.body import prepare
from zsync.shape.canonical import field_hashes

RECORD = {"kind": "external_text", "externalId": "p-1", "signalType": "t", "text": "hello"}


def _prepared(**changes: Any) -> Prepared:
    result = prepare(Record("in.jsonl:1", {**RECORD, **changes}))
    assert isinstance(result, Prepared)
    return result


def _plan(ledger: Ledger, prepared: Prepared) -> tuple[Any, list[Intent], list[Any], RunResult]:
    result = RunResult("push")
    row = ledger.items.lookup([prepared.external_id]).get(prepared.external_id)
    decision = plan_one(ledger, PlanOptions(), prepared, row)
    for kind in decision.counts:
        result.count(kind)
    intents: list[Intent] = [decision.intent] if decision.intent else []
    learned: list[Any] = [decision.learned] if decision.learned else []
    return decision.job, intents, learned, result


def test_a_signal_known_gone_is_sent_again_whatever_its_hash() -> None:
    p = _prepared()
    assert decide(p, ItemRow("p-1", Status.DELETED, p.payload_hash, "SIGNAL-1")) == "send"
    assert decide(p, ItemRow("p-1", Status.PROCESSED, p.payload_hash, "SIGNAL-1")) == "unchanged"
    assert decide(p, ItemRow("p-1", Status.PROCESSED, ADOPTED_HASH, "SIGNAL-1")) == "adopted"


def test_recreating_a_gone_signal_uses_a_new_key_each_time(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "l.db")
    p = _prepared()
    first, intents, _, _ = _plan(ledger, p)
    assert isinstance(first, SendJob)
    ledger.items.record_intents(intents, 1)
    keys = {first.idempotency_key}
    for n in range(2):
        ledger.items.apply_outcomes(
            [Outcome("p-1", "created", Status.SUBMITTED, public_id=f"S-{n}")], 1
        )
        ledger.server.mark_gone(["p-1"], 1)
        again, intents, _, _ = _plan(ledger, p)
        assert isinstance(again, SendJob) and again.payload == first.payload
        keys.add(again.idempotency_key)
        ledger.items.record_intents(intents, 1)
    assert len(keys) == 3


def test_an_adopted_row_meets_its_record_field_by_field(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "l.db")
    p = _prepared()
    server_copy = {**p.body, "createdBy": "ui"}  # a field only the server has
    signal = ServerSignal("SIGNAL-9", "p-1", None, "processed", field_hashes(server_copy))
    ledger.server.adopt([signal], None)
    job, intents, learned, result = _plan(ledger, p)
    assert job is None and not intents and result.counts["unchanged"] == 1
    ledger.server.learn_adopted(learned)
    row = ledger.items.lookup(["p-1"])["p-1"]
    assert row.payload_hash == p.payload_hash  # from now on an ordinary row

    ledger.server.adopt([signal], None)
    job, _, _, _ = _plan(ledger, _prepared(text="changed"))
    assert job is not None and job.fields == {"text": "changed"}  # not createdBy: None
