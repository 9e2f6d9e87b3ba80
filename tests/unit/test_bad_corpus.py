"""Every file of the bad-input corpus gives the user one clear line, and its good records.

The corpus (tests/fixtures/bad/, described by expected.json) is shared with the chaos
suite, which pushes the same files through the CLI. Cases too big to commit carry a
"generate" recipe (head + fill * count + tail); :func:`materialise` writes them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from zsync.model import Invalid, Prepared, Problem, problem_to_invalid
from zsync.read.jsonfile import read_records
from zsync.shape.body import prepare

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "bad"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text("utf-8"))


def materialise(name: str, directory: Path) -> Path:
    """The corpus file `name` inside `directory` (copied, or generated from its recipe)."""
    target = directory / name
    recipe = EXPECTED[name].get("generate")
    if recipe is None:
        shutil.copyfile(CORPUS / name, target)
    else:
        with target.open("w", encoding="utf-8") as f:
            f.write(recipe["head"])
            f.write(recipe["fill"] * recipe["count"])
            f.write(recipe["tail"])
    return target


def run(name: str, directory: Path) -> tuple[list[Prepared], list[str]]:
    """What a push would see: prepared records, and one message per bad item."""
    materialise(name, directory)
    good: list[Prepared] = []
    messages: list[str] = []
    for item in read_records(name, EXPECTED[name]["format"]):
        result = problem_to_invalid(item) if isinstance(item, Problem) else prepare(item)
        if isinstance(result, Invalid):
            messages.append(result.message)
        else:
            good.append(result)
    return good, messages


def test_corpus_is_complete() -> None:
    committed = {p.name for p in CORPUS.iterdir()} - {"expected.json"}
    described = {n for n, case in EXPECTED.items() if "generate" not in case}
    assert committed == described
    assert len(EXPECTED) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # origins then name the file the way a user typed it
    case = EXPECTED[name]

    good, messages = run(name, tmp_path)

    assert all("\n" not in m and "\r" not in m for m in messages), messages
    if case["message_contains"]:
        assert len(messages) == 1, messages
        for part in case["message_contains"]:
            assert part in messages[0], f"{part!r} not in {messages[0]!r}"
        assert messages[0].startswith(name), "the message starts with the file it is about"
    else:
        assert messages == []
    assert len(good) == case["good_records"]
    if case.get("duplicate"):
        # Both records are valid on their own; the engine reports the repeated id.
        assert len({p.external_id for p in good}) == 1
        assert len({p.payload_hash for p in good}) == len(good)
