"""The commands that send: push, reconcile, retry-failed; and preview, which shows what
push would send. Each parses options, calls one library function, renders."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from zsync import operations, views
from zsync.cli.options import (
    COMMON,
    INPUT,
    RUN,
    common_options,
    input_options,
    input_spec,
    run_options,
    send,
    settings_from,
    source_options,
    take,
)
from zsync.console import State
from zsync.errors import ExitCode
from zsync.model import Invalid, RunOptions
from zsync.plan import PlanOptions
from zsync.shape.body import CLIENT_FIELDS


@click.command()
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
    as_json: bool,
    skip_readyz: bool,
    no_poll: bool,
    delay_ms: int,
    **opts: Any,
) -> None:
    """Send new and unfinished records; skip what the ledger already has.

    \b
    Examples:
      zsync push --input tickets.jsonl --no-poll
      zsync push --input surveys.csv --mapping surveys.toml
      zsync push --source-cmd "python fetch.py" --mapping tickets.toml
    """
    settings = settings_from(state, **take(opts, COMMON))
    run = RunOptions(poll=not no_poll, delay_ms=delay_ms, **take(opts, RUN))
    plan = PlanOptions(source=input_spec(**take(opts, INPUT)), **opts)
    count_total = sys.stderr.isatty() and not plan.dry_run  # for the progress bar's ETA
    send(
        state,
        settings,
        as_json,
        run,
        lambda ctx, run: operations.push(
            ctx, plan, run, skip_readyz=skip_readyz, count_total=count_total
        ),
    )


@click.command()
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
    max_record_bytes: int,
    signal_type: str | None,
    name_template: str | None,
    count: int,
) -> None:
    """Show the bodies the first records become, and every problem; send nothing.

    Needs no API key and no ledger. Exit 1 if any shown record is invalid.

    \b
    Example:
      zsync preview --mapping examples/surveys.toml --input examples/surveys.csv -n 3
    """
    spec = input_spec(inputs, fmt, delimiter, max_record_bytes=max_record_bytes)
    plan = PlanOptions(
        source=spec, mapping=mapping, signal_type=signal_type, name_template=name_template
    )
    shown = views.preview(plan, count)
    for line in shown.warnings:
        click.echo(f"warning: {line}", err=True)
    bad = 0
    for item in shown.items:
        if isinstance(item, Invalid):
            bad += 1
            click.echo(f"invalid: {item.message}")
            continue
        click.echo(f"# {item.origin} -> {item.external_id}")
        not_sent = [name for name in item.dropped if name not in CLIENT_FIELDS]
        if not_sent:
            click.echo(f"# not sent: {', '.join(not_sent)}")
        if len(not_sent) < len(item.dropped):
            extra = ", ".join(name for name in item.dropped if name in CLIENT_FIELDS)
            click.echo(f"# sent, though the import template does not send it: {extra}")
        click.echo(json.dumps(item.body, indent=2, ensure_ascii=False))
    n = len(shown.items)
    click.echo(f"{n} record{'s' if n != 1 else ''}: {n - bad} ok, {bad} invalid", err=True)
    sys.exit(int(ExitCode.ITEMS_FAILED) if bad else 0)


@click.command()
@run_options
@common_options
@click.pass_obj
def reconcile(state: State, /, as_json: bool, **opts: Any) -> None:
    """Poll every submitted item, resend pending/error ones, recheck conflicts.

    \b
    Example:
      zsync reconcile --poll-seconds 600
    """
    settings = settings_from(state, **take(opts, COMMON))
    send(state, settings, as_json, RunOptions(**opts), operations.reconcile)


@click.command("retry-failed")
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
    **opts: Any,
) -> None:
    """Re-queue signals whose processing failed and resend items that errored.

    \b
    Example:
      zsync retry-failed --preview
    """
    settings = settings_from(state, **take(opts, COMMON))
    if preview:
        items = views.retry_candidates(settings, include_rejected)
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
    send(
        state,
        settings,
        as_json,
        RunOptions(poll=not no_poll, **opts),
        lambda ctx, run: operations.retry_failed(ctx, run, include_rejected=include_rejected),
    )
