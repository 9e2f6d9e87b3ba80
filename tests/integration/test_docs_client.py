"""The emulator answers a client written only from Zentrik's public docs.

This client is ours (urllib, no zsync code): readyz with both checks "ok", a create per
record without an Idempotency-Key, then GET polling until "processed" — the request sequence
Zentrik's import-template page describes, including its retry of a GET answering 404 with
"static/index.html" while the API warms up behind its web front end.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import TEST_KEY
from tests.emulator.testing import running_emulator

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "signals.json"
BODY_FIELDS = {
    "external_text": (
        "text",
        "signalType",
        "name",
        "additionalContext",
        "productId",
        "productIds",
        "accountId",
        "occurredAt",
        "externalId",
    ),
    "raw_signal": (
        "source",
        "name",
        "data",
        "externalId",
        "occurredAt",
        "integrationId",
        "context",
        "insightIds",
    ),
}


def _call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": f"Bearer {TEST_KEY}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    deadline = time.time() + 10
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode()
            retry = exc.code in (429, 502, 503, 504) or (
                method == "GET" and exc.code == 404 and "static/index.html" in text
            )
            if retry and time.time() < deadline:
                time.sleep(0.2)
                continue
            return exc.code, text


def test_docs_only_client_reaches_processed_even_through_warmup() -> None:
    with running_emulator(warmup_seconds=1.0, process_seconds=0.5) as emu:
        # The front end answers first: the GET is retried until the API itself answers.
        code, listing = _call(emu.url, "GET", "/external/v1/signals?limit=1")
        assert code == 200 and listing == []
        code, ready = _call(emu.url, "GET", "/readyz")
        assert code == 200 and ready["checks"] == {"database": "ok", "workspaceQueue": "ok"}
        results = []
        for spec in json.loads(EXAMPLE.read_text()):
            body = {k: spec[k] for k in BODY_FIELDS[spec["kind"]] if spec.get(k) is not None}
            code, created = _call(emu.url, "POST", "/external/v1/signals", body)
            assert code == 201 and created["publicId"].startswith("SIGNAL-") and created["jobId"]
            status = None
            for _ in range(50):
                code, signal = _call(emu.url, "GET", f"/external/v1/signals/{created['publicId']}")
                status = signal["status"]
                if status in ("processed", "failed"):
                    break
                time.sleep(0.1)
            results.append(status)
        assert results == ["processed", "processed"]
        warm_404s = {k: v for k, v in emu.truth()["requests"].items() if k.endswith(" 404")}
        assert sum(warm_404s.values()) >= 1, emu.truth()["requests"]
