"""Inputs that are not regular files, and line ends that are not LF (issue 23).

Before: ``cat f.jsonl | zsync push -i /dev/stdin`` sent 1,507 of 2,000 records (the bytes
read to tell the format, read ahead or mapped were gone for the reader after them);
``zsync push -i <(cmd)`` on a small input sent nothing, exit 0; a FIFO with no writer kept
zsync in ``open()`` through a SIGTERM; a JSONL file whose lines end in a lone CR was one
"Extra data" invalid.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY, run_cli
from tests.zsync_cmd import ZSYNC
from zsync.emulator.server import RunningEmulator
from zsync.model import Problem, Record
from zsync.read import InputSpec, read
from zsync.read.jsonl import pipe_lines
from zsync.read.raw import Unsure, jsonl_records

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _records(n: int, prefix: str = "s") -> list[bytes]:
    # About 150 bytes each: 2,000 of them are far more than one 64 KiB read.
    return [
        json.dumps(
            {
                "kind": "external_text",
                "externalId": f"{prefix}-{i:05d}",
                "signalType": "transcript",
                "text": f"call {i}: " + "the customer said " * 5,
            }
        ).encode()
        for i in range(n)
    ]


def _env(emu: RunningEmulator, ledger: Path) -> dict[str, str]:
    return {
        "ZENTRIK_API_BASE": emu.url,
        "ZENTRIK_API_KEY": TEST_KEY,
        "ZSYNC_LEDGER": str(ledger),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }


def _created(emu: RunningEmulator) -> dict[str, int]:
    return dict(emu.truth()["creates_by_external_id"])


def _push(
    args: list[str], env: dict[str, str], **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ZSYNC, "push", *args, "--no-poll"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,  # type: ignore[call-overload]
    )


def test_a_pipe_read_as_dev_stdin_sends_every_record(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    source = tmp_path / "f.jsonl"
    source.write_bytes(b"\n".join(_records(2000)) + b"\n")
    with subprocess.Popen(["cat", str(source)], stdout=subprocess.PIPE) as cat:
        done = _push(["-i", "/dev/stdin"], _env(emulator, tmp_path / "z.db"), stdin=cat.stdout)
    assert done.returncode == 0, done.stderr
    assert "invalid" not in done.stderr
    created = _created(emulator)
    assert len(created) == 2000 and set(created.values()) == {1}


@pytest.fixture
def pipe_fd() -> Iterator[tuple[int, int]]:
    """A pipe as ``<(cmd)`` gives one: the child reads /dev/fd/N."""
    read_end, write_end = os.pipe()
    yield read_end, write_end
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):
            os.close(fd)


def _feed(fd: int, data: bytes) -> threading.Thread:
    def write() -> None:
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_process_substitution_is_read_whole_on_a_new_and_on_a_known_ledger(
    tmp_path: Path, emulator: RunningEmulator, pipe_fd: tuple[int, int]
) -> None:
    """A small input (under one read) through /dev/fd/N: every record on a new ledger; on a
    ledger that knows them, the new ones (the skip path maps files: a pipe it must not)."""
    env = _env(emulator, tmp_path / "z.db")
    first = _records(100)
    known = tmp_path / "known.jsonl"
    known.write_bytes(b"\n".join(first[:60]) + b"\n")
    assert _push(["-i", str(known)], env).returncode == 0
    read_end, write_end = pipe_fd
    feeder = _feed(write_end, b"\n".join(first) + b"\n")
    done = _push(["-i", f"/dev/fd/{read_end}"], env, pass_fds=(read_end,))
    feeder.join(timeout=10)
    assert done.returncode == 0, done.stderr
    assert "40 created" in done.stdout and "60 unchanged" in done.stdout, done.stdout
    assert len(_created(emulator)) == 100


def _run_started(ledger: Path) -> bool:
    try:
        db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute("SELECT count(*) FROM lease").fetchone()[0] > 0
        finally:
            db.close()
    except sqlite3.Error:
        return False


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_a_fifo_without_a_writer_yields_to_one_signal(
    tmp_path: Path, emulator: RunningEmulator, how: signal.Signals
) -> None:
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    ledger = tmp_path / "z.db"
    proc = subprocess.Popen(
        [*ZSYNC, "push", "-i", str(fifo), "--no-poll"],
        env=_env(emulator, ledger),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The run is under way (it holds the ledger) and waits for a writer. Before, it
        # never got this far: it waited in open() while checking the input.
        deadline = time.monotonic() + 30
        while not _run_started(ledger) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(how)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in out + err


def test_a_fifo_is_read_once_its_writer_comes(tmp_path: Path, emulator: RunningEmulator) -> None:
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [*ZSYNC, "push", "-i", str(fifo), "--no-poll"],
        env=_env(emulator, tmp_path / "z.db"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # A writer that does not block in open(): a zsync that never opens its end fails
        # the test instead of hanging it.
        deadline = time.monotonic() + 60
        while True:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as exc:  # ENXIO: no reader yet
                assert exc.errno == errno.ENXIO, exc
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "zsync never opened the FIFO"
                time.sleep(0.05)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb") as writer:
            writer.write(b"\n".join(_records(500)) + b"\n")
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert len(_created(emulator)) == 500


# -- line ends -------------------------------------------------------------------------------


def test_cr_only_line_ends_are_line_ends(tmp_path: Path, emulator: RunningEmulator) -> None:
    source = tmp_path / "mac.jsonl"
    source.write_bytes(b"\r".join(_records(300)) + b"\r")
    env = _env(emulator, tmp_path / "z.db")
    done = _push(["-i", str(source)], env)
    assert done.returncode == 0, done.stderr
    assert "invalid" not in done.stderr
    assert len(_created(emulator)) == 300
    again = _push(["-i", str(source)], env)
    assert again.returncode == 0 and "300 unchanged" in again.stdout, again.stdout


def test_line_numbers_count_cr_lf_and_crlf_alike(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"a": 1}\r\n{"a": 2}\r{"a": 3}\n{"a": \r{"a": 5}\r\n')
    items = list(read(InputSpec(inputs=(str(path),))))
    assert [i.origin.split(":")[1] for i in items if isinstance(i, Record)] == ["1", "2", "3", "5"]
    bad = [i for i in items if isinstance(i, Problem)]
    assert len(bad) == 1 and bad[0].origin.startswith(f"{path}:4")


def test_a_cr_split_from_its_lf_by_a_pipe_is_one_line_end(pipe_fd: tuple[int, int]) -> None:
    """Through a pipe the CR of a CRLF may arrive in one read and its LF in the next."""
    read_end, write_end = pipe_fd
    lines = pipe_lines(read_end, "p", idle=0.01)
    got: list[tuple[str, bytes]] = []
    for piece in (b'{"a": 1}\r', b'\n{"a": 2}\r', b'{"a": 3}\r', b"\n"):
        os.write(write_end, piece)
        # Until the reader says the pipe is quiet: it has read all of this piece.
        while (line := next(lines)) is not None:
            got.append(line)
    os.close(write_end)
    got += [line for line in lines if line is not None]
    assert [origin for origin, _raw in got] == ["p:1", "p:2", "p:3"]
    assert [json.loads(raw) for _origin, raw in got] == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_a_csv_with_cr_only_line_ends_is_read_row_by_row(tmp_path: Path) -> None:
    source = tmp_path / "mac.csv"
    source.write_bytes((EXAMPLES / "surveys.csv").read_bytes().replace(b"\n", b"\r"))
    result = run_cli(
        ["preview", "--mapping", str(EXAMPLES / "surveys.toml"), "-i", str(source)],
    )
    assert result.code == 0, result.err
    assert "3 ok, 0 invalid" in result.out + result.err


def test_the_skip_path_leaves_lone_crs_to_the_jsonl_reader(tmp_path: Path) -> None:
    lines = _records(3000)
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes(b"\r\n".join(lines) + b"\r\n")
    assert [r.origin for r in jsonl_records(str(crlf))][-1] == f"{crlf}:3000"
    mixed = tmp_path / "mixed.jsonl"  # a lone CR far down an LF file
    mixed.write_bytes(b"\n".join(lines[:2500]) + b"\r" + b"\n".join(lines[2500:]) + b"\n")
    with pytest.raises(Unsure):
        list(jsonl_records(str(mixed)))
    records = [i for i in read(InputSpec(inputs=(str(mixed),))) if isinstance(i, Record)]
    assert len(records) == 3000 and records[2500].origin == f"{mixed}:2501"
