"""target-zentrik: zsync as a Singer target, for Meltano.

Reads Singer messages on stdin and sends their records exactly as
``zsync push --format singer --input -`` does: the same ledger, the same exactly-once rules,
the same exit codes. Each STATE value is written to stdout only after every record before
it is recorded in the ledger (its intent committed), so a state Meltano stores never runs
ahead of what zsync will send. Nothing else goes to stdout; every log line goes to stderr,
with the API key redacted.

An entry point like zsync's own command line: it parses options, reads the config file and
the environment, calls ``operations.push`` once, and renders what comes back (through the
same console as ``zsync push``). Its settings live in ``target_config``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import click

from zsync import __version__, config, operations, report
from zsync.cli.options import stop_on_signals
from zsync.cli.target_config import (
    ENV_PREFIX,
    NAME,
    about_info,
    about_text,
    load_config,
    plan_options,
    run_options,
    settings_from,
)
from zsync.console import Console, State
from zsync.errors import ExitCode, ZsyncError
from zsync.model import Event, RunResult

__all__ = ["main"]


class Output(Console):
    """The console of zsync push (problems, progress, the key redacted; all on stderr), plus
    the STATE values on stdout: one JSON line each, flushed, only after the records before
    them are recorded. Meltano stores each line as the state it hands the tap next run: the
    bare value, as Singer SDK targets write it."""

    def __init__(self, state: State, states: TextIO, stop: threading.Event) -> None:
        super().__init__(state)
        self.states = states
        self.stop = stop
        self.states_written = 0
        self._states_open = True

    def emit(self, event: Event) -> None:
        """A bookmark event becomes a STATE line on stdout; every other event is rendered as
        ``zsync push`` renders it."""
        if event.kind == "bookmark":
            # Bookmark.save emits this only after the records before the STATE are committed
            # to the ledger, so Meltano never stores a state ahead of them.
            self._state(event.data["value"])
        else:
            super().emit(event)

    def _state(self, value: Any) -> None:
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

    def log(self, line: str) -> None:
        """One line on stderr, the key redacted, without tearing the progress line."""
        with self.lock:
            self._err(line)

    def summary(self, result: RunResult) -> None:
        """The closing lines on stderr: dropped-field warnings, the fatal error, and ``zsync
        push``'s summary under the target's name with the count of states written."""
        self.close()
        for line in report.dropped_warnings(result):
            self.log(line)
        if result.fatal is not None:
            self.log(f"{NAME}: error: {result.fatal}")
        text = report.summary_text(result).replace("zsync push", NAME, 1)
        first, _, rest = text.partition("\n")
        self.log(f"{first}; {self.states_written} state(s) emitted" + (f"\n{rest}" if rest else ""))


def run(config_path: Path | None, environ: Mapping[str, str], output: Output) -> RunResult:
    """Read Singer messages from stdin and push them; the one library call of this entry."""
    values = load_config(config_path) if config_path is not None else {}
    settings = settings_from(values, environ)
    output.state.secret = settings.api_key
    ctx = operations.Context(settings, stop_event=output.stop, emit=output.emit)
    plan = plan_options(values, sys.stdin.buffer)
    with stop_on_signals(ctx.stop_event):
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
    output = Output(State(), states, threading.Event())
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
