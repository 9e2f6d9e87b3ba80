"""The Python API: one function per command, for an orchestrator's task or a script.

    import zsync

    result = zsync.push(input=["tickets.jsonl"], ledger="zsync.db", api_key=key)
    if result.exit_code not in (0, 75):
        raise RuntimeError(result.message or f"zsync push exited {result.exit_code}")

Each function takes keyword arguments named like the command's flags (``--no-poll`` is
``poll=False``, ``--input`` is ``input=[...]``), calls the same library function as the
command, and returns a :class:`Result` with the exit code the command would exit with. Nothing
prints, nothing exits: a problem the command would report in one line (a missing key, a locked
ledger, an unreadable input, an unreachable API) becomes the result's ``exit_code`` and
``message``. An argument of the wrong type (``input="a.jsonl"`` instead of a list) raises
:class:`TypeError`: that is a bug in the caller, not a run's outcome; any other exception is a
bug in zsync (the command line's exit 70) and propagates. ``on_event`` is called from the
run's threads: it should return quickly and not raise.

Settings not given fall back as on the command line: ``ZENTRIK_API_KEY``, ``ZENTRIK_API_BASE``
and ``ZSYNC_LEDGER`` from the environment, then ``env_file``, then the defaults. The key never
appears in a result, its repr, or a message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from zsync import config, operations, views
from zsync.errors import ExitCode, UsageError, ZsyncError
from zsync.model import CONCURRENCY_CEILING as CEILING
from zsync.model import Event, RunOptions, RunResult
from zsync.plan import ON_CHANGE, PlanOptions
from zsync.read import DEFAULT_MAX_RECORD_BYTES, FORMATS, InputSpec
from zsync.truth.session import verify_ledger

__all__ = ["Result", "push", "reconcile", "retry_failed", "status", "verify"]

# Events a person must see even when nobody watches the run: kept in Result.warnings.
_WARNINGS = frozenset({"warning", "notice", "api-down", "prune-refused"})

OnEvent = Callable[[Event], None]
PathLike = str | Path


@dataclass
class Result:
    """What a command ended with.

    ``exit_code`` is the command's exit status (:class:`zsync.errors.ExitCode`: 0 done, 1 item
    failures, 75 work still pending, ...); ``counts`` the outcomes by kind (a run: created,
    processed, unchanged, ...; verify: drift by class; status: items by status); ``message``
    the one-line error when the command stopped on one; ``warnings`` the run's warnings and
    notices; ``details`` the full record (a :class:`~zsync.model.RunResult`, a
    :class:`~zsync.truth.VerifyReport`, the status dict or the retry preview's items).
    """

    command: str
    exit_code: ExitCode = ExitCode.OK
    counts: dict[str, int] = field(default_factory=dict)
    run_id: int | None = None
    message: str | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duration: float = 0.0
    details: Any = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when the command would exit 0."""
        return self.exit_code == ExitCode.OK


@dataclass
class _Common:
    """The options every command shares, and what turns them into settings."""

    ledger: PathLike | None = None
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    env_file: PathLike | None = None
    allow_insecure_http: bool = False
    new_ledger: bool = False

    def settings(self) -> config.Settings:
        return config.load(
            api_base=self.api_base,
            api_key=self.api_key,
            ledger=self.ledger,
            env_file=Path(self.env_file) if self.env_file is not None else None,
            allow_insecure_http=self.allow_insecure_http,
            new_ledger=self.new_ledger,
        )


class _Watch:
    """The run's events to the caller's callback; warnings kept, the key redacted."""

    def __init__(self, on_event: OnEvent | None, secret: str | None) -> None:
        self.on_event, self.secret = on_event, secret
        self.warnings: list[str] = []

    def __call__(self, event: Event) -> None:
        if event.kind in _WARNINGS:
            self.warnings.append(config.redact(event.message, self.secret))
        if self.on_event is not None:
            self.on_event(event)


def _failed(command: str, exc: ZsyncError, secret: str | None) -> Result:
    return Result(command, exc.exit_code, message=config.redact(str(exc), secret))


def _from_run(result: RunResult, watch: _Watch) -> Result:
    fatal = result.fatal
    return Result(
        result.command,
        result.exit_code,
        counts={kind: n for kind, n in result.counts.items() if n},
        run_id=result.run_id,
        message=None if fatal is None else config.redact(str(fatal), watch.secret),
        problems=[config.redact(p, watch.secret) for p in result.problems],
        warnings=watch.warnings,
        duration=result.duration,
        details=result,
    )


def _send(
    command: str,
    common: _Common,
    on_event: OnEvent | None,
    stop: threading.Event | None,
    call: Callable[[operations.Context], RunResult],
) -> Result:
    """Settings, a context, the one library call; every ZsyncError becomes the result."""
    watch = _Watch(on_event, common.api_key)
    try:
        settings = common.settings()
        watch.secret = settings.api_key
        ctx = operations.Context(settings, stop_event=stop or threading.Event(), emit=watch)
        return _from_run(call(ctx), watch)
    except ZsyncError as exc:
        failed = _failed(command, exc, watch.secret)
        failed.warnings = watch.warnings  # said before it stopped (e.g. a new ledger created)
        return failed


def _paths(name: str, value: Sequence[PathLike]) -> tuple[str, ...]:
    if isinstance(value, str | Path) or not isinstance(value, Sequence):
        raise TypeError(f"{name}= takes a list of paths, not {type(value).__name__}")
    for item in value:
        if not isinstance(item, str | Path):
            raise TypeError(f"{name}= takes a list of paths; got a {type(item).__name__}")
    return tuple(str(item) for item in value)


def _run_options(
    *,
    concurrency: int | str | None,
    rate: float | None,
    poll: bool,
    poll_seconds: float,
    poll_interval: float,
    max_duration: float | None,
    metrics_file: PathLike | None,
    delay_ms: int = 0,
) -> RunOptions:
    """The checks click makes on the command line, as UsageError (exit 2)."""
    if concurrency == "auto":
        concurrency = None
    if concurrency is not None and (
        isinstance(concurrency, bool | str) or not 1 <= int(concurrency) <= CEILING
    ):
        raise UsageError(f"concurrency={concurrency!r} is not 'auto' or 1 to {CEILING}")
    for name, value in (("rate", rate), ("max_duration", max_duration)):
        if value is not None and not value > 0:
            raise UsageError(f"{name}={value!r} must be more than 0")
    if not poll_interval >= 0.1:
        raise UsageError(f"poll_interval={poll_interval!r} must be at least 0.1")
    if poll_seconds < 0 or delay_ms < 0:
        raise UsageError("poll_seconds and delay_ms must not be negative")
    return RunOptions(
        concurrency=None if concurrency is None else int(concurrency),
        rate=rate,
        delay_ms=delay_ms,
        poll=poll,
        poll_seconds=poll_seconds,
        poll_interval=poll_interval,
        max_duration=max_duration,
        metrics_file=Path(metrics_file) if metrics_file is not None else None,
    )


def push(
    *,
    input: Sequence[PathLike] = (),
    source_cmd: str | None = None,
    format: str | None = None,
    mapping: PathLike | None = None,
    delimiter: str | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    stdin: BinaryIO | None = None,
    state_file: PathLike | None = None,
    ignore_bookmark: bool = False,
    derive_external_id: bool = False,
    signal_type: str | None = None,
    name_template: str | None = None,
    dry_run: bool = False,
    skip_readyz: bool = False,
    poll: bool = True,
    delay_ms: int = 0,
    limit: int | None = None,
    on_change: str = "update",
    prune: bool = False,
    prune_max: float = 0.10,
    force: bool = False,
    concurrency: int | str | None = None,
    rate: float | None = None,
    poll_seconds: float = 300.0,
    poll_interval: float = 6.0,
    max_duration: float | None = None,
    metrics_file: PathLike | None = None,
    ledger: PathLike | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    env_file: PathLike | None = None,
    allow_insecure_http: bool = False,
    new_ledger: bool = False,
    on_event: OnEvent | None = None,
    stop: threading.Event | None = None,
) -> Result:
    """``zsync push``: send new and changed records; skip what the ledger already has.

    ``input`` is a list of paths (``"-"`` reads ``stdin``, a binary stream); or
    ``source_cmd`` a program whose stdout is read. ``signal_type`` and ``name_template``
    shape Singer records when there is no ``mapping`` (``--signal-type``,
    ``--name-template``). ``on_event`` receives each
    :class:`~zsync.model.Event` of the run (item outcomes, warnings, ``progress``; with
    ``dry_run``, ``would-send`` events carry the bodies); ``stop``, once set, finishes the
    requests in flight and ends the run (exit 130), as Ctrl-C does.
    """
    inputs = _paths("input", input)
    common = _Common(ledger, api_base, api_key, env_file, allow_insecure_http, new_ledger)
    try:  # what click refuses on the command line, refused first (exit 2)
        if format is not None and format not in FORMATS:
            raise UsageError(f"format={format!r} is not one of {', '.join(FORMATS)}")
        if on_change not in ON_CHANGE:
            raise UsageError(f"on_change={on_change!r} is not one of {', '.join(ON_CHANGE)}")
        if "-" in inputs and stdin is None:
            raise UsageError("input '-' reads standard input: pass stdin=<binary stream>")
        if (limit is not None and limit < 0) or not 0 <= prune_max <= 1:
            raise UsageError("limit must not be negative; prune_max is from 0 to 1")
        run = _run_options(
            concurrency=concurrency,
            rate=rate,
            poll=poll,
            poll_seconds=poll_seconds,
            poll_interval=poll_interval,
            max_duration=max_duration,
            metrics_file=metrics_file,
            delay_ms=delay_ms,
        )
    except UsageError as exc:
        return _failed("push", exc, api_key)
    plan = PlanOptions(
        source=InputSpec(inputs, format, delimiter, source_cmd, stdin, max_record_bytes),
        mapping=str(mapping) if mapping is not None else None,
        derive_external_id=derive_external_id,
        signal_type=signal_type,
        name_template=name_template,
        limit=limit,
        dry_run=dry_run,
        on_change=on_change,
        prune=prune,
        prune_max=prune_max,
        force=force,
        state_file=str(state_file) if state_file is not None else None,
        ignore_bookmark=ignore_bookmark,
    )
    return _send(
        "push",
        common,
        on_event,
        stop,
        lambda ctx: operations.push(ctx, plan, run, skip_readyz=skip_readyz),
    )


def reconcile(
    *,
    concurrency: int | str | None = None,
    rate: float | None = None,
    poll_seconds: float = 300.0,
    poll_interval: float = 6.0,
    max_duration: float | None = None,
    metrics_file: PathLike | None = None,
    ledger: PathLike | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    env_file: PathLike | None = None,
    allow_insecure_http: bool = False,
    new_ledger: bool = False,
    on_event: OnEvent | None = None,
    stop: threading.Event | None = None,
) -> Result:
    """``zsync reconcile``: poll every submitted item, resend pending and errored ones,
    recheck conflicts."""
    common = _Common(ledger, api_base, api_key, env_file, allow_insecure_http, new_ledger)

    try:
        run = _run_options(
            concurrency=concurrency,
            rate=rate,
            poll=True,
            poll_seconds=poll_seconds,
            poll_interval=poll_interval,
            max_duration=max_duration,
            metrics_file=metrics_file,
        )
    except UsageError as exc:
        return _failed("reconcile", exc, api_key)
    return _send("reconcile", common, on_event, stop, lambda ctx: operations.reconcile(ctx, run))


def retry_failed(
    *,
    include_rejected: bool = False,
    preview: bool = False,
    poll: bool = True,
    concurrency: int | str | None = None,
    rate: float | None = None,
    poll_seconds: float = 300.0,
    poll_interval: float = 6.0,
    max_duration: float | None = None,
    metrics_file: PathLike | None = None,
    ledger: PathLike | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    env_file: PathLike | None = None,
    allow_insecure_http: bool = False,
    new_ledger: bool = False,
    on_event: OnEvent | None = None,
    stop: threading.Event | None = None,
) -> Result:
    """``zsync retry-failed``: re-queue signals whose processing failed and resend items
    that errored (``include_rejected``: rejected ones too). ``preview`` changes nothing:
    the items that would be retried are ``details``, their number ``counts["would_retry"]``.
    """
    common = _Common(ledger, api_base, api_key, env_file, allow_insecure_http, new_ledger)
    if preview:
        try:
            items = views.retry_candidates(common.settings(), include_rejected)
        except ZsyncError as exc:
            return _failed("retry-failed", exc, api_key)
        return Result("retry-failed", counts={"would_retry": len(items)}, details=items)

    try:
        run = _run_options(
            concurrency=concurrency,
            rate=rate,
            poll=poll,
            poll_seconds=poll_seconds,
            poll_interval=poll_interval,
            max_duration=max_duration,
            metrics_file=metrics_file,
        )
    except UsageError as exc:
        return _failed("retry-failed", exc, api_key)
    return _send(
        "retry-failed",
        common,
        on_event,
        stop,
        lambda ctx: operations.retry_failed(ctx, run, include_rejected=include_rejected),
    )


def verify(
    *,
    repair: bool = False,
    rate: float | None = None,
    examples: int = 5,
    ledger: PathLike | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    env_file: PathLike | None = None,
    allow_insecure_http: bool = False,
    new_ledger: bool = False,
    stop: threading.Event | None = None,
) -> Result:
    """``zsync verify``: compare the ledger with the signals Zentrik lists (exit 0 when they
    agree, 1 on drift); ``repair`` adopts the server's truth and rebuilds a lost ledger.
    ``counts`` is the drift by class; ``details`` the :class:`~zsync.truth.VerifyReport`."""
    common = _Common(ledger, api_base, api_key, env_file, allow_insecure_http, new_ledger)
    secret = api_key
    try:
        if rate is not None and not rate > 0:
            raise UsageError(f"rate={rate!r} must be more than 0")
        if not 0 <= examples <= 100:
            raise UsageError(f"examples={examples!r} is not from 0 to 100")
        settings = common.settings()
        secret = settings.api_key
        report = verify_ledger(
            settings, repair=repair, rate=rate, examples=examples, stop_event=stop
        )
    except ZsyncError as exc:
        return _failed("verify", exc, secret)
    return Result(
        "verify",
        report.exit_code,
        counts={name: drift.count for name, drift in report.classes.items()},
        problems=[config.redact(p, secret) for p in report.problems],
        duration=report.seconds,
        details=report,
    )


def status(
    *,
    ledger: PathLike | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    env_file: PathLike | None = None,
    allow_insecure_http: bool = False,
    new_ledger: bool = False,
) -> Result:
    """``zsync status``: the ledger's items by status (``counts``), recent runs, the lock
    holder and items that need attention (``details``, the dict ``status --json`` prints).
    Reads the ledger only; needs no key."""
    common = _Common(ledger, api_base, api_key, env_file, allow_insecure_http, new_ledger)
    try:
        info = views.status(common.settings())
    except ZsyncError as exc:
        return _failed("status", exc, api_key)
    return Result("status", counts=dict(info["counts"]), details=info)
