"""The re-run skip path: byte-identical JSONL lines are recognised without parsing, and
nothing else ever is."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import run_cli


def _lines(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "kind": "external_text",
            "externalId": f"s-{i}",
            "signalType": "transcript",
            "text": f"call {i}",
        }
        for i in range(n)
    ]


def _summary(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    result = run_cli([*args, "--json"], env=env)
    assert result.code in (0, 1), result.err
    return json.loads(result.out)


def test_line_hashes_are_stored_and_make_the_rerun_skip(
    emulator: Any, api_env: dict[str, str]
) -> None:
    Path("in.jsonl").write_text(_lines(_records(4)))
    assert _summary(["push", "--input", "in.jsonl"], api_env)["counts"]["created"] == 4
    hashes = sqlite3.connect("zsync.db").execute("SELECT raw_hash FROM items").fetchall()
    assert len({h for (h,) in hashes}) == 4 and None not in {h for (h,) in hashes}
    again = _summary(["push", "--input", "in.jsonl"], api_env)
    assert again["counts"] == {"unchanged": 4}


def test_same_content_in_other_bytes_is_unchanged_and_learned(
    emulator: Any, api_env: dict[str, str]
) -> None:
    records = _records(2)
    Path("in.jsonl").write_text(_lines(records))
    _summary(["push", "--input", "in.jsonl", "--no-poll"], api_env)
    # Same record, other key order and spacing: parsed, found unchanged, new line hash kept.
    Path("in.jsonl").write_text(
        json.dumps(dict(reversed(list(records[0].items()))), indent=None, separators=(", ", ": "))
        + "\n"
        + json.dumps(records[1])
        + "\n"
    )
    db = sqlite3.connect("zsync.db")
    before = db.execute("SELECT raw_hash FROM items WHERE external_id = 's-0'").fetchone()[0]
    assert _summary(["push", "--input", "in.jsonl", "--no-poll"], api_env)["counts"] == {
        "unchanged": 2
    }
    after = db.execute("SELECT raw_hash FROM items WHERE external_id = 's-0'").fetchone()[0]
    assert after != before


def test_a_changed_line_is_never_skipped(emulator: Any, api_env: dict[str, str]) -> None:
    records = _records(3)
    Path("in.jsonl").write_text(_lines(records))
    _summary(["push", "--input", "in.jsonl"], api_env)
    records[1]["text"] = "call 1, corrected"
    Path("in.jsonl").write_text(_lines(records))
    summary = _summary(["push", "--input", "in.jsonl"], api_env)
    assert summary["counts"]["updated"] == 1 and summary["counts"]["unchanged"] == 2
    server = {s["externalId"]: s["text"] for s in emulator.truth()["signals"]}
    assert server["s-1"] == "call 1, corrected"


def test_a_known_line_repeated_is_still_a_duplicate(emulator: Any, api_env: dict[str, str]) -> None:
    records = _records(2)
    Path("in.jsonl").write_text(_lines(records))
    _summary(["push", "--input", "in.jsonl", "--no-poll"], api_env)
    Path("in.jsonl").write_text(_lines([records[0], records[1], records[0]]))
    result = run_cli(["push", "--input", "in.jsonl", "--no-poll"], env=api_env)
    assert result.code == 1
    assert "in.jsonl:3: field 'externalId': duplicate 's-0'" in result.err


def test_an_unfinished_item_is_resent_even_if_its_line_is_known(
    emulator: Any, api_env: dict[str, str]
) -> None:
    Path("in.jsonl").write_text(_lines(_records(2)))
    _summary(["push", "--input", "in.jsonl", "--no-poll"], api_env)
    db = sqlite3.connect("zsync.db")
    # As a crash between intent and answer would leave it (with the body kept for resending).
    db.execute("UPDATE items SET status = 'pending' WHERE external_id = 's-1'")
    # A server known to replay resends: the item is resent, not looked up (server-truth.md).
    db.execute("INSERT INTO meta (key, value) VALUES ('replay_observed', 'test')")
    db.commit()
    summary = _summary(["push", "--input", "in.jsonl", "--no-poll"], api_env)
    assert summary["counts"]["unchanged"] == 1
    assert summary["counts"].get("replayed", 0) + summary["counts"].get("created", 0) == 1
    creates = emulator.truth()["creates_by_external_id"]
    assert creates == {"s-0": 1, "s-1": 1}  # the resend was an idempotent replay


def test_hashes_from_an_older_zsync_are_learned_again_without_sending(
    emulator: Any, api_env: dict[str, str]
) -> None:
    """The skip path's hash changed (BLAKE2b to SHA-256, for speed): a ledger written by an
    older zsync holds hashes no line matches. Its next push parses every line, finds each
    unchanged, sends nothing and learns the new hashes; the push after that skips again."""
    Path("in.jsonl").write_text(_lines(_records(3)))
    _summary(["push", "--input", "in.jsonl"], api_env)
    db = sqlite3.connect("zsync.db")
    current = dict(db.execute("SELECT external_id, raw_hash FROM items").fetchall())
    with db:
        db.execute("UPDATE items SET raw_hash = 'blake2b-' || external_id")  # as 0.1.0 wrote
    creates = len(emulator.truth()["signals"])
    assert _summary(["push", "--input", "in.jsonl"], api_env)["counts"] == {"unchanged": 3}
    assert dict(db.execute("SELECT external_id, raw_hash FROM items").fetchall()) == current
    assert _summary(["push", "--input", "in.jsonl"], api_env)["counts"] == {"unchanged": 3}
    assert len(emulator.truth()["signals"]) == creates
