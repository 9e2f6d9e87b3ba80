"""``zsync emulator``: the one click command outside ``zsync/cli/``, registered on the main
group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from zsync.config import DEV_API_KEY, is_loopback
from zsync.emulator.config import (
    ALL_SCOPES,
    CONFLICT_BODIES,
    DEDUPE_MODES,
    DUPLICATE_ANSWERS,
    FAILURE_REASON_PLACES,
    IDEMPOTENCY_MODES,
    LIST_FAULTS,
    LIST_ORDERS,
    RETRY_AFTER_FORMATS,
    EmulatorConfig,
)
from zsync.emulator.server import serve_forever
from zsync.errors import ExitCode

_RATE = click.FloatRange(0.0, 1.0)
_NON_NEGATIVE = click.FloatRange(min=0.0)


def _fail(message: str, code: ExitCode) -> None:
    click.echo(f"zsync emulator: {message}", err=True)
    raise SystemExit(int(code))


def _check_pairs(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        name, sep, state = value.partition("=")
        if not sep or not name.strip() or not state.strip():
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", ctx, param)
        pairs.append((name.strip(), state.strip()))
    return tuple(pairs)


@click.command(name="emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="0 picks a free port (see --port-file).",
)
@click.option("--allow-remote", is_flag=True, help="Allow a --host that is not loopback.")
@click.option(
    "--api-key",
    envvar="ZENTRIK_API_KEY",
    default=DEV_API_KEY,
    show_envvar=True,
    help=f"Key clients must present. [default: {DEV_API_KEY}]",
    show_default=False,
)
@click.option(
    "--scopes",
    default=",".join(ALL_SCOPES),
    show_default=True,
    help="Comma-separated scopes the key carries.",
)
@click.option(
    "--process-seconds",
    type=_NON_NEGATIVE,
    default=2.0,
    show_default=True,
    help="Time from create (or /process) to processed/failed.",
)
@click.option(
    "--fail-rate",
    type=_RATE,
    default=0.0,
    show_default=True,
    help="Share of signals whose processing ends failed.",
)
@click.option(
    "--dedupe",
    type=click.Choice(DEDUPE_MODES),
    default="on",
    show_default=True,
    help="Collapse creates with the same (sourceKey, externalId).",
)
@click.option(
    "--dedupe-keeps-deleted",
    is_flag=True,
    help="Dedupe answers a repeated identity with its deleted signal, as if it still existed.",
)
@click.option(
    "--duplicate-answer",
    type=click.Choice(DUPLICATE_ANSWERS),
    default="replay",
    show_default=True,
    help="Answer to a repeated identity: 200, 201 (both with the existing receipt), 409, "
    "or 200 when the body is identical and 409 when it differs.",
)
@click.option(
    "--conflict-body",
    type=click.Choice(CONFLICT_BODIES),
    default="named",
    show_default=True,
    help="Whether a duplicate's 409 names the existing signal (error.publicId).",
)
@click.option(
    "--idempotency",
    type=click.Choice(IDEMPOTENCY_MODES),
    default="honour",
    show_default=True,
    help="ignore: Idempotency-Key is disregarded, so a resend is a new create.",
)
@click.option(
    "--idempotency-ttl-seconds",
    type=_NON_NEGATIVE,
    default=0.0,
    show_default=True,
    help="How long an Idempotency-Key is remembered (0 = for ever).",
)
@click.option(
    "--list-order",
    type=click.Choice(LIST_ORDERS),
    default="created",
    show_default=True,
    help="List order: oldest first, newest first, a fixed random order, or reshuffled per read.",
)
@click.option(
    "--list-hides-external-id", is_flag=True, help="List items lack externalId (GET keeps it)."
)
@click.option(
    "--list-fault",
    type=click.Choice(LIST_FAULTS),
    default="none",
    show_default=True,
    help="Bad list answers: an object body, no total headers, a total that drops on every "
    "read, or items that are not objects / lack publicId.",
)
@click.option(
    "--list-page-cap",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Pages hold at most this many items whatever limit is asked (0 = no cap).",
)
@click.option(
    "--list-drops-external-id-every",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Every Nth list item lacks externalId (0 = none).",
)
@click.option(
    "--failure-reason",
    default="transcript too short",
    show_default=True,
    help="Why a failed signal failed.",
)
@click.option(
    "--failure-reason-at",
    type=click.Choice(FAILURE_REASON_PLACES),
    default="processing.error",
    show_default=True,
    help="Where a failed signal carries the reason (none = nowhere).",
)
@click.option("--receipt-without-job-id", is_flag=True, help="Create receipts carry no jobId.")
@click.option(
    "--receipt-workspace",
    default=None,
    metavar="ID",
    help="Receipts name this workspaceId instead of the auth context's.",
)
@click.option(
    "--delete-status",
    type=click.Choice(["200", "204"]),
    default="204",
    show_default=True,
    help="DELETE answers 204 (no body) or 200 with {publicId, deleted}.",
)
@click.option(
    "--readyz-extra-check",
    "readyz_extra_checks",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_check_pairs,
    help="Another readyz check (repeatable), e.g. cache=degraded; database and "
    "workspaceQueue are reported as usual.",
)
@click.option(
    "--echo-key-in",
    default=None,
    metavar="FIELD",
    help="Hostile server: the receipt's FIELD (e.g. jobId) carries the presented API key.",
)
@click.option(
    "--latency-ms",
    type=_NON_NEGATIVE,
    default=0.0,
    show_default=True,
    help="Delay added to every API request.",
)
@click.option(
    "--handle-ms",
    type=_NON_NEGATIVE,
    default=0.0,
    show_default=True,
    help="Time a create holds its Idempotency-Key before answering.",
)
@click.option(
    "--inflight-cost-ms",
    type=_NON_NEGATIVE,
    default=0.0,
    show_default=True,
    help="Queueing server: delay per other request in flight when a request arrives.",
)
@click.option(
    "--max-inflight",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Answer 503 to a request arriving while this many are in flight (0 = unlimited).",
)
@click.option(
    "--rate-limit",
    type=_NON_NEGATIVE,
    default=0.0,
    show_default=True,
    help="Requests/s per key (0 = unlimited); beyond it 429 with Retry-After.",
)
@click.option(
    "--retry-after",
    type=click.Choice(RETRY_AFTER_FORMATS),
    default="seconds",
    show_default=True,
    help="How a 429 gives Retry-After: delta seconds, an HTTP date, or not at all.",
)
@click.option(
    "--error-rate",
    type=_RATE,
    default=0.0,
    show_default=True,
    help="Share of requests answered 503.",
)
@click.option(
    "--reset-rate",
    type=_RATE,
    default=0.0,
    show_default=True,
    help="Share of connections dropped before handling.",
)
@click.option(
    "--drop-after-commit-rate",
    type=_RATE,
    default=0.0,
    show_default=True,
    help="Share of creates committed, then dropped without an answer.",
)
@click.option(
    "--late-commit-rate",
    type=_RATE,
    default=0.0,
    show_default=True,
    help="Share of creates still being handled when the connection drops; they commit later.",
)
@click.option(
    "--late-commit-seconds",
    type=_NON_NEGATIVE,
    default=0.0,
    show_default=True,
    help="How long after its connection dropped a late create commits.",
)
@click.option(
    "--warmup-seconds",
    type=_NON_NEGATIVE,
    default=0.0,
    show_default=True,
    help="Not ready (and GETs answer the web front end's 404) for this long.",
)
@click.option("--not-ready", is_flag=True, help="readyz always answers 503.")
@click.option("--seed", type=int, default=None, help="Seed for reproducible fault draws.")
@click.option(
    "--inspect", is_flag=True, help="Enable GET /__emulator/state and POST /__emulator/reset."
)
@click.option(
    "--port-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the bound port to this file once listening.",
)
@click.option("--verbose", "-v", is_flag=True, help="Log one line per request to stderr.")
def emulator_command(
    host: str,
    allow_remote: bool,
    api_key: str,
    scopes: str,
    delete_status: str,
    port_file: Path | None,
    verbose: bool,
    **settings: Any,
) -> None:
    """Serve a local Zentrik Signals API for demos, tests and rehearsals.

    It follows the documented API under /api (readyz, auth/context, signals create, get,
    list, PATCH, DELETE and /process), processes signals on a clock, honours
    Idempotency-Key, and injects faults on request. Where the API contract is silent, flags
    pick the variant (see docs/emulator.md). State lives in memory only.

    Example:

        zsync emulator --port 8080 --error-rate 0.05 --seed 7

    then point zsync at it with ZENTRIK_API_BASE=http://127.0.0.1:8080/api.
    """
    if not (is_loopback(host) or allow_remote):
        _fail(
            f"--host {host} is not a loopback address; add --allow-remote to serve it",
            ExitCode.USAGE,
        )
    try:
        config = EmulatorConfig(
            host=host,
            api_key=api_key.strip(),
            scopes=tuple(s.strip() for s in scopes.split(",") if s.strip()),
            delete_status=int(delete_status),
            **settings,
        )
    except ValueError as exc:
        _fail(str(exc), ExitCode.USAGE)
        return

    def access_log(line: str) -> None:
        click.echo(line, err=True)

    try:
        serve_forever(
            config,
            announce=click.echo,
            port_file=port_file,
            access_log=access_log if verbose else None,
        )
    except OSError as exc:
        _fail(
            f"cannot listen on {host}:{config.port}: {exc.strerror or exc}", ExitCode.ITEMS_FAILED
        )
