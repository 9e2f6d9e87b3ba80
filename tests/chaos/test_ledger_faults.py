"""A ledger that cannot be used: each case gives one clear line and exit 5, and leaves the
file exactly as it was (nothing half-written), so fixing the cause is all a user has to do."""

from __future__ import annotations

import hashlib
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.helpers import (
    FIGURES,
    TEST_KEY,
    check_exactly_once,
    env_for,
    finish,
    ledger_rows,
    privilege_drop,
    write_records,
    zsync,
)
from tests.conftest import CliResult, run_cli
from zsync import __version__
from zsync.emulator.server import RunningEmulator
from zsync.ledger import build_migrations, migrations_dir

LEDGER_EXIT = 5


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def env(emulator: RunningEmulator) -> dict[str, str]:
    return {"ZENTRIK_API_BASE": emulator.url, "ZENTRIK_API_KEY": TEST_KEY}


@pytest.fixture
def seeded(tmp_path: Path, env: dict[str, str]) -> Iterator[Path]:
    """A real ledger with a finished run and 50 items, closed (WAL checkpointed away)."""
    write_records(tmp_path / "in.jsonl", 50, prefix="seed")
    done = run_cli(["push", "-i", "in.jsonl", "--no-poll", "--ledger", "z.db"], env)
    assert done.code == 0, done.err
    assert not (tmp_path / "z.db-wal").exists()
    yield tmp_path / "z.db"


def _refused(result: CliResult, *parts: str) -> str:
    FIGURES["ledger_faults"] += 1
    assert result.code == LEDGER_EXIT, (result.code, result.err)
    assert "Traceback" not in result.err + result.out
    lines = [line for line in result.err.splitlines() if line.startswith("zsync: error: ")]
    assert len(lines) == 1, result.err
    for part in parts:
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"
    return lines[0]


def _push(env: dict[str, str], ledger: str = "z.db") -> CliResult:
    return run_cli(["push", "-i", "in.jsonl", "--no-poll", "--ledger", ledger], env)


def test_missing_directory(tmp_path: Path, env: dict[str, str]) -> None:
    write_records(tmp_path / "in.jsonl", 3)
    _refused(_push(env, "no/such/dir/z.db"), "no/such/dir", "does not exist")
    assert not (tmp_path / "no").exists()


def test_read_only_ledger_file(
    tmp_path: Path, seeded: Path, emulator: RunningEmulator, env: dict[str, str]
) -> None:
    prefix = privilege_drop()
    if prefix is None:
        pytest.skip("running as root without setpriv: file modes do not bind root")
    seeded.chmod(0o444)
    before = _digest(seeded)
    done = zsync(
        ["push", "-i", str(tmp_path / "in.jsonl"), "--ledger", str(seeded)], env, prefix=prefix
    )
    _refused(CliResult(done.returncode, done.stdout, done.stderr), str(seeded), "read-only")
    assert _digest(seeded) == before


def test_read_only_directory_for_a_new_ledger(tmp_path: Path, env: dict[str, str]) -> None:
    prefix = privilege_drop()
    if prefix is None:
        pytest.skip("running as root without setpriv: file modes do not bind root")
    write_records(tmp_path / "in.jsonl", 3)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    done = zsync(
        ["push", "-i", str(tmp_path / "in.jsonl"), "--ledger", str(locked / "z.db")],
        env,
        prefix=prefix,
    )
    _refused(CliResult(done.returncode, done.stdout, done.stderr), "cannot create")
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("how", ["truncated", "garbage", "text-file", "zero-page-header"])
def test_corrupt_ledger_is_refused_and_left_alone(
    seeded: Path, env: dict[str, str], how: str
) -> None:
    data = seeded.read_bytes()
    if how == "truncated":
        seeded.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        seeded.write_bytes(random.Random(1).randbytes(len(data)))
    elif how == "text-file":
        seeded.write_text("external_id,status\nseed-1,processed\n")
    else:
        seeded.write_bytes(b"\0" * 100 + data[100:])
    before = _digest(seeded)
    _refused(_push(env), "z.db", "corrupt")
    _refused(run_cli(["status", "--ledger", "z.db"], env), "z.db", "corrupt")
    assert _digest(seeded) == before


def test_corruption_found_in_the_middle_of_a_run(tmp_path: Path, env: dict[str, str]) -> None:
    """The items table's pages are damaged, everything else is intact: opening, migrating and
    taking the lease work, and the damage is met only when the run plans. Still exit 5 with
    the ledger's name, not an internal error."""
    write_records(tmp_path / "in.jsonl", 500, prefix="big")
    assert _push(env).code == 0
    ledger = tmp_path / "z.db"
    _damage(ledger, "items")
    _refused(_push(env), "z.db", "corrupt")
    _refused(run_cli(["status", "--ledger", "z.db"], env), "z.db", "corrupt")
    _refused(run_cli(["reconcile", "--ledger", "z.db"], env), "z.db", "corrupt")
    _damage(ledger, "runs", "events")
    for command in (["runs"], ["show", "big-00001"], ["errors"], ["export"]):
        _refused(run_cli([*command, "--ledger", "z.db"], env), "z.db", "corrupt")


def _damage(ledger: Path, *tables: str) -> None:
    """Overwrite the root pages of `tables` (and their indexes) with noise."""
    db = sqlite3.connect(ledger)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    marks = ",".join("?" * len(tables))
    roots = [
        root
        for (root,) in db.execute(
            f"SELECT rootpage FROM sqlite_master WHERE tbl_name IN ({marks})", tables
        )
    ]
    db.close()
    with ledger.open("r+b") as f:
        for root in roots:
            f.seek((root - 1) * page_size)
            f.write(random.Random(root).randbytes(page_size))


def test_ledger_from_a_newer_zsync(seeded: Path, env: dict[str, str]) -> None:
    db = sqlite3.connect(seeded)
    db.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
        "VALUES ('zsync', '9999_from_the_future', '2030-01-01')"
    )
    db.commit()
    db.close()
    before = _digest(seeded)
    runs_before = ledger_rows(seeded, "SELECT COUNT(*) FROM runs")
    known = build_migrations()[1][-1]
    line = _refused(_push(env), "9999_from_the_future", known, __version__, "upgrade zsync")
    assert "newer" in line
    _refused(run_cli(["status", "--ledger", "z.db"], env), "9999_from_the_future", known)
    assert _digest(seeded) == before
    assert ledger_rows(seeded, "SELECT COUNT(*) FROM runs") == runs_before


def test_another_programs_sqlite_database_is_not_touched(
    tmp_path: Path, env: dict[str, str]
) -> None:
    write_records(tmp_path / "in.jsonl", 3)
    other = tmp_path / "app.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO customers (name) VALUES ('ada')")
    db.commit()
    db.close()
    before = _digest(other)
    _refused(_push(env, "app.db"), "app.db", "customers")
    assert _digest(other) == before
    assert not Path(f"{other}-wal").exists()


def _broken_migrations(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), directory)
    # The first two statements succeed; the third fails: all three must be undone.
    (directory / "9000_broken.sql").write_text(
        "ALTER TABLE items ADD COLUMN half_done TEXT;\n"
        "CREATE TABLE half_made (id INTEGER);\n"
        "INSERT INTO no_such_table VALUES (1);\n"
    )
    return directory


def test_failing_migration_rolls_back_and_stays_pending(
    tmp_path: Path, seeded: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    items_before = ledger_rows(seeded, "SELECT * FROM items ORDER BY external_id")
    broken = _broken_migrations(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr("zsync.ledger.migrate.migrations_dir", lambda: broken)
        _refused(_push(env), "z.db", "migration failed", "no_such_table")
    columns = [row[1] for row in ledger_rows(seeded, "PRAGMA table_info(items)")]
    assert "half_done" not in columns
    tables = [row[0] for row in ledger_rows(seeded, "SELECT name FROM sqlite_master")]
    assert "half_made" not in tables
    names = [row[0] for row in ledger_rows(seeded, "SELECT name FROM _sqlite_migrations")]
    assert "9000_broken" not in names
    assert ledger_rows(seeded, "SELECT * FROM items ORDER BY external_id") == items_before
    # With the fixed zsync the same ledger carries on: nothing to send, nothing lost.
    again = _push(env)
    assert again.code == 0, again.err
    assert "50 unchanged" in again.out + again.err


def test_failing_migration_on_a_new_ledger_leaves_no_half_schema(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_records(tmp_path / "in.jsonl", 3)
    broken = _broken_migrations(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr("zsync.ledger.migrate.migrations_dir", lambda: broken)
        _refused(_push(env), "migration failed")
    # A new ledger appears whole or not at all: nothing is left for the next run to trip on.
    assert not (tmp_path / "z.db").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith((".z.db", "z.db"))]
    assert _push(env).code == 0


HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
db.execute("UPDATE meta SET value = value")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


def test_ledger_locked_by_another_process(seeded: Path, env: dict[str, str]) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(seeded), "12"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        runs_before = ledger_rows(seeded, "SELECT COUNT(*) FROM runs")
        started = time.monotonic()
        _refused(_push(env), "z.db", "locked")
        assert time.monotonic() - started < 10, "waited far past busy_timeout"
        assert ledger_rows(seeded, "SELECT COUNT(*) FROM runs") == runs_before
    finally:
        holder.kill()
        holder.communicate()
    assert _push(env).code == 0


@pytest.mark.slow
def test_disk_full_in_the_middle_of_a_run(tmp_path: Path, emulator: RunningEmulator) -> None:
    """The ledger cannot grow (RLIMIT_FSIZE stands in for a full disk) while records are
    being sent: exit 5 naming the ledger, and once there is room the next run finishes with
    every record exactly once."""
    emulator.set_faults(latency_ms=5)
    ids = write_records(tmp_path / "in.jsonl", 2000, prefix="full")
    ledger = tmp_path / "z.db"
    env = env_for(emulator, ledger)
    limit = 600 * 1024
    script = (
        "import resource, runpy, sys;"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}));"
        "sys.argv = ['zsync', *sys.argv[1:]];"
        "runpy.run_module('zsync', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "push", "-i", str(tmp_path / "in.jsonl"), "--no-poll"],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    FIGURES["ledger_faults"] += 1
    assert done.returncode == LEDGER_EXIT, done.stderr
    assert "Traceback" not in done.stderr
    assert "z.db" in done.stderr and "full" in done.stderr, done.stderr
    finish(["push", "-i", str(tmp_path / "in.jsonl"), "--poll-seconds", "60"], env)
    check_exactly_once(emulator, ledger, ids)
