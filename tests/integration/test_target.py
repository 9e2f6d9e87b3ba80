"""target-zentrik, the Singer target, run as Meltano runs it (a process reading a pipe)
against the emulator: STATE never runs ahead of the ledger, stdout holds only STATE lines,
config mistakes are one line and exit 2, and the key is never printed."""

from __future__ import annotations

import json
import os
import re
import select
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_KEY

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("target-zentrik")
MAPPING = """\
kind = "external_text"
[streams.notes.fields]
externalId = "note:{id}"
signalType = "note"
text = "{text}"
"""


@pytest.fixture(autouse=True)
def _no_meltano_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TARGET_ZENTRIK_"):
            monkeypatch.delenv(name)


def record(i: int, text: str | None = None) -> dict[str, Any]:
    return {"type": "RECORD", "stream": "notes", "record": {"id": i, "text": text or f"n{i}"}}


def state(value: Any) -> dict[str, Any]:
    return {"type": "STATE", "value": value}


SCHEMA = {
    "type": "SCHEMA",
    "stream": "notes",
    "schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
    "key_properties": ["id"],
}


def lines(*messages: dict[str, Any]) -> str:
    """The messages as a tap writes them, after the SCHEMA of "notes" unless they start
    with a SCHEMA of their own."""
    if messages and messages[0]["type"] != "SCHEMA":
        messages = (SCHEMA, *messages)
    return "".join(json.dumps(m) + "\n" for m in messages)


def write_config(emulator: Any, **extra: Any) -> Path:
    Path("notes.toml").write_text(MAPPING)
    settings = {
        "api_base": emulator.url,
        "api_key": TEST_KEY,
        "ledger": "zsync.db",
        "mapping": "notes.toml",
        "poll": False,
        **extra,
    }
    path = Path("target.json")
    path.write_text(json.dumps({k: v for k, v in settings.items() if v is not None}))
    return path


def target(
    args: list[str], stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def ledger_ids() -> set[str]:
    with sqlite3.connect("zsync.db") as db:
        return {row[0] for row in db.execute("SELECT external_id FROM items")}


def read_line(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no STATE line in time"
    return proc.stdout.readline()


def test_a_state_is_written_only_after_the_records_before_it_are_in_the_ledger(
    emulator: Any,
) -> None:
    config = write_config(emulator)
    proc = subprocess.Popen(
        [str(SCRIPT), "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    try:
        # the tap pauses after each STATE: every line must be on stdout before the next
        # part of the stream is written, and the ledger must hold what came before it
        for upto, after in ((3, {"n": 3}), (5, {"n": 5, "a": [1, 2]})):
            first = 1 if upto == 3 else 4
            proc.stdin.write(lines(*(record(i) for i in range(first, upto + 1)), state(after)))
            proc.stdin.flush()
            line = read_line(proc)
            assert json.loads(line) == after  # the value itself, as Meltano stores it
            assert {f"note:{i}" for i in range(1, upto + 1)} <= ledger_ids()
        out, err = proc.communicate(lines(record(6)), timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out == ""  # no STATE after record 6: the tap sent none
    assert dict(emulator.truth()["creates_by_external_id"]) == {f"note:{i}": 1 for i in range(1, 7)}


def test_a_state_after_a_record_not_yet_recorded_is_held_back(emulator: Any) -> None:
    config = write_config(emulator)
    first = target(["--config", str(config)], lines(record(1), record(2), state({"n": 2})))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ['{"n": 2}']
    # record 1 changed: the change is in the ledger only once its update succeeds, so the
    # state after it must not reach Meltano in this run (the next run reads from {"n": 2})
    changed = lines(record(1, "edited"), record(3), state({"n": 3}))
    second = target(["--config", str(config)], changed)
    assert second.returncode == 0, second.stderr
    assert second.stdout == ""
    assert "bookmark not advanced this run" in second.stderr


def test_stdout_holds_only_state_lines_whatever_the_stream_holds(emulator: Any) -> None:
    config = write_config(emulator, poll=True, poll_seconds="20")  # text, as from Meltano
    stream = [
        {**SCHEMA, "key_properties": []},
        {**SCHEMA, "stream": "users"},
        record(1),
        {"type": "RECORD", "stream": "users", "record": {"id": 1}},  # no mapping: skipped
        {"type": "ACTIVATE_VERSION", "stream": "notes", "version": 1},
        state({"bookmarks": {"notes": {"id": 1}}}),
        {"type": "RECORD", "stream": "notes", "record": {"text": "no id"}},  # invalid
        record(2),
        state({"bookmarks": {"notes": {"id": 2}}}),
    ]
    result = target(["--config", str(config)], lines(*stream) + "not json\n")
    assert result.returncode == 1, result.stderr  # an invalid record, as zsync push says
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"bookmarks": {"notes": {"id": 1}}},
        {"bookmarks": {"notes": {"id": 2}}},
    ]
    assert "Singer stream 'users' has no mapping" in result.stderr
    assert "2 processed" in result.stderr


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"api_base": "http://127.0.0.1:1/api", "colour": "blue"}, "unknown setting 'colour'"),
        ({"concurrency": "8"}, "setting 'concurrency' must be a whole number, not \"8\""),
        ({"poll": "yes"}, "setting 'poll' must be true or false"),
        ({"on_change": "merge"}, "setting 'on_change' must be one of update, skip, resend"),
        ({"rate": 0}, "setting 'rate' must be a number above 0"),
        ({"poll_seconds": "soon"}, "setting 'poll_seconds' must be a number, not \"soon\""),
        ({"api_key": 12345}, "setting 'api_key' must be a non-empty string, not a secret value"),
    ],
)
def test_a_config_mistake_is_one_line_and_exit_2(settings: dict[str, Any], expected: str) -> None:
    Path("target.json").write_text(json.dumps(settings))
    result = target(["--config", "target.json"], lines(record(1)))
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert expected in result.stderr
    assert "12345" not in result.stderr
    assert not Path("zsync.db").exists()  # refused before anything was opened


def test_about_json_has_the_singer_sdk_shape() -> None:
    result = target(["--about", "--format", "json"])
    assert result.returncode == 0, result.stderr
    about = json.loads(result.stdout)
    assert about["name"] == "target-zentrik"
    assert about["description"]
    assert about["version"]
    assert "about" in about["capabilities"]
    assert set(about) >= {"sdk_version", "supported_python_versions", "settings"}
    settings = about["settings"]
    assert settings["type"] == "object"
    names = set(settings["properties"])
    assert names == {
        "api_base", "api_key", "ledger", "mapping", "signal_type", "name_template",
        "concurrency", "rate", "poll",
        "poll_seconds", "on_change", "max_duration", "derive_external_id",
        "allow_insecure_http", "metrics_file",
    }  # fmt: skip
    for prop in settings["properties"].values():
        assert prop["type"] in ("string", "integer", "number", "boolean")
        assert prop["description"]
    key = settings["properties"]["api_key"]
    assert key["secret"] is True and key["writeOnly"] is True
    assert not any(p.get("secret") for n, p in settings["properties"].items() if n != "api_key")
    assert settings["required"] == ["api_key"]
    text = target(["--about"])
    assert text.returncode == 0 and "Name: api_key" in text.stdout


def test_the_api_key_is_never_printed(emulator: Any) -> None:
    secret = "sk-live-7f3a9c2e11d04b"
    # a key the API refuses: exit 3, and the message does not carry it
    refused = target(["--config", str(write_config(emulator, api_key=secret))], lines(record(1)))
    assert refused.returncode == 3, refused.stderr
    assert secret not in refused.stdout + refused.stderr
    # Meltano's variable for a key kept out of the config file works, and is not printed
    config = write_config(emulator, api_key=None)
    env = {"TARGET_ZENTRIK_API_KEY": TEST_KEY}
    ok = target(["--config", str(config), "--about"], env=env)
    sent = target(["--config", str(config)], lines(record(1), state({"n": 1})), env=env)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout == '{"n": 1}\n'
    for result in (ok, sent):
        assert TEST_KEY not in result.stdout + result.stderr
    # no key anywhere: exit 3, with a line saying what to set
    missing = target(["--config", str(config)], lines(record(2)))
    assert missing.returncode == 3
    assert "api_key" in missing.stderr and "TARGET_ZENTRIK_API_KEY" in missing.stderr
    assert len(missing.stderr.splitlines()) == 1, missing.stderr


def test_exit_codes_are_zsyncs() -> None:
    Path("target.json").write_text(json.dumps({"api_base": "http://127.0.0.1:9/api"}))
    env = {"ZENTRIK_API_KEY": "k", "EVAL_API_WAIT_SECONDS": "0.2"}
    down = target(["--config", "target.json"], lines(record(1)), env=env)
    assert down.returncode == 4, down.stderr
    assert "unreachable" in down.stderr and down.stdout == ""
    assert target(["--config", "nope.json"]).returncode == 2
    assert target(["--unknown-flag"]).returncode == 2


def test_the_docs_and_the_example_project_list_every_setting() -> None:
    from zsync.cli.target_config import SETTINGS

    names = [s.name for s in SETTINGS]
    docs = (REPO / "docs" / "meltano.md").read_text()
    table = re.findall(r"^\| `(\w+)` \|", docs, flags=re.MULTILINE)
    assert table == names
    project = (REPO / "examples" / "meltano" / "meltano.yml").read_text()
    loader = project.split("\n  loaders:\n", 1)[1]  # the plugin, not the environment
    assert re.findall(r"^    - name: (\w+)$", loader, flags=re.MULTILINE) == names
    assert "sensitive: true" in loader.split("- name: api_key", 1)[1].split("- name:", 1)[0]
