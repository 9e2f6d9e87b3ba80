"""The bad-input corpus (tests/fixtures/bad/, described by its expected.json) through the real
`zsync push`: one line naming the file, line or record and field; no traceback; exit 1 (0 when
the file has nothing wrong with it); the good records of the same file land on the server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chaos.helpers import FIGURES, ledger_rows
from tests.conftest import TEST_KEY, run_cli
from tests.emulator.testing import running_emulator
from tests.unit.test_bad_corpus import EXPECTED, materialise
from zsync.emulator.server import RunningEmulator

PROBLEM_PREFIXES = ("invalid: ", "duplicate: ", "warning: ")


@pytest.fixture(scope="module")
def shared_emulator() -> RunningEmulator:  # type: ignore[misc]
    with running_emulator() as emu:
        yield emu


# Every file runs in `make test` too: the whole corpus takes about a second.
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_through_push(
    name: str, tmp_path: Path, shared_emulator: RunningEmulator
) -> None:
    emu = shared_emulator
    emu.reset()
    case = EXPECTED[name]
    materialise(name, tmp_path)
    env = {"ZENTRIK_API_BASE": emu.url, "ZENTRIK_API_KEY": TEST_KEY}
    # Named as the user typed it (cwd is tmp_path), so messages must name it the same way.
    result = run_cli(["push", "--input", name, "--no-poll", "--ledger", "z.db"], env)
    FIGURES["bad_inputs"] += 1

    output = result.out + result.err
    assert "Traceback" not in output
    assert "internal error" not in output
    problems = [line for line in result.err.splitlines() if line.startswith(PROBLEM_PREFIXES)]
    problems = [line for line in problems if not line.startswith("warning: ")]
    expected_problem = bool(case["message_contains"]) or case.get("duplicate", False)
    if case["message_contains"]:
        assert len(problems) == 1, result.err
        line = problems[0]
        assert line.startswith(f"invalid: {name}"), line
        for part in case["message_contains"]:
            assert part in line, f"{part!r} not in {line!r}"
    elif case.get("duplicate"):
        assert len(problems) == 1 and problems[0].startswith("duplicate: "), result.err
        assert name in problems[0] and "externalId" in problems[0]
    else:
        assert problems == [], result.err
    assert result.code == (1 if expected_problem else 0), output

    # The good records of the same file landed, once each, and the ledger knows them.
    truth = emu.truth()
    signals = truth["signals"]
    if case.get("duplicate"):
        # The first record with the id is sent; the later one, with other content, is not.
        assert [(s["externalId"], s["text"][-3:]) for s in signals] == [("dup-1", "1).")]
    else:
        assert len(signals) == case["good_records"], [s["externalId"] for s in signals]
    assert all(n == 1 for n in truth["creates_by_external_id"].values())
    if signals:
        accepted = dict(
            ledger_rows(
                tmp_path / "z.db",
                "SELECT external_id, public_id FROM items WHERE status = 'submitted'",
            )
        )
        assert accepted == {s["externalId"]: s["publicId"] for s in signals}
    if problems and (tmp_path / "z.db").exists():
        # The failure is on record for `zsync status`, with the same words.
        events = ledger_rows(tmp_path / "z.db", "SELECT detail FROM events WHERE kind = 'invalid'")
        if not case.get("duplicate"):
            assert [d for (d,) in events] == [problems[0].removeprefix("invalid: ")]


def test_json_summary_counts_the_bad_record(tmp_path: Path, emulator: RunningEmulator) -> None:
    materialise("one-broken-line.jsonl", tmp_path)
    env = {"ZENTRIK_API_BASE": emulator.url, "ZENTRIK_API_KEY": TEST_KEY}
    result = run_cli(["push", "-i", "one-broken-line.jsonl", "--no-poll", "--json"], env)
    summary = json.loads(result.out)
    assert result.code == summary["exit_code"] == 1
    assert summary["counts"]["invalid"] == 1
    assert summary["ok"] == len(emulator.truth()["signals"]) == 4


def test_bad_lines_scattered_through_a_large_file(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    """Every 17th line broken in one of several ways: each good record lands exactly once,
    the first 20 problems get a line each (naming the line), the rest are counted."""
    bad_kinds = [
        "{not json",
        '{"kind": "external_text", "externalId": "x-%d", "signalType": "t"}',  # no text
        '{"kind": "note", "externalId": "x-%d", "text": "t"}',
        '{"kind": "external_text", "externalId": "x-%d", "signalType": "t", "text": NaN}',
        "[1, 2, 3]",
    ]
    lines, good, bad_lines = [], set(), []
    for i in range(1000):
        if i % 17 == 5:
            template = bad_kinds[(i // 17) % len(bad_kinds)]
            lines.append(template % i if "%d" in template else template)
            bad_lines.append(i + 1)
        else:
            lines.append(
                json.dumps(
                    {
                        "kind": "external_text",
                        "externalId": f"ok-{i}",
                        "signalType": "t",
                        "text": f"record {i}",
                    }
                )
            )
            good.add(f"ok-{i}")
    (tmp_path / "mixed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {"ZENTRIK_API_BASE": emulator.url, "ZENTRIK_API_KEY": TEST_KEY}
    result = run_cli(["push", "--input", "mixed.jsonl", "--no-poll"], env)
    FIGURES["bad_records"] += len(bad_lines)
    assert result.code == 1
    assert "Traceback" not in result.err
    shown = [line for line in result.err.splitlines() if line.startswith("invalid: ")]
    assert len(shown) == 20
    for line, number in zip(shown, bad_lines, strict=False):
        assert line.startswith(f"invalid: mixed.jsonl:{number}"), line
    assert f"... and {len(bad_lines) - 20} more" in result.err
    truth = emulator.truth()
    assert set(truth["creates_by_external_id"]) == good
    assert set(truth["creates_by_external_id"].values()) == {1}


def test_bad_record_on_stdin_is_named_by_line(tmp_path: Path, emulator: RunningEmulator) -> None:
    text = (
        '{"kind": "external_text", "externalId": "s-1", "signalType": "t", "text": "one"}\n'
        '{"kind": "external_text", "externalId": "s-2", "signalType": 7, "text": "two"}\n'
    )
    env = {"ZENTRIK_API_BASE": emulator.url, "ZENTRIK_API_KEY": TEST_KEY}
    result = run_cli(["push", "--input", "-", "--format", "jsonl", "--no-poll"], env, stdin=text)
    assert result.code == 1
    problems = [line for line in result.err.splitlines() if line.startswith("invalid: ")]
    assert len(problems) == 1 and ":2" in problems[0] and "'signalType'" in problems[0], problems
    assert list(emulator.truth()["creates_by_external_id"]) == ["s-1"]
