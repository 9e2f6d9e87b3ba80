"""The option stacks the commands share, and turning options into library arguments.

Also the two things every sending command does around its one library call: stop cleanly on
signals, and render the result (summary, exit code).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from zsync import config, operations, report
from zsync.console import Console, State
from zsync.errors import ExitCode
from zsync.model import CONCURRENCY_CEILING as CEILING
from zsync.model import RunOptions, RunResult
from zsync.read import DEFAULT_MAX_RECORD_BYTES, FORMATS, InputSpec

F = TypeVar("F", bound=Callable[..., Any])


def _decorate(fn: F, options: list[Callable[[Any], Any]]) -> F:
    for option in reversed(options):
        fn = option(fn)
    return fn


def common_options(fn: F) -> F:
    """--ledger, --env-file, --api-base, --allow-insecure-http and --new-ledger: the options of
    every command that opens a ledger or talks to the API (the names in :data:`COMMON`)."""
    options = [
        click.option(
            "--ledger",
            type=click.Path(path_type=Path),  # a directory is the ledger's error (exit 5)
            help="Ledger file (env ZSYNC_LEDGER; default ./zsync.db).",
        ),
        click.option(
            "--env-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="KEY=VALUE file for ZENTRIK_API_BASE/ZENTRIK_API_KEY; the environment wins.",
        ),
        click.option("--api-base", help="API base URL including /api (env ZENTRIK_API_BASE)."),
        click.option(
            "--allow-insecure-http",
            is_flag=True,
            help="Allow a plain http:// base that is not on this machine.",
        ),
        click.option(
            "--new-ledger",
            is_flag=True,
            help="If the ledger file is not a usable ledger (empty, not SQLite, damaged), "
            "keep it aside as FILE.broken-TIME and start a new one.",
        ),
    ]
    return _decorate(fn, options)


# click.ParamType takes type parameters in some releases and none (or a different number) in
# others that `click>=8.1` admits; subscripting it crashed at import under 8.3.1 and 8.4.0.
# Subclass it bare, through Any, so the same line works whichever click is installed.
_ParamType: Any = click.ParamType


class _Concurrency(_ParamType):  # type: ignore[misc]
    """``auto`` (None: the adaptive limiter) or a fixed number of requests in flight."""

    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text == "auto":
            return None
        try:
            number = int(text)
        except ValueError:
            number = 0
        if not 1 <= number <= CEILING:
            self.fail(f"{value!r} is not auto or a number from 1 to {CEILING}", param, ctx)
        return number


def run_options(fn: F) -> F:
    """The options of a run that sends: concurrency, rate, polling, time limit, --json and
    --metrics-file."""
    options = [
        click.option(
            "--concurrency",
            type=_Concurrency(),
            default="auto",
            show_default=True,
            help="Requests in flight: auto (learned from the server's latency and refusals, "
            f"at most {CEILING}) or a fixed number from 1 to {CEILING}.",
        ),
        click.option(
            "--rate",
            type=click.FloatRange(min=0, min_open=True),
            help="Cap on requests per second (creates and polls together).",
        ),
        click.option(
            "--poll-seconds",
            type=click.FloatRange(min=0),
            default=300.0,
            show_default=True,
            help="Total time to wait for processing to finish.",
        ),
        click.option(
            "--poll-interval",
            type=click.FloatRange(min=0.1),
            default=6.0,
            show_default=True,
            help="Longest gap between two polls of one signal.",
        ),
        click.option(
            "--max-duration",
            type=click.FloatRange(min=0, min_open=True),
            help="Stop starting new work after this many seconds (exit 75).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
        click.option(
            "--metrics-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Write Prometheus metrics here at the end (node_exporter textfile collector).",
        ),
    ]
    return _decorate(fn, options)


def input_options(fn: F) -> F:
    """The options that say what to read and how it becomes bodies: inputs, format, mapping,
    delimiter, record size, and the Singer defaults."""
    options = [
        click.option(
            "--input",
            "-i",
            "inputs",
            multiple=True,
            help="Input file (repeatable); - reads stdin.",
        ),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(list(FORMATS)),
            help="Input format (default: by extension, else sniffed; singer: Singer messages).",
        ),
        click.option(
            "--mapping",
            "-m",
            type=click.Path(dir_okay=False),
            help="Mapping file (TOML): which record field becomes which body field.",
        ),
        click.option(
            "--delimiter",
            help="CSV delimiter (default: detected); 'tab' for tabs.",
        ),
        click.option(
            "--max-record-bytes",
            type=click.IntRange(min=1),
            default=DEFAULT_MAX_RECORD_BYTES,
            show_default=True,
            help="Longest record (line, array element) read; a longer one is invalid, skipped.",
        ),
        click.option(
            "--signal-type",
            metavar="TYPE",
            help="Singer records without a mapping: their signalType (default: the stream name).",
        ),
        click.option(
            "--name-template",
            metavar="TEMPLATE",
            help='Singer records without a mapping: a template for their name, e.g. "{subject}".',
        ),
    ]
    return _decorate(fn, options)


def source_options(fn: F) -> F:
    """--source-cmd and the bookmark it is handed (--state-file, --ignore-bookmark)."""
    options = [
        click.option(
            "--source-cmd",
            metavar="COMMAND",
            help="Run COMMAND (no shell) and read its stdout (JSONL, or --format singer); "
            "it gets the saved bookmark in ZSYNC_BOOKMARK.",
        ),
        click.option(
            "--state-file",
            type=click.Path(dir_okay=False),
            help="Keep this file equal to the saved bookmark, for a Singer tap's --state.",
        ),
        click.option(
            "--ignore-bookmark",
            is_flag=True,
            help="Start the source from scratch (a new bookmark is still saved).",
        ),
    ]
    return _decorate(fn, options)


def settings_from(
    state: State,
    ledger: Path | None,
    env_file: Path | None,
    api_base: str | None,
    allow_insecure_http: bool,
    new_ledger: bool = False,
) -> config.Settings:
    """The command's settings (:func:`zsync.config.load`); remembers the key for redaction and
    shows each settings warning, even under -q."""
    settings = config.load(
        api_base=api_base,
        ledger=ledger,
        env_file=env_file,
        allow_insecure_http=allow_insecure_http,
        new_ledger=new_ledger,
    )
    state.secret = settings.api_key
    for line in settings.warnings:  # a problem even under -q: a person should fix it
        click.echo(f"warning: {line}", err=True)
    return settings


COMMON = ("ledger", "env_file", "api_base", "allow_insecure_http", "new_ledger")


RUN = ("metrics_file", "concurrency", "rate", "poll_seconds", "poll_interval", "max_duration")


INPUT = ("inputs", "fmt", "delimiter", "source_cmd", "max_record_bytes")


def take(options: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Remove ``names`` from a command's keyword options and return them."""
    return {name: options.pop(name) for name in names}


def input_spec(
    inputs: tuple[str, ...],
    fmt: str | None,
    delimiter: str | None,
    source_cmd: str | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> InputSpec:
    """Standard input is handed to the readers here; nothing below reaches for sys.stdin."""
    stdin = sys.stdin.buffer if "-" in inputs else None
    return InputSpec(inputs, fmt, delimiter, source_cmd, stdin, max_record_bytes)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """First Ctrl-C/SIGTERM: finish in-flight requests, record them, exit 130. Second: now."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        click.echo("stopping: finishing requests in flight (Ctrl-C again to abort)", err=True)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def render_run(state: State, result: RunResult, as_json: bool, console: Console) -> None:
    """Show a sending command's result and exit with its code. The summary for a person goes
    to stdout (to stderr on a dry run, whose stdout holds the bodies), and is skipped under
    -q when the exit is 0 or 75; with --json it goes to stdout as JSON (one line after a dry
    run's bodies)."""
    console.close()
    if not state.quiet:
        for line in report.dropped_warnings(result):
            click.echo(line, err=True)
    if result.fatal is not None:
        click.echo(f"zsync: error: {config.redact(str(result.fatal), state.secret)}", err=True)
    code = result.exit_code
    dry = result.run_id is None and result.command == "push"
    if as_json and dry:
        # stdout holds the bodies, one JSON line each; the summary follows them there, as
        # the template prints it after its bodies, on one line so stdout stays JSON lines
        click.echo(json.dumps(report.summary_json(result), sort_keys=True))
    elif as_json:
        click.echo(json.dumps(report.summary_json(result), indent=2, sort_keys=True))
    elif not state.quiet or code not in (ExitCode.OK, ExitCode.PENDING):
        click.echo(report.summary_text(result), err=dry)
    sys.exit(int(code))


def send(
    state: State,
    settings: config.Settings,
    as_json: bool,
    run: RunOptions,
    call: Callable[[operations.Context, RunOptions], RunResult],
) -> None:
    """The frame of every sending command: a console, a context, signals, render, exit."""
    console = Console(state)
    ctx = operations.Context(settings, emit=console.emit)
    with stop_on_signals(ctx.stop_event):
        result = call(ctx, run)
    render_run(state, result, as_json, console)
