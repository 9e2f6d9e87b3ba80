"""The Python API (zsync.push & co.) against the emulator: the exit codes the commands exit
with, nothing printed, no SystemExit, the key in no result."""

from __future__ import annotations

import importlib.util
import inspect
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import zsync
from tests.conftest import TEST_KEY, run_cli
from tests.emulator.testing import running_emulator
from zsync.cli import cli
from zsync.emulator.server import RunningEmulator
from zsync.model import Event

EXAMPLE = Path(__file__).parents[2] / "examples" / "orchestrators" / "zsync_task.py"


def _write(path: str, prefix: str, n: int, invalid: int = 0) -> None:
    rows = [
        {
            "kind": "external_text",
            "externalId": f"{prefix}-{i}",
            "signalType": "support_ticket",
            "text": f"ticket {i}: the export times out",
        }
        for i in range(n)
    ]
    rows += [{"kind": "external_text", "externalId": f"{prefix}-bad-{i}"} for i in range(invalid)]
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def silent(capfd: pytest.CaptureFixture[str]) -> Callable[[Callable[[], Any]], Any]:
    """Run an API call and fail if it wrote anything to stdout or stderr (file descriptors
    included: a stray print or a logging handler would show)."""

    def call(fn: Callable[[], Any]) -> Any:
        capfd.readouterr()
        result = fn()
        out, err = capfd.readouterr()
        assert (out, err) == ("", ""), f"the API printed: {out!r} {err!r}"
        return result

    return call


@pytest.fixture
def two_emulators() -> Iterator[tuple[RunningEmulator, RunningEmulator]]:
    """One workspace for the API, one for the command line: the same steps on each."""
    with (
        running_emulator(dedupe="off", process_seconds=0.05) as api,
        running_emulator(dedupe="off", process_seconds=0.05) as cli,
    ):
        yield api, cli


# Each step: the command line's arguments, the API function and its keyword arguments, the
# exit code both must give, and what the emulators do meanwhile (fail_rate of processing).
STEPS: list[tuple[list[str], str, dict[str, Any], int, float | None]] = [
    (["push", "-i", "tickets.jsonl"], "push", {"input": ["tickets.jsonl"]}, 1, None),
    (["status"], "status", {}, 0, None),
    (["verify"], "verify", {}, 0, None),
    (["push", "-i", "gone.jsonl"], "push", {"input": ["gone.jsonl"]}, 2, None),
    (
        ["push", "-i", "more.jsonl", "--concurrency", "0"],
        "push",
        {"input": ["more.jsonl"], "concurrency": 0},
        2,
        None,
    ),
    (["push", "-i", "more.jsonl"], "push", {"input": ["more.jsonl"]}, 1, 1.0),
    (["retry-failed", "--preview"], "retry_failed", {"preview": True}, 0, None),
    (["retry-failed"], "retry_failed", {}, 0, 0.0),
    (["reconcile"], "reconcile", {}, 0, None),
    (
        ["push", "-i", "more.jsonl", "--dry-run"],
        "push",
        {"input": ["more.jsonl"], "dry_run": True},
        0,
        None,
    ),
    (["status", "--ledger", "none.db"], "status", {"ledger": "none.db"}, 5, None),
    (
        ["reconcile", "--api-base", "http://127.0.0.1:9/api"],
        "reconcile",
        {"api_base": "http://127.0.0.1:9/api"},
        4,
        None,
    ),
]


def test_each_command_exits_as_the_command_line_does(
    two_emulators: tuple[RunningEmulator, RunningEmulator],
    silent: Callable[[Callable[[], Any]], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api_emu, cli_emu = two_emulators
    monkeypatch.setenv("ZSYNC_WAIT_SECONDS", "0.5")  # an unreachable API is given up quickly
    _write("tickets.jsonl", "t", 4, invalid=1)
    _write("more.jsonl", "m", 3)
    env = {"ZENTRIK_API_BASE": cli_emu.url, "ZENTRIK_API_KEY": TEST_KEY}
    codes = []
    for args, name, kwargs, expected, fail_rate in STEPS:
        if fail_rate is not None:
            api_emu.set_faults(fail_rate=fail_rate)
            cli_emu.set_faults(fail_rate=fail_rate)
        cli = run_cli(args if "--ledger" in args else [*args, "--ledger", "cli.db"], env=env)
        options = {"ledger": "api.db", "api_base": api_emu.url, "api_key": TEST_KEY, **kwargs}
        function = getattr(zsync, name)
        result = silent(lambda f=function, o=options: f(**o))
        codes.append((args, int(result.exit_code), cli.code))
        assert cli.code == expected, (args, cli.err)
        if result.exit_code not in (0, 1) and "--concurrency" not in args:  # click words its own
            assert result.message and result.message in cli.err, (result.message, cli.err)
    assert [api for _, api, _ in codes] == [c for _, _, c in codes], codes


def test_a_run_result_counts_outcomes_and_names_its_run(
    emulator: RunningEmulator, silent: Callable[[Callable[[], Any]], Any]
) -> None:
    _write("tickets.jsonl", "t", 5)
    events: list[Event] = []
    options = {"ledger": "z.db", "api_base": emulator.url, "api_key": TEST_KEY}
    first = silent(lambda: zsync.push(input=["tickets.jsonl"], on_event=events.append, **options))
    assert first.ok and first.exit_code == 0
    assert first.counts["created"] == 5 and first.counts["processed"] == 5
    assert isinstance(first.run_id, int)
    assert sum(e.kind == "created" for e in events) == 5  # the progress callback saw each item
    assert any("created a new ledger" in w for w in first.warnings)
    again = silent(lambda: zsync.push(input=["tickets.jsonl"], **options))
    assert again.counts == {"unchanged": 5} and again.run_id == first.run_id + 1
    status = silent(lambda: zsync.status(ledger="z.db"))
    assert status.counts == {"processed": 5}
    assert [r["id"] for r in status.details["recent_runs"]][:2] == [again.run_id, first.run_id]
    verify = silent(lambda: zsync.verify(**options))
    assert verify.exit_code == 0 and not any(verify.counts.values())
    assert verify.details.server_signals == 5


def test_a_dry_run_hands_the_bodies_to_the_callback_and_prints_nothing(
    emulator: RunningEmulator, silent: Callable[[Callable[[], Any]], Any]
) -> None:
    _write("tickets.jsonl", "t", 3)
    events: list[Event] = []
    result = silent(
        lambda: zsync.push(
            input=[Path("tickets.jsonl")],
            dry_run=True,
            on_event=events.append,
            ledger="z.db",
            api_base=emulator.url,
            api_key=TEST_KEY,
        )
    )
    assert result.exit_code == 0 and result.run_id is None
    bodies = [json.loads(e.message) for e in events if e.kind == "would-send"]
    assert [b["externalId"] for b in bodies] == ["t-0", "t-1", "t-2"]
    assert not Path("z.db").exists() and not emulator.truth()["signals"]


def test_the_key_appears_in_no_result(
    emulator: RunningEmulator, silent: Callable[[Callable[[], Any]], Any]
) -> None:
    _write("tickets.jsonl", "t", 2)
    secret = "zk_live_0123456789abcdef"  # not the emulator's key: refused with 401
    refused = silent(
        lambda: zsync.push(
            input=["tickets.jsonl"], ledger="z.db", api_base=emulator.url, api_key=secret
        )
    )
    assert refused.exit_code == 3 and refused.message
    accepted = silent(
        lambda: zsync.push(
            input=["tickets.jsonl"], ledger="z.db", api_base=emulator.url, api_key=TEST_KEY
        )
    )
    assert accepted.exit_code == 0
    for result, key in ((refused, secret), (accepted, TEST_KEY)):
        for text in (repr(result), str(result), result.message or "", repr(result.details)):
            assert key not in text


def test_a_wrong_argument_type_is_a_type_error_not_a_result() -> None:
    with pytest.raises(TypeError, match="list of paths"):
        zsync.push(input="tickets.jsonl")  # type: ignore[arg-type]


def test_import_zsync_loads_no_stage() -> None:
    code = "import sys, zsync; print(sorted(m for m in sys.modules if m.startswith('zsync')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['zsync', 'zsync.version']"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("zsync_task", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_orchestrator_example_succeeds_retries_and_fails_as_documented(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = _example()
    _write("tickets.jsonl", "t", 3)
    monkeypatch.setenv("ZENTRIK_API_KEY", TEST_KEY)
    done = task.sync_file(["tickets.jsonl"], ledger="z.db", api_base=emulator.url)
    assert done["exit_code"] == 0 and done["processed"] == 3
    emulator.set_faults(process_seconds=30.0)
    _write("more.jsonl", "m", 2)
    with pytest.raises(task.SyncPending):  # still processing when the run ends: exit 75
        task.sync_file(["more.jsonl"], ledger="z.db", api_base=emulator.url, max_duration=0.5)
    with pytest.raises(task.SyncFailed, match="no such file"):
        task.sync_file(["gone.jsonl"], ledger="z.db", api_base=emulator.url)


# Options that shape what the command prints, not what it does: no keyword in the API (the
# global ones are accepted after the subcommand too; `on_event` is the API's way to watch).
_RENDERING = {"json", "help", "verbose", "quiet", "debug", "log_format", "progress_interval"}


def _keyword(option: str) -> str:
    name = option.lstrip("-").replace("-", "_")
    return name.removeprefix("no_")  # --no-poll is poll=False


@pytest.mark.parametrize(
    ("command", "function"),
    [
        ("push", zsync.push),
        ("reconcile", zsync.reconcile),
        ("retry-failed", zsync.retry_failed),
        ("verify", zsync.verify),
        ("status", zsync.status),
    ],
)
def test_every_option_of_the_command_is_a_keyword(command: str, function: Any) -> None:
    options = {
        _keyword(max(p.opts, key=len))
        for p in cli.commands[command].params
        if any(o.startswith("--") for o in p.opts)
    }
    keywords = set(inspect.signature(function).parameters)
    assert options - _RENDERING - keywords == set()
