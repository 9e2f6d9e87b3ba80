"""A ledger that cannot vouch for itself is not trusted (issue 22, item 1): a lost ledger, a
ledger restored from an old backup, an unfinished repair and a WAL without its database,
against a server that neither replays keys nor dedupes identities; and what the check costs
a normal run, a shared workspace and a list without X-Total-Count."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_KEY, run_cli
from tests.emulator.testing import running_emulator
from zsync.emulator.server import RunningEmulator


def _write(first: int, last: int, path: str = "in.jsonl") -> None:
    lines = (
        json.dumps(
            {
                "kind": "external_text",
                "externalId": f"t-{i}",
                "signalType": "support_ticket",
                "name": f"Ticket {i}",
                "text": f"Ticket {i}: the export button times out",
            }
        )
        for i in range(first, last)
    )
    Path(path).write_text("".join(line + "\n" for line in lines))


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    # The hardest server: a resend is a new signal (no key replay, no identity dedupe).
    with running_emulator(idempotency="ignore", dedupe="off", process_seconds=0.05) as running:
        yield running


@pytest.fixture
def env(emu: RunningEmulator) -> dict[str, str]:
    return {"ZENTRIK_API_BASE": emu.url, "ZENTRIK_API_KEY": TEST_KEY}


def _push(env: dict[str, str], *extra: str) -> dict[str, Any]:
    result = run_cli(["push", "--input", "in.jsonl", "--no-poll", "--json", *extra], env=env)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    return dict(json.loads(result.out))


def _twice(emu: RunningEmulator) -> int:
    creates = Counter(emu.truth()["creates_by_external_id"])
    return sum(n - 1 for n in creates.values() if n > 1)


def _lists(emu: RunningEmulator) -> int:
    return sum(
        n
        for key, n in emu.truth()["requests"].items()
        if key.startswith("GET /api/external/v1/signals ")
    )


def test_a_lost_ledger_adopts_what_the_server_holds_instead_of_creating_it_again(
    emu: RunningEmulator, env: dict[str, str]
) -> None:
    _write(0, 300)
    _push(env)
    Path("zsync.db").unlink()
    again = run_cli(["push", "--input", "in.jsonl", "--no-poll", "--json"], env=env)
    assert again.code == 0, again.err
    assert _twice(emu) == 0
    assert json.loads(again.out)["counts"]["adopted"] == 300
    assert "cannot vouch for this workspace" in again.err, again.err
    # From now on the ledger vouches for itself: nothing more is looked up or sent.
    before = _lists(emu)
    _write(0, 310)
    third = _push(env)
    assert third["ok"] == 10 and _twice(emu) == 0
    assert _lists(emu) - before == 1


def test_a_ledger_restored_from_an_old_backup_does_not_create_the_newer_records_again(
    emu: RunningEmulator, env: dict[str, str]
) -> None:
    _write(0, 200)
    _push(env)
    shutil.copy("zsync.db", "backup.db")  # closed by the run: the WAL is checkpointed
    _write(0, 300)
    _push(env)
    shutil.copy("backup.db", "zsync.db")
    again = run_cli(["push", "--input", "in.jsonl", "--no-poll", "--json"], env=env)
    assert again.code == 0, again.err
    assert _twice(emu) == 0
    assert json.loads(again.out)["counts"]["adopted"] == 100
    assert len(emu.truth()["signals"]) == 300


def test_an_unfinished_repair_is_finished_before_anything_is_created(
    emu: RunningEmulator, env: dict[str, str]
) -> None:
    _write(0, 120)
    _push(env)
    Path("zsync.db").unlink()
    emu.set_faults(list_fault="not-array")  # the rebuild fails mid-way: the list is unusable
    broken = run_cli(["verify", "--repair"], env=env)
    assert broken.code == 4, broken.err
    emu.set_faults(list_fault="none")
    again = run_cli(["push", "--input", "in.jsonl", "--no-poll", "--json"], env=env)
    assert again.code == 0, again.err
    assert _twice(emu) == 0
    assert "`verify --repair`" in again.err and "did not finish" in again.err, again.err
    assert "is finished" in again.err
    db = sqlite3.connect("zsync.db")
    rows = dict(db.execute("SELECT external_id, public_id FROM items"))
    db.close()
    assert rows == {s["externalId"]: s["publicId"] for s in emu.truth()["signals"]}


def test_a_push_that_cannot_read_the_list_creates_nothing_for_an_unvouched_ledger(
    emu: RunningEmulator, env: dict[str, str]
) -> None:
    _write(0, 30)
    _push(env)
    Path("zsync.db").unlink()
    emu.set_faults(list_fault="not-array")
    again = run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=env)
    assert again.code == 4, again.err
    assert "Traceback" not in again.err
    assert _twice(emu) == 0


def test_a_wal_without_its_database_is_refused_and_kept(
    emu: RunningEmulator, env: dict[str, str]
) -> None:
    _write(0, 20)
    _push(env)
    # A WAL that still holds changes (a reader keeps it from being checkpointed away).
    holder = sqlite3.connect("zsync.db")
    holder.execute("PRAGMA wal_autocheckpoint = 0")
    holder.execute("INSERT INTO meta (key, value) VALUES ('late', 'change')")
    holder.commit()
    shutil.copy("zsync.db-wal", "kept-wal")
    holder.close()
    shutil.copy("kept-wal", "zsync.db-wal")
    Path("zsync.db").unlink()
    wal = Path("zsync.db-wal").read_bytes()
    assert wal
    done = run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=env)
    assert done.code == 5, done.err
    lines = [x for x in done.err.splitlines() if x.startswith("zsync: error:")]
    assert len(lines) == 1 and "write-ahead log" in lines[0] and "move" in lines[0], done.err
    assert Path("zsync.db-wal").read_bytes() == wal
    assert not Path("zsync.db").exists()
    assert len(emu.truth()["signals"]) == 20


def test_a_normal_run_pays_one_list_request_and_a_no_op_run_none(
    emu: RunningEmulator, env: dict[str, str]
) -> None:
    _write(0, 50)
    _push(env)
    for last in (80, 250):  # a new page of its own signals, then more than a page
        before = _lists(emu)
        _write(0, last)
        _push(env)
        assert _lists(emu) - before == 1, last
    before = _lists(emu)
    _push(env)  # nothing to create: no check at all
    assert _lists(emu) == before
    _write(0, 260)
    before = _lists(emu)
    _push(env)
    assert _lists(emu) - before == 1
    assert _twice(emu) == 0


def test_a_shared_workspace_reads_only_what_was_added_since(
    emu: RunningEmulator, env: dict[str, str], tmp_path: Path
) -> None:
    """Another tool (here: zsync with a ledger of its own) adds signals between runs: each
    run reads the signals added since the last run (its own and the other's), not the
    whole list: one request for the check, one per 100 signals added since."""
    other = {**env, "ZSYNC_LEDGER": str(tmp_path / "other.db")}
    for last in (390, 400):  # the second run places the ledger where the first ended
        _write(0, last)
        _push(env)
    for n in range(3):
        _write(1000 + 30 * n, 1030 + 30 * n, "other.jsonl")
        run_cli(["push", "--input", "other.jsonl", "--no-poll"], env=other)
        _write(0, 400 + 10 * (n + 1))
        before = _lists(emu)
        done = _push(env)
        assert done["ok"] == 10
        assert _lists(emu) - before == 2, n  # 40 added since: one page, not a listing (5)
    assert _twice(emu) == 0


def test_without_a_total_count_the_check_costs_two_requests(tmp_path: Path) -> None:
    with running_emulator(idempotency="ignore", dedupe="off", list_fault="no-headers") as emu:
        env = {"ZENTRIK_API_BASE": emu.url, "ZENTRIK_API_KEY": TEST_KEY}
        _write(0, 40)
        _push(env)
        _write(0, 60)
        before = _lists(emu)
        _push(env)
        assert _lists(emu) - before == 2
        Path("zsync.db").unlink()
        again = _push(env)
        assert again["counts"]["adopted"] == 60 and _twice(emu) == 0


def test_a_key_that_cannot_read_the_list_still_pushes_with_one_warning() -> None:
    with running_emulator(scopes=("signals:write",)) as emu:
        env = {"ZENTRIK_API_BASE": emu.url, "ZENTRIK_API_KEY": TEST_KEY}
        _write(0, 5)
        done = run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=env)
        assert done.code == 0, done.err
        assert "was not checked against the server" in done.err
        assert len(emu.truth()["signals"]) == 5


@pytest.mark.parametrize("lose", ["ledger", "nothing"])
def test_failure_reasons_survive_verify_repair(tmp_path: Path, lose: str) -> None:
    """Issue 23: after `verify --repair` (a rebuild, or statuses corrected from the list)
    `zsync errors` still says why each signal failed, as the server's processing error."""
    with running_emulator(fail_rate=1.0, process_seconds=0.0) as emu:
        env = {"ZENTRIK_API_BASE": emu.url, "ZENTRIK_API_KEY": TEST_KEY}
        _write(0, 4)
        _push(env)  # --no-poll: the ledger holds them as submitted
        if lose == "ledger":
            Path("zsync.db").unlink()
        repaired = run_cli(["verify", "--repair"], env=env)
        assert repaired.code == 0, repaired.err
        errors = run_cli(["errors"], env=env)
        assert errors.code == 0, errors.err
        assert "4 × failed" in errors.out, errors.out
        assert "transcript too short" in errors.out, errors.out


@pytest.mark.parametrize("order", ["newest", "random"])
def test_a_list_in_another_order_costs_a_listing_never_a_duplicate(order: str) -> None:
    """The check places the ledger by creation order; any other order is noticed and the
    whole list is read instead (for a restored backup, a lost ledger, a normal run)."""
    with running_emulator(idempotency="ignore", dedupe="off", list_order=order) as emu:
        env = {"ZENTRIK_API_BASE": emu.url, "ZENTRIK_API_KEY": TEST_KEY}
        _write(0, 150)
        _push(env)
        shutil.copy("zsync.db", "backup.db")
        _write(0, 230)
        _push(env)
        shutil.copy("backup.db", "zsync.db")
        _write(0, 260)
        again = _push(env)
        assert again["counts"]["adopted"] == 80 and again["ok"] == 30
        Path("zsync.db").unlink()
        _write(0, 270)
        third = _push(env)
        assert third["counts"]["adopted"] == 260 and third["ok"] == 10
        assert _twice(emu) == 0 and len(emu.truth()["signals"]) == 270


def test_a_list_reshuffled_on_every_read_never_duplicates() -> None:
    """An order that shifts between pages cannot be read completely: the ledger that cannot
    vouch for itself then creates nothing (exit 4) rather than something twice."""
    with running_emulator(idempotency="ignore", dedupe="off", list_order="unstable") as emu:
        env = {"ZENTRIK_API_BASE": emu.url, "ZENTRIK_API_KEY": TEST_KEY}
        _write(0, 230)
        _push(env)
        Path("zsync.db").unlink()
        _write(0, 240)
        for _ in range(3):
            again = run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=env)
            assert again.code in (0, 4), again.err
            assert _twice(emu) == 0


def test_a_run_killed_before_its_adoption_is_in_leaves_the_anchor_where_it_was(
    emu: RunningEmulator, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The anchor moves past the signals the ledger lacked only once they are adopted: a
    run that dies in between leaves the next run the same work, not a ledger that trusts
    itself without them."""
    from zsync.engine import RetryPolicy, ZentrikClient
    from zsync.ledger import Ledger
    from zsync.model import RunResult
    from zsync.truth.trust import TrustGate

    _write(0, 200)
    _push(env)
    shutil.copy("zsync.db", "backup.db")
    _write(0, 300)
    _push(env)
    shutil.copy("backup.db", "zsync.db")
    ledger = Ledger.open(Path("zsync.db"))
    before = ledger.trust.anchor()

    def dies(*_args: object) -> None:
        raise KeyboardInterrupt  # as a SIGKILL would, before the adoption commits

    monkeypatch.setattr(ledger.server, "adopt", dies)
    gate = TrustGate(
        ledger,
        lambda: ZentrikClient(emu.url, TEST_KEY),
        RetryPolicy(),
        RunResult("push"),
        lambda _e: None,
        99,
    )
    with pytest.raises(KeyboardInterrupt):
        gate.check()
    assert ledger.trust.anchor() == before
    ledger.close()
    again = _push(env)
    assert again["counts"]["adopted"] == 100 and _twice(emu) == 0
