"""The zsync command line: options -> one library call -> render.

This is the only module (with the emulator's own command) that imports click, prints or
exits. Every exception becomes one line and a documented exit code here; ``--debug``
shows the traceback as well.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from zsync import __version__, config, history, operations, report
from zsync.engine import Event, RunOptions, RunResult
from zsync.errors import ExitCode, UsageError, ZsyncError
from zsync.inputs import FORMATS
from zsync.inputs import preview as preview_records
from zsync.ledger import STATUSES
from zsync.mapping import Invalid
from zsync.plan import PlanOptions

F = TypeVar("F", bound=Callable[..., Any])

# Per-item problems shown on stderr before the rest are only counted (cron mail stays short).
_MAX_ITEM_LINES = 20


class State:
    def __init__(self) -> None:
        self.debug = False
        self.verbose = 0
        self.quiet = False
        self.log_format = "text"
        self.progress_interval = 30.0
        self.secret: str | None = None


def _decorate(fn: F, options: list[Callable[[Any], Any]]) -> F:
    for option in reversed(options):
        fn = option(fn)
    return fn


def common_options(fn: F) -> F:
    options = [
        click.option(
            "--ledger",
            type=click.Path(dir_okay=False, path_type=Path),
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
    ]
    return _decorate(fn, options)


def run_options(fn: F) -> F:
    options = [
        click.option(
            "--concurrency",
            type=click.IntRange(1, 64),
            default=8,
            show_default=True,
            help="Requests in flight at once.",
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


def _settings(
    state: State,
    ledger: Path | None,
    env_file: Path | None,
    api_base: str | None,
    allow_insecure_http: bool,
) -> config.Settings:
    settings = config.load(
        api_base=api_base,
        ledger=ledger,
        env_file=env_file,
        allow_insecure_http=allow_insecure_http,
    )
    state.secret = settings.api_key
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zsync")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("-v", "--verbose", count=True, help="Show each item's outcome.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and the summary.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object per line on stderr.",
)
@click.option(
    "--progress-interval",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds between progress lines when stderr is not a terminal.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    debug: bool,
    verbose: int,
    quiet: bool,
    log_format: str,
    progress_interval: float,
) -> None:
    """Sync records into Zentrik Signals, exactly once, with a local SQLite ledger.

    \b
    Example:
      export ZENTRIK_API_KEY=...
      zsync push --input examples/signals.json
      zsync status
    """
    state = ctx.ensure_object(State)
    state.debug, state.verbose, state.quiet = debug, verbose, quiet
    state.log_format, state.progress_interval = log_format, progress_interval


_ATTENTION = frozenset(
    {
        "invalid",
        "duplicate",
        "rejected",
        "conflict",
        "error",
        "failed",
        "prune-refused",
        "warning",
        "api-down",
    }
)


class Console:
    """Renders engine events: item lines, progress, logs. Knows terminal from cron."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.lock = threading.Lock()
        self.shown = 0
        self.hidden = 0
        self.tty = sys.stderr.isatty()
        self._bar_visible = False
        self._last_progress_line = 0.0

    def _err(self, line: str) -> None:
        if self._bar_visible:
            click.echo("\r\033[K", nl=False, err=True)
            self._bar_visible = False
        click.echo(config.redact(line, self.state.secret), err=True)

    def _log(self, event: Event, level: str) -> None:
        record = report.log_record(
            event.kind,
            config.redact(event.message, self.state.secret),
            run_id=event.data.get("run_id"),
            external_id=event.external_id,
            http_status=event.data.get("status"),
            attempt=event.data.get("attempts"),
            level=level,
        )
        click.echo(json.dumps(record, ensure_ascii=False), err=True)

    def emit(self, event: Event) -> None:
        state = self.state
        if event.kind == "would-send":
            click.echo(event.message)
            return
        if event.kind in ("would-update", "would-delete"):
            action = {"action": event.kind.removeprefix("would-"), "externalId": event.external_id}
            if event.kind == "would-update":
                action["fields"] = json.loads(event.message)
            else:
                action["publicId"] = event.message
            click.echo(json.dumps(action, sort_keys=True))
            return
        if event.kind == "progress":
            self._progress(event.data)
            return
        with self.lock:
            if event.kind in _ATTENTION:
                if state.quiet:
                    return
                if state.log_format == "json":
                    level = "warning" if event.kind in ("changed", "warning") else "error"
                    self._log(event, level)
                    return
                if self.shown >= _MAX_ITEM_LINES and state.verbose == 0:
                    self.hidden += 1
                    return
                self.shown += 1
                who = (
                    f"{event.external_id}: "
                    if event.external_id and event.kind != "invalid"
                    else ""
                )
                self._err(f"{event.kind}: {who}{event.message}")
            elif state.verbose and event.kind != "polling":
                if event.kind == "retry" and state.verbose < 2:
                    return
                if state.log_format == "json":
                    self._log(event, "debug" if event.kind == "retry" else "info")
                    return
                what = " ".join(p for p in (event.external_id, event.message) if p)
                self._err(f"{event.kind}: {what}")

    def _progress(self, data: dict[str, Any]) -> None:
        state = self.state
        if state.quiet:
            return
        line = report.progress_line(data)
        with self.lock:
            if self.tty and state.log_format == "text":
                click.echo(f"\r\033[K{line}", nl=False, err=True)
                self._bar_visible = True
                return
            elapsed = float(data.get("elapsed") or 0.0)
            if elapsed - self._last_progress_line < state.progress_interval:
                return
            self._last_progress_line = elapsed
            if state.log_format == "json":
                self._log(Event("progress", message=line, data={}), "info")
            else:
                click.echo(f"progress: {line}", err=True)

    def close(self) -> None:
        with self.lock:
            if self._bar_visible:
                click.echo("\r\033[K", nl=False, err=True)
                self._bar_visible = False
            if self.hidden:
                click.echo(f"... and {self.hidden} more item problems (see zsync errors)", err=True)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
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


def _render(state: State, result: RunResult, as_json: bool, console: Console) -> None:
    console.close()
    if not state.quiet:
        for line in report.dropped_warnings(result):
            click.echo(line, err=True)
    if result.fatal is not None:
        click.echo(f"zsync: error: {config.redact(str(result.fatal), state.secret)}", err=True)
    if as_json:
        click.echo(json.dumps(report.summary_json(result), indent=2, sort_keys=True))
    else:
        click.echo(report.summary_text(result), err=result.command == "push" and _dry(result))
    sys.exit(int(result.exit_code))


def _dry(result: RunResult) -> bool:
    return result.run_id is None


def _run_opts(
    metrics_file: Path | None,
    concurrency: int,
    rate: float | None,
    poll_seconds: float,
    poll_interval: float,
    max_duration: float | None,
    **extra: Any,
) -> RunOptions:
    return RunOptions(
        concurrency=concurrency,
        rate=rate,
        poll_seconds=poll_seconds,
        poll_interval=poll_interval,
        max_duration=max_duration,
        **extra,
    )


def input_options(fn: F) -> F:
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
    ]
    return _decorate(fn, options)


def source_options(fn: F) -> F:
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


@cli.command()
@input_options
@source_options
@click.option(
    "--derive-external-id",
    is_flag=True,
    help="Give records without externalId one derived from their content.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print each body that would be sent as a JSON line; send and write nothing.",
)
@click.option("--skip-readyz", is_flag=True, help="Skip the GET /readyz preflight.")
@click.option("--no-poll", is_flag=True, help="Do not wait for processed/failed.")
@click.option(
    "--delay-ms",
    type=click.IntRange(min=0),
    default=0,
    help="Minimum gap between requests in ms (the template's pacing).",
)
@click.option("--limit", type=click.IntRange(min=0), help="Send at most N records this run.")
@click.option(
    "--on-change",
    type=click.Choice(["update", "skip", "resend"]),
    default="update",
    show_default=True,
    help="A known record whose content changed: PATCH + re-process it, leave it, "
    "or create a new signal.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="The input is the complete dataset: delete signals whose records are gone.",
)
@click.option(
    "--prune-max",
    type=click.FloatRange(0, 1),
    default=0.10,
    show_default=True,
    help="Refuse to prune more than this share of the ledger's signals.",
)
@click.option("--force", is_flag=True, help="Prune even beyond --prune-max.")
@run_options
@common_options
@click.pass_obj
def push(
    state: State,
    /,
    inputs: tuple[str, ...],
    fmt: str | None,
    mapping: str | None,
    delimiter: str | None,
    source_cmd: str | None,
    state_file: str | None,
    ignore_bookmark: bool,
    derive_external_id: bool,
    dry_run: bool,
    skip_readyz: bool,
    no_poll: bool,
    delay_ms: int,
    limit: int | None,
    on_change: str,
    prune: bool,
    prune_max: float,
    force: bool,
    as_json: bool,
    ledger: Path | None,
    env_file: Path | None,
    api_base: str | None,
    allow_insecure_http: bool,
    **run: Any,
) -> None:
    """Send new and unfinished records; skip what the ledger already has.

    \b
    Examples:
      zsync push --input tickets.jsonl --no-poll
      zsync push --input surveys.csv --mapping surveys.toml
      zsync push --source-cmd "python fetch.py" --mapping tickets.toml
    """
    settings = _settings(state, ledger, env_file, api_base, allow_insecure_http)
    console = Console(state)
    ctx = operations.Context(settings, emit=console.emit, metrics_file=run.get("metrics_file"))
    plan = PlanOptions(
        inputs=inputs,
        fmt=fmt,
        mapping=mapping,
        delimiter=delimiter,
        source_cmd=source_cmd,
        state_file=state_file,
        ignore_bookmark=ignore_bookmark,
        derive_external_id=derive_external_id,
        limit=limit,
        dry_run=dry_run,
        on_change=on_change,
        prune=prune,
        prune_max=prune_max,
        force=force,
    )
    options = _run_opts(poll=not no_poll, delay_ms=delay_ms, **run)
    with _stop_on_signals(ctx.stop_event):
        result = operations.push(
            ctx, plan, options, skip_readyz=skip_readyz, count_total=console.tty and not dry_run
        )
    _render(state, result, as_json, console)


@cli.command()
@input_options
@click.option(
    "-n",
    "count",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="How many records to show.",
)
def preview(
    inputs: tuple[str, ...],
    fmt: str | None,
    mapping: str | None,
    delimiter: str | None,
    count: int,
) -> None:
    """Show the bodies the first records become, and every problem; send nothing.

    Needs no API key and no ledger. Exit 1 if any shown record is invalid.

    \b
    Example:
      zsync preview --mapping examples/surveys.toml --input examples/surveys.csv -n 3
    """
    plan = PlanOptions(inputs=inputs, fmt=fmt, mapping=mapping, delimiter=delimiter)
    shown = preview_records(plan, count)
    for line in shown.warnings:
        click.echo(f"warning: {line}", err=True)
    bad = 0
    for item in shown.items:
        if isinstance(item, Invalid):
            bad += 1
            click.echo(f"invalid: {item.message}")
            continue
        click.echo(f"# {item.origin} -> {item.external_id}")
        if item.dropped:
            click.echo(f"# not sent: {', '.join(item.dropped)}")
        click.echo(json.dumps(item.body, indent=2, ensure_ascii=False))
    n = len(shown.items)
    click.echo(f"{n} record{'s' if n != 1 else ''}: {n - bad} ok, {bad} invalid", err=True)
    sys.exit(int(ExitCode.ITEMS_FAILED) if bad else 0)


@cli.command()
@run_options
@common_options
@click.pass_obj
def reconcile(
    state: State,
    /,
    as_json: bool,
    ledger: Path | None,
    env_file: Path | None,
    api_base: str | None,
    allow_insecure_http: bool,
    **run: Any,
) -> None:
    """Poll every submitted item, resend pending/error ones, recheck conflicts.

    \b
    Example:
      zsync reconcile --poll-seconds 600
    """
    settings = _settings(state, ledger, env_file, api_base, allow_insecure_http)
    console = Console(state)
    ctx = operations.Context(settings, emit=console.emit, metrics_file=run.get("metrics_file"))
    with _stop_on_signals(ctx.stop_event):
        result = operations.reconcile(ctx, _run_opts(**run))
    _render(state, result, as_json, console)


@cli.command("retry-failed")
@click.option("--include-rejected", is_flag=True, help="Also resend items the API rejected.")
@click.option("--preview", is_flag=True, help="List what would be retried; change nothing.")
@click.option("--no-poll", is_flag=True, help="Do not wait for processed/failed.")
@run_options
@common_options
@click.pass_obj
def retry_failed(
    state: State,
    /,
    include_rejected: bool,
    preview: bool,
    no_poll: bool,
    as_json: bool,
    ledger: Path | None,
    env_file: Path | None,
    api_base: str | None,
    allow_insecure_http: bool,
    **run: Any,
) -> None:
    """Re-queue signals whose processing failed and resend items that errored.

    \b
    Example:
      zsync retry-failed --preview
    """
    settings = _settings(state, ledger, env_file, api_base, allow_insecure_http)
    if preview:
        items = operations.retry_candidates(settings, include_rejected).items
        if as_json:
            click.echo(json.dumps({"would_retry": items}, indent=2))
        else:
            for item in items:
                action = "re-queue" if item["status"] == "failed" else "resend"
                click.echo(
                    f"{action} {item['external_id']} ({item['status']}): {item.get('error') or ''}"
                )
            click.echo(f"{len(items)} item(s) would be retried")
        return
    console = Console(state)
    ctx = operations.Context(settings, emit=console.emit, metrics_file=run.get("metrics_file"))
    with _stop_on_signals(ctx.stop_event):
        result = operations.retry_failed(
            ctx, _run_opts(poll=not no_poll, **run), include_rejected=include_rejected
        )
    _render(state, result, as_json, console)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@common_options
@click.pass_obj
def status(state: State, /, as_json: bool, **common: Any) -> None:
    """Counts per status, recent runs, the lock holder and items that need attention.

    \b
    Example:
      zsync status --json
    """
    info = operations.status(_settings(state, **common))
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
    else:
        click.echo(report.status_text(info))


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@common_options
@click.pass_obj
def runs(state: State, /, limit: int, as_json: bool, **common: Any) -> None:
    """History of runs: when, command, counts, exit code, duration.

    \b
    Example:
      zsync runs --limit 5
    """
    rows = history.runs(_settings(state, **common), limit)
    click.echo(json.dumps(rows, indent=2, sort_keys=True) if as_json else report.runs_text(rows))


@cli.command()
@click.argument("external_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@common_options
@click.pass_obj
def show(state: State, /, external_id: str, as_json: bool, **common: Any) -> None:
    """One item as the ledger knows it, with its attempt timeline.

    \b
    Example:
      zsync show helpdesk:48121
    """
    item = history.show(_settings(state, **common), external_id)
    if item is None:
        raise UsageError(f"no item with externalId {external_id!r} in the ledger")
    click.echo(json.dumps(item, indent=2, sort_keys=True) if as_json else report.show_text(item))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@common_options
@click.pass_obj
def errors(state: State, /, as_json: bool, **common: Any) -> None:
    """Failures grouped by cause, with counts, first/last seen and sample ids.

    \b
    Example:
      zsync errors
    """
    causes = history.errors(_settings(state, **common))
    if as_json:
        click.echo(json.dumps([vars(c) for c in causes], indent=2, sort_keys=True))
    else:
        click.echo(report.errors_text(causes))


@cli.command()
@click.option(
    "--for",
    "needs",
    type=click.Choice(sorted(history.SCOPES_FOR)),
    default="push",
    show_default=True,
    help="The work whose scopes to check.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@common_options
@click.pass_obj
def check(state: State, /, needs: str, as_json: bool, **common: Any) -> None:
    """Preflight without side effects: readyz, the key, its scopes, the ledger binding.

    \b
    Example:
      zsync check --for "push --prune"
    """
    settings = _settings(state, **common)
    from zsync.client import ZentrikClient

    with ZentrikClient(settings.api_base, settings.require_key()) as client:
        result = history.check(settings, client, needs)
    if as_json:
        click.echo(
            json.dumps({"ok": result.ok, "checks": [vars(c) for c in result.checks]}, indent=2)
        )
    else:
        click.echo(report.check_text(result))
    if result.error is not None:
        sys.exit(int(result.error.exit_code))
    if not result.ok:
        sys.exit(int(ExitCode.LEDGER))


@cli.command()
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(list(STATUSES)),
    help="Only items in this status (repeatable).",
)
@common_options
@click.pass_obj
def export(state: State, /, fmt: str, statuses: tuple[str, ...], **common: Any) -> None:
    """Ledger rows as JSONL or CSV on stdout (no payloads, no secrets).

    \b
    Example:
      zsync export --format csv --status rejected > rejected.csv
    """
    for chunk in history.export(_settings(state, **common), fmt, statuses):
        click.echo(chunk, nl=False)


def _add_emulator() -> None:
    from zsync.emulator.command import emulator_command

    cli.add_command(emulator_command)


_add_emulator()


def main(argv: list[str] | None = None) -> None:
    """Entry point: one place turns every exception into a line and an exit code."""
    state = State()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="zsync", standalone_mode=False, obj=state)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("zsync: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.USAGE)
    except ZsyncError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"zsync: error: {config.redact(str(exc), state.secret)}", err=True)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        click.echo("zsync: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except Exception as exc:  # a bug: say so in one line, never leak a traceback unasked
        if debug:
            traceback.print_exc()
        text = config.redact(f"{type(exc).__name__}: {exc}", state.secret)
        click.echo(f"zsync: internal error: {text} (rerun with --debug for details)", err=True)
        sys.exit(ExitCode.INTERNAL)
