"""Docs that cannot drift (as sqlite-utils does it): every command and option the README
shows exists, the exit-code table is the enum, and the cron line runs as cron would."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import click
import pytest

from zsync.cli import cli
from zsync.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _options(command: click.Command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}


def _shown_calls() -> list[tuple[str, list[str]]]:
    """(subcommand, options) of every `zsync ...` call in the README's code."""
    code = re.findall(r"```[a-z]*\n(.*?)```", README, re.S)
    code += re.findall(r"`(zsync [^`]+)`", README)
    calls = []
    for block in code:
        for line in block.splitlines():
            for match in re.finditer(r"(?:^|[\s/$])zsync((?:\s+[^\s;|&]+)*)", line):
                try:
                    words = shlex.split(match.group(1), comments=True)
                except ValueError:  # a line continued with a backslash
                    words = match.group(1).split()
                options = [w.split("=")[0] for w in words if w.startswith("-") and w != "-"]
                names = [w for w in words if not w.startswith("-")]
                if names and names[0] in cli.commands:
                    calls.append((names[0], options))
    return calls


def test_every_command_and_option_the_readme_shows_exists() -> None:
    calls = _shown_calls()
    assert len(calls) > 20  # the README really is read
    top = _options(cli) | {"--help", "-h"}
    for name, options in calls:
        known = top | _options(cli.commands[name])
        unknown = [o for o in options if o not in known]
        assert not unknown, f"README shows `zsync {name}` with {unknown}, which it does not take"


def test_every_option_the_readme_names_exists_somewhere() -> None:
    named = set(re.findall(r"`(--[a-z][a-z-]*)", README))
    everywhere = _options(cli).union(*(_options(c) for c in cli.commands.values()))
    missing = sorted(named - everywhere)
    assert not missing, f"the README names options no zsync command has: {missing}"


def test_the_exit_code_table_is_the_enum() -> None:
    section = README.split("### Exit codes", 1)[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, re.M)
    assert [(int(c), m) for c, m in rows] == [(int(c), c.meaning) for c in ExitCode]


def test_the_readme_cron_line_runs_as_cron_would(tmp_path: Path) -> None:
    """The cron line, word for word except the paths, under /bin/sh with cron's bare
    environment, zsync installed from its wheel outside this checkout."""
    from tests.conftest import TEST_KEY
    from tests.emulator.testing import running_emulator

    [line] = re.findall(r"^15 2 \* \* \*\s+(.*)$", README, re.M)
    install = _install_wheel(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    records = "".join(
        f'{{"kind": "external_text", "externalId": "c-{i}", "signalType": "s", "text": "t{i}"}}\n'
        for i in range(5)
    )
    (data / "tickets.jsonl").write_text(records)
    with running_emulator(process_seconds=0.1, dedupe="off") as emu:
        _run_the_readme_setup(tmp_path, emu.url, TEST_KEY)
        command = (
            line.replace("/opt/zsync/bin/zsync", str(install))
            .replace("/etc/zsync/env", str(tmp_path / "env"))
            .replace("/var/lib/zsync", str(tmp_path))
            .replace("/data/export", str(data))
        )
        cron_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHELL": "/bin/sh"}
        runs = [
            subprocess.run(
                ["/bin/sh", "-c", command],
                cwd="/",
                env=cron_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            for _ in range(2)
        ]
        truth = emu.truth()
    first, second = runs
    # cron mails nothing, not even for the first run (which creates the ledger)
    assert (first.returncode, first.stdout, first.stderr) == (0, "", ""), first.stderr
    assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
    assert truth["creates_by_external_id"] == {f"c-{i}": 1 for i in range(5)}
    assert "zsync_last_success_timestamp_seconds" in (tmp_path / "zsync.prom").read_text()


def _run_the_readme_setup(tmp_path: Path, base: str, key: str) -> None:
    """The README's setup lines after the install, word for word but the paths and values:
    the directories are made private and the key file is private from its first byte."""
    block = README.split("### Running from cron or systemd", 1)[1].split("```sh\n", 1)[1]
    lines = block.split("```", 1)[0].strip().splitlines()[1:]  # the first one installs
    etc, var = tmp_path / "etc-zsync", tmp_path
    script = "\n".join(
        line.replace("/etc/zsync", str(etc))
        .replace("/var/lib/zsync", str(var))
        .replace("https://zentrik.ai/api", base)
        .replace("ZENTRIK_API_KEY=...", f"ZENTRIK_API_KEY={key}")
        for line in lines
    )
    # The umask cron and a root shell usually have, which leaves a plain file world-readable.
    subprocess.run(["/bin/sh", "-c", f"umask 022\n{script}"], check=True, cwd=tmp_path)
    assert (etc.stat().st_mode & 0o777) == 0o700
    assert ((etc / "env").stat().st_mode & 0o777) == 0o600
    (tmp_path / "env").symlink_to(etc / "env")


def _readme_sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, re.S)


def _zsync_lines(block: str) -> list[list[str]]:
    """The zsync calls of a block, continuation lines joined, comments dropped."""
    calls = []
    for line in block.replace("\\\n", " ").splitlines():
        if line.startswith("zsync "):
            calls.append(shlex.split(line, comments=True)[1:])
    return calls


def _uses_shipped_files(calls: list[list[str]]) -> bool:
    """A block to run: it names files under examples/, all of which exist, and reaches no
    host but the API (a source program that fetches from the internet is not run)."""
    paths = [w for call in calls for w in call if "/" in w or w.endswith((".jsonl", ".toml"))]
    return (
        any(p.startswith("examples/") for p in paths)
        and all((ROOT / p).exists() for p in paths if "://" not in p)
        and not any("://" in w for call in calls for w in call)
    )


def test_the_readme_examples_run_on_the_shipped_files(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every README shell block that uses the shipped examples runs as written, in order,
    against the emulator ("Using it", CSV, Preview, ...); each call exits 0."""
    from tests.conftest import TEST_KEY, run_cli

    blocks = [calls for calls in map(_zsync_lines, _readme_sh_blocks()) if calls]
    runnable = [calls for calls in blocks if _uses_shipped_files(calls)]
    using_it = _zsync_lines(_readme_sh_blocks()[README.split("## Using it")[0].count("```sh")])
    assert using_it in runnable  # the first thing a newcomer copies
    assert len(runnable) >= 3
    monkeypatch.chdir(ROOT)  # the examples' paths are relative to the checkout
    for i, calls in enumerate(runnable):
        env = {
            "ZENTRIK_API_BASE": emulator.url,
            "ZENTRIK_API_KEY": TEST_KEY,
            "ZSYNC_LEDGER": str(tmp_path / f"block-{i}.db"),
        }
        for call in calls:
            result = run_cli(call, env=env)
            assert result.code == 0, f"zsync {shlex.join(call)} -> {result.code}: {result.err}"


def test_make_demo_says_how_to_run_zsync() -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import demo
    finally:
        sys.path.remove(str(ROOT / "examples"))
    text = demo.next_steps()
    venv_bin = Path(sys.executable).parent
    shown = venv_bin.relative_to(ROOT) if venv_bin.is_relative_to(ROOT) else venv_bin
    assert f"{shown / 'zsync'} push --input examples/tickets.jsonl --mapping" in text
    assert f"source {shown / 'activate'}" in text
    assert "ZENTRIK_API_KEY=zsync-dev-key" in text


def test_the_default_base_is_the_emulators_address() -> None:
    """One spelling: the base zsync uses by default is the one the emulator binds."""
    from urllib.parse import urlsplit

    from zsync.config import DEFAULT_API_BASE
    from zsync.emulator.config import EmulatorConfig

    default = urlsplit(DEFAULT_API_BASE)
    emulator = EmulatorConfig()
    assert (default.hostname, default.port) == (emulator.host, emulator.port)
    assert "localhost" not in (ROOT / "examples" / "meltano" / "meltano.yml").read_text()


def _install_wheel(tmp_path: Path) -> Path:
    """zsync's wheel unpacked into a folder of its own, with a launcher script; the
    dependencies come from this interpreter's site-packages, zsync itself from the wheel."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(wheels)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    target = tmp_path / "opt"
    zipfile.ZipFile(next(wheels.glob("zsync-*.whl"))).extractall(target)
    launcher = tmp_path / "zsync"
    launcher.write_text(
        f"#!{sys.executable} -I\n"
        f"import sys; sys.path.insert(0, {str(target)!r})\n"
        "from zsync.cli import run\nrun()\n"
    )
    launcher.chmod(0o755)
    return launcher


# The emulator documents its flags in docs/emulator.md, checked by tests/emulator.
@pytest.mark.parametrize("name", sorted(set(cli.commands) - {"emulator"}))
def test_every_command_has_an_example_in_its_help(name: str) -> None:
    assert "Example" in (cli.commands[name].help or "")


def test_the_package_docstring_and_readme_name_every_stage() -> None:
    import zsync

    doc = zsync.__doc__ or ""
    how = README.split("## How it works", 1)[1].split("\n## ", 1)[0]
    stages = ("cli/", "read/", "shape/", "plan/", "engine", "truth/", "ledger/", "report", "model")
    for stage in stages:
        assert stage in doc and stage.rstrip("/") in how, stage
    assert all((ROOT / "zsync" / p).exists() for p in ("read", "shape", "plan", "ledger", "cli"))
    assert os.path.isdir(ROOT / "migrations")
