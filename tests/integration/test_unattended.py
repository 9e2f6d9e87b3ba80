"""Unattended runs (cron, timers): waiting is free, a plain re-run converges, quiet is quiet."""

from __future__ import annotations

import json
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import TEST_KEY
from tests.zsync_cmd import ZSYNC
from zsync.emulator.testing import running_emulator


def _write(path: Path, n: int, prefix: str = "wait") -> Path:
    lines = [
        json.dumps(
            {
                "kind": "external_text",
                "externalId": f"{prefix}-{i}",
                "signalType": "transcript",
                "text": f"call {i}",
            }
        )
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _env(emu: Any, ledger: Path) -> dict[str, str]:
    return {
        "ZENTRIK_API_BASE": emu.url,
        "ZENTRIK_API_KEY": TEST_KEY,
        "ZSYNC_LEDGER": str(ledger),
        "PATH": "/usr/bin:/bin",
    }


def test_waiting_for_processing_burns_no_cpu(tmp_path: Path) -> None:
    """A push that mostly waits for the server's processing uses a sliver of a core (it
    used to spin: 7.65 s of CPU in 8.0 s for 40 records processed in 6 s)."""
    source = _write(tmp_path / "in.jsonl", 40)
    with running_emulator(process_seconds=4.0, dedupe="off") as emu:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        done = subprocess.run(
            [*ZSYNC, "push", "-i", str(source), "--poll-interval", "1"],
            env=_env(emu, tmp_path / "z.db"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0, done.stderr
    assert "40 processed" in done.stdout + done.stderr
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # Interpreter start-up and 80 requests cost well under a second; the rest is waiting.
    assert wall >= 4.0
    assert cpu < 0.25 * wall, f"{cpu:.2f}s of CPU in {wall:.2f}s of wall time"
