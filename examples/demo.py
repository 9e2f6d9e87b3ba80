"""`make demo`: zsync's main job end to end against the local emulator.

Starts `zsync emulator` on a free port, pushes examples/signals.json (the two records of
Zentrik's import-template page), shows `zsync status`, pushes again to show that nothing is
re-sent, then stops the emulator. Everything lives in .demo/ and is recreated each time.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo"
ZSYNC = [sys.executable, "-m", "zsync"]


def step(title: str, args: list[str], env: dict[str, str], expect: set[int]) -> None:
    shown = " ".join(shlex.quote(a) for a in ["zsync", *args])
    print(f"\n$ {shown}    # {title}", flush=True)
    code = subprocess.call([*ZSYNC, *args], env=env, cwd=ROOT)
    if code not in expect:
        raise SystemExit(f"demo: `{shown}` exited {code}, expected {sorted(expect)}")


def next_steps() -> str:
    """How to run zsync yourself: it is installed in the venv `make` made, not on PATH."""
    bin_dir = Path(sys.executable).parent
    try:
        shown = bin_dir.relative_to(ROOT)
    except ValueError:  # a python outside this checkout
        shown = bin_dir
    zsync = shown / "zsync"
    return (
        f"\nzsync is installed in {shown.parent}, not on your PATH: run it as {zsync}, or run\n"
        f"`source {shown / 'activate'}` first and then just `zsync`. To try it yourself:\n"
        f"  {zsync} emulator &    # a local Zentrik at http://127.0.0.1:8080/api\n"
        "  export ZENTRIK_API_KEY=zsync-dev-key    # the emulator's key\n"
        f"  {zsync} push --input examples/tickets.jsonl --mapping examples/tickets.toml\n"
        f"  {zsync} status"
    )


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir()
    port_file = WORK / "port"
    emulator = subprocess.Popen(
        [
            *ZSYNC,
            "emulator",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--process-seconds",
            "1.5",
        ],
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists() or not port_file.read_text().strip():
            if emulator.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("demo: the emulator did not start")
            time.sleep(0.05)
        port = port_file.read_text().strip()
        env = {
            **os.environ,
            "ZENTRIK_API_BASE": f"http://127.0.0.1:{port}/api",
            "ZENTRIK_API_KEY": "zsync-dev-key",
            "ZSYNC_LEDGER": str(WORK / "zsync.db"),
        }
        step(
            "send both records and wait until Zentrik has processed them",
            ["-v", "push", "--input", "examples/signals.json"],
            env,
            {0},
        )
        step("what the ledger knows", ["status"], env, {0})
        step(
            "run it again: nothing changed, so nothing is sent",
            ["push", "--input", "examples/signals.json"],
            env,
            {0},
        )
        print("\ndemo: done. The ledger is .demo/zsync.db (a plain SQLite file).")
        print(next_steps())
        return 0
    finally:
        emulator.terminate()
        try:
            emulator.wait(timeout=10)
        except subprocess.TimeoutExpired:
            emulator.kill()


if __name__ == "__main__":
    sys.exit(main())
