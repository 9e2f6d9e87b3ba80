"""Ledger damage is never silent (issue 13, item 4): every open checks the file before
anything is sent; damage is exit 5 for push, status and check; a read-only ledger and a
directory get their own messages; the ledger is private on every open."""

from __future__ import annotations

import random
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.helpers import FIGURES, created_count, privilege_drop, write_records, zsync
from tests.conftest import TEST_KEY, CliResult, run_cli
from tests.emulator.testing import running_emulator
from zsync.emulator.server import RunningEmulator


def _env(emu: RunningEmulator) -> dict[str, str]:
    return {"ZENTRIK_API_BASE": emu.url, "ZENTRIK_API_KEY": TEST_KEY}


def _seed(tmp_path: Path, env: dict[str, str], count: int = 300) -> Path:
    write_records(tmp_path / "in.jsonl", count, prefix="seed")
    done = run_cli(["push", "-i", "in.jsonl", "--no-poll", "--ledger", "z.db"], env)
    assert done.code == 0, done.err
    write_records(tmp_path / "more.jsonl", 40, prefix="more")  # new records: sent if accepted
    return tmp_path / "z.db"


def _push(env: dict[str, str], *extra: str) -> CliResult:
    return run_cli(["push", "-i", "more.jsonl", "--no-poll", "--ledger", "z.db", *extra], env)


def _refused(result: CliResult, *parts: str) -> None:
    assert result.code == 5, (result.code, result.err)
    assert "Traceback" not in result.err + result.out
    [line] = [x for x in result.err.splitlines() if x.startswith("zsync: error: ")]
    for part in parts:
        assert part in line, f"{part!r} not in {line!r}"


def test_a_zero_byte_ledger_is_refused_not_taken_as_new(tmp_path: Path) -> None:
    # A server that ignores keys: before the fix every record was created a second time.
    with running_emulator(idempotency="ignore", dedupe="off") as emu:
        env = _env(emu)
        ledger = _seed(tmp_path, env)
        before = created_count(emu)
        ledger.write_bytes(b"")
        FIGURES["corrupt_tried"] += 1
        done = run_cli(["push", "-i", "in.jsonl", "--no-poll", "--ledger", "z.db"], env)
        if done.code != 5:
            FIGURES["corrupt_accepted"] += 1
        _refused(done, "z.db", "empty file (0 bytes)", "--new-ledger")
        _refused(run_cli(["status", "--ledger", "z.db"], env), "empty file")
        assert created_count(emu) == before
        assert ledger.read_bytes() == b""
        # Asked for, a new ledger starts; the old file is kept, and the new ledger, which
        # cannot vouch for the workspace, adopts what it holds before creating anything.
        again = run_cli(
            ["push", "-i", "more.jsonl", "--no-poll", "--ledger", "z.db", "--new-ledger"], env
        )
        assert again.code == 0, again.err
        assert "kept as" in again.err and "cannot vouch" in again.err, again.err
        assert created_count(emu) == before + 40  # the seeded records are not created again
        kept = [p for p in tmp_path.iterdir() if p.name.startswith("z.db.broken-")]
        assert len(kept) == 1 and kept[0].read_bytes() == b""


def test_a_dropped_table_is_refused_before_anything_is_sent(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    env = _env(emulator)
    ledger = _seed(tmp_path, env)
    db = sqlite3.connect(ledger)
    db.execute("DROP TABLE events")
    db.commit()
    db.close()
    before = created_count(emulator)
    FIGURES["corrupt_tried"] += 1
    done = _push(env)
    if done.code != 5:
        FIGURES["corrupt_accepted"] += 1
    _refused(done, "z.db", "table events is missing")
    assert created_count(emulator) == before  # before the fix: 20 creates, then exit 5
    _refused(run_cli(["status", "--ledger", "z.db"], env), "table events is missing")


def _noise_page(data: bytearray, page: int, size: int, rng: random.Random) -> None:
    data[page * size : (page + 1) * size] = rng.randbytes(size)


def _flip_bytes(data: bytearray, page: int, size: int, rng: random.Random) -> None:
    for _ in range(8):
        at = page * size + rng.randrange(8, size)
        data[at] ^= 0xFF


def _zero_page(data: bytearray, page: int, size: int, rng: random.Random) -> None:
    data[page * size : (page + 1) * size] = bytes(size)


def _swap_pages(data: bytearray, page: int, size: int, rng: random.Random) -> None:
    other = rng.randrange(1, len(data) // size)
    a, b = slice(page * size, (page + 1) * size), slice(other * size, (other + 1) * size)
    data[a], data[b] = data[b], data[a]


def _header_of_page(data: bytearray, page: int, size: int, rng: random.Random) -> None:
    base = page * size + (100 if page == 0 else 0)
    data[base : base + 12] = rng.randbytes(12)


DAMAGE: dict[str, Callable[[bytearray, int, int, random.Random], None]] = {
    "noise": _noise_page,
    "flipped bytes": _flip_bytes,
    "zeroed page": _zero_page,
    "swapped pages": _swap_pages,
    "page header": _header_of_page,
}


def _broken(path: Path) -> bool:
    """Does SQLite itself find this file damaged?"""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return db.execute("PRAGMA integrity_check").fetchall() != [("ok",)]
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return True


@pytest.mark.parametrize("seed", [13, 31, 47])
def test_damage_sqlite_finds_is_refused_by_push_status_and_check(
    seed: int, tmp_path: Path, emulator: RunningEmulator
) -> None:
    env = _env(emulator)
    ledger = _seed(tmp_path, env, count=600)
    pristine = ledger.read_bytes()
    size = 4096
    pages = len(pristine) // size
    rng = random.Random(seed)
    tried = accepted = 0
    for round_ in range(24):
        name = sorted(DAMAGE)[round_ % len(DAMAGE)]
        data = bytearray(pristine)
        DAMAGE[name](data, rng.randrange(1, pages), size, rng)
        ledger.write_bytes(bytes(data))
        for leftover in (Path(f"{ledger}-wal"), Path(f"{ledger}-shm")):
            leftover.unlink(missing_ok=True)
        if not _broken(ledger):
            continue  # the change hit free space: not damage
        tried += 1
        before = created_count(emulator)
        results = {
            "push": _push(env),
            "status": run_cli(["status", "--ledger", "z.db"], env),
            "check": run_cli(["check", "--ledger", "z.db"], env),
        }
        codes = {what: r.code for what, r in results.items()}
        if set(codes.values()) != {5} or created_count(emulator) != before:
            accepted += 1
        for what, result in results.items():
            assert "Traceback" not in result.err + result.out, (name, what, result.err)
        assert set(codes.values()) == {5}, (name, codes, results["push"].err)
        assert created_count(emulator) == before, name
    FIGURES["corrupt_tried"] += tried
    FIGURES["corrupt_accepted"] += accepted
    assert tried >= 12, f"only {tried} of 24 damages broke the file"


def test_a_directory_is_a_ledger_error(tmp_path: Path, emulator: RunningEmulator) -> None:
    env = _env(emulator)
    write_records(tmp_path / "more.jsonl", 3)
    (tmp_path / "z.db").mkdir()
    _refused(_push(env), "z.db", "is a directory")
    _refused(run_cli(["status", "--ledger", "z.db"], env), "is a directory")


def test_a_read_only_ledger_with_a_wal_gets_its_own_message(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    prefix = privilege_drop()
    if prefix is None:
        pytest.skip("running as root without setpriv: file modes do not bind root")
    env = _env(emulator)
    ledger = _seed(tmp_path, env)
    # A run killed mid-write leaves -wal/-shm; the ledger is then made read-only in a
    # read-only directory (a backup mount, another user's files).
    script = (
        "import os, sqlite3, sys; db = sqlite3.connect(sys.argv[1], isolation_level=None);"
        "db.execute('PRAGMA wal_autocheckpoint = 0');"
        'db.execute("UPDATE meta SET value = value"); os._exit(0)'
    )
    subprocess.run([sys.executable, "-c", script, str(ledger)], check=True)
    Path(f"{ledger}-shm").unlink(missing_ok=True)
    ledger.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        for command in (["status"], ["export"], ["runs"]):
            done = zsync([*command, "--ledger", str(ledger)], env, prefix=prefix)
            assert done.returncode == 5, done.stderr
            assert "not a zsync ledger" not in done.stderr, done.stderr
            assert "-wal/-shm" in done.stderr and "read-only" in done.stderr, done.stderr
    finally:
        tmp_path.chmod(0o755)


def test_every_open_makes_the_ledger_private(tmp_path: Path, emulator: RunningEmulator) -> None:
    env = _env(emulator)
    ledger = _seed(tmp_path, env)
    for command in (["status"], ["push", "-i", "more.jsonl", "--no-poll"]):
        ledger.chmod(0o644)
        assert run_cli([*command, "--ledger", "z.db"], env).code == 0
        for path in (ledger, Path(f"{ledger}-wal"), Path(f"{ledger}-shm")):
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, (command, path)


def test_a_new_ledger_for_a_workspace_with_signals_adopts_them_before_sending(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    env = _env(emulator)
    _seed(tmp_path, env, count=5)
    first = run_cli(["push", "-i", "more.jsonl", "--no-poll", "--ledger", "other.db"], env)
    assert first.code == 0, first.err
    said = [x for x in first.err.splitlines() if "cannot vouch" in x]
    assert said == [
        "notice: ledger other.db cannot vouch for this workspace (it is new or empty, but the "
        "workspace already holds 5 signals): what the server holds is adopted before anything "
        "is created"
    ], first.err
    again = run_cli(["push", "-i", "more.jsonl", "--no-poll", "--ledger", "other.db"], env)
    assert "cannot vouch" not in again.err  # only while the ledger cannot
