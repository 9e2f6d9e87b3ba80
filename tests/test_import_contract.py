"""The README's import map is the contract `make lint` checks (import-linter's layers)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _contract_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [pipeline] = [c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "pipeline"]
    return [layer for layer in pipeline["layers"] if layer != "__main__"]


def test_the_readme_map_is_the_checked_contract() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How it works", 1)[1].split("\n## ", 1)[0]
    [listed] = re.findall(r"Imports run one way.*?```text\n(.*?)```", section, re.S)
    assert listed.splitlines() == _contract_layers()


def test_the_shipped_package_has_no_test_helpers() -> None:
    shipped = (ROOT / "zsync").rglob("*.py")
    assert not [p for p in shipped if re.search(r"^import pytest", p.read_text(), re.M)]
