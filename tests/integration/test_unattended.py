"""Unattended runs (cron, timers): waiting is free, a plain re-run converges, quiet is quiet."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.conftest import TEST_KEY
from tests.emulator.testing import running_emulator
from tests.waiting import wait_until
from tests.zsync_cmd import ZSYNC


def _write(path: Path, n: int, prefix: str = "wait") -> Path:
    lines = [
        json.dumps(
            {
                "kind": "external_text",
                "externalId": f"{prefix}-{i}",
                "signalType": "transcript",
                "text": f"call {i}",
            }
        )
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _env(emu: Any, ledger: Path) -> dict[str, str]:
    return {
        "ZENTRIK_API_BASE": emu.url,
        "ZENTRIK_API_KEY": TEST_KEY,
        "ZSYNC_LEDGER": str(ledger),
        "PATH": "/usr/bin:/bin",
    }


def test_waiting_for_processing_burns_no_cpu(tmp_path: Path) -> None:
    """A push that mostly waits for the server's processing uses a sliver of a core (it
    used to spin: 7.65 s of CPU in 8.0 s for 40 records processed in 6 s)."""
    source = _write(tmp_path / "in.jsonl", 40)
    with running_emulator(process_seconds=4.0, dedupe="off") as emu:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        done = subprocess.run(
            [*ZSYNC, "push", "-i", str(source), "--poll-interval", "1"],
            env=_env(emu, tmp_path / "z.db"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0, done.stderr
    assert "40 processed" in done.stdout + done.stderr
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # Interpreter start-up and 80 requests cost well under a second; the rest is waiting.
    assert wall >= 4.0
    assert cpu < 0.25 * wall, f"{cpu:.2f}s of CPU in {wall:.2f}s of wall time"


def test_metrics_are_exact_and_parse_as_prometheus_text(
    emulator: Any, api_env: dict[str, str]
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from tests.conftest import run_cli
    from zsync.ledger import Ledger
    from zsync.metrics import render
    from zsync.model import RunResult

    _write(Path("in.jsonl"), 3)
    done = run_cli(["push", "-i", "in.jsonl", "--metrics-file", "z.prom"], env=api_env)
    assert done.code == 0, done.err
    families = {f.name: f for f in text_string_to_metric_families(Path("z.prom").read_text())}
    [last_ok] = families["zsync_last_success_timestamp_seconds"].samples
    ledger = Ledger.open_readonly(Path("zsync.db"))
    finished = ledger.runs.last_success()
    assert finished is not None
    expected = datetime.fromisoformat(finished.replace("Z", "+00:00")).timestamp()
    # to the millisecond the ledger keeps, not to six significant digits (±83 minutes)
    assert abs(last_ok.value - expected) < 0.001
    big = RunResult("push")
    big.counts["unchanged"] = 1_234_567
    text = render(big, ledger)
    ledger.close()
    assert 'zsync_run_items{command="push",outcome="unchanged"} 1234567\n' in text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    assert any(s.value == 1_234_567 for s in samples)


def test_a_missing_input_is_a_usage_error_before_any_ledger_exists(
    api_env: dict[str, str],
) -> None:
    from tests.conftest import run_cli

    result = run_cli(["push", "-i", "nope.jsonl"], env=api_env)
    assert result.code == 2
    assert result.err.strip() == "zsync: error: --input nope.jsonl: no such file"
    assert not Path("zsync.db").exists()
    Path("locked.jsonl").write_text("{}\n")
    Path("locked.jsonl").chmod(0)
    if os.geteuid() != 0:  # root reads anything
        result = run_cli(["push", "-i", "locked.jsonl"], env=api_env)
        assert result.code == 2 and "permission denied" in result.err
    result = run_cli(["push", "-i", "."], env=api_env)
    assert result.code == 2 and "is a directory" in result.err
    assert not Path("zsync.db").exists()


def test_quiet_says_nothing_on_a_clean_run_and_still_names_problems(
    emulator: Any, api_env: dict[str, str]
) -> None:
    from tests.conftest import run_cli

    _write(Path("in.jsonl"), 3)
    first = run_cli(["-q", "push", "-i", "in.jsonl", "--no-poll"], env=api_env)
    assert first.code == 0 and first.out == "", first.out
    assert first.err == ""  # not even the new ledger's notice: a first cron run mails nothing
    again = run_cli(["-q", "push", "-i", "in.jsonl", "--no-poll"], env=api_env)
    assert (again.code, again.out, again.err) == (0, "", "")
    with Path("in.jsonl").open("a") as f:
        f.write('{"kind": "external_text", "externalId": "bad"}\n')
    bad = run_cli(["-q", "push", "-i", "in.jsonl", "--no-poll"], env=api_env)
    assert bad.code == 1
    assert "in.jsonl:4: field 'text': missing" in bad.err
    assert "1 invalid" in bad.out + bad.err


def test_dry_run_counts_what_it_would_send_and_keeps_stdout_for_bodies(
    api_env: dict[str, str],
) -> None:
    from tests.conftest import run_cli

    _write(Path("in.jsonl"), 4)
    text = run_cli(["push", "-i", "in.jsonl", "--dry-run"], env=api_env)
    assert text.code == 0
    assert "4 would-send" in text.err and "nothing to do" not in text.err
    as_json = run_cli(["push", "-i", "in.jsonl", "--dry-run", "--json"], env=api_env)
    *lines, last = as_json.out.splitlines()  # the bodies, then the summary (issue 23)
    bodies = [json.loads(line) for line in lines]
    assert [b["externalId"] for b in bodies] == [f"wait-{i}" for i in range(4)]
    summary = json.loads(last)
    assert summary["counts"]["would-send"] == 4


def test_a_tap_that_resends_an_identical_record_is_not_an_error(
    emulator: Any, api_env: dict[str, str]
) -> None:
    from tests.conftest import run_cli

    record = {"kind": "external_text", "externalId": "t-1", "signalType": "s", "text": "hi"}
    changed = {**record, "text": "changed"}
    messages = [
        {"type": "SCHEMA", "stream": "s", "schema": {"properties": {}}, "key_properties": []},
        {"type": "RECORD", "stream": "s", "record": record},
        {"type": "STATE", "value": {"n": 1}},
        {"type": "RECORD", "stream": "s", "record": record},  # at-least-once: sent again
    ]
    stdin = "".join(json.dumps(m) + "\n" for m in messages)
    args = ["push", "-i", "-", "--format", "singer", "--no-poll"]
    result = run_cli(args, env=api_env, stdin=stdin)
    assert result.code == 0, result.err
    assert "1 created" in result.out and "1 repeated" in result.out
    assert emulator.truth()["creates_by_external_id"] == {"t-1": 1}
    # the same id with other content in one input is an upsert: the last version wins, and
    # the signal already sent is updated in place
    stdin += json.dumps({"type": "RECORD", "stream": "s", "record": changed}) + "\n"
    result = run_cli(args, env=api_env, stdin=stdin)
    assert result.code == 0 and "1 updated" in result.out, result.out + result.err
    assert emulator.truth()["creates_by_external_id"] == {"t-1": 1}


def test_a_plain_rerun_of_the_cron_line_settles_what_earlier_runs_left(
    api_env: dict[str, str],
) -> None:
    """Signals left processing (here by --no-poll; after a SIGKILL it is the same) are
    followed up by the next plain push: exit 75 while any remain, 0 once all settled."""
    from tests.conftest import run_cli

    _write(Path("in.jsonl"), 5)
    # Processing takes long enough that the second run comes before it ends, however loaded
    # the machine; the third waits for the server to have processed them all.
    with running_emulator(process_seconds=3.0, dedupe="off") as emu:
        env = {**api_env, "ZENTRIK_API_BASE": emu.url}
        first = run_cli(["push", "-i", "in.jsonl", "--no-poll"], env=env)
        assert first.code == 0 and "5 created" in first.out
        cron = ["push", "-i", "in.jsonl", "--poll-seconds", "0.2"]
        early = run_cli(cron, env=env)
        assert early.code == 75, early.out + early.err
        assert "5 followed-up" in early.out and "5 unchanged" in early.out
        wait_until(
            lambda: {s["status"] for s in emu.truth()["signals"]} == {"processed"},
            "the server to process the 5 signals",
        )
        later = run_cli(cron, env=env)
        assert later.code == 0, later.out + later.err
        assert "5 processed" in later.out
        assert emu.truth()["creates_by_external_id"] == {f"wait-{i}": 1 for i in range(5)}
        settled = run_cli(cron, env=env)
        assert settled.code == 0 and "followed-up" not in settled.out


def test_why_a_signal_failed_is_shown_wherever_the_server_puts_it(
    api_env: dict[str, str],
) -> None:
    from tests.conftest import run_cli

    _write(Path("in.jsonl"), 2)
    for place in ("processing.error", "processing.error.message", "error"):
        Path("zsync.db").unlink(missing_ok=True)
        with running_emulator(
            process_seconds=0.05, fail_rate=1.0, failure_reason_at=place, dedupe="off"
        ) as emu:
            env = {**api_env, "ZENTRIK_API_BASE": emu.url}
            push = run_cli(["push", "-i", "in.jsonl"], env=env)
            assert push.code == 1
            [line] = [x for x in push.err.splitlines() if x.startswith("failed: wait-0: ")]
            assert line.endswith("transcript too short"), (place, line)
            errors = run_cli(["errors"], env=env)
            assert "2 × failed" in errors.out and "transcript too short" in errors.out
            show = run_cli(["show", "wait-1"], env=env)
            assert "last_error" in show.out and "transcript too short" in show.out
            export = run_cli(["export", "--status", "failed"], env=env)
            rows = [json.loads(line) for line in export.out.splitlines()]
            assert all(r["last_error"].endswith("transcript too short") for r in rows)
            assert len(rows) == 2


def test_following_up_polls_at_a_gentle_pace(api_env: dict[str, str]) -> None:
    """Signals read from the ledger are polled at once and then at growing intervals (a poll
    due at once used to come back at once: 176 polls of 2 signals in 2 s)."""
    from tests.conftest import run_cli

    _write(Path("in.jsonl"), 2)
    with running_emulator(process_seconds=2.0, dedupe="off") as emu:
        env = {**api_env, "ZENTRIK_API_BASE": emu.url}
        assert run_cli(["push", "-i", "in.jsonl", "--no-poll"], env=env).code == 0
        done = run_cli(["reconcile"], env=env)
        assert done.code == 0 and "2 processed" in done.out
        polls = sum(
            n
            for key, n in emu.truth()["requests"].items()
            if key.startswith("GET ") and "/signals/" in key
        )
    assert polls <= 2 * 8, polls


def test_prune_only_considers_the_signals_of_its_own_source(
    emulator: Any, api_env: dict[str, str]
) -> None:
    from tests.conftest import run_cli

    _write(Path("a.jsonl"), 3, prefix="a")
    _write(Path("b.jsonl"), 3, prefix="b")
    for name in ("a.jsonl", "b.jsonl"):
        assert run_cli(["push", "-i", name, "--no-poll"], env=api_env).code == 0
    _write(Path("b.jsonl"), 2, prefix="b")  # b-2 is gone from b.jsonl
    result = run_cli(["push", "-i", "b.jsonl", "--prune", "--force", "--no-poll"], env=api_env)
    assert result.code == 0, result.err
    assert "1 deleted" in result.out
    live = emulator.truth()["live_by_external_id"]
    assert sorted(k for k, n in live.items() if n) == ["a-0", "a-1", "a-2", "b-0", "b-1"]
    # Records that carry a sourceKey belong to it, whichever file they come from.
    keyed = [
        {
            "kind": "external_text",
            "externalId": f"k-{i}",
            "signalType": "s",
            "text": "t",
            "sourceKey": "crm.v1",
        }
        for i in range(3)
    ]
    Path("old.jsonl").write_text("".join(json.dumps(r) + "\n" for r in keyed))
    assert run_cli(["push", "-i", "old.jsonl", "--no-poll"], env=api_env).code == 0
    Path("new.jsonl").write_text("".join(json.dumps(r) + "\n" for r in keyed[:2]))
    moved = run_cli(["push", "-i", "new.jsonl", "--prune", "--force", "--no-poll"], env=api_env)
    assert moved.code == 0 and "1 deleted" in moved.out, moved.out + moved.err
    assert emulator.truth()["live_by_external_id"].get("k-2", 0) == 0
    assert emulator.truth()["live_by_external_id"]["a-0"] == 1


def test_status_calls_a_killed_run_what_it_is() -> None:
    from tests.conftest import run_cli
    from zsync.ledger import Ledger

    ledger = Ledger.open(Path("zsync.db"))
    run_id = ledger.runs.start("push", {})
    ledger.conn.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (run_id,))
    ledger.close()
    status = run_cli(["status"], env={})
    assert status.code == 0
    assert f"#{run_id} " in status.out and "push: did not finish (killed or crashed)" in status.out
    assert "running" not in status.out


def test_every_operator_command_takes_json(emulator: Any, api_env: dict[str, str]) -> None:
    from tests.conftest import run_cli

    _write(Path("in.jsonl"), 3)
    assert run_cli(["push", "-i", "in.jsonl", "--no-poll"], env=api_env).code == 0
    for args in (["status"], ["runs"], ["errors"], ["show", "wait-1"], ["export"]):
        result = run_cli([*args, "--json"], env=api_env)
        assert result.code == 0, (args, result.err)
        json.loads(result.out)  # one JSON document
    rows = json.loads(run_cli(["export", "--json"], env=api_env).out)
    assert [r["external_id"] for r in rows] == ["wait-0", "wait-1", "wait-2"]
    assert json.loads(run_cli(["export", "--json", "--status", "failed"], env=api_env).out) == []


def test_a_new_api_base_for_the_same_workspace_is_said_once(
    emulator: Any, api_env: dict[str, str]
) -> None:
    from tests.conftest import run_cli

    _write(Path("in.jsonl"), 1)
    assert run_cli(["push", "-i", "in.jsonl", "--no-poll"], env=api_env).code == 0
    other = {
        **api_env,
        "ZENTRIK_API_BASE": api_env["ZENTRIK_API_BASE"].replace("127.0.0.1", "localhost"),
    }
    moved = run_cli(["push", "-i", "in.jsonl", "--no-poll"], env=other)
    assert moved.code == 0
    assert (
        "was used with http://127.0.0.1:" in moved.err
        and "now follows http://localhost:" in moved.err
    )
    again = run_cli(["push", "-i", "in.jsonl", "--no-poll"], env=other)
    assert "was used with" not in again.err


def test_json_log_lines_of_invalid_records_carry_the_run(
    emulator: Any, api_env: dict[str, str]
) -> None:
    from tests.conftest import run_cli

    Path("in.jsonl").write_text('{"kind": "external_text", "externalId": "x"}\n')
    result = run_cli(["--log-format", "json", "push", "-i", "in.jsonl"], env=api_env)
    assert result.code == 1
    [line] = [json.loads(x) for x in result.err.splitlines() if '"invalid"' in x]
    assert line["run_id"] == 1 and line["externalId"] == "x"
