"""The library face of each command: open the ledger, take the lease, preflight, run.

``cli.py`` calls exactly one of these per command and renders what comes back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zsync import inputs, metrics
from zsync.client import ZentrikClient
from zsync.config import Settings
from zsync.engine import Emit, Engine, Event, RunOptions, RunResult, ledger_feeder
from zsync.errors import ApiUnavailable, TransientError, ZsyncError
from zsync.ledger import Ledger, ledger_errors
from zsync.plan import PlanOptions, estimate_total, push_feeder
from zsync.retry import RetryPolicy

_READYZ_BUDGET = 30.0


def _ignore(_: Event) -> None:
    pass


@dataclass
class Context:
    """What every sending command needs besides its own options."""

    settings: Settings
    stop_event: threading.Event = field(default_factory=threading.Event)
    emit: Emit = _ignore
    retry: RetryPolicy | None = None
    client_factory: Callable[[], ZentrikClient] | None = None
    metrics_file: Path | None = None

    def make_client(self) -> ZentrikClient:
        if self.client_factory is not None:
            return self.client_factory()
        return ZentrikClient(self.settings.api_base, self.settings.require_key())

    def retry_policy(self, budget: float | None = None) -> RetryPolicy:
        scale = self.settings.retry_scale
        base = self.retry or RetryPolicy(
            budget=self.settings.wait_budget,
            initial=0.5 * scale,
            maximum=10.0 * scale,
            min_wait=0.05 * scale,
        )
        policy = replace(base, stop_event=self.stop_event)
        if budget is not None:
            policy.budget = min(policy.budget, budget)
        return policy


@contextmanager
def _leased(ctx: Context, command: str, arguments: dict[str, Any]) -> Iterator[tuple[Ledger, int]]:
    with ledger_errors(ctx.settings.ledger_path):
        ledger = Ledger.open(ctx.settings.ledger_path)
        try:
            ledger.acquire_lease(command)
            run_id = ledger.start_run(command, arguments)
            yield ledger, run_id
        finally:
            ledger.close()


def preflight(ctx: Context, ledger: Ledger, *, skip_readyz: bool) -> None:
    """readyz, then auth context; binds the ledger to the workspace on first use."""
    client = ctx.make_client()
    policy = ctx.retry_policy(_READYZ_BUDGET)
    try:
        if not skip_readyz:
            try:
                policy.call(client.readyz)
            except TransientError as exc:
                raise ApiUnavailable(
                    f"API at {ctx.settings.api_base} is unreachable: {exc}"
                ) from None
        try:
            context = policy.call(client.auth_context)
        except TransientError as exc:
            raise ApiUnavailable(f"API at {ctx.settings.api_base} is unreachable: {exc}") from None
        workspace = None
        if isinstance(context, dict) and isinstance(context.get("workspace"), dict):
            ws_id = context["workspace"].get("id")
            workspace = str(ws_id) if ws_id else None
        ledger.bind(ctx.settings.api_base, workspace)
    finally:
        client.close()


def _run(
    ctx: Context,
    ledger: Ledger,
    run_id: int,
    result: RunResult,
    options: RunOptions,
    feeder_factory: Callable[[Engine], Iterator[Any]],
) -> RunResult:
    engine = Engine(
        ledger,
        ctx.make_client,
        options,
        retry=ctx.retry_policy(),
        stop_event=ctx.stop_event,
        emit=ctx.emit,
        run_id=run_id,
        result=result,
    )
    engine.run(feeder_factory(engine))
    return result


def _finish(
    ctx: Context, ledger: Ledger, run_id: int, result: RunResult, started: float
) -> RunResult:
    result.duration = time.monotonic() - started
    ledger.finish_run(run_id, dict(result.counts), int(result.exit_code))
    if ctx.metrics_file is not None:
        metrics.write(ctx.metrics_file, metrics.render(result, ledger))
    return result


def push(
    ctx: Context,
    plan: PlanOptions,
    options: RunOptions,
    *,
    skip_readyz: bool = False,
    count_total: bool = False,
) -> RunResult:
    inputs.check(plan)  # usage and mapping-file errors before anything is opened or sent
    started = time.monotonic()
    result = RunResult("push", polled=options.poll)
    if count_total and not plan.source_cmd:
        result.total = estimate_total(plan.inputs, plan.fmt)
    if plan.dry_run:
        return _dry_run(ctx, plan, result, started)
    ctx.settings.require_key()
    arguments = {
        "inputs": list(plan.inputs),
        "format": plan.fmt,
        # the program's name only: a command line may carry a token
        "source": inputs.program_name(plan.source_cmd) if plan.source_cmd else None,
        "mapping": plan.mapping,
        "limit": plan.limit,
        "poll": options.poll,
        "concurrency": options.concurrency,
    }
    with _leased(ctx, "push", arguments) as (ledger, run_id):
        result.run_id = run_id
        try:
            preflight(ctx, ledger, skip_readyz=skip_readyz)
            _run(
                ctx,
                ledger,
                run_id,
                result,
                options,
                lambda engine: push_feeder(ledger, plan, result, ctx.emit, run_id=run_id),
            )
        except ZsyncError as exc:
            result.fatal = exc
        return _finish(ctx, ledger, run_id, result, started)


def _dry_run(ctx: Context, plan: PlanOptions, result: RunResult, started: float) -> RunResult:
    """Plan against the ledger if there is one, send nothing and write nothing."""
    ledger = None
    with ledger_errors(ctx.settings.ledger_path):
        if ctx.settings.ledger_path.exists():
            ledger = Ledger.open_readonly(ctx.settings.ledger_path)
        try:
            for _batch in push_feeder(ledger, plan, result, ctx.emit, run_id=0):
                pass
        finally:
            if ledger is not None:
                ledger.close()
    result.polled = False
    result.duration = time.monotonic() - started
    return result


def _ledger_run(
    ctx: Context,
    command: str,
    arguments: dict[str, Any],
    statuses: tuple[str, ...],
    options: RunOptions,
    *,
    include_rejected: bool = False,
) -> RunResult:
    """A run whose work comes from the ledger, not from an input."""
    started = time.monotonic()
    result = RunResult(command, polled=options.poll)
    ctx.settings.require_key()
    with _leased(ctx, command, arguments) as (ledger, run_id):
        result.run_id = run_id
        try:
            preflight(ctx, ledger, skip_readyz=True)
            _run(
                ctx,
                ledger,
                run_id,
                result,
                options,
                lambda engine: ledger_feeder(
                    ledger, statuses, result, engine, include_rejected=include_rejected
                ),
            )
        except ZsyncError as exc:
            result.fatal = exc
        return _finish(ctx, ledger, run_id, result, started)


def reconcile(ctx: Context, options: RunOptions) -> RunResult:
    """Poll submitted items, resend pending/error ones, recheck conflicts."""
    options.poll = True
    return _ledger_run(
        ctx,
        "reconcile",
        {"poll_seconds": options.poll_seconds},
        ("pending", "error", "conflict", "submitted"),
        options,
    )


@dataclass
class RetryPreview:
    items: list[dict[str, Any]]


def retry_candidates(settings: Settings, include_rejected: bool, limit: int = 1000) -> RetryPreview:
    statuses = ["failed", "error"] + (["rejected"] if include_rejected else [])
    with ledger_errors(settings.ledger_path):
        ledger = Ledger.open_readonly(settings.ledger_path)
        try:
            return RetryPreview(ledger.items_in(statuses, limit=limit))
        finally:
            ledger.close()


def retry_failed(ctx: Context, options: RunOptions, *, include_rejected: bool) -> RunResult:
    """Re-queue failed signals, resend errored items (and rejected ones if asked)."""
    statuses: tuple[str, ...] = ("failed", "error") + (("rejected",) if include_rejected else ())
    return _ledger_run(
        ctx,
        "retry-failed",
        {"include_rejected": include_rejected},
        statuses,
        options,
        include_rejected=include_rejected,
    )


def status(settings: Settings) -> dict[str, Any]:
    with ledger_errors(settings.ledger_path):
        return _status(settings)


def _status(settings: Settings) -> dict[str, Any]:
    ledger = Ledger.open_readonly(settings.ledger_path)
    try:
        holder = ledger.lease_holder()
        return {
            "ledger": str(settings.ledger_path),
            "schema": ledger.schema_version(),
            "workspace_id": ledger.get_meta("workspace_id"),
            "api_base": ledger.get_meta("api_base"),
            "counts": ledger.counts_by_status(),
            "oldest_unfinished": ledger.oldest_unfinished(),
            "lock": None if holder is None else holder.describe(),
            "bookmarks": ledger.bookmarks(),
            "recent_runs": ledger.recent_runs(5),
            "rejected": ledger.items_in(["rejected", "conflict", "invalid", "failed"], limit=20),
        }
    finally:
        ledger.close()
