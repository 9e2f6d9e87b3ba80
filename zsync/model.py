"""Value types shared by the stages: what flows down the pipeline, and nothing that acts.

    read  -> Record | Problem | Schema | StateMessage | Idle
    shape -> Prepared | Invalid
    plan  -> Intent (committed first), then Job (SendJob, PollJob, UpdateJob, ...)
    engine-> Outcome (applied to the ledger by the one writer), Event (for the console)
    run   -> RunResult (rendered by report, metrics and the CLI)

Every item status is a :class:`Status`; the sets below name the groups the stages decide by.
This module imports nothing of zsync but the exit-code enum.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from zsync.errors import ExitCode, ZsyncError


class Status(StrEnum):
    """An item's status in the ledger (see the README's "Item statuses")."""

    PENDING = "pending"  # intent recorded; resent with the same body and key
    SUBMITTED = "submitted"  # accepted by the server; publicId stored; processing
    PROCESSED = "processed"
    FAILED = "failed"  # the server's processing failed; retry-failed re-queues it
    REJECTED = "rejected"  # permanent 4xx
    ERROR = "error"  # transient failures outlasted the run's budget; resent next run
    CONFLICT = "conflict"  # 409; settled by lookup
    INVALID = "invalid"  # failed local validation; never sent
    DELETED = "deleted"  # deleted by --prune, or found gone from the server


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
# Accepted by the server: never created again for the same content.
ACCEPTED = frozenset({Status.SUBMITTED, Status.PROCESSED, Status.FAILED})
# Intent recorded but not (known to be) accepted: re-sent with the stored body and key.
UNSETTLED = frozenset({Status.PENDING, Status.ERROR})
# Processing has ended, one way or the other.
TERMINAL = frozenset({Status.PROCESSED, Status.FAILED})
# Not finished: the oldest of these is what "oldest unfinished" reports.
UNFINISHED = frozenset({Status.PENDING, Status.SUBMITTED, Status.ERROR, Status.CONFLICT})
# Statuses whose item carries a reason a person should read.
NEEDS_LOOK = frozenset(
    {Status.REJECTED, Status.ERROR, Status.CONFLICT, Status.FAILED, Status.INVALID}
)


class OutcomeKind(StrEnum):
    """What one job came to: an :class:`Outcome`'s kind, and the kind of the ledger event
    the writer records for it (the values are the events table's, logs' and JSON's)."""

    CREATED = "created"  # a new signal (201)
    REPLAYED = "replayed"  # a create answered with an existing signal (a replay, dedupe)
    ADOPTED = "adopted"  # a 409 naming the signal that holds the record
    UPDATED = "updated"  # PATCHed, then processing re-queued
    REQUEUED = "requeued"  # processing re-queued (retry-failed)
    PROCESSED = "processed"  # a poll saw processing finish
    FAILED = "failed"  # a poll saw processing fail
    POLLING = "polling"  # a poll saw it still processing (or the poll failed, transiently)
    POLL_REJECTED = "poll-rejected"  # a poll answered with a permanent error
    DELETED = "deleted"  # deleted by --prune
    GONE = "gone"  # the server no longer holds the signal (404)
    CONFLICT = "conflict"
    REJECTED = "rejected"
    ERROR = "error"  # transient failures outlasted the budget: resent next run


class EventKind(StrEnum):
    """What an :class:`Event` tells: an item's outcome (the :class:`OutcomeKind` values), a
    planning note about an item, or news of the run itself."""

    CREATED = "created"
    REPLAYED = "replayed"
    ADOPTED = "adopted"
    UPDATED = "updated"
    REQUEUED = "requeued"
    PROCESSED = "processed"
    FAILED = "failed"
    POLLING = "polling"
    POLL_REJECTED = "poll-rejected"
    DELETED = "deleted"
    GONE = "gone"
    CONFLICT = "conflict"
    REJECTED = "rejected"
    ERROR = "error"
    # Planning, per item.
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    CHANGED = "changed"
    DEFERRED = "deferred"
    WOULD_SEND = "would-send"
    WOULD_UPDATE = "would-update"
    WOULD_DELETE = "would-delete"
    PRUNE_REFUSED = "prune-refused"
    # The run.
    RETRY = "retry"
    CONCURRENCY = "concurrency"
    PROGRESS = "progress"
    TIMEOUT = "timeout"
    API_DOWN = "api-down"
    BOOKMARK = "bookmark"
    NOTICE = "notice"
    WARNING = "warning"


# -- read -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One record as read: where it came from and its parsed JSON value."""

    origin: str  # "in.jsonl:12" (1-based line), "in.json[3]" (0-based index), "<stdin>:4"
    data: Any  # the parsed JSON value; shape checks that it is an object
    stream: str | None = None  # the Singer stream it came from
    # the stream's SCHEMA key_properties (Singer only; () when it has none)
    key: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """Input that is not a record (bad JSON, an unreadable line): where, and what."""

    origin: str  # "in.json:3:17" (line:column when known), "in.jsonl:5"
    message: str  # one line, without the origin


@dataclass(frozen=True, slots=True)
class Schema:
    """A Singer SCHEMA message: a stream announced (its mapping is checked then)."""

    origin: str
    stream: str


@dataclass(frozen=True, slots=True)
class StateMessage:
    """A bookmark from the source: the value of a Singer/source-program STATE line."""

    origin: str
    value: Any


class Idle:
    """The source has sent nothing for a moment. The planner sends what it holds instead
    of waiting for a full batch, and a stop is noticed while the source is quiet."""

    __slots__ = ()


IDLE = Idle()

# What a reader yields.
Item = Record | Problem | Schema | StateMessage | Idle


# -- shape ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepared:
    """A record shaped for sending: its create body, canonical bytes, hashes and key."""

    origin: str
    external_id: str
    body: dict[str, Any]  # the create body: the template's fields for the kind
    canonical: bytes  # canonical_json(body)
    payload_hash: str  # sha256 hex of canonical
    dropped: tuple[str, ...]  # input keys the template does not send (besides "kind"), sorted
    raw_hash: str | None = None  # hash of the input line it came from, when known (JSONL)
    source: str | None = None  # where it came from, for prune: see plan.stream.source_of


@dataclass(frozen=True, slots=True)
class Invalid:
    """A record that is not sent: where, which field, why; a duplicate of an earlier record
    of the same input is its own kind."""

    origin: str
    external_id: str | None
    field: str | None
    message: str  # one line, starting with the origin
    kind: EventKind = EventKind.INVALID  # or DUPLICATE


def problem_to_invalid(p: Problem) -> Invalid:
    """An input problem as an invalid record (never sent)."""
    return Invalid(p.origin, None, None, f"{p.origin}: {p.message}")


# -- plan -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemRow:
    """What the planner needs to know of one ledger item."""

    external_id: str
    status: str
    payload_hash: str
    public_id: str | None
    raw_hash: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item as the ledger holds it, with its stored body and key (for a resend)."""

    external_id: str
    status: str
    payload: str | None
    idempotency_key: str | None
    public_id: str | None
    origin: str | None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Intent:
    """A create about to be sent: committed before the request leaves."""

    external_id: str
    payload_hash: str
    payload: str
    idempotency_key: str
    origin: str
    field_hashes: str | None = None
    raw_hash: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class SendJob:
    """Create a signal: the exact canonical bytes with their Idempotency-Key."""

    external_id: str
    payload: bytes
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class PollJob:
    """Ask the server how a signal's processing is going."""

    external_id: str
    public_id: str
    interval: float  # seconds until this poll is due (the engine schedules it)


@dataclass(frozen=True, slots=True)
class RequeueJob:
    """Re-queue a signal's processing (retry-failed)."""

    external_id: str
    public_id: str


@dataclass(frozen=True, slots=True)
class UpdateJob:
    """A changed record: PATCH the changed fields, then re-queue processing."""

    external_id: str
    public_id: str
    fields: dict[str, Any]
    intent: Intent


@dataclass(frozen=True, slots=True)
class DeleteJob:
    """Delete a signal on the server (--prune)."""

    external_id: str
    public_id: str


Job = SendJob | PollJob | RequeueJob | UpdateJob | DeleteJob


# -- engine -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one request settled for one item; applied by the writer in batches."""

    external_id: str
    kind: OutcomeKind
    status: str | None = None  # the item's new status (None: leave it)
    http_status: int | None = None
    public_id: str | None = None
    job_id: str | None = None
    detail: str | None = None
    attempts: int = 0
    # Set when the server now holds a new body for the item (an update or a deliberate resend).
    intent: Intent | None = None


@dataclass
class Event:
    """Something a person may want to see; the CLI decides how (or whether) to show it."""

    kind: EventKind
    external_id: str | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


Emit = Callable[[Event], None]
# Where a reader or the planner says something that is not a record's problem (one line).
Warn = Callable[[str], None]


def ignore(_: Event) -> None:
    """An Emit that shows nothing."""


# The most requests the engine keeps in flight, adaptive or fixed (--concurrency 1 to this).
CONCURRENCY_CEILING = 64


@dataclass
class RunOptions:
    """How a run sends: concurrency, rate, delay, polling."""

    concurrency: int | None = None  # None: adaptive, up to CONCURRENCY_CEILING
    rate: float | None = None
    delay_ms: int = 0
    poll: bool = True
    poll_seconds: float = 300.0
    poll_interval: float = 6.0
    first_poll: float = 0.5
    max_duration: float | None = None
    metrics_file: Path | None = None  # Prometheus textfile written at the end of the run


# Outcomes after which the run as a whole is not clean (exit 1).
_FAILING = ("rejected", "failed", "invalid", "duplicate", "conflict", "prune-refused")
# Outcomes that mean "the next run has work to finish" (exit 75).
_UNFINISHED_KINDS = ("error", "pending", "deferred")


@dataclass
class RunResult:
    """What a run did: counts by outcome, requests by answer, and how it ended. Changed on
    the caller's thread only; :attr:`exit_code` is the command's exit code."""

    command: str
    run_id: int | None = None
    counts: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    interrupted: bool = False
    timed_out: bool = False
    api_down: bool = False  # every request failed for a whole wait budget: stopped early
    polled: bool = True
    duration: float = 0.0
    fatal: ZsyncError | None = None
    problems: list[str] = field(default_factory=list)
    dropped_fields: dict[str, tuple[int, str]] = field(default_factory=dict)
    retries: int = 0
    seen: int = 0  # input records read so far (push only)
    total: int | None = None  # input records expected, when cheaply known (progress ETA)
    concurrency: dict[str, Any] = field(default_factory=dict)  # the limit reached, by the engine
    # Sends in doubt inside their doubt horizon (externalId -> when it ends, epoch seconds):
    # this run neither looks them up nor resends them.
    held: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> ExitCode:
        """The command's exit code: fatal error, interrupted, items failed, pending, or OK."""
        if self.fatal is not None:
            return self.fatal.exit_code
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if any(self.counts[k] for k in _FAILING):
            return ExitCode.ITEMS_FAILED
        if any(self.counts[k] for k in _UNFINISHED_KINDS) or self.timed_out or self.api_down:
            return ExitCode.PENDING
        if self.polled and self.counts["submitted"]:
            return ExitCode.PENDING
        return ExitCode.OK

    def count(self, kind: str, n: int = 1) -> None:
        """Add ``n`` to the count of ``kind`` (an outcome, a planning verdict, ``submitted``).

        Called on the caller's thread only (the planner and the engine's writer): worker
        threads hand their counts back inside what they return."""
        self.counts[kind] += n

    def settle_submitted(self) -> None:
        """One item counted ``submitted`` in this run has settled (processed, failed, gone)."""
        if self.counts["submitted"] > 0:
            self.counts["submitted"] -= 1

    def add_requests(self, statuses: Iterable[str], retries: int = 0) -> None:
        """Count the answers of a job's requests (status codes, ``transport``) and retries."""
        self.requests.update(statuses)
        self.retries += retries

    def note_problem(self, message: str, keep: int = 50) -> None:
        """Keep a problem's one line for the summary (the first ``keep`` only)."""
        if len(self.problems) < keep:
            self.problems.append(message)


# -- server truth -------------------------------------------------------------------------------

# payload_hash of a ledger row adopted from the server's copy (verify --repair, a rebuild): no
# input record has been matched to it yet. The next push compares field by field.
ADOPTED_HASH = "adopted"
# Prefixed to the payload_hash of a row whose signal was found deleted on the server (a 404):
# its record is not created again while it is unchanged; a changed record is created anew.
GONE_HASH_PREFIX = "gone:"


@dataclass(frozen=True, slots=True)
class ServerSignal:
    """One signal as the list endpoint showed it."""

    public_id: str
    external_id: str | None
    source_key: str | None
    status: str | None
    field_hashes: str  # per-field hashes of the fields it carries besides server metadata
    job_id: str | None = None


@dataclass
class ServerIndex:
    """What the server holds, read from the list endpoint in one pass."""

    by_external_id: dict[str, list[ServerSignal]] = field(default_factory=dict)
    by_public_id: dict[str, ServerSignal] = field(default_factory=dict)
    shows_external_id: bool = True  # False: the list hides it, nothing can be matched by it
    complete: bool = True  # False: some signals may be missing (see problems)
    problems: list[str] = field(default_factory=list)  # one line each, for warnings
    requests: int = 0
    last_public_id: str | None = None  # listed last by the pass that counts: the list's end

    def find(self, external_id: str) -> ServerSignal | None:
        """The signal for a record: the oldest when the server holds several."""
        found = self.by_external_id.get(external_id)
        return found[0] if found else None
