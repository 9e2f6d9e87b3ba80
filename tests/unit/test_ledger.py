"""The ledger as a user meets it: a file that survives and refuses what it must."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from zsync.errors import ConfigError, LedgerError, LedgerLocked
from zsync.ledger import Ledger, build_migrations
from zsync.model import Intent, Outcome


def _intent(ext: str, payload: str = '{"text":"x"}') -> Intent:
    return Intent(ext, "hash-" + ext, payload, "key-" + ext, "in.json[0]")


def test_new_ledger_and_its_wal_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "zsync.db"
    ledger = Ledger.open(path)
    ledger.items.record_intents([_intent("a")], run_id=1)
    for candidate in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm")):
        if candidate.exists():
            assert stat.S_IMODE(candidate.stat().st_mode) == 0o600, candidate
    ledger.close()


def test_intent_then_outcomes_walk_the_lifecycle(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "l.db")
    ledger.items.record_intents([_intent("a"), _intent("b")], run_id=1)
    assert ledger.items.counts_by_status() == {"pending": 2}
    ledger.items.apply_outcomes(
        [
            Outcome(
                "a",
                "created",
                status="submitted",
                http_status=201,
                public_id="SIGNAL-1",
                job_id="job-1",
                attempts=1,
            ),
            Outcome(
                "b",
                "rejected",
                status="rejected",
                http_status=422,
                detail="422 validation_failed: text is required",
                attempts=1,
            ),
        ],
        run_id=1,
    )
    ledger.items.apply_outcomes([Outcome("a", "processed", status="processed")], run_id=1)
    item = ledger.items.get_item("a")
    assert item is not None
    assert (item["status"], item["public_id"], item["job_id"]) == ("processed", "SIGNAL-1", "job-1")
    assert item["payload"] is None  # processed: the resend copy is no longer kept
    rejected = ledger.items.get_item("b")
    assert rejected is not None and rejected["last_error"].startswith("422")
    assert [e["kind"] for e in ledger.items.events_for("a")] == ["created", "processed"]
    ledger.close()


def test_reopening_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    ledger = Ledger.open(path)
    ledger.items.record_intents([_intent("a")], run_id=1)
    ledger.close()
    again = Ledger.open(path)
    assert again.items.lookup(["a", "zzz"]).keys() == {"a"}
    again.close()


def test_second_holder_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from zsync.ledger import Ledger;"
            "l = Ledger.open(Path(sys.argv[1])); l.lease.acquire('push');"
            "print('held', flush=True);"
            "time.sleep(30)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        ledger = Ledger.open(path)
        with pytest.raises(LedgerLocked, match=rf"pid {child.pid} on .*push"):
            ledger.lease.acquire("push")
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
    # The holder died without releasing: the next run takes the lease over.
    ledger.lease.acquire("push")
    holder = ledger.lease.holder()
    assert holder is None or holder.pid == os.getpid()
    ledger.close()


def test_workspace_binding_refuses_another_workspace(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "l.db")
    ledger.bind("http://127.0.0.1:1/api", "ws-1")
    ledger.bind("http://127.0.0.1:1/api", "ws-1")
    with pytest.raises(ConfigError, match="belongs to workspace ws-1"):
        ledger.bind("http://127.0.0.1:1/api", "ws-2")
    ledger.close()


def test_corrupt_file_is_a_clear_ledger_error(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="corrupt"):
        Ledger.open(path)


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="does not exist"):
        Ledger.open(tmp_path / "nope" / "l.db")


def test_ledger_from_a_newer_zsync_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    Ledger.open(path).close()
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
        "VALUES ('zsync', '9999_from_the_future', '2030-01-01')"
    )
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match=r"9999_from_the_future.*newer zsync.*knows up to \d{4}"):
        Ledger.open(path)


def test_failing_migration_rolls_back_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_ok.sql").write_text("CREATE TABLE a (x);\n")
    (migrations / "0002_bad.sql").write_text("CREATE TABLE b (x);\nTHIS IS NOT SQL;\n")
    import zsync.ledger.migrate as ledger_mod

    monkeypatch.setattr(ledger_mod, "migrations_dir", lambda: migrations)
    path = tmp_path / "l.db"
    with pytest.raises(LedgerError, match="migration failed"):
        Ledger.open(path)
    import sqlite3

    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "a" not in tables and "b" not in tables


def test_migrations_ship_inside_the_wheel(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(tmp_path),
            str(root),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("zsync-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n for n in names if n.startswith("zsync/migrations/") and n.endswith(".sql")}
    _, known = build_migrations()
    assert shipped == {f"zsync/migrations/{name}.sql" for name in known}
