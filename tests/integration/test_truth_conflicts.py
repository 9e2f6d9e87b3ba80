"""Conflicts settle and sends in doubt are looked up: against the emulator's variants."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import TEST_KEY, run_cli
from tests.emulator.testing import running_emulator


def _write(n: int) -> None:
    Path("in.jsonl").write_text(
        "".join(
            json.dumps(
                {"kind": "external_text", "externalId": f"c-{i}", "signalType": "t", "text": "x"}
            )
            + "\n"
            for i in range(n)
        )
    )


def _statuses() -> dict[str, int]:
    db = sqlite3.connect("zsync.db")
    return dict(db.execute("SELECT status, COUNT(*) FROM items GROUP BY status"))


def _env(emu: Any) -> dict[str, str]:
    return {"ZENTRIK_API_BASE": emu.url, "ZENTRIK_API_KEY": TEST_KEY}


def _forget_items(emu: Any) -> None:
    """The ledger loses its rows yet still vouches for itself (its anchor says the list ends
    where it does): so every create meets the signal the server already holds. A lost ledger
    file no longer does this: the next push adopts first (tests/integration/test_trust.py)."""
    db = sqlite3.connect("zsync.db")
    db.execute("DELETE FROM items")
    signals = emu.truth()["signals"]
    anchor = {"count": len(signals), "public_id": signals[-1]["publicId"], "own": 0}
    db.execute("UPDATE meta SET value = ? WHERE key = 'trust_anchor'", (json.dumps(anchor),))
    db.commit()
    db.close()


def test_409_naming_the_signal_is_adopted_at_once() -> None:
    _write(6)
    with running_emulator(
        idempotency="ignore", duplicate_answer="conflict", process_seconds=0.0
    ) as emu:
        assert run_cli(["push", "--input", "in.jsonl"], env=_env(emu)).code == 0
        before = {s["externalId"]: s["publicId"] for s in emu.truth()["signals"]}
        _forget_items(emu)  # every create now meets a 409
        result = run_cli(["push", "--input", "in.jsonl", "--json"], env=_env(emu))
        assert result.code == 0, result.err
        assert json.loads(result.out)["counts"]["adopted"] == 6
        assert _statuses() == {"processed": 6}
        db = sqlite3.connect("zsync.db")
        assert dict(db.execute("SELECT external_id, public_id FROM items")) == before
        # A 409 naming the signal shows that a resend cannot duplicate: recorded, shown.
        check = run_cli(["check"], env=_env(emu))
        assert "resends replayed: observed" in check.out, check.out


def test_bare_409_is_settled_by_reconcile_looking_the_signal_up() -> None:
    _write(4)
    with running_emulator(
        idempotency="ignore",
        duplicate_answer="conflict",
        conflict_body="bare",
        process_seconds=0.0,
    ) as emu:
        assert run_cli(["push", "--input", "in.jsonl"], env=_env(emu)).code == 0
        _forget_items(emu)
        pushed = run_cli(["push", "--input", "in.jsonl"], env=_env(emu))
        assert pushed.code == 1 and _statuses() == {"conflict": 4}
        settled = run_cli(["reconcile", "--json"], env=_env(emu))
        assert settled.code == 0, settled.err
        assert _statuses() == {"processed": 4}
        assert emu.truth()["creates_by_external_id"] == {f"c-{i}": 1 for i in range(4)}


def test_conflict_without_a_signal_on_the_server_says_why() -> None:
    _write(1)
    with running_emulator(dedupe="off", handle_ms=0, process_seconds=0.0) as emu:
        assert run_cli(["push", "--input", "in.jsonl"], env=_env(emu)).code == 0
        db = sqlite3.connect("zsync.db")
        db.execute("UPDATE items SET status = 'conflict', last_error = '409 in progress'")
        db.commit()
        public_id = emu.truth()["signals"][0]["publicId"]
        from zsync.engine.client import ZentrikClient

        with ZentrikClient(emu.url, TEST_KEY) as client:
            client.delete_signal(public_id)
        result = run_cli(["reconcile"], env=_env(emu))
        assert "the server lists no signal with this externalId" in result.err
        assert "409 in progress" in result.err


def test_a_lost_answer_is_looked_up_not_resent_on_a_server_that_ignores_keys() -> None:
    _write(30)
    with running_emulator(
        idempotency="ignore",
        dedupe="off",
        drop_after_commit_rate=0.3,
        seed=3,
        process_seconds=0.0,
    ) as emu:
        result = run_cli(["push", "--input", "in.jsonl", "--json"], env=_env(emu))
        assert result.code in (0, 75), result.err
        truth = emu.truth()
        assert truth["faults"]["dropped_after_commit"] > 0
        assert set(truth["creates_by_external_id"].values()) == {1}
        check = run_cli(["check"], env=_env(emu))
        assert "resends replayed: not observed yet" in check.out


def test_receipt_for_another_workspace_ends_the_run_with_one_line() -> None:
    _write(2)
    with running_emulator(receipt_workspace="ws-elsewhere", process_seconds=0.0) as emu:
        result = run_cli(["push", "--input", "in.jsonl"], env=_env(emu))
        assert result.code == 3, result.err
        assert "receipt for workspace ws-elsewhere" in result.err
        assert "Traceback" not in result.err


def test_readyz_extra_checks_do_not_block_and_missing_job_ids_are_stored_null() -> None:
    _write(2)
    with running_emulator(
        readyz_extra_checks={"cache": "degraded"}, receipt_without_job_id=True, process_seconds=0.0
    ) as emu:
        result = run_cli(["push", "--input", "in.jsonl"], env=_env(emu))
        assert result.code == 0, result.err
        db = sqlite3.connect("zsync.db")
        assert set(db.execute("SELECT status, job_id FROM items")) == {("processed", None)}
