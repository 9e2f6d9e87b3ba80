"""docs/emulator.md cannot drift: its table lists exactly the command's flags, each config
field has a flag or is named as flagless, and the *live* marks match LIVE_FIELDS."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from zsync.emulator.command import emulator_command
from zsync.emulator.config import LIVE_FIELDS, EmulatorConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "emulator.md"
CLI_ONLY = {"allow_remote", "port_file", "verbose"}


def _rows() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        found = re.match(r"\| `(--[a-z-]+)` \|(.*)\|$", line)
        if found:
            rows[found.group(1)] = found.group(2)
    return rows


def _flags() -> dict[str, str]:
    """flag -> parameter name, for every option but --help."""
    return {
        opt: param.name or ""
        for param in emulator_command.params
        for opt in param.opts
        if opt.startswith("--")
    }


def test_the_table_lists_exactly_the_commands_flags() -> None:
    assert sorted(_rows()) == sorted(_flags())


def test_every_config_field_has_a_flag_or_is_named_as_flagless() -> None:
    flagged = set(_flags().values()) - CLI_ONLY
    flagless = {f.name for f in fields(EmulatorConfig)} - flagged
    assert flagged <= {f.name for f in fields(EmulatorConfig)}
    text = DOC.read_text(encoding="utf-8")
    for name in flagless:
        assert f"`{name}`" in text, name


def test_live_marks_match_the_live_fields() -> None:
    rows = _rows()
    flags = _flags()
    marked = {flags[flag] for flag, row in rows.items() if "*live*" in row}
    assert marked == LIVE_FIELDS - {"reject_external_ids"}
