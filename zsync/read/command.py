"""Source programs (``--source-cmd``): run without a shell, read their stdout as it comes.

The program runs in its own process group, so a terminal's Ctrl-C reaches zsync alone; it
gets the saved bookmark in ``ZSYNC_BOOKMARK`` and, for Singer taps, a state file path.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator

from zsync import config
from zsync.errors import UsageError, ZsyncError
from zsync.model import IDLE, Idle, Problem, Record
from zsync.read.files import DEFAULT_MAX_RECORD_BYTES
from zsync.read.jsonl import parse_jsonl_line, pipe_lines

BOOKMARK_ENV = "ZSYNC_BOOKMARK"
STATE_FILE_ENV = "ZSYNC_STATE_FILE"
# Seconds of quiet after which a reader says Idle (the planner then sends what it holds).
IDLE_SECONDS = 0.25
_INTERPRETER = re.compile(r"(python|pypy|node|nodejs|ruby|perl|php|bash|sh|zsh|deno|bun)[\d.]*")


class SourceFailed(ZsyncError):
    """The source program exited non-zero; what it emitted before was planned and recorded."""


def program_name(command: str) -> str:
    """What messages call the program: "fetch.py" for "python3 -u fetch.py --since x"."""
    try:
        argv = shlex.split(command)
    except ValueError:
        argv = command.split()
    if not argv:
        return ""
    if _INTERPRETER.fullmatch(os.path.basename(argv[0])):
        for arg in argv[1:]:
            if not arg.startswith("-"):
                return os.path.basename(arg)
    return os.path.basename(argv[0])


def check_command(command: str) -> list[str]:
    """The program's argv; UsageError (exit 2) when it cannot be split or found."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"--source-cmd: cannot split {command!r}: {exc}") from None
    if not argv:
        raise UsageError("--source-cmd is empty")
    program = argv[0]
    found = shutil.which(program)
    if found is None:
        what = "is not an executable file" if os.sep in program else "is not found on PATH"
        raise UsageError(f"--source-cmd: {program} {what}")
    return argv


def pipe_records(
    fd: int,
    name: str,
    *,
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    warn: Callable[[str], None] = lambda _m: None,
) -> Iterator[Record | Problem | Idle]:
    """The JSONL lines of a pipe as they arrive, parsed; an IDLE after each quiet spell."""
    for got in pipe_lines(fd, name, IDLE_SECONDS, max_bytes):
        if got is None:
            yield IDLE
        elif (item := parse_jsonl_line(*got, warn=warn)) is not None:
            yield item


def run_command(
    command: str,
    *,
    bookmark: str | None,
    state_file: str | None,
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    warn: Callable[[str], None] = lambda _m: None,
) -> Iterator[Record | Problem | Idle]:
    """The lines the program writes, parsed; SourceFailed after the last one if it fails."""
    argv = check_command(command)
    env = config.child_environment(
        {
            BOOKMARK_ENV: bookmark,
            STATE_FILE_ENV: os.path.abspath(state_file) if state_file else None,
        }
    )
    name = program_name(command)
    try:
        # stdin is not shared (zsync's may be a terminal or a pipe meant for it); stderr
        # passes through so the program's own messages reach the user or the cron mail.
        # Its own process group keeps a terminal's Ctrl-C for zsync alone: zsync stops reading,
        # records what it has, then ends the program below, instead of the program dying
        # first (with its own traceback) and the run reporting a failed source.
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env, process_group=0
        )
    except OSError as exc:
        raise UsageError(f"--source-cmd: cannot start {argv[0]}: {exc.strerror or exc}") from None
    assert proc.stdout is not None
    try:
        yield from pipe_records(proc.stdout.fileno(), name, max_bytes=max_bytes, warn=warn)
        code = proc.wait()
    finally:
        if proc.poll() is None:  # stopped early (Ctrl-C, a fatal error): end the program
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        raise SourceFailed(
            f"source command {name} {how}; the records it emitted before were recorded"
        )
