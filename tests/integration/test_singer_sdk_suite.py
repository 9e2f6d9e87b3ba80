"""The Singer SDK's standard target test streams through target-zentrik, with no mapping,
against the emulator: each stream ends as the SDK expects (an error where its test expects
an exception), the emulator holds one signal per key with the last version's content, and
every STATE is relayed. The streams and which of them must fail are read from the installed
``singer-sdk`` (``singer_sdk/testing``), never copied."""

from __future__ import annotations

import importlib.resources
import inspect
import json
import os
import select
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_KEY, emulator_fixture

singer_sdk_testing = pytest.importorskip("singer_sdk.testing")
from singer_sdk.testing import target_test_streams, target_tests  # noqa: E402

TARGET = Path(sys.executable).with_name("target-zentrik")
STREAMS = importlib.resources.files(target_test_streams)
FILES = sorted(
    p.name.removesuffix(".singer") for p in STREAMS.iterdir() if p.name.endswith(".singer")
)

# Each create waits, so a run is still sending when it is killed.
slow_emulator = emulator_fixture(name="slow_emulator", dedupe="off", latency_ms=30)


def _sdk_expects_an_error() -> set[str]:
    """The streams whose SDK test expects the target to raise (its test() uses pytest.raises)."""
    names = set()
    for _name, cls in inspect.getmembers(target_tests, inspect.isclass):
        test = cls.__dict__.get("test")
        if (
            getattr(cls, "name", None)
            and test is not None
            and "pytest.raises" in inspect.getsource(test)
        ):
            names.add(cls.name)
    return names


FAILING = _sdk_expects_an_error()


def test_the_sdk_says_which_streams_must_fail() -> None:
    assert {"record_before_schema", "record_missing_key_property", "invalid_schema"} <= FAILING


@pytest.fixture(autouse=True)
def _no_meltano_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TARGET_ZENTRIK_"):
            monkeypatch.delenv(name)


def config(emulator: Any, **extra: Any) -> str:
    settings = {"api_base": emulator.url, "api_key": TEST_KEY, "ledger": "zsync.db",
                "poll": False, "concurrency": 2, **extra}  # fmt: skip
    Path("target.json").write_text(json.dumps(settings))
    return "target.json"


def target(stdin: str, emulator: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TARGET), "--config", config(emulator)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def expected(
    messages: list[dict[str, Any]],
) -> tuple[dict[str, dict[Any, dict[str, Any]]], list[Any]]:
    """Per stream, the last record for each key (for a stream without key_properties, each
    distinct record); and the STATE values in order. Read from the stream, as the SDK does:
    key_properties from the SCHEMA message."""
    keys: dict[str, list[str]] = {}
    last: dict[str, dict[Any, dict[str, Any]]] = defaultdict(dict)
    states = []
    for m in messages:
        if m["type"] == "SCHEMA":
            keys[m["stream"]] = m.get("key_properties") or []
        elif m["type"] == "RECORD":
            record = m["record"]
            key = tuple(record[k] for k in keys[m["stream"]]) or json.dumps(record, sort_keys=True)
            last[m["stream"]][key] = record
        elif m["type"] == "STATE":
            states.append(m["value"])
    return last, states


@pytest.mark.parametrize("name", FILES)
def test_each_sdk_stream_behaves_as_the_sdk_expects(name: str, emulator: Any) -> None:
    text = (STREAMS / f"{name}.singer").read_text(encoding="utf-8")
    messages = [json.loads(line) for line in text.splitlines() if line.strip()]
    result = target(text, emulator)
    signals = emulator.truth()["signals"]
    if name in FAILING:
        assert result.returncode != 0, result.stderr
        errors = [line for line in result.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1, result.stderr
        stream = next(m["stream"] for m in messages if "stream" in m)
        assert repr(stream) in errors[0]
        if name == "record_missing_key_property":
            assert "'id'" in errors[0]
        assert result.stdout == "" and signals == []  # nothing past the error
        return
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    last, states = expected(messages)
    # every STATE relayed, in order (the SDK's own list for multiple_state_messages among them)
    assert [json.loads(line) for line in result.stdout.splitlines()] == states
    # one signal per key, whatever repeated; none for streams without records
    by_type = Counter(s["signalType"] for s in signals)
    assert by_type == Counter({stream: len(records) for stream, records in last.items()})
    assert set(emulator.truth()["creates_by_external_id"].values()) <= {1}
    # each holds the last version: every plain field of it is a line of the text
    texts = Counter(s["text"] for s in signals)
    for records in last.values():
        for record in records.values():
            lines = [f"{k}: {_plain(v)}" for k, v in record.items() if _plain(v) is not None]
            matching = [t for t in texts if all(line in t.splitlines() for line in lines)]
            assert matching, f"no signal holds {record}"


def test_the_last_version_of_a_key_wins_and_its_id_is_readable(emulator: Any) -> None:
    text = (STREAMS / "duplicate_records.singer").read_text(encoding="utf-8")
    result = target(text, emulator)
    assert result.returncode == 0, result.stderr
    assert "3 superseded" in result.stderr
    assert {s["externalId"]: s["text"] for s in emulator.truth()["signals"]} == {
        "test_duplicate_records:1": "id: 1\nmetric: 100",
        "test_duplicate_records:2": "id: 2\nmetric: 20",
    }


def test_a_changed_record_in_a_later_run_is_updated_in_place(emulator: Any) -> None:
    first = target((STREAMS / "user_location_data.singer").read_text(encoding="utf-8"), emulator)
    assert first.returncode == 0, first.stderr
    upsert = (STREAMS / "user_location_upsert_data.singer").read_text(encoding="utf-8")
    second = target(upsert, emulator)
    assert second.returncode == 0, second.stderr
    truth = emulator.truth()
    assert set(truth["creates_by_external_id"].values()) == {1}
    users = {
        s["externalId"]: s["text"] for s in truth["signals"] if s["signalType"] == "test_users"
    }
    assert users["test_users:1"] == "id: 1\nname: Johny"  # was Yannis: updated, not re-created
    assert users["test_users:3"] == "id: 3\nname: Jacob"  # not in the upsert: kept
    assert len(users) == 8
    # the update is recorded once it lands: the STATE after it waits for the next run
    assert second.stdout == ""
    third = target(upsert, emulator)
    assert third.returncode == 0 and third.stdout.strip(), third.stderr


def _plain(value: Any) -> str | None:
    """How a plain field shows in the text; None for a value the check leaves out."""
    if type(value) is str:
        return value if value.isprintable() else None
    if type(value) in (int, float, bool):
        return json.dumps(value)
    return None


def _versions(ids: int, rounds: int) -> list[dict[str, Any]]:
    schema = {"type": "SCHEMA", "stream": "items", "key_properties": ["id"],
              "schema": {"type": "object", "properties": {"id": {"type": "integer"}}}}  # fmt: skip
    messages: list[dict[str, Any]] = [schema]
    for version in range(1, rounds + 1):
        for i in range(ids):
            record = {"id": i, "version": version}
            messages.append({"type": "RECORD", "stream": "items", "record": record})
        messages.append({"type": "STATE", "value": {"round": version}})
    return messages


def _lines(messages: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(m) + "\n" for m in messages)


def test_killed_mid_run_and_run_again_one_signal_per_key_holding_the_last_version(
    slow_emulator: Any,
) -> None:
    ids, rounds = 40, 3
    messages = _versions(ids, rounds)
    proc = subprocess.Popen(
        [str(TARGET), "--config", config(slow_emulator)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(_lines(messages))
        proc.stdin.close()
        # killed once the first STATE is out (the records before it are in the ledger) and
        # while versions after it are still on their way
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "no STATE in time"
        stored = json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL  # killed mid-run, not ended
    slow_emulator.set_faults(latency_ms=0.0)
    # Each run: the tap starts after the last STATE stored, as Meltano runs it
    for _ in range(4):
        after = messages.index({"type": "STATE", "value": stored}) + 1
        rerun = target(_lines([messages[0], *messages[after:]]), slow_emulator)
        assert rerun.returncode in (0, 75), rerun.stderr
        if rerun.stdout:
            stored = json.loads(rerun.stdout.splitlines()[-1])
        if stored == {"round": rounds} and rerun.returncode == 0:
            break
    assert stored == {"round": rounds}
    truth = slow_emulator.truth()
    assert truth["live_by_external_id"] == {f"items:{i}": 1 for i in range(ids)}
    assert {s["text"] for s in truth["signals"]} == {
        f"id: {i}\nversion: {rounds}" for i in range(ids)
    }


def test_zsync_push_format_singer_shapes_records_the_same_way(
    emulator: Any, api_env: dict[str, str]
) -> None:
    from tests.conftest import run_cli

    path = str(STREAMS / "user_location_data.singer")
    args = ["push", "--format", "singer", "--input", path, "--no-poll"]
    result = run_cli([*args, "--signal-type", "crm_row", "--name-template", "{name}"], env=api_env)
    assert result.code == 0, result.err
    signals = {s["externalId"]: s for s in emulator.truth()["signals"]}
    assert len(signals) == 11 and {s["signalType"] for s in signals.values()} == {"crm_row"}
    assert signals["test_users:2"]["name"] == "Micael"
    assert signals["test_locations:2"]["name"] == "NY"
    assert signals["test_user_in_location:1"]["name"] is None  # it has no "name" field
