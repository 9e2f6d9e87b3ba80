"""Processes for the benchmark: an emulator in its own process, zsync run as a user runs it.

Each zsync run is a child process (``python -m zsync push ...``) started by the small
spawner process (see spawn.py); its wall time is measured from spawn to exit (interpreter
start-up and imports included) and its peak RSS is the kernel's ``ru_maxrss`` for that one
child, read with ``os.wait4``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsync.config import DEV_API_KEY

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Emulator:
    root: str  # http://127.0.0.1:PORT
    pid: int

    @property
    def api(self) -> str:
        return f"{self.root}/api"

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.root}/__emulator/state", timeout=60) as answer:
            return dict(json.load(answer))

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.root}/__emulator/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass


@contextmanager
def emulator(*args: str) -> Iterator[Emulator]:
    """``zsync emulator --inspect`` on a free port, in its own process (its own GIL)."""
    with tempfile.TemporaryDirectory(prefix="zsync-bench-emu-") as tmp:
        port_file = Path(tmp) / "port"
        command = [sys.executable, "-m", "zsync", "emulator", "--port", "0"]
        # Identity dedupe off: "one signal per externalId" then proves zsync's exactly-once,
        # not the server forgiving a resend.
        command += ["--port-file", str(port_file), "--inspect", "--seed", "1", "--dedupe", "off"]
        command += args
        proc = subprocess.Popen(
            command, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text().strip():
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"emulator did not start: {err.strip()}")
                time.sleep(0.02)
            yield Emulator(f"http://127.0.0.1:{int(port_file.read_text())}", proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _env(api_base: str | None = None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ZENTRIK_", "ZSYNC_", "EVAL_API_"))
    }
    env["PYTHONPATH"] = str(ROOT)
    if api_base is not None:
        env["ZENTRIK_API_BASE"] = api_base
        env["ZENTRIK_API_KEY"] = DEV_API_KEY
    return env


@dataclass
class Run:
    wall: float
    code: int
    peak_rss_mb: float
    summary: dict[str, Any] = field(default_factory=dict)
    stderr: str = ""
    cpu_s: float = 0.0  # user + system CPU seconds of the zsync process


class Spawner:
    """Starts children from a process that stays small (see spawn.py for why)."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.spawn"],
            cwd=ROOT,
            env=_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(
        self, argv: list[str], cwd: Path, env: dict[str, str], stdout: Path | None, stderr: Path
    ) -> tuple[float, int, int, float]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        job = {
            "argv": argv,
            "cwd": str(cwd),
            "env": env,
            "stdout": None if stdout is None else str(stdout),
            "stderr": str(stderr),
        }
        self._proc.stdin.write(json.dumps(job) + "\n")
        self._proc.stdin.flush()
        answer = json.loads(self._proc.stdout.readline())
        wall, code, rss = float(answer["wall"]), int(answer["code"]), int(answer["maxrss_kb"])
        return wall, code, rss, float(answer["cpu_s"])

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


_spawner: Spawner | None = None


@contextmanager
def spawner() -> Iterator[Spawner]:
    """Start the spawner first, while this process is still small."""
    global _spawner
    _spawner = Spawner()
    try:
        yield _spawner
    finally:
        _spawner.close()
        _spawner = None


def zsync(
    args: list[str],
    *,
    api_base: str | None,
    cwd: Path,
    stdout_to_null: bool = False,
    expect: tuple[int, ...] = (0,),
) -> Run:
    """Run ``python -m zsync ARGS``; ``--json`` summaries (on stdout) are parsed."""
    if _spawner is None:
        raise RuntimeError("start the spawner first (harness.spawner())")
    out, err = cwd / "zsync.out", cwd / "zsync.err"
    argv = [sys.executable, "-m", "zsync", *args]
    # The bench's own fixtures (a 4.6 GB input, ledgers filled and copied just before) leave
    # dirty pages; their write-back must not be timed as zsync's.
    os.sync()
    wall, code, maxrss_kb, cpu_s = _spawner.run(
        argv, cwd, _env(api_base), None if stdout_to_null else out, err
    )
    stdout = "" if stdout_to_null else out.read_text()
    stderr = err.read_text()
    summary: dict[str, Any] = {}
    if "--json" in args and stdout.strip():
        summary = json.loads(stdout)
    if code not in expect:
        raise RuntimeError(
            f"zsync {' '.join(args)} exited {code}, expected {expect}:\n{stderr[-2000:]}"
        )
    return Run(wall, code, maxrss_kb / 1024, summary, stderr, cpu_s)


def timed(command: list[str], cwd: Path, api_base: str | None = None) -> tuple[float, str]:
    """Wall time and stdout of any other child (the baselines)."""
    os.sync()  # as for zsync: no write-back of the fixtures inside the timing
    started = time.perf_counter()
    env = _env(api_base)
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def request_counts(state: dict[str, Any]) -> dict[str, int]:
    """Requests by "METHOD path status" as the emulator counted them."""
    return {str(k): int(v) for k, v in state.get("requests", {}).items()}


def api_requests(state: dict[str, Any]) -> int:
    return sum(n for key, n in request_counts(state).items() if " /api/" in key)


def creates(state: dict[str, Any]) -> int:
    return sum(
        n
        for key, n in request_counts(state).items()
        if key.startswith("POST /api/external/v1/signals ")
    )


def throttled(state: dict[str, Any]) -> int:
    return int(state.get("faults", {}).get("rate_limited_429", 0))
