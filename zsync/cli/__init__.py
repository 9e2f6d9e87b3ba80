"""The zsync command line: options -> one library call -> render.

This package (with ``zsync/console.py`` and the emulator's own command) is the only code that
imports click, prints or exits. Every exception becomes one line and a documented exit code
in :func:`main`; ``--debug`` shows the traceback as well. ``options`` holds the shared option
stacks, ``send`` the commands that send, ``look`` the operator commands that read.
"""

from __future__ import annotations

import gc
import sys
import traceback
from typing import Any

import click

from zsync import __version__, config
from zsync.cli import look, send, truth
from zsync.cli.ui import ui as ui_command
from zsync.console import State
from zsync.errors import ExitCode, ZsyncError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zsync")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("-v", "--verbose", count=True, help="Show each item's outcome.")
@click.option("-q", "--quiet", is_flag=True, help="Silent unless something needs a person.")
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


for _command in (
    send.push,
    send.preview,
    send.reconcile,
    send.retry_failed,
    look.status,
    look.runs,
    look.show,
    look.errors,
    look.check,
    look.export,
    truth.verify,
    ui_command,
):
    cli.add_command(_command)


def _after_subcommand(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """A global option given after the subcommand (``zsync push -q``): it wins over the
    same option before it; not given (None, False, 0), it changes nothing."""
    if value is None or value is False or value == 0:
        return
    state = ctx.ensure_object(State)
    name = param.name
    if name == "verbose":
        state.verbose += int(value)
    elif name is not None:
        setattr(state, name, value)


def _global_options() -> list[click.Option]:
    """The group's own options, again for every subcommand (cron lines, scripts and muscle
    memory put them after it); --debug is read from the whole command line in main()."""
    return [
        click.Option(
            ["--debug"],
            is_flag=True,
            default=None,
            expose_value=False,
            callback=_after_subcommand,
            help="Show tracebacks for errors.",
        ),
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_after_subcommand,
            help="Show each item's outcome.",
        ),
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            default=None,
            expose_value=False,
            callback=_after_subcommand,
            help="Silent unless something needs a person.",
        ),
        click.Option(
            ["--log-format"],
            type=click.Choice(["text", "json"]),
            default=None,
            expose_value=False,
            callback=_after_subcommand,
            help="json: one object per line on stderr.",
        ),
        click.Option(
            ["--progress-interval"],
            type=click.FloatRange(min=1),
            default=None,
            expose_value=False,
            callback=_after_subcommand,
            help="Seconds between progress lines when stderr is not a terminal.",
        ),
    ]


for _command in cli.commands.values():
    if _command.name != "emulator":
        _command.params.extend(_global_options())


def _add_emulator() -> None:
    from zsync.emulator.command import emulator_command

    cli.add_command(emulator_command)


_add_emulator()


def run() -> None:
    """The ``zsync`` process's entry point: :func:`main`, with the garbage collector set for
    a batch process. What is imported by now lives as long as the process, so it is frozen
    out of every collection; and a collection waits for 10,000 new objects instead of 700. A
    re-run makes a few short-lived objects per record and holds up to 50,000 records read
    ahead: collecting every 700 walked them over and over (about 490 collections in a no-op
    re-run of 100,000 records). zsync makes no reference cycles of its own to reclaim."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    main()


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
