"""The library face of each sending command: one run skeleton, lease -> preflight -> run ->
finish, shared by push, reconcile and retry-failed.

The command line (``zsync/cli/send.py``, and ``zsync/cli/target.py`` for target-zentrik) and
the Python API (``zsync/api.py``) call exactly one of these per command; the caller renders
what comes back.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from zsync import metrics, plan, read
from zsync.config import Settings
from zsync.engine import Engine, RetryPolicy, ZentrikClient
from zsync.errors import ApiUnavailable, ExitCode, TransientError, ZsyncError
from zsync.ledger import Ledger, Meanwhile, ledger_errors
from zsync.model import (
    Emit,
    Event,
    EventKind,
    Job,
    RunOptions,
    RunResult,
    ServerIndex,
    Status,
    ignore,
)
from zsync.plan import PlanOptions, indoubt
from zsync.truth.trust import TrustGate
from zsync.truth.verify import load_index

_READYZ_BUDGET = 30.0
# Rounds of "look up what is in doubt, resend what the server lacks" after a run's sends.
_SETTLE_PASSES = 2

# Builds the jobs of a run once the ledger is open and the run is recorded.
Feeder = Callable[[Ledger, int, RunResult], Iterator[list[Job]]]


@dataclass
class Context:
    """What every sending command needs besides its own options."""

    settings: Settings
    stop_event: threading.Event = field(default_factory=threading.Event)
    emit: Emit = ignore
    retry: RetryPolicy | None = None
    client_factory: Callable[[], ZentrikClient] | None = None

    def make_client(self) -> ZentrikClient:
        """A new client (each worker thread and each lookup gets its own); ``client_factory`` lets a
        test or embedding program supply it. ConfigError when no key is set."""
        if self.client_factory is not None:
            return self.client_factory()
        return ZentrikClient(self.settings.api_base, self.settings.require_key())

    def retry_policy(self, budget: float | None = None) -> RetryPolicy:
        """A fresh policy that stops with the run; ``budget`` (seconds) can only shorten the
        run's wait budget, never lengthen it."""
        base = self.retry or RetryPolicy.for_run(self.settings.wait_budget)
        policy = replace(base, stop_event=self.stop_event)
        if budget is not None:
            policy.budget = min(policy.budget, budget)
        return policy


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
        was = ledger.meta.get("api_base")
        ledger.bind(ctx.settings.api_base, workspace)
        if was and was != ctx.settings.api_base:  # same workspace (bind refuses another)
            ctx.emit(
                Event(
                    EventKind.WARNING,
                    message=f"ledger {ledger.path} was used with {was}; it now follows "
                    f"{ctx.settings.api_base} (the same workspace {workspace})",
                )
            )
    finally:
        client.close()


def _run(
    ctx: Context,
    command: str,
    arguments: dict[str, Any],
    options: RunOptions,
    feeder: Feeder,
    *,
    result: RunResult | None = None,
    skip_readyz: bool = True,
    meanwhile: Meanwhile | None = None,
) -> RunResult:
    """Lease the ledger, record the run, preflight, drive the feeder's jobs, finish.
    ``meanwhile`` works (without the ledger) while the ledger is checked on opening."""
    started = time.monotonic()
    result = result or RunResult(command, polled=options.poll)
    ctx.settings.require_key()
    path = ctx.settings.ledger_path
    with ledger_errors(path):
        new = not path.exists()
        ledger = Ledger.open(path, new_ledger=ctx.settings.new_ledger, meanwhile=meanwhile)
        if new:  # a cron job in the wrong directory would otherwise start over unnoticed
            ctx.emit(Event(EventKind.NOTICE, message=f"created a new ledger at {path.resolve()}"))
        try:
            if ledger.replaced is not None:
                message = (
                    f"ledger {path} was not usable: kept as {ledger.replaced}; a new one starts"
                )
                ctx.emit(Event(EventKind.WARNING, None, message))
            ledger.lease.acquire(command)
            run_id = result.run_id = ledger.runs.start(command, arguments)
            try:
                preflight(ctx, ledger, skip_readyz=skip_readyz)
                _drive(ctx, ledger, run_id, result, options, feeder(ledger, run_id, result))
                _unconfirmed_is_pending(ctx, ledger, result)
            except ZsyncError as exc:
                result.fatal = exc
            result.duration = time.monotonic() - started
            ledger.runs.finish(run_id, dict(result.counts), int(result.exit_code))
            if options.metrics_file is not None:
                metrics.write(options.metrics_file, metrics.render(result, ledger))
        finally:
            ledger.close()
    return result


def _drive(
    ctx: Context,
    ledger: Ledger,
    run_id: int,
    result: RunResult,
    options: RunOptions,
    jobs: Iterator[list[Job]],
) -> None:
    """The run's jobs through the engine, the sends in doubt settled before and after."""

    def engine() -> Engine:
        return Engine(
            ledger,
            ctx.make_client,
            options,
            retry=ctx.retry_policy(),
            stop_event=ctx.stop_event,
            emit=ctx.emit,
            run_id=run_id,
            result=result,
        )

    first = _settle_in_doubt(ctx, ledger, run_id, result, result.command == "reconcile")
    engine().run(itertools.chain([first], jobs))
    for _ in range(_SETTLE_PASSES):
        again = _settle_in_doubt(ctx, ledger, run_id, result, False, after=True)
        if not again:
            break
        engine().run(iter([again]))


def _settle_in_doubt(
    ctx: Context,
    ledger: Ledger,
    run_id: int,
    result: RunResult,
    conflicts: bool,
    *,
    after: bool = False,
) -> list[Job]:
    """Look sends in doubt (and, for reconcile, conflicts) up in the server's list before
    anything resends them; after the run's sends (``after``), resend what the list lacks."""
    stopped = result.interrupted or result.timed_out or result.api_down or result.fatal
    if after and stopped:
        return []
    items = indoubt.in_doubt(ledger, conflicts=conflicts)

    def load() -> ServerIndex:
        with ctx.make_client() as client:
            return load_index(client, ctx.retry_policy())

    policy = ctx.retry_policy()

    def wait(seconds: float) -> bool:
        """Wait out a doubt horizon within the run's wait budget, unless stopped."""
        return seconds <= policy.budget and not ctx.stop_event.wait(max(0.0, seconds))

    try:
        # Reconcile polls every submitted item itself (conflicts is True only there).
        return indoubt.settle(
            ledger,
            items,
            load,
            result,
            ctx.emit,
            run_id=run_id,
            resend_missing=after,
            poll=not conflicts,
            horizon=ctx.settings.doubt_horizon,
            wait=wait if after else None,
        )
    except ApiUnavailable as exc:
        if not after:
            raise  # nothing in doubt may be resent unchecked
        # After the run's sends: the items stay as they are for the next run to check, and
        # this run counts them pending (settle may have stopped counting them: waited out).
        left = [
            i
            for i in indoubt.in_doubt(ledger, conflicts=False)
            if i.status == Status.PENDING and i.external_id not in result.held
        ]
        result.count("pending", len(left))
        ctx.emit(
            Event(
                EventKind.WARNING,
                message=f"{len(left)} send(s) in doubt stay unchecked until the next run: {exc}",
            )
        )
        return []


def push(
    ctx: Context,
    options: PlanOptions,
    run: RunOptions,
    *,
    skip_readyz: bool = False,
    count_total: bool = False,
) -> RunResult:
    """Send new and changed records of an input; skip what the ledger already has."""
    mappings = plan.check(options)  # usage and mapping errors before anything is opened
    options = dataclasses.replace(options, follow_up=run.poll)
    result = RunResult("push", polled=run.poll)
    if count_total:
        result.total = plan.estimate_total(options)
    if options.dry_run:
        return _dry_run(ctx, options, mappings, result)
    spec = options.source
    arguments = {
        "inputs": list(spec.inputs),
        "format": spec.fmt,
        # the program's name only: a command line may carry a token
        "source": read.program_name(spec.source_cmd) if spec.source_cmd else None,
        "mapping": options.mapping,
        "limit": options.limit,
        "poll": run.poll,
        "concurrency": run.concurrency,
    }

    # The first input is cut and hashed while the ledger's integrity is checked.
    ahead = plan.read_ahead(options)

    def feeder(ledger: Ledger, run_id: int, result: RunResult) -> Iterator[list[Job]]:
        # Before the first create: can the ledger vouch for itself? (truth/trust.py)
        gate = TrustGate(ledger, ctx.make_client, ctx.retry_policy(), result, ctx.emit, run_id)
        return plan.push_feeder(
            ledger,
            options,
            result,
            ctx.emit,
            mappings=mappings,
            run_id=run_id,
            ahead=ahead,
            vouch=gate.check,
        )

    return _run(
        ctx,
        "push",
        arguments,
        run,
        feeder,
        result=result,
        skip_readyz=skip_readyz,
        meanwhile=ahead,
    )


def _unconfirmed_is_pending(ctx: Context, ledger: Ledger, result: RunResult) -> None:
    """A run that would exit 0 while the ledger still holds intents the server never
    confirmed (``pending``) exits 75 instead, with one line: whatever path left them
    unsent, the next run sends or looks them up, and no cron job reads "done" over them."""
    if result.exit_code != ExitCode.OK:
        return
    left = ledger.items.counts_by_status().get(Status.PENDING, 0)
    if left:
        result.count("pending", left)
        ctx.emit(
            Event(
                EventKind.WARNING,
                message=f"{left} item(s) still pending in the ledger (recorded, not confirmed "
                "by the server): the next run sends or looks them up",
            )
        )


def _dry_run(
    ctx: Context,
    options: PlanOptions,
    mappings: plan.MappingFile | None,
    result: RunResult,
) -> RunResult:
    """Plan against the ledger if there is one, send nothing and write nothing."""
    started = time.monotonic()
    path = ctx.settings.ledger_path
    with ledger_errors(path):
        ledger = Ledger.open_readonly(path) if path.exists() else None
        try:
            for _batch in plan.push_feeder(
                ledger, options, result, ctx.emit, mappings=mappings, run_id=0
            ):
                if ctx.stop_event.is_set():  # a Ctrl-C while a pipe or FIFO is quiet
                    result.interrupted = True
                    break
        finally:
            if ledger is not None:
                ledger.close()
    result.polled = False
    result.duration = time.monotonic() - started
    return result


def reconcile(ctx: Context, options: RunOptions) -> RunResult:
    """Poll submitted items, resend pending/error ones, recheck conflicts."""
    options.poll = True
    statuses = (Status.PENDING, Status.ERROR, Status.CONFLICT, Status.SUBMITTED)

    def feeder(ledger: Ledger, run_id: int, result: RunResult) -> Iterator[list[Job]]:
        return plan.ledger_feeder(ledger, statuses, result)

    return _run(ctx, "reconcile", {"poll_seconds": options.poll_seconds}, options, feeder)


def retry_failed(ctx: Context, options: RunOptions, *, include_rejected: bool) -> RunResult:
    """Re-queue failed signals, resend errored items (and rejected ones if asked)."""
    statuses: tuple[str, ...] = (Status.FAILED, Status.ERROR)
    if include_rejected:
        statuses += (Status.REJECTED,)

    def feeder(ledger: Ledger, run_id: int, result: RunResult) -> Iterator[list[Job]]:
        return plan.ledger_feeder(ledger, statuses, result, include_rejected=include_rejected)

    arguments = {"include_rejected": include_rejected}
    return _run(ctx, "retry-failed", arguments, options, feeder)
