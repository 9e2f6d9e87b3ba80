"""One bad record never blocks the rest (issue 13, item 2): a record that cannot be encoded,
hashed or stored is that record's `invalid`, with its place; every other record is sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chaos.helpers import FIGURES, ledger_rows, write_records
from tests.conftest import TEST_KEY, run_cli
from zsync.emulator.server import RunningEmulator

SURROGATE = "x\udc00"  # a lone low surrogate: valid JSON (escaped), not valid text


def _bad(ext: str, **fields: str) -> str:
    record = {"kind": "external_text", "externalId": ext, "signalType": "t", "text": "a"}
    record.update(fields)
    return json.dumps(record)  # ensure_ascii: the surrogate is written as \udc00


def _blocked(emu: RunningEmulator, good: set[str]) -> int:
    on_server = set(emu.truth()["creates_by_external_id"])
    blocked = len(good - on_server)
    FIGURES["blocked"] += blocked
    FIGURES["faulty_records"] += 1
    return blocked


@pytest.mark.parametrize("where", ["externalId", "text", "name", "signalType"])
def test_a_lone_surrogate_is_one_invalid_record(
    where: str, tmp_path: Path, emulator: RunningEmulator
) -> None:
    ids = write_records(tmp_path / "good.jsonl", 1200, prefix="iso")
    lines = (tmp_path / "good.jsonl").read_text().splitlines()
    # Early in the first batch: before the fix its 499 neighbours and every later batch
    # were never sent.
    bad = _bad(SURROGATE) if where == "externalId" else _bad("bad-1", **{where: SURROGATE})
    lines.insert(3, bad)
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    env = {"ZENTRIK_API_BASE": emulator.url, "ZENTRIK_API_KEY": TEST_KEY}
    done = run_cli(["push", "-i", "in.jsonl", "--no-poll", "--ledger", "z.db"], env)
    assert done.code == 1, done.err
    assert "internal error" not in done.err
    problems = [line for line in done.err.splitlines() if line.startswith("invalid: ")]
    assert problems == [
        f"invalid: in.jsonl:4: field '{where}': contains an unpaired surrogate (U+DC00); "
        "not valid text"
    ], done.err
    assert _blocked(emulator, set(ids)) == 0
    # A re-run is not stuck on it either: nothing left to send, the same one line.
    again = run_cli(["push", "-i", "in.jsonl", "--no-poll", "--ledger", "z.db"], env)
    assert again.code == 1 and "internal error" not in again.err, again.err
    assert ledger_rows(tmp_path / "z.db", "SELECT COUNT(*) FROM items WHERE status = 'invalid'")


def test_a_surrogate_made_by_a_mapping_template(tmp_path: Path, emulator: RunningEmulator) -> None:
    (tmp_path / "m.toml").write_text(
        'kind = "external_text"\n[fields]\nexternalId = "t:{id}"\nsignalType = "ticket"\n'
        'text = "{body}"\n'
    )
    rows = [{"id": str(i), "body": f"ticket {i}"} for i in range(600)]
    rows[1]["id"] = SURROGATE
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {"ZENTRIK_API_BASE": emulator.url, "ZENTRIK_API_KEY": TEST_KEY}
    args = ["-i", "in.jsonl", "--mapping", "m.toml"]
    done = run_cli(["push", *args, "--no-poll", "--ledger", "z.db"], env)
    assert done.code == 1, done.err
    assert "invalid: in.jsonl:2: field 'externalId'" in done.err
    good = {f"t:{i}" for i in range(600) if i != 1}
    assert _blocked(emulator, good) == 0
    preview = run_cli(["preview", *args, "-n", "5"])
    assert preview.code == 1, preview.err
    assert "invalid: in.jsonl:2: field 'externalId'" in preview.out


def test_preview_shows_a_surrogate_in_any_field_as_invalid(tmp_path: Path) -> None:
    lines = [
        _bad(SURROGATE),
        _bad("b", text=SURROGATE),
        _bad("c", name=SURROGATE),
        json.dumps({"kind": "raw_signal", "externalId": "d", "source": {"type": SURROGATE}}),
        json.dumps({**json.loads(_bad("e")), SURROGATE: 1}),  # a field *name*: exit 70 before
        _bad("ok"),
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    done = run_cli(["preview", "-i", "in.jsonl", "-n", "10"])
    assert done.code == 1, done.err
    assert "internal error" not in done.err
    invalid = [line for line in done.out.splitlines() if line.startswith("invalid: ")]
    assert [line.split(":")[2] for line in invalid] == ["1", "2", "3", "4", "5"]
    assert "-> ok" in done.out
