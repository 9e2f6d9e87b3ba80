"""Shared machinery of the chaos suites: inputs, real zsync processes, the exactly-once check,
an emulator whose listener goes down and comes back, and the figures `make chaos` prints."""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.zsync_cmd import ZSYNC
from zsync.emulator.handler import HttpServer
from zsync.emulator.server import RunningEmulator

TEST_KEY = "zsync-dev-key"

# What the session-finish hook in conftest.py prints. Tests add to it as they prove things.
FIGURES: dict[str, Any] = {
    "kills": 0,
    "kills_mid_send": 0,
    "interrupts": 0,
    "outages": 0,
    "faults": Counter(),
    "bad_inputs": 0,
    "bad_records": 0,
    "ledger_faults": 0,
    "overlaps": 0,
    "records_checked": 0,
    "duplicates": 0,
    "lost": 0,
    # issue 13 (tests/chaos/test_hardening*.py)
    "overlapped": 0,  # runs that worked one ledger at the same time
    "lease_probes": 0,  # second runs started against a live holder
    "blocked": 0,  # good records not sent because of another record's fault
    "faulty_records": 0,
    "endless_peak_mb": [],  # peak RSS of runs fed an endless line
    "corrupt_accepted": 0,  # damaged ledgers a command accepted
    "corrupt_tried": 0,
    "key_found": 0,  # places (ledger, WAL, export, show, check) holding the echoed key
    "key_places": 0,
}


def write_records(path: Path, count: int, *, prefix: str = "rec", seed: int = 1) -> list[str]:
    """A JSONL file of `count` external_text records of varied size; their externalIds."""
    rng = random.Random(seed)
    ids = [f"{prefix}-{i:05d}" for i in range(count)]
    with path.open("w", encoding="utf-8") as f:
        for i, ext in enumerate(ids):
            record = {
                "kind": "external_text",
                "externalId": ext,
                "signalType": "transcript",
                "name": f"call {i}",
                "text": f"call {i}: " + "the customer said " * rng.randint(1, 60),
            }
            f.write(json.dumps(record) + "\n")
    return ids


def env_for(emu: RunningEmulator, ledger: Path, **extra: str) -> dict[str, str]:
    return {
        "ZENTRIK_API_BASE": emu.url,
        "ZENTRIK_API_KEY": TEST_KEY,
        "ZSYNC_LEDGER": str(ledger),
        "ZSYNC_RETRY_SCALE": "0.02",
        # The emulator commits before it answers unless told otherwise (see tests/conftest.py).
        "ZSYNC_DOUBT_HORIZON": "0.3",
        **extra,
    }


def _child_env(env: dict[str, str]) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("ZENTRIK_", "ZSYNC_", "EVAL_API"))
    }
    return {**base, **env}


# Every process spawn() started; the conftest kills whatever a failed test left running.
LIVE: list[subprocess.Popen[str]] = []


def spawn(
    args: list[str],
    env: dict[str, str],
    *,
    prefix: list[str] | None = None,
    umask: int | None = None,
) -> subprocess.Popen[str]:
    """A real `zsync` process (stdout and stderr captured as text)."""

    def pre() -> None:
        if umask is not None:
            os.umask(umask)

    proc = subprocess.Popen(
        [*(prefix or []), *ZSYNC, *args],
        env=_child_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=pre if umask is not None else None,
    )
    LIVE.append(proc)
    return proc


def zsync(
    args: list[str], env: dict[str, str], *, timeout: float = 300, prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(prefix or []), *ZSYNC, *args],
        env=_child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ledger_rows(ledger: Path, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        return db.execute(sql, tuple(params)).fetchall()
    finally:
        db.close()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def created_count(emu: RunningEmulator) -> int:
    return sum(emu.truth()["creates_by_external_id"].values())


def record_faults(truth: dict[str, Any]) -> None:
    FIGURES["faults"].update({k: v for k, v in truth["faults"].items() if v})


def check_exactly_once(
    emu: RunningEmulator,
    ledger: Path,
    expected_ids: Iterable[str],
    *,
    settled: Iterable[str] = ("processed",),
) -> dict[str, Any]:
    """The invariants every suite ends with, on the server's truth and the ledger's rows.

    Each expected externalId became exactly one signal (none lost, none twice); nothing else
    exists on the server; the ledger maps each of them to that signal's publicId, and every
    item is in one of the `settled` statuses (on the ledger and, for processed, on the server).
    """
    truth = emu.truth()
    record_faults(truth)
    expected = set(expected_ids)
    creates = truth["creates_by_external_id"]
    server: dict[str, list[str]] = {}
    for signal in truth["signals"]:
        server.setdefault(str(signal["externalId"]), []).append(signal["publicId"])
    twice = {ext: n for ext, n in creates.items() if n > 1}
    twice.update({ext: len(ids) for ext, ids in server.items() if len(ids) > 1})
    lost = expected - set(server)
    FIGURES["records_checked"] += len(expected)
    FIGURES["duplicates"] += sum(n - 1 for n in twice.values())
    FIGURES["lost"] += len(lost)
    assert not twice, f"created more than once: {dict(list(twice.items())[:10])}"
    assert not lost, f"{len(lost)} records never reached the server: {sorted(lost)[:10]}"
    assert set(server) == expected, f"unexpected signals: {sorted(set(server) - expected)[:10]}"

    rows = ledger_rows(ledger, "SELECT external_id, status, public_id FROM items")
    in_ledger = {ext: pid for ext, _status, pid in rows if ext in expected}
    on_server = {ext: ids[0] for ext, ids in server.items()}
    assert in_ledger == on_server, "ledger publicIds differ from the server's signals"
    statuses = Counter(status for ext, status, _pid in rows if ext in expected)
    assert set(statuses) <= set(settled), f"ledger statuses: {dict(statuses)}"
    if set(settled) == {"processed"}:
        server_statuses = Counter(s["status"] for s in truth["signals"])
        assert set(server_statuses) == {"processed"}, dict(server_statuses)
    return truth


class Outage:
    """Stops the emulator's listener and later serves the same workspace on the same port.

    The emulator's state (signals, idempotency records, counters) lives in its App, not in the
    listener, so a restart here is what a real API restart looks like to a client: connections
    die, new ones are refused for a while, then the same data answers again (after a warm-up).
    """

    def __init__(self, emu: RunningEmulator) -> None:
        self.emu = emu
        self.port = emu.port

    def down(self) -> None:
        emu: Any = self.emu
        server = emu._server
        server.shutdown()
        server.server_close()
        server.close_connections()
        emu._thread.join(timeout=5)
        FIGURES["outages"] += 1

    def up(self, *, warm_up: bool = True) -> None:
        emu: Any = self.emu
        app = emu._app
        server = HttpServer((emu.config.host, self.port), app)
        if warm_up:
            app.started = time.monotonic()  # a restarted API warms up again
        emu._server = server
        emu._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        emu._thread.start()

    def bounce(self, seconds: float) -> None:
        self.down()
        time.sleep(seconds)
        self.up()


def push_until_done(
    args: list[str],
    env: dict[str, str],
    *,
    allowed: Iterable[int] = (0, 75),
    max_runs: int = 8,
) -> list[int]:
    """Re-run `zsync push` (as a cron job would) until it exits 0; the exit codes seen."""
    codes: list[int] = []
    for _ in range(max_runs):
        done = zsync(args, env)
        assert "Traceback" not in done.stderr, done.stderr
        codes.append(done.returncode)
        assert done.returncode in set(allowed), (codes, done.stderr[-2000:])
        if done.returncode == 0:
            return codes
    raise AssertionError(f"push never finished: exit codes {codes}")


def finish(push_args: list[str], env: dict[str, str]) -> list[int]:
    """Push until a run exits 0, then `reconcile` (which must exit 0): the operator's recovery."""
    codes = push_until_done(push_args, env)
    done = zsync(["reconcile", "--poll-seconds", "60"], env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return codes


def privilege_drop() -> list[str] | None:
    """A command prefix that makes root obey file modes (None: cannot, or not needed: [])."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--"]
