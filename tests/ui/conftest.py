"""A ledger like a few nights of a real job: three pushes against the emulator, with
processing failures, rejections and invalid records, in ``./zsync.db``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli


def tickets(first: int, last: int, empty: tuple[int, ...] = ()) -> str:
    """JSONL support tickets ``helpdesk:first`` .. ``helpdesk:last - 1``; ``empty`` ones have
    no text (invalid)."""
    rows = [
        {
            "kind": "external_text",
            "externalId": f"helpdesk:{n}",
            "name": f"Ticket {n}",
            "signalType": "support_ticket",
            "text": "" if n in empty else f"Customer {n} cannot export the roadmap to CSV.",
        }
        for n in range(first, last)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows)


def push(api_env: dict[str, str], text: str) -> int:
    """One nightly push of ``text`` (the whole export, as a cron job sends it)."""
    Path("tickets.jsonl").write_text(text)
    return run_cli(["-q", "push", "--input", "tickets.jsonl"], env=api_env).code


@pytest.fixture
def nightly_ledger(emulator: Any, api_env: dict[str, str]) -> Path:
    """Three runs: each night's export has the earlier tickets and some new ones."""
    emulator.set_faults(fail_rate=0.2, reject_external_ids=["helpdesk:1003", "helpdesk:1021"])
    assert push(api_env, tickets(1000, 1012, empty=(1005,))) == 1
    emulator.set_faults(fail_rate=0.3)
    assert push(api_env, tickets(1000, 1022, empty=(1005, 1018))) == 1
    emulator.set_faults(fail_rate=0.4)
    assert push(api_env, tickets(1000, 1030, empty=(1005, 1018))) == 1
    return Path("zsync.db").resolve()
