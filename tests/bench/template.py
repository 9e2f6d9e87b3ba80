"""B1's other yardstick: the vendor's import template, at its pace.

    python -m tests.bench.template INPUT   (ZENTRIK_API_BASE, ZENTRIK_API_KEY from the env)

What the Signals import template (shared/reference/signals-import-template.txt) does with
``--no-poll``: one item after the other, each a POST through ``urllib.request`` (a new
connection per request), its body built from the spec's fields, the receipt printed. Its
retry loop is left out: the benchmark's server does not fail. Prints the count at the end.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

_TEXT_FIELDS = ("name", "additionalContext", "productId", "productIds", "accountId")
_FIELDS = (*_TEXT_FIELDS, "occurredAt", "externalId")


def body_of(spec: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"text": spec["text"], "signalType": spec["signalType"]}
    for key in _FIELDS:
        if spec.get(key) is not None:
            body[key] = spec[key]
    return body


def main(argv: list[str] | None = None) -> int:
    path = Path((argv or sys.argv[1:])[0])
    base = os.environ["ZENTRIK_API_BASE"].rstrip("/")
    key = os.environ["ZENTRIK_API_KEY"]
    specs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    for index, spec in enumerate(specs):
        request = urllib.request.Request(
            f"{base}/external/v1/signals",
            data=json.dumps(body_of(spec)).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            created = json.loads(answer.read().decode())
        print(f"[{index}] created {created['publicId']} jobId={created['jobId']}")
    print(json.dumps({"attempted": len(specs)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
