"""The README's import map is the contract `make lint` checks (import-linter's layers)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

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


def test_the_import_contracts_hold() -> None:
    """What `make lint` runs, here too so that CI (`make test`) checks the layering."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    if not lint_imports.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    run = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]
