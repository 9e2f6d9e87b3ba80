"""Requests/s the emulator sustains with no injected latency.

    .venv/bin/python -m tests.emulator.bench_throughput [--threads 8] [--requests 500]

The emulator runs in its own process, as under ``make demo`` or a benchmark, and the client is
requests with one keep-alive Session per thread, as zsync's client is. On a 2-core machine the
client, not the emulator, is the limit; the server's CPU time per request shows its own ceiling.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from zsync.config import DEV_API_KEY

_LAUNCH = "from zsync.emulator.command import emulator_command; emulator_command()"


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500, help="creates per thread")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        server = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, "--port", "0", "--port-file", str(port_file)],
            stdout=subprocess.DEVNULL,
        )
        try:
            while not port_file.exists():
                if server.poll() is not None:
                    raise SystemExit("emulator failed to start")
                time.sleep(0.02)
            url = f"http://127.0.0.1:{int(port_file.read_text())}/api/external/v1/signals"
            failures: list[int] = []

            def worker(n: int) -> None:
                with requests.Session() as session:
                    session.headers["Authorization"] = f"Bearer {DEV_API_KEY}"
                    for i in range(args.requests):
                        body = {
                            "text": "bench",
                            "signalType": "transcript",
                            "externalId": f"{n}-{i}",
                        }
                        answer = session.post(url, json=body, timeout=10)
                        if answer.status_code != 201:
                            failures.append(answer.status_code)

            threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.threads)]
            cpu_before = _cpu_seconds(server.pid)
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            cpu_after = _cpu_seconds(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=10)

    total = args.threads * args.requests
    print(f"{total} creates, {args.threads} threads: {total / elapsed:,.0f} requests/s")
    if cpu_before is not None and cpu_after is not None:
        per_request = (cpu_after - cpu_before) / total
        print(
            f"emulator CPU {per_request * 1e3:.3f} ms/request "
            f"(ceiling ~{1 / per_request:,.0f} requests/s on one core)"
        )
    if failures:
        raise SystemExit(f"{len(failures)} creates failed: {sorted(set(failures))}")


if __name__ == "__main__":
    main()
