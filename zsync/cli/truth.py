"""zsync verify: the ledger against what Zentrik holds; --repair adopts the server's truth."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from zsync.cli.options import common_options, settings_from
from zsync.console import State
from zsync.truth import VerifyReport
from zsync.truth.session import verify_ledger

_TITLES = {
    "unknown": "on the server, unknown to the ledger",
    "gone": "in the ledger, gone from the server",
    "status": "status or publicId differs",
    "content": "content differs from what the ledger recorded",
    "duplicated": "externalId held by several signals",
}


@click.command()
@click.option("--repair", is_flag=True, help="Adopt the server's truth (rebuilds a lost ledger).")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Cap on list requests per second.",
)
@click.option("--examples", type=click.IntRange(0, 100), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@common_options
@click.pass_obj
def verify(
    state: State, /, repair: bool, rate: float | None, examples: int, as_json: bool, **common: Any
) -> None:
    """Compare the ledger with the signals Zentrik lists; exit 0 when they agree, 1 on drift.

    Read-only unless --repair, which adopts signals the ledger does not know, marks signals
    gone from the server so the next push re-creates them, and corrects statuses. On a
    missing or empty ledger, --repair rebuilds it. A list that cannot be proven complete
    repairs nothing and exits 4 (one line says why); a later run reads it again.

    \b
    Example:
      zsync verify --json
      zsync verify --repair
    """
    settings = settings_from(state, **common)
    report = verify_ledger(settings, repair=repair, rate=rate, examples=examples)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2, sort_keys=True))
    else:
        for problem in report.problems:
            click.echo(f"zsync: warning: {problem}", err=True)
        click.echo(render(report))
    sys.exit(int(report.exit_code))


def render(report: VerifyReport) -> str:
    """``zsync verify`` for a person: the counts, then each class of drift with its examples,
    the signals deleted on the server, and what --repair changed."""
    lines = [
        f"ledger {report.ledger}: {report.ledger_items} items; server: "
        f"{report.server_signals} signals ({report.requests} list requests, "
        f"{report.seconds:.1f}s), matched by {report.matched_by}"
    ]
    if not report.complete:
        lines.append("the server's list may be incomplete: signals gone from it are not judged")
    if not report.drift:
        lines.append("ledger and server agree" if report.complete else "no drift found")
    for name, drift in report.classes.items():
        if not drift.count:
            continue
        lines.append(f"{drift.count:>8}  {_TITLES[name]}")
        for example in drift.examples:
            parts = ", ".join(f"{k}={v}" for k, v in example.items() if v is not None)
            lines.append(f"          {parts}")
    if report.deleted:
        lines.append(
            f"{report.deleted:>8}  deleted on the server (final: not created again while "
            "their record is unchanged)"
        )
    if report.repaired is not None:
        done = ", ".join(f"{k} {v}" for k, v in report.repaired.items())
        lines.append(f"repaired: {done}")
    return "\n".join(lines)
