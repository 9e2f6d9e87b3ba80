"""``zsync emulator``: the one click command outside cli.py, registered on the main group."""

from __future__ import annotations

from pathlib import Path

import click

from zsync.config import DEV_API_KEY, is_loopback
from zsync.emulator.config import ALL_SCOPES, DEDUPE_MODES, DUPLICATE_ANSWERS, EmulatorConfig
from zsync.emulator.server import serve_forever
from zsync.errors import ExitCode

_RATE = click.FloatRange(0.0, 1.0)
_NON_NEGATIVE = click.FloatRange(min=0.0)


def _fail(message: str, code: ExitCode) -> None:
    click.echo(f"zsync emulator: {message}", err=True)
    raise SystemExit(int(code))


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
    "--duplicate-answer",
    type=click.Choice(DUPLICATE_ANSWERS),
    default="replay",
    show_default=True,
    help="Answer to a repeated identity: 200, 201 (both with the existing receipt) or 409.",
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
    "--rate-limit",
    type=_NON_NEGATIVE,
    default=0.0,
    show_default=True,
    help="Requests/s per key (0 = unlimited); beyond it 429 with Retry-After.",
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
    port: int,
    allow_remote: bool,
    api_key: str,
    scopes: str,
    process_seconds: float,
    fail_rate: float,
    dedupe: str,
    duplicate_answer: str,
    latency_ms: float,
    handle_ms: float,
    rate_limit: float,
    error_rate: float,
    reset_rate: float,
    drop_after_commit_rate: float,
    warmup_seconds: float,
    not_ready: bool,
    seed: int | None,
    inspect: bool,
    port_file: Path | None,
    verbose: bool,
) -> None:
    """Serve a local Zentrik Signals API for demos, tests and rehearsals.

    It follows the documented API under /api (readyz, auth/context, signals create, get,
    list, PATCH, DELETE and /process), processes signals on a clock, honours
    Idempotency-Key, and injects faults on request. State lives in memory only.

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
            port=port,
            api_key=api_key.strip(),
            scopes=tuple(s.strip() for s in scopes.split(",") if s.strip()),
            process_seconds=process_seconds,
            fail_rate=fail_rate,
            dedupe=dedupe,
            duplicate_answer=duplicate_answer,
            latency_ms=latency_ms,
            handle_ms=handle_ms,
            rate_limit=rate_limit,
            error_rate=error_rate,
            reset_rate=reset_rate,
            drop_after_commit_rate=drop_after_commit_rate,
            warmup_seconds=warmup_seconds,
            not_ready=not_ready,
            seed=seed,
            inspect=inspect,
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
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", ExitCode.ITEMS_FAILED)
