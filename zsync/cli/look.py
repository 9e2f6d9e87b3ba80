"""The operator commands that look: status, runs, show, errors, check, export."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from zsync import report, views
from zsync.cli.options import common_options, settings_from
from zsync.console import State
from zsync.errors import ExitCode, UsageError
from zsync.model import STATUSES


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@common_options
@click.pass_obj
def status(state: State, /, as_json: bool, **common: Any) -> None:
    """Counts per status, recent runs, the lock holder and items that need attention.

    \b
    Example:
      zsync status --json
    """
    info = views.status(settings_from(state, **common))
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
    else:
        click.echo(report.status_text(info))


@click.command()
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
    rows = views.runs(settings_from(state, **common), limit)
    click.echo(json.dumps(rows, indent=2, sort_keys=True) if as_json else report.runs_text(rows))


@click.command()
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
    item = views.show(settings_from(state, **common), external_id)
    if item is None:
        raise UsageError(f"no item with externalId {external_id!r} in the ledger")
    click.echo(json.dumps(item, indent=2, sort_keys=True) if as_json else report.show_text(item))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@common_options
@click.pass_obj
def errors(state: State, /, as_json: bool, **common: Any) -> None:
    """Failures grouped by cause, with counts, first/last seen and sample ids.

    \b
    Example:
      zsync errors
    """
    causes = views.errors(settings_from(state, **common))
    if as_json:
        click.echo(json.dumps([vars(c) for c in causes], indent=2, sort_keys=True))
    else:
        click.echo(report.errors_text(causes))


@click.command()
@click.option(
    "--for",
    "needs",
    type=click.Choice(sorted(views.SCOPES_FOR)),
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
    settings = settings_from(state, **common)
    from zsync.engine import ZentrikClient

    with ZentrikClient(settings.api_base, settings.require_key()) as client:
        result = views.check(settings, client, needs)
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


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv", "json"]),
    default="jsonl",
    show_default=True,
    help="jsonl: one object per line; json: one array; csv: a header, then rows.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(list(STATUSES)),
    help="Only items in this status (repeatable).",
)
@common_options
@click.pass_obj
def export(
    state: State, /, fmt: str, as_json: bool, statuses: tuple[str, ...], **common: Any
) -> None:
    """Ledger rows as JSONL, JSON or CSV on stdout (no payloads, no secrets).

    \b
    Example:
      zsync export --format csv --status rejected > rejected.csv
    """
    fmt = "json" if as_json else fmt
    for chunk in views.export(settings_from(state, **common), fmt, statuses):
        click.echo(chunk, nl=False)
