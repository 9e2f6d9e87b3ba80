"""B8's yardstick: the least a threaded client does to create every record of a JSONL file.

    python -m tests.bench.minimal INPUT --api-base URL --threads 16

One ``requests.Session`` per thread, one POST per record (the record as its body, an
Idempotency-Key, the bearer key), no ledger, no retries, no validation beyond the status.
Prints one JSON line: requests, seconds, requests/s. The key comes from ZENTRIK_API_KEY.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("input", type=Path)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args(argv)
    bodies = [line for line in args.input.read_bytes().splitlines() if line.strip()]
    url = f"{args.api_base}/external/v1/signals"
    headers = {
        "Authorization": f"Bearer {os.environ['ZENTRIK_API_KEY']}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    lock = threading.Lock()
    position = [0]
    failed = [0]

    def worker() -> None:
        session = requests.Session()
        while True:
            with lock:
                k = position[0]
                position[0] += 1
            if k >= len(bodies):
                break
            body = bodies[k]
            key = hashlib.sha256(body).hexdigest()
            answer = session.post(
                url, data=body, headers={**headers, "Idempotency-Key": key}, timeout=30
            )
            if answer.status_code != 201:
                with lock:
                    failed[0] += 1
        session.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    result = {"requests": len(bodies), "failed": failed[0], "seconds": seconds}
    result["requests_per_s"] = len(bodies) / seconds
    print(json.dumps(result))
    return 0 if not failed[0] else 1


if __name__ == "__main__":
    sys.exit(main())
