"""The dependency floors CI installs (.ci/constraints/floors.txt) are the ones pyproject.toml
declares: a floor raised or lowered in one place and not the other fails here, so the range a
user's pip may pick is the range that was tested."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _declared_floors() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {}
    for spec in project["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9A-Za-z.]*)", spec.replace(" ", ""))
        assert match, f"runtime dependency without a plain >= floor: {spec!r}"
        floors[match.group(1).lower()] = match.group(2)
    return floors


def _pinned(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_the_floors_ci_installs_are_the_floors_pyproject_declares() -> None:
    assert _pinned(ROOT / ".ci" / "constraints" / "floors.txt") == _declared_floors()


def test_ci_runs_the_floors_before_the_tests() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert script.index(".ci/floors") < script.index("make test")
