"""target-zentrik: zsync as a Singer target, for Meltano.

Reads Singer messages on stdin and sends their records exactly as
``zsync push --format singer --input -`` does: the same ledger, the same exactly-once rules,
the same exit codes. Each STATE value is written to stdout only after every record before
it is recorded in the ledger (its intent committed), so a state Meltano stores never runs
ahead of what zsync will send. Nothing else goes to stdout; every log line goes to stderr,
with the API key redacted.

Like cli.py this is an entry point: it parses options, reads the config file and the
environment, calls ``operations.push`` once, and renders what comes back.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, TextIO

import click

from zsync import __version__, config, operations
from zsync.errors import ExitCode, UsageError, ZsyncError
from zsync.model import Event, RunOptions, RunResult
from zsync.plan import PlanOptions
from zsync.read import InputSpec

NAME = "target-zentrik"
DESCRIPTION = (
    "Singer target for Zentrik Signals: sends each record exactly once, with a local SQLite "
    "ledger, and emits a STATE only after the records before it are recorded."
)
ENV_PREFIX = "TARGET_ZENTRIK_"
ON_CHANGE = ("update", "skip", "resend")
# Problem lines shown on stderr before the rest are only counted (Meltano's log stays short).
_MAX_ITEM_LINES = 20
_ATTENTION = frozenset(
    {"invalid", "duplicate", "rejected", "conflict", "error", "failed", "warning", "api-down"}
)


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # JSON Schema type: string, integer, number, boolean
    description: str
    default: Any = None
    sensitive: bool = False
    required: bool = False
    choices: tuple[str, ...] = ()


SETTINGS = (
    Setting(
        "api_base",
        "string",
        "Zentrik API base URL, including /api (else env ZENTRIK_API_BASE).",
        config.DEFAULT_API_BASE,
    ),
    Setting(
        "api_key",
        "string",
        "Zentrik API key (else env TARGET_ZENTRIK_API_KEY or ZENTRIK_API_KEY). "
        "Never printed, logged or stored in the ledger.",
        sensitive=True,
        required=True,
    ),
    Setting(
        "ledger",
        "string",
        "The zsync ledger file (SQLite); keep it between runs.",
        config.DEFAULT_LEDGER,
    ),
    Setting("mapping", "string", "Mapping file (TOML): how each stream's records become Signals."),
    Setting("concurrency", "integer", "Requests in flight at once (1-64).", 8),
    Setting("rate", "number", "Cap on requests per second (creates and polls together)."),
    Setting("poll", "boolean", "Wait until the signals sent are processed.", True),
    Setting("poll_seconds", "number", "Total time to wait for processing to finish.", 300.0),
    Setting(
        "on_change",
        "string",
        "A known record whose content changed: update (PATCH + re-process), skip, or resend.",
        "update",
        choices=ON_CHANGE,
    ),
    Setting(
        "max_duration",
        "number",
        "Stop starting new work after this many seconds (exit 75; the next run continues).",
    ),
    Setting(
        "derive_external_id",
        "boolean",
        "Give records without externalId one derived from their content.",
        False,
    ),
    Setting(
        "allow_insecure_http",
        "boolean",
        "Allow a plain http:// API base that is not on this machine.",
        False,
    ),
    Setting("metrics_file", "string", "Write Prometheus metrics here at the end of each run."),
)
_BY_NAME = {s.name: s for s in SETTINGS}


# -- config -------------------------------------------------------------------------------


def load_config(path: Path) -> dict[str, Any]:
    """The config file's settings, checked: one UsageError (exit 2) naming the first
    unknown key or wrong value. A null value counts as not set."""
    where = f"--config {path}"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot read ({type(exc).__name__})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: must be a JSON object of settings")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        setting = _BY_NAME.get(key)
        if setting is None:
            known = ", ".join(s.name for s in SETTINGS)
            raise UsageError(f"{where}: unknown setting {key!r} (known: {known})")
        if value is not None:
            values[key] = _checked(where, setting, value)
    return values


def _checked(where: str, setting: Setting, value: Any) -> Any:
    def bad(expected: str) -> UsageError:
        shown = "a secret value" if setting.sensitive else json.dumps(value)
        return UsageError(f"{where}: setting {setting.name!r} must be {expected}, not {shown}")

    kind = setting.kind
    if kind == "boolean":
        if type(value) is not bool:
            raise bad("true or false")
    elif kind == "integer":
        if type(value) is not int:
            raise bad("a whole number")
    elif kind == "number":
        if type(value) is str:
            # Meltano has no kind for a fractional number that survives its JSON config
            # file, so a setting without one, set from the environment, arrives as text.
            try:
                value = float(value)
            except ValueError:
                raise bad("a number") from None
        if type(value) not in (int, float) or not math.isfinite(value):
            raise bad("a number")
    elif type(value) is not str or not value.strip():
        raise bad("a non-empty string")
    if setting.choices and value not in setting.choices:
        raise bad("one of " + ", ".join(setting.choices))
    name = setting.name
    if name == "concurrency" and not 1 <= value <= 64:
        raise bad("from 1 to 64")
    if name in ("rate", "max_duration") and value <= 0:
        raise bad("a number above 0")
    if name == "poll_seconds" and value < 0:
        raise bad("a number of seconds, 0 or more")
    return value


def api_key(values: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    """The config file's key, else Meltano's TARGET_ZENTRIK_API_KEY, else ZENTRIK_API_KEY."""
    for candidate in (
        values.get("api_key"),
        environ.get(ENV_PREFIX + "API_KEY"),
        environ.get("ZENTRIK_API_KEY"),
    ):
        if candidate and candidate.strip():
            return str(candidate).strip()
    return None


def settings_from(values: Mapping[str, Any], environ: Mapping[str, str]) -> config.Settings:
    return config.load(
        api_base=values.get("api_base"),
        api_key=api_key(values, environ),
        ledger=values.get("ledger"),
        allow_insecure_http=bool(values.get("allow_insecure_http", False)),
        environ=environ,
    )


def plan_options(values: Mapping[str, Any], stdin: BinaryIO) -> PlanOptions:
    return PlanOptions(
        source=InputSpec(inputs=("-",), fmt="singer", stdin=stdin),
        mapping=values.get("mapping"),
        derive_external_id=bool(values.get("derive_external_id", False)),
        on_change=str(values.get("on_change", "update")),
    )


def run_options(values: Mapping[str, Any]) -> RunOptions:
    return RunOptions(
        concurrency=int(values.get("concurrency", 8)),
        rate=values.get("rate"),
        poll=bool(values.get("poll", True)),
        poll_seconds=float(values.get("poll_seconds", 300.0)),
        max_duration=values.get("max_duration"),
        metrics_file=Path(values["metrics_file"]) if values.get("metrics_file") else None,
    )


# -- about --------------------------------------------------------------------------------


def about_info() -> dict[str, Any]:
    """The Singer SDK's ``--about --format json`` shape; settings as a JSON Schema."""
    properties: dict[str, dict[str, Any]] = {}
    for s in SETTINGS:
        prop: dict[str, Any] = {"type": s.kind, "description": s.description}
        if s.default is not None:
            prop["default"] = s.default
        if s.choices:
            prop["enum"] = list(s.choices)
        if s.sensitive:
            # the SDK's annotations for a secret; Meltano shows such a setting as sensitive
            prop.update({"secret": True, "writeOnly": True})
        properties[s.name] = prop
    return {
        "name": NAME,
        "description": DESCRIPTION,
        "version": __version__,
        "sdk_version": None,  # not built on the Singer SDK
        "supported_python_versions": ["3.11", "3.12", "3.13"],
        "capabilities": ["about"],
        "settings": {
            "type": "object",
            "properties": properties,
            "required": [s.name for s in SETTINGS if s.required],
            "additionalProperties": False,
        },
    }


def about_text() -> str:
    info = about_info()
    lines = [
        f"Name: {info['name']}",
        f"Description: {info['description']}",
        f"Version: {info['version']}",
        "Capabilities:",
        *(f"  - {c}" for c in info["capabilities"]),
        "Settings:",
    ]
    for s in SETTINGS:
        lines += [
            f"  - Name: {s.name}",
            f"    Type: {s.kind}",
            f"    Required: {s.required}",
            f"    Sensitive: {s.sensitive}",
            f"    Description: {s.description}",
        ]
    return "\n".join(lines)


# -- running ------------------------------------------------------------------------------

# Outcomes in the order a person reads them: good news, then what needs attention.
_SUMMARY_ORDER = (
    "created",
    "replayed",
    "updated",
    "processed",
    "unchanged",
    "submitted",
    "changed",
    "deferred",
    "pending",
    "error",
    "conflict",
    "failed",
    "rejected",
    "invalid",
    "duplicate",
)


class Output:
    """STATE values to stdout, one JSON line each, flushed; every other line to stderr with
    the key redacted. Engine events arrive from several threads."""

    def __init__(self, states: TextIO, log: TextIO, stop: threading.Event) -> None:
        self.states = states
        self.log_stream = log
        self.stop = stop
        self.secret: str | None = None
        self.lock = threading.Lock()
        self.shown = 0
        self.hidden = 0
        self.states_written = 0
        self._states_open = True

    def log(self, line: str) -> None:
        with self.lock:
            self.log_stream.write(config.redact(line, self.secret) + "\n")
            self.log_stream.flush()

    def emit(self, event: Event) -> None:
        if event.kind == "bookmark":
            # Bookmark.save emits this only after the records before the STATE are committed
            # to the ledger, so Meltano never stores a state ahead of them.
            self.state(event.data["value"])
        elif event.kind in _ATTENTION:
            if self.shown >= _MAX_ITEM_LINES:
                self.hidden += 1
                return
            self.shown += 1
            who = f"{event.external_id}: " if event.external_id and event.kind != "invalid" else ""
            self.log(f"{event.kind}: {who}{event.message}")

    def state(self, value: Any) -> None:
        line = json.dumps(value, ensure_ascii=False)
        with self.lock:
            if not self._states_open:
                return
            try:
                self.states.write(line + "\n")
                self.states.flush()
                self.states_written += 1
                return
            except (OSError, ValueError):  # Meltano stopped reading: stop, record what is in flight
                self._states_open = False
        self.stop.set()
        self.log("stdout is closed: stopping (the ledger keeps the last saved state)")

    def summary(self, result: RunResult) -> None:
        if self.hidden:
            self.log(f"... and {self.hidden} more item problems (see `zsync errors`)")
        for name, (n, first) in sorted(result.dropped_fields.items()):
            self.log(f"warning: field {name!r} is not sent ({n} records, first at {first})")
        if result.fatal is not None:
            self.log(f"{NAME}: error: {result.fatal}")
        counts = result.counts
        parts = [f"{counts[k]} {k}" for k in _SUMMARY_ORDER if counts[k]]
        run = f" (zsync run {result.run_id})" if result.run_id else ""
        line = f"{NAME}{run}: {', '.join(parts) or 'nothing to do'} in {result.duration:.1f}s"
        line += f"; {self.states_written} state(s) emitted"
        code = int(result.exit_code)
        self.log(line + (f" [exit {code}]" if code else ""))


@contextmanager
def _stop_on_signals(stop: threading.Event, output: Output) -> Iterator[None]:
    """First SIGINT/SIGTERM (Meltano ends a run with one): finish in-flight requests, record
    them, exit 130. A second one: stop now."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        output.log(f"{NAME}: stopping: finishing requests in flight")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run(config_path: Path | None, environ: Mapping[str, str], output: Output) -> RunResult:
    """Read Singer messages from stdin and push them; the one library call of this entry."""
    values = load_config(config_path) if config_path is not None else {}
    settings = settings_from(values, environ)
    output.secret = settings.api_key
    ctx = operations.Context(settings, stop_event=output.stop, emit=output.emit)
    plan = plan_options(values, sys.stdin.buffer)
    with _stop_on_signals(ctx.stop_event, output):
        return operations.push(ctx, plan, run_options(values))


@click.command(name=NAME, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file of settings (Meltano writes one); see --about.",
)
@click.option("--about", is_flag=True, help="Print the name, capabilities and settings.")
@click.option(
    "--format",
    "about_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Format of --about.",
)
@click.version_option(__version__, prog_name=NAME)
def command(config_path: Path | None, about: bool, about_format: str) -> None:
    """Singer target: read Singer messages on stdin, send their records to Zentrik exactly
    once, and write each STATE to stdout once the records before it are in the ledger.

    \b
    Example:
      tap-jsonl --config tap.json | target-zentrik --config target.json > state.json
    """
    if about:
        info = about_info()
        click.echo(json.dumps(info, indent=2) if about_format == "json" else about_text())
        return
    # STATE lines are the only thing on stdout: anything else printed goes to stderr.
    states = sys.stdout
    sys.stdout = sys.stderr
    output = Output(states, sys.stderr, threading.Event())
    try:
        result = run(config_path, os.environ, output)
    except ZsyncError as exc:
        output.log(f"{NAME}: error: {exc}")
        sys.exit(int(exc.exit_code))
    finally:
        sys.stdout = states
    output.summary(result)
    sys.exit(int(result.exit_code))


def main(argv: list[str] | None = None) -> None:
    """Entry point: every exception becomes one line and an exit code, never a traceback."""
    try:
        command.main(args=argv, prog_name=NAME, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.USAGE)
    except (click.Abort, KeyboardInterrupt):
        click.echo(f"{NAME}: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except Exception as exc:  # a bug: one line, no traceback, no key
        secret = os.environ.get(ENV_PREFIX + "API_KEY") or os.environ.get("ZENTRIK_API_KEY")
        text = config.redact(f"{type(exc).__name__}: {exc}", secret)
        click.echo(f"{NAME}: internal error: {text}", err=True)
        sys.exit(ExitCode.INTERNAL)


if __name__ == "__main__":
    main()
