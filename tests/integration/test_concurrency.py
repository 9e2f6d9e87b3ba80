"""Eight requests in flight against a slow, failing, rate-limited server: every record still
lands exactly once, the ledger agrees with the server, and a re-run sends nothing."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from tests.conftest import TEST_KEY, run_cli
from tests.emulator.testing import running_emulator
from tests.waiting import wait_until

RECORDS = 300


def _write(path: Path, n: int) -> None:
    lines = (
        json.dumps(
            {
                "kind": "external_text",
                "externalId": f"conc-{i}",
                "signalType": "transcript",
                "text": f"Customer {i}: the export stalls\n" * (1 + i % 7),
            }
        )
        for i in range(n)
    )
    path.write_text("\n".join(lines) + "\n")


def _limited_then_opened(emu: Any) -> None:
    """Keep the limit at 1 request/s until creates in flight have met 429s, then open it to
    150/s: the 429s happen however fast or loaded the machine is."""

    def creates_refused() -> bool:
        truth = emu.truth()
        posts = sum(n for k, n in truth["requests"].items() if k.startswith("POST "))
        return posts >= 8 and truth["faults"]["rate_limited_429"] >= 4

    wait_until(creates_refused, "creates to meet 429s", timeout=60)
    emu.set_faults(rate_limit=150)


def test_concurrent_sends_and_polls_land_every_record_exactly_once() -> None:
    _write(Path("in.jsonl"), RECORDS)
    with running_emulator(
        latency_ms=10,
        rate_limit=1,
        error_rate=0.05,
        drop_after_commit_rate=0.05,
        process_seconds=0.3,
        dedupe="off",
    ) as emu:
        env = {"ZENTRIK_API_BASE": emu.url, "ZENTRIK_API_KEY": TEST_KEY}
        push = ["push", "--input", "in.jsonl", "--concurrency", "8", "--json"]
        opener = threading.Thread(target=_limited_then_opened, args=(emu,), daemon=True)
        opener.start()
        result = run_cli(push, env=env)
        opener.join(timeout=60)
        assert result.code == 0, result.err
        summary = json.loads(result.out)
        assert summary["counts"]["processed"] == RECORDS

        truth = emu.truth()
        faults = truth["faults"]
        # The faults this test is about really happened.
        assert faults["rate_limited_429"] > 0, faults
        assert faults["error_503"] > 0 and faults["dropped_after_commit"] > 0, faults
        assert truth["creates_by_external_id"] == {f"conc-{i}": 1 for i in range(RECORDS)}
        assert set(truth["live_by_external_id"].values()) == {1}

        db = sqlite3.connect("zsync.db")
        ledger = {
            ext: (public_id, status)
            for ext, public_id, status in db.execute(
                "SELECT external_id, public_id, status FROM items"
            )
        }
        db.close()
        server = {s["externalId"]: (s["publicId"], s["status"]) for s in truth["signals"]}
        assert ledger == server
        assert {status for _, status in ledger.values()} == {"processed"}

        posts = sum(n for k, n in truth["requests"].items() if k.startswith("POST "))
        again = run_cli(push, env=env)
        assert again.code == 0, again.err
        assert json.loads(again.out)["counts"] == {"unchanged": RECORDS}
        assert sum(n for k, n in emu.truth()["requests"].items() if k.startswith("POST ")) == posts
