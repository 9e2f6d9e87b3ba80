"""Real sources against the emulator: the shipped examples as the README runs them, source
programs, Singer streams, and bookmarks that never run ahead of what the ledger holds."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import TEST_KEY, run_cli
from tests.zsync_cmd import ZSYNC

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PY = sys.executable


def creates(emulator: Any) -> dict[str, int]:
    return dict(emulator.truth()["creates_by_external_id"])


def signals(emulator: Any) -> dict[str, dict[str, Any]]:
    return {s["externalId"]: s for s in emulator.truth()["signals"]}


def bookmarks(ledger: str = "zsync.db") -> dict[str, Any]:
    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT key, value FROM meta WHERE key LIKE 'bookmark:%'").fetchall()
    return {k: json.loads(v) for k, v in rows}


def statuses(ledger: str = "zsync.db") -> dict[str, str]:
    with sqlite3.connect(ledger) as db:
        return dict(db.execute("SELECT external_id, status FROM items").fetchall())


def program(name: str, body: str) -> str:
    """A source program in the test directory; returns the --source-cmd for it."""
    Path(name).write_text(textwrap.dedent(body))
    return f"{PY} {name}"


def record(i: int) -> dict[str, Any]:
    return {
        "kind": "external_text",
        "externalId": f"src-{i}",
        "signalType": "note",
        "text": f"n{i}",
    }


# -- the examples, as the README runs them ----------------------------------------------------


def test_surveys_csv_example_lands_once(emulator: Any, api_env: dict[str, str]) -> None:
    args = ["push", "--input", str(EXAMPLES / "surveys.csv")]
    args += ["--mapping", str(EXAMPLES / "surveys.toml"), "--no-poll", "--json"]
    first = run_cli(args, env=api_env)
    assert first.code == 0, first.err
    assert creates(emulator) == {"nps:R-1001": 1, "nps:R-1002": 1, "nps:R-1003": 1}
    got = signals(emulator)
    assert got["nps:R-1002"]["text"] == (
        "Search misses older feedback.\nTagging takes too long when we import 200 notes at once."
    )
    assert got["nps:R-1001"]["productIds"] == ["Roadmaps", "Insights"]
    assert got["nps:R-1003"]["accountId"] == "unknown" and "productIds" not in got["nps:R-1003"]
    assert got["nps:R-1001"]["sourceKey"] == "surveys.nps.v1"
    again = run_cli(args, env=api_env)
    assert json.loads(again.out)["counts"] == {"unchanged": 3}
    assert sum(creates(emulator).values()) == 3


def test_tickets_jsonl_example_lands_once(emulator: Any, api_env: dict[str, str]) -> None:
    args = ["push", "--input", str(EXAMPLES / "tickets.jsonl")]
    args += ["--mapping", str(EXAMPLES / "tickets.toml"), "--no-poll"]
    assert run_cli(args, env=api_env).code == 0
    got = signals(emulator)
    assert set(got) == {"helpdesk:48121", "helpdesk:48122", "helpdesk:48123"}
    assert got["helpdesk:48121"]["occurredAt"] == "2024-05-02T09:00:00Z"  # epoch seconds
    assert got["helpdesk:48123"]["additionalContext"] == "untagged"
    assert got["helpdesk:48122"]["accountId"] == "globex"
    assert "2 unchanged" not in run_cli(args, env=api_env).out
    assert sum(creates(emulator).values()) == 3


class _Api:
    """A paginated JSON API on 127.0.0.1: GET /items?cursor=N -> {"items", "next"}."""

    def __init__(self, page_size: int = 2) -> None:
        self.items: list[dict[str, Any]] = []
        self.page_size = page_size
        self.requests: list[str | None] = []  # the cursor of each request
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                cursor = parse_qs(url.query).get("cursor", [None])[0]
                api.requests.append(cursor)
                start = int(cursor or 0)
                page = api.items[start : start + api.page_size]
                end = start + len(page)
                body = {"items": page, "next": str(end) if end < len(api.items) else None}
                data = json.dumps(body).encode()
                self.send_response(200 if url.path == "/items" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, *ids: int) -> None:
        for i in ids:
            self.items.append(
                {
                    "id": i,
                    "title": f"Item {i}",
                    "body": f"Feedback number {i}",
                    "updated_at": f"2024-05-{i:02d}T10:00:00Z",
                    "account": {"id": f"acct-{i % 3}"},
                }
            )


@pytest.fixture
def paginated_api() -> Iterator[_Api]:
    api = _Api()
    try:
        yield api
    finally:
        api.server.shutdown()
        api.server.server_close()


def test_paginated_api_example_resumes_from_its_bookmark(
    emulator: Any, api_env: dict[str, str], paginated_api: _Api
) -> None:
    paginated_api.add(1, 2, 3, 4, 5)
    cmd = f"{PY} {EXAMPLES / 'sources' / 'paginated_api.py'} --base {paginated_api.url}"
    args = ["push", "--source-cmd", cmd, "--mapping", str(EXAMPLES / "sources/paginated_api.toml")]
    args += ["--no-poll"]
    first = run_cli(args, env=api_env)
    assert first.code == 0, first.err
    assert creates(emulator) == {f"example-api:{i}": 1 for i in range(1, 6)}
    assert paginated_api.requests == [None, "2", "4"]
    [saved] = bookmarks().values()
    assert saved == {"cursor": "4", "updated_at": "2024-05-05T10:00:00Z", "id": "5"}

    paginated_api.requests.clear()
    paginated_api.add(6, 7, 8)
    second = run_cli(args, env=api_env)
    assert second.code == 0, second.err
    assert "3 created" in second.out and "unchanged" not in second.out
    # only from the saved cursor on: the last page seen (it may have grown), then the new one
    assert paginated_api.requests == ["4", "6"]
    assert creates(emulator) == {f"example-api:{i}": 1 for i in range(1, 9)}
    assert run_cli(args, env=api_env).out.startswith("zsync push (run 3): nothing to do")


def test_singer_stream_piped_on_stdin_lands_and_its_state_is_honoured(
    emulator: Any, api_env: dict[str, str]
) -> None:
    tap = EXAMPLES / "singer" / "sample_tap.py"
    mapping = str(EXAMPLES / "singer" / "zendesk.toml")
    push = ["push", "--input", "-", "--format", "singer", "--mapping", mapping]
    push += ["--state-file", "state.json", "--no-poll"]

    def tap_output(*extra: str) -> str:
        return subprocess.run(
            [PY, str(tap), "--state", "state.json", *extra],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    # the first run: no state file yet, the tap reads everything
    first = run_cli(push, env=api_env, stdin=tap_output())
    assert first.code == 0, first.err
    assert set(creates(emulator)) == {
        "zendesk:ticket:301",
        "zendesk:ticket:302",
        "zendesk:ticket:303",
        "zendesk:ticket:304",
        "zendesk:csat:9001",
        "zendesk:csat:9002",
    }
    assert signals(emulator)["zendesk:csat:9001"]["sourceKey"] == "zendesk.csat.v1"
    final = {
        "bookmarks": {
            "tickets": {"updated_at": "2024-05-06T07:45:00Z"},
            "satisfaction_ratings": {"updated_at": "2024-05-06T09:00:00Z"},
        }
    }
    assert bookmarks() == {"bookmark:stdin": final}
    assert json.loads(Path("state.json").read_text()) == final

    # the next day: the tap's recording has two new tickets; with zsync's state file it
    # emits only those, and only those are sent
    day2 = Path("day2.singer.jsonl")
    old = (EXAMPLES / "singer" / "tickets.singer.jsonl").read_text()
    new = [
        {"id": 305, "subject": "Slow search", "description": "Search takes 10 s.",
         "updated_at": "2024-05-07T08:00:00Z", "organization_id": 12, "tags": []},
        {"id": 306, "subject": "CSV import", "description": "Import drops accents.",
         "updated_at": "2024-05-07T09:00:00Z", "organization_id": None, "tags": ["import"]},
    ]  # fmt: skip
    lines = [json.dumps({"type": "RECORD", "stream": "tickets", "record": r}) for r in new]
    state = {"bookmarks": {**final["bookmarks"], "tickets": {"updated_at": new[1]["updated_at"]}}}
    lines.append(json.dumps({"type": "STATE", "value": state}))
    day2.write_text(old + "\n".join(lines) + "\n")
    output = tap_output("--sample", str(day2))
    assert output.count('"RECORD"') == 2
    second = run_cli(push, env=api_env, stdin=output)
    assert second.code == 0, second.err
    assert "2 created" in second.out
    assert creates(emulator)["zendesk:ticket:305"] == 1
    assert all(n == 1 for n in creates(emulator).values()) and len(creates(emulator)) == 8
    assert json.loads(Path("state.json").read_text()) == state


# -- source programs ---------------------------------------------------------------------------


def test_a_failing_source_program_fails_the_run_after_recording_what_it_emitted(
    emulator: Any, api_env: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    lines = [record(1), record(2), {"type": "STATE", "value": {"after": 2}}, record(3)]
    cmd = program(
        "fetch.py",
        f"""\
        import json, os, sys
        with open("seen-env.json", "w") as f:
            json.dump({{k: os.environ.get(k) for k in
                       ("ZSYNC_BOOKMARK", "ZENTRIK_API_KEY", "ZENTRIK_API_BASE")}}, f)
        for line in {lines!r}:
            print(json.dumps(line), flush=True)
        print("fetch: upstream answered 503", file=sys.stderr)
        sys.exit(3)
        """,
    )
    result = run_cli(["push", "--source-cmd", cmd, "--no-poll"], env=api_env)
    assert result.code == 1
    assert (
        "zsync: error: source command fetch.py exited with code 3; "
        "the records it emitted before were recorded"
    ) in result.err
    assert "fetch: upstream answered 503" in capfd.readouterr().err  # its stderr, passed on
    assert creates(emulator) == {"src-1": 1, "src-2": 1, "src-3": 1}
    assert list(bookmarks().values()) == [{"after": 2}]
    seen = json.loads(Path("seen-env.json").read_text())
    assert seen["ZSYNC_BOOKMARK"] is None and seen["ZENTRIK_API_KEY"] is None
    assert seen["ZENTRIK_API_BASE"] == api_env["ZENTRIK_API_BASE"]

    # the next run hands the bookmark back; src-3 is known and unchanged
    again = run_cli(["push", "--source-cmd", cmd, "--no-poll", "--json"], env=api_env)
    assert json.loads(Path("seen-env.json").read_text())["ZSYNC_BOOKMARK"] == '{"after":2}'
    assert json.loads(again.out)["counts"]["unchanged"] == 3


def test_a_state_line_needs_exactly_type_and_value(emulator: Any, api_env: dict[str, str]) -> None:
    lines = [record(1), {"type": "STATE", "value": 1, "extra": True}]
    cmd = program("fetch.py", f"import json\nfor x in {lines!r}: print(json.dumps(x))\n")
    result = run_cli(["push", "--source-cmd", cmd, "--no-poll"], env=api_env)
    assert result.code == 1
    assert "invalid: fetch.py:2: field 'kind': missing" in result.err  # a record, not a STATE
    assert bookmarks() == {}


def test_ignore_bookmark_starts_the_source_from_scratch(
    emulator: Any, api_env: dict[str, str]
) -> None:
    cmd = program(
        "fetch.py",
        """\
        import json, os
        print(json.dumps({"env": os.environ.get("ZSYNC_BOOKMARK")}), file=open("env", "w"))
        print(json.dumps({"type": "STATE", "value": {"n": 1}}))
        """,
    )
    assert run_cli(["push", "--source-cmd", cmd], env=api_env).code == 0
    assert run_cli(["push", "--source-cmd", cmd], env=api_env).code == 0
    assert json.loads(Path("env").read_text())["env"] == '{"n":1}'
    shown = run_cli(["status"], env=api_env)
    assert "  bookmark of cmd:fetch.py:" in shown.out and shown.out.rstrip().count('{"n":1}') == 1
    as_json = json.loads(run_cli(["status", "--json"], env=api_env).out)
    assert list(as_json["bookmarks"].values()) == ['{"n":1}']
    assert run_cli(["push", "--source-cmd", cmd, "--ignore-bookmark"], env=api_env).code == 0
    assert json.loads(Path("env").read_text())["env"] is None


def test_a_bookmark_after_a_deferred_record_is_not_saved(
    emulator: Any, api_env: dict[str, str]
) -> None:
    lines = [record(1), record(2), record(3), {"type": "STATE", "value": {"n": 3}}]
    cmd = program("fetch.py", f"import json\nfor x in {lines!r}: print(json.dumps(x))\n")
    result = run_cli(["push", "--source-cmd", cmd, "--limit", "2", "--no-poll"], env=api_env)
    assert result.code == 75, result.err
    assert "warning: bookmark not advanced this run" in result.err
    assert bookmarks() == {}
    assert run_cli(["push", "--source-cmd", cmd, "--no-poll"], env=api_env).code == 0
    assert list(bookmarks().values()) == [{"n": 3}]
    assert creates(emulator) == {"src-1": 1, "src-2": 1, "src-3": 1}


def test_unfinished_items_of_a_bookmarked_source_are_sent_by_the_next_push(
    emulator: Any, api_env: dict[str, str]
) -> None:
    # The source resumes after its bookmark and never emits these records again, so the
    # next push itself (not only reconcile) must finish them.
    lines = [record(i) for i in range(1, 5)] + [{"type": "STATE", "value": {"n": 4}}]
    cmd = program(
        "fetch.py",
        f"""\
        import json, os
        if not os.environ.get("ZSYNC_BOOKMARK"):
            for x in {lines!r}: print(json.dumps(x))
        """,
    )
    emulator.set_faults(latency_ms=300)
    args = ["push", "--source-cmd", cmd, "--no-poll", "--skip-readyz", "--concurrency", "1"]
    first = run_cli([*args, "--max-duration", "0.1"], env=api_env)
    assert first.code == 75, first.err
    # The ledger's check (one list request, 300 ms here) may leave no time for a create.
    left = sorted(statuses().values()).count("pending")
    assert left >= 3 and set(statuses().values()) <= {"pending", "submitted"}
    assert list(bookmarks().values()) == [{"n": 4}]  # all four were recorded before it
    emulator.set_faults(latency_ms=0)
    second = run_cli(args, env=api_env)
    assert second.code == 0, second.err
    assert f"{left} created" in second.out
    assert creates(emulator) == {f"src-{i}": 1 for i in range(1, 5)}


def test_a_crash_never_leaves_the_bookmark_ahead_of_the_recorded_records(tmp_path: Path) -> None:
    from tests.emulator.testing import running_emulator

    # Records 1-3, a bookmark, records 4-5, then the program hangs: 4 and 5 wait in an open
    # batch. zsync is killed (kill -9) once the bookmark is saved.
    first_lines = [record(i) for i in (1, 2, 3)] + [{"type": "STATE", "value": {"n": 3}}]
    first_lines += [record(4), record(5)]
    cmd = program(
        "fetch.py",
        f"""\
        import json, os, sys, time
        n = json.loads(os.environ.get("ZSYNC_BOOKMARK") or '{{"n": 0}}')["n"]
        if n == 0:
            for x in {first_lines!r}: print(json.dumps(x), flush=True)
            time.sleep(60)
        for i in range(n + 1, 6):
            print(json.dumps({record(0)!r} | {{"externalId": f"src-{{i}}", "text": f"n{{i}}"}}))
        print(json.dumps({{"type": "STATE", "value": {{"n": 5}}}}))
        """,
    )
    with running_emulator(latency_ms=200) as emu:
        env = {
            **os.environ,
            "ZENTRIK_API_BASE": emu.url,
            "ZENTRIK_API_KEY": TEST_KEY,
            "ZSYNC_LEDGER": str(tmp_path / "zsync.db"),
        }
        args = [*ZSYNC, "push", "--source-cmd", cmd, "--no-poll"]
        proc = subprocess.Popen(args, env=env, start_new_session=True, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    # (connecting to a missing file would create an empty one, which zsync
                    # then refuses as not a ledger)
                    if (tmp_path / "zsync.db").exists() and bookmarks(str(tmp_path / "zsync.db")):
                        break
                except sqlite3.OperationalError:
                    pass  # not created or not migrated yet
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.02)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # zsync and the hanging program
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
        ledger = str(tmp_path / "zsync.db")
        assert list(bookmarks(ledger).values()) == [{"n": 3}]
        held = statuses(ledger)
        assert {"src-1", "src-2", "src-3"} <= set(held)  # recorded before the bookmark
        assert "src-4" not in held and "src-5" not in held  # never recorded: not bookmarked

        # the re-run resumes after n=3 and finishes 1-3 from the ledger
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert creates(emu) == {f"src-{i}": 1 for i in range(1, 6)}
        assert list(bookmarks(ledger).values()) == [{"n": 5}]


# -- Singer details and usage errors -----------------------------------------------------------


def test_singer_messages_zsync_cannot_use_are_reported(
    emulator: Any, api_env: dict[str, str]
) -> None:
    Path("m.toml").write_text(
        'kind = "external_text"\n[streams.tickets.fields]\nexternalId = "t:{id}"\n'
        'text = "{t}"\nsignalType = "support_ticket"\n'
    )
    messages = [
        {"type": "SCHEMA", "stream": "tickets", "schema": {"properties": {}}},
        {"type": "SCHEMA", "stream": "users", "schema": {"properties": {}}},
        {"type": "RECORD", "stream": "users", "record": {"id": 1}},
        {"type": "ACTIVATE_VERSION", "stream": "tickets", "version": 1},
        {"type": "ACTIVATE_VERSION", "stream": "tickets", "version": 2},
        {"type": "RECORD", "stream": "tickets", "record": {"id": 1, "t": "hello"}},
        {"type": "RECORD", "record": {"id": 2}},
        {"type": "RECORD", "stream": "tickets", "record": {"id": 3}},
        {"type": "STATE"},
        {"no": "type"},
    ]
    stdin = "\n".join(json.dumps(m) for m in messages) + "\n"
    args = ["push", "-i", "-", "--format", "singer", "-m", "m.toml", "--no-poll"]
    result = run_cli(args, env=api_env, stdin=stdin)
    assert result.code == 1
    err = result.err
    assert "warning: <stdin>:2: Singer stream 'users' has no mapping in m.toml" in err
    assert err.count("Singer stream 'users'") == 1
    assert err.count("Singer message type 'ACTIVATE_VERSION' is ignored") == 1
    assert '<stdin>:7: Singer RECORD without a "stream" name' in err
    assert "<stdin>:8: field 'text' (mapping m.toml:4): template '{t}' needs 't'" in err
    assert '<stdin>:9: Singer STATE without a "value"' in err
    assert "<stdin>:10: not a Singer message" in err
    assert creates(emulator) == {"t:1": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "in.csv"], "CSV input needs --mapping FILE"),
        (["--input", "in.jsonl", "--mapping", "bad.toml"], "mapping bad.toml:3: text: single '}'"),
        (["--input", "in.jsonl", "--source-cmd", "true"], "give --input or --source-cmd"),
        ([], "give --input FILE (- for stdin) or --source-cmd COMMAND"),
        (["--source-cmd", "no-such-program-zsync --x"], "no-such-program-zsync is not found"),
        (["--source-cmd", "'unclosed"], "--source-cmd: cannot split"),
        (["--source-cmd", "true", "--format", "csv"], "writes JSONL (or --format singer)"),
        (["-i", "-", "--format", "singer", "--prune"], "--prune needs the complete dataset"),
        (["-i", "in.jsonl", "--state-file", "s.json"], "--state-file needs a source with"),
        (["-i", "in.jsonl", "--delimiter", ";"], "--delimiter is for CSV input"),
        (["-i", "in.csv", "-m", "ok.toml", "--delimiter", ";;"], "--delimiter must be one"),
        (["-i", "in.csv", "-m", "streams.toml"], "has only [streams.NAME] tables"),
        (["-i", "a", "-i", "b", "--format", "singer"], "--format singer reads one input"),
    ],
)
def test_usage_errors_exit_2_before_anything_is_sent(args: list[str], message: str) -> None:
    Path("in.csv").write_text("a,b\n1,2\n")
    Path("in.jsonl").write_text("{}\n")
    Path("bad.toml").write_text('kind = "external_text"\n[fields]\ntext = "}"\n')
    Path("ok.toml").write_text(
        'kind = "external_text"\n[fields]\nexternalId = "{a}"\ntext = "{b}"\nsignalType = "s"\n'
    )
    Path("streams.toml").write_text(
        'kind = "raw_signal"\n[streams.x.fields]\nexternalId = "{a}"\nsource = {type = "t"}\n'
    )
    result = run_cli(["push", *args])  # no key, no API: the check comes first
    assert result.code == 2, result.err
    assert message in result.err
    assert not Path("zsync.db").exists()


# -- preview -----------------------------------------------------------------------------------


def test_preview_shows_bodies_and_problems_without_key_or_ledger() -> None:
    Path("s.csv").write_text("id,comment,when\n1,hello,2024-05-01\n2,,soon\n3,bye,\n")
    Path("s.toml").write_text(
        'kind = "external_text"\n[fields]\nexternalId = "s:{id}"\n'
        'text = "{comment}"\nsignalType = "feedback_record"\n'
        'occurredAt = { field = "when", transforms = ["iso8601"] }\n'
    )
    result = run_cli(["preview", "--mapping", "s.toml", "--input", "s.csv", "-n", "5"])
    assert result.code == 1
    out = result.out
    assert out.startswith("# s.csv:2 -> s:1\n{\n")
    assert '"occurredAt": "2024-05-01T00:00:00Z"' in out
    assert (
        "invalid: s.csv:3: field 'text' (mapping s.toml:4): template '{comment}' gives an "
        "empty value for this record; text is required"
    ) in out
    assert "# s.csv:4 -> s:3" in out  # an empty optional date is simply not sent
    assert "3 records: 2 ok, 1 invalid" in result.err
    assert not Path("zsync.db").exists()

    first = run_cli(["preview", "-m", "s.toml", "-i", "s.csv", "-n", "1"])
    assert first.code == 0 and first.out.count("# s.csv:") == 1


def test_preview_of_every_example() -> None:
    for data, mapping, extra in [
        ("surveys.csv", "surveys.toml", []),
        ("tickets.jsonl", "tickets.toml", []),
        ("singer/tickets.singer.jsonl", "singer/zendesk.toml", ["--format", "singer"]),
    ]:
        args = ["preview", "-i", str(EXAMPLES / data), "-m", str(EXAMPLES / mapping), *extra]
        result = run_cli([*args, "-n", "20"])
        assert result.code == 0, (data, result.out, result.err)
        assert "invalid" not in result.out


def test_ctrl_c_at_the_terminal_stops_a_source_program_run_with_exit_130(
    emulator: Any, api_env: dict[str, str]
) -> None:
    # A terminal's Ctrl-C reaches the whole foreground process group: zsync and the program.
    cmd = program(
        "endless.py",
        """\
        import itertools, json, time
        for i in itertools.count():
            rec = {"kind": "external_text", "externalId": f"tty-{i}",
                   "signalType": "note", "text": f"n{i}"}
            print(json.dumps(rec), flush=True)
            time.sleep(0.05)  # a full batch of 500 would take 25 s
        """,
    )
    args = [*ZSYNC, "push", "--source-cmd", cmd, "--no-poll"]
    proc = subprocess.Popen(
        args,
        env={**os.environ, **api_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, as a shell's foreground job has
    )
    deadline = time.monotonic() + 30
    while len(creates(emulator)) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    stopped = time.monotonic()
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - stopped < 10, "it waited for the program instead of stopping"
    assert "Traceback" not in err and "source command" not in err, err
    sent = creates(emulator)
    assert len(sent) >= 5 and set(sent.values()) == {1}
    assert set(statuses()) >= set(sent)  # everything the server took is in the ledger


@pytest.mark.parametrize("via", ["source-cmd", "stdin"])
def test_records_are_sent_while_a_quiet_source_is_still_running(
    emulator: Any, api_env: dict[str, str], via: str
) -> None:
    """A tap that emits a few records and then waits (on its API, on a cursor) must not hold
    them back until it has emitted a full batch or ended."""
    lines = [{"type": "SCHEMA", "stream": "notes", "schema": {"properties": {}}}]
    lines += [{"type": "RECORD", "stream": "notes", "record": record(i)} for i in (1, 2)]
    emit = f"for x in {lines!r}: print(json.dumps(x), flush=True)"
    cmd = program(
        "tap.py",
        f"""\
        import json, os, time
        {emit}
        while not os.path.exists("go"):
            time.sleep(0.02)
        print(json.dumps({{"type": "RECORD", "stream": "notes", "record": {record(3)!r}}}))
        """,
    )
    args = [*ZSYNC, "push", "--format", "singer", "--no-poll"]
    if via == "source-cmd":
        args += ["--source-cmd", cmd]
        tap = None
    else:
        args += ["--input", "-"]
        tap = subprocess.Popen(cmd.split(), stdout=subprocess.PIPE)
    proc = subprocess.Popen(
        args,
        env={**os.environ, **api_env},
        stdin=tap.stdout if tap else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if tap is not None:
        assert tap.stdout is not None
        tap.stdout.close()  # zsync holds the read end now
    try:
        deadline = time.monotonic() + 20
        while set(creates(emulator)) != {"src-1", "src-2"} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert set(creates(emulator)) == {"src-1", "src-2"}, "held back while the tap waited"
        assert proc.poll() is None  # the tap has not ended, and neither has the run
    finally:
        Path("go").touch()
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    if tap is not None:
        assert tap.wait(timeout=10) == 0
    assert creates(emulator) == {"src-1": 1, "src-2": 1, "src-3": 1}
    assert statuses() == {"src-1": "submitted", "src-2": "submitted", "src-3": "submitted"}
