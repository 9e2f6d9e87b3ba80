"""Real Meltano (from PyPI) runs `meltano run tap-jsonl target-zentrik` on the example
project against the emulator: the state Meltano stores never lets a record be lost or sent
twice, across re-runs, appended records and a run killed mid-way.

`make meltano-env` installs Meltano, tap-jsonl and this checkout as target-zentrik into
.cache/meltano once; each test has its own Meltano system database, data and ledger.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.request
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_KEY, emulator_fixture

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "examples" / "meltano"
CACHE = REPO / ".cache" / "meltano"
MELTANO = CACHE / "venv" / "bin" / "meltano"
STATE_ID = "dev:tap-jsonl-to-target-zentrik"

# Each create waits, so a run is still sending when it is killed.
slow_emulator = emulator_fixture(name="slow_emulator", dedupe="off", latency_ms=40)


@pytest.fixture(scope="module", autouse=True)
def _meltano_installed() -> None:
    made = subprocess.run(
        ["make", "-s", "meltano-env"], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert made.returncode == 0, made.stdout + made.stderr


def truth(emulator: Any) -> dict[str, Any]:
    """The emulator's own record (GET /__emulator/state, served with --inspect)."""
    url = emulator.url.removesuffix("/api") + "/__emulator/state"
    with urllib.request.urlopen(url, timeout=10) as answer:
        state: dict[str, Any] = json.load(answer)
    return state


def signals_per_external_id(emulator: Any) -> Counter[str]:
    return Counter(s["externalId"] for s in truth(emulator)["signals"])


class Project:
    """The example project with this test's data, ledger, emulator and system database."""

    def __init__(self, tmp: Path, emulator: Any, *, mapping: bool = True) -> None:
        self.data = tmp / "data"
        self.data.mkdir()
        self.systemdb = tmp / "meltano.db"
        self.env = {
            **os.environ,
            "MELTANO_SYS_DIR_ROOT": str(CACHE / "sys"),
            "MELTANO_DATABASE_URI": f"sqlite:///{self.systemdb}",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "TAP_JSONL_PATH": f"{self.data}/*.jsonl",
            "TARGET_ZENTRIK_API_BASE": emulator.url,
            "TARGET_ZENTRIK_API_KEY": TEST_KEY,
            "TARGET_ZENTRIK_LEDGER": str(tmp / "zsync.db"),
            "TARGET_ZENTRIK_CONCURRENCY": "2",
        }
        if mapping:  # the example sends each record as text; these tests use its mapping
            self.env["TARGET_ZENTRIK_MAPPING"] = str(PROJECT / "tickets.toml")

    def write(self, name: str, first: int, last: int, *, mtime: float | None = None) -> None:
        path = self.data / name
        with path.open("a") as f:
            for i in range(first, last + 1):
                row = {"ticket_id": i, "subject": f"ticket {i}", "body": f"body {i}",
                       "created_at": "2024-05-02T09:00:00Z", "priority": "normal"}  # fmt: skip
                f.write(json.dumps(row) + "\n")
        if mtime is not None:  # tap-jsonl's bookmark is the file's mtime, in whole seconds
            os.utime(path, (mtime, mtime))

    def meltano(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MELTANO), "--cwd", str(PROJECT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def run(self, *extra: str) -> subprocess.CompletedProcess[str]:
        result = self.meltano("run", *extra, "tap-jsonl", "target-zentrik")
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    def start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(MELTANO), "--cwd", str(PROJECT), "run", "tap-jsonl", "target-zentrik"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # one group: Meltano, the tap and the target die together
        )

    def stored_state(self) -> dict[str, Any] | None:
        """The state row in Meltano's system database, read directly: no process start."""
        if not self.systemdb.exists():
            return None
        with closing(sqlite3.connect(self.systemdb, timeout=5)) as db:
            try:
                row = db.execute(
                    "SELECT partial_state, completed_state FROM state WHERE state_id = ?",
                    (STATE_ID,),
                ).fetchone()
            except sqlite3.OperationalError:  # tables not made yet
                return None
        if row is None:
            return None
        merged = {**json.loads(row[0] or "{}"), **json.loads(row[1] or "{}")}
        return merged or None

    def state(self) -> dict[str, Any]:
        got = self.meltano("state", "get", STATE_ID)
        assert got.returncode == 0, got.stderr[-3000:]
        state: dict[str, Any] = json.loads(got.stdout)
        return state


def wait_until_gone(group: int, timeout: float = 30.0) -> None:
    """Until every process of the killed group has been reaped. The tap and the target were
    Meltano's children: init reaps them, and until then their pids still answer. A target
    still exiting (not yet a zombie) rightly holds its ledger lease."""
    deadline = time.monotonic() + timeout
    while any(_group_of(pid) == group for pid in os.listdir("/proc") if pid.isdigit()):
        assert time.monotonic() < deadline, "the killed processes were not reaped"
        time.sleep(0.05)


def _group_of(pid: str) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[2])


def bookmark(state: dict[str, Any]) -> str:
    """The bookmark of the data file: tap-jsonl keeps one per file (a partition)."""
    (partition,) = state["singer_state"]["bookmarks"]["tickets"]["partitions"]
    value: str = partition["replication_key_value"]
    return value


def ids(first: int, last: int) -> set[str]:
    return {f"helpdesk:{i}" for i in range(first, last + 1)}


def test_runs_store_a_state_and_send_each_record_once(tmp_path: Path, emulator: Any) -> None:
    project = Project(tmp_path, emulator)
    start = time.time() - 100
    project.write("tickets.jsonl", 1, 20, mtime=start)

    # (a) the first run creates every signal, and Meltano stores the tap's state
    first = project.run()
    assert "20 created" in first.stderr
    assert signals_per_external_id(emulator) == Counter(ids(1, 20))
    stored = project.state()
    assert bookmark(stored).startswith(time.strftime("%Y-%m-%d", time.gmtime(start)))

    # (b) nothing new: nothing is sent (tap-jsonl 0.3.1 reads the file again anyway; the
    # ledger knows every record), and the stored state stays
    second = project.run()
    assert "20 unchanged" in second.stderr and "created" not in second.stderr
    assert signals_per_external_id(emulator) == Counter(ids(1, 20))
    assert truth(emulator)["creates_by_external_id"] == dict.fromkeys(ids(1, 20), 1)

    # (c) appended records: exactly the new ones are created, and the state moves on
    project.write("tickets.jsonl", 21, 25, mtime=start + 50)
    third = project.run()
    assert "5 created" in third.stderr and "20 unchanged" in third.stderr
    assert signals_per_external_id(emulator) == Counter(ids(1, 25))
    assert bookmark(project.state()) > bookmark(stored)


@pytest.mark.parametrize("tap_resumes", [False, True], ids=["tap-rereads", "tap-resumes"])
def test_a_run_killed_mid_way_and_run_again_duplicates_nothing(
    tmp_path: Path, slow_emulator: Any, tap_resumes: bool
) -> None:
    project = Project(tmp_path, slow_emulator)
    project.write("tickets.jsonl", 1, 300, mtime=time.time() - 100)
    proc = project.start()
    try:
        # Killed once Meltano holds the tap's state and signals are being sent: the records
        # before that state are in the ledger, though not all on the server yet.
        deadline = time.monotonic() + 60
        while project.stored_state() is None or not truth(slow_emulator)["signals"]:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no state stored, or no signal arrived"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        wait_until_gone(proc.pid)
    sent = len(truth(slow_emulator)["creates_by_external_id"])
    assert 0 < sent < 300, "killed mid-way"

    slow_emulator.set_faults(latency_ms=0.0)
    last = 300
    if tap_resumes:
        # A tap that honours the stored state emits none of those records again (tap-jsonl
        # 0.3.1 re-reads its files, so the file is replaced here by the next day's): the
        # ledger's unsent intents must still be sent, each once.
        (project.data / "tickets.jsonl").unlink()
        project.write("tickets-2.jsonl", 301, 310, mtime=time.time() - 50)
        last = 310
    # Meltano still lists the killed run as running; --force starts the next one anyway
    again = project.run("--force")
    assert "created" in again.stderr or "replayed" in again.stderr
    assert signals_per_external_id(slow_emulator) == Counter(ids(1, last))
    assert set(truth(slow_emulator)["creates_by_external_id"].values()) == {1}
    assert project.stored_state() is not None


def test_without_a_mapping_or_a_key_each_ticket_is_one_signal_and_changes_are_upserts(
    tmp_path: Path, emulator: Any
) -> None:
    """The example as its README runs it: no mapping file, and no key (the example's dev
    environment has the emulator's); only the emulator's address is this test's."""
    project = Project(tmp_path, emulator, mapping=False)
    del project.env["TARGET_ZENTRIK_API_KEY"]
    project.write("tickets.jsonl", 1, 3, mtime=time.time() - 100)
    first = project.run()
    assert "3 created" in first.stderr
    signals = {s["externalId"]: s for s in truth(emulator)["signals"]}
    assert set(signals) == {"tickets:1", "tickets:2", "tickets:3"}  # stream:key_properties
    one = signals["tickets:1"]
    assert one["signalType"] == "tickets" and one["name"] == "ticket 1"  # name_template
    assert "subject: ticket 1" in one["text"].splitlines() and "_sdc_" not in one["text"]

    # ticket 2 again with new content (tap-jsonl re-reads the whole file): the last version
    # is the one Zentrik holds, updated in place
    with (project.data / "tickets.jsonl").open("a") as f:
        row = {"ticket_id": 2, "subject": "ticket 2 (reopened)", "body": "b",
               "created_at": "2024-05-02T09:00:00Z", "priority": "high"}  # fmt: skip
        f.write(json.dumps(row) + "\n")
    second = project.run()
    assert "1 updated" in second.stderr, second.stderr[-2000:]
    after = {s["externalId"]: s for s in truth(emulator)["signals"]}
    assert after["tickets:2"]["name"] == "ticket 2 (reopened)"
    assert truth(emulator)["creates_by_external_id"] == dict.fromkeys(signals, 1)
    third = project.run()
    assert "target-zentrik (run 3): 3 unchanged, 1 superseded in" in third.stderr
