"""verify against the emulator's list faults and variants: a clear line, never a wrong repair."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY, run_cli
from tests.emulator.testing import running_emulator


def _write(n: int = 150) -> None:
    Path("in.jsonl").write_text(
        "".join(
            json.dumps(
                {"kind": "external_text", "externalId": f"l-{i}", "signalType": "t", "text": "x"}
            )
            + "\n"
            for i in range(n)
        )
    )


@pytest.mark.parametrize(
    ("fault", "code", "says"),
    [
        ("not-array", 4, "JSON object, not an array of signals"),
        ("shrink", 4, "changed while it was read"),
        ("garbage-items", 4, "item(s) that are not signals"),
        ("no-headers", 0, "sent no X-Total-Count"),
    ],
)
def test_list_faults_give_one_clear_line(fault: str, code: int, says: str) -> None:
    _write()
    with running_emulator(dedupe="off", process_seconds=0.0) as emu:
        env = {"ZENTRIK_API_BASE": emu.url, "ZENTRIK_API_KEY": TEST_KEY}
        assert run_cli(["push", "--input", "in.jsonl"], env=env).code == 0
        emu.set_faults(list_fault=fault)
        result = run_cli(["verify"], env=env)
        assert result.code == code, result.err + result.out
        assert says in result.err
        assert "Traceback" not in result.err
        # A repair from a listing that may be incomplete marks nothing gone.
        run_cli(["verify", "--repair"], env=env)
        db = sqlite3.connect("zsync.db")
        statuses = dict(db.execute("SELECT status, COUNT(*) FROM items GROUP BY status"))
        assert statuses == {"processed": 150}


def test_list_without_external_id_falls_back_and_never_guesses() -> None:
    _write()
    with running_emulator(dedupe="off", process_seconds=0.0, list_hides_external_id=True) as emu:
        env = {"ZENTRIK_API_BASE": emu.url, "ZENTRIK_API_KEY": TEST_KEY}
        assert run_cli(["push", "--input", "in.jsonl"], env=env).code == 0
        result = run_cli(["verify"], env=env)
        assert result.code == 0, result.out + result.err
        assert result.err.count("shows no externalId") == 1
        assert "matched by publicId" in result.out
        os.remove("zsync.db")
        repaired = run_cli(["verify", "--repair", "--json"], env=env)
        assert json.loads(repaired.out)["repaired"]["adopted"] == 0  # nothing adopted by guess
