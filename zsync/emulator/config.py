"""What an emulator instance pretends to be, and which faults it injects.

Every behaviour the public API contract leaves open (the [I] items of the API reference) is a
field here, so zsync can be tested against each variant; the defaults are the emulator's
original behaviour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from zsync.config import DEV_API_KEY

ALL_SCOPES: tuple[str, ...] = ("signals:read", "signals:write", "signals:delete")
DEDUPE_MODES = ("on", "off")
# replay = 200 with the existing receipt, created = 201 with it, conflict = 409;
# conflict-if-changed = 200 for an identical body, 409 when the content differs.
DUPLICATE_ANSWERS = ("replay", "created", "conflict", "conflict-if-changed")
IDEMPOTENCY_MODES = ("honour", "ignore")
CONFLICT_BODIES = ("named", "bare")
# created = oldest first; newest = newest first; random = a fixed arbitrary order (as if sorted
# by a random id, so a new signal lands anywhere); unstable = reshuffled on every read.
LIST_ORDERS = ("created", "newest", "random", "unstable")
LIST_FAULTS = ("none", "not-array", "no-headers", "shrink", "garbage-items")
FAILURE_REASON_PLACES = ("processing.error", "processing.error.message", "error", "none")
RETRY_AFTER_FORMATS = ("seconds", "http-date", "absent")
DELETE_STATUSES = (200, 204)
# readyz always reports these two; extra checks may not override them.
CORE_CHECKS = ("database", "workspaceQueue")

# The knobs chaos tests turn while the emulator keeps serving; everything else is fixed at start
# because changing it mid-run (key, workspace, dedupe rules) would make the truth incoherent.
LIVE_FIELDS = frozenset(
    {
        "latency_ms",
        "error_rate",
        "reset_rate",
        "drop_after_commit_rate",
        "rate_limit",
        "fail_rate",
        "not_ready",
        "process_seconds",
        "handle_ms",
        "reject_external_ids",
        "inflight_cost_ms",
        "max_inflight",
        "list_fault",
        "retry_after",
        "idempotency_ttl_seconds",
        "list_page_cap",
        "list_drops_external_id_every",
        "late_commit_rate",
        "late_commit_seconds",
    }
)

_RATES = ("fail_rate", "error_rate", "reset_rate", "drop_after_commit_rate", "late_commit_rate")
_COUNTS = ("max_inflight", "list_page_cap", "list_drops_external_id_every")
_NON_NEGATIVE = (
    "process_seconds",
    "latency_ms",
    "rate_limit",
    "warmup_seconds",
    "handle_ms",
    "inflight_cost_ms",
    "idempotency_ttl_seconds",
    "late_commit_seconds",
)
CHOICES: dict[str, tuple[object, ...]] = {
    "dedupe": DEDUPE_MODES,
    "duplicate_answer": DUPLICATE_ANSWERS,
    "idempotency": IDEMPOTENCY_MODES,
    "conflict_body": CONFLICT_BODIES,
    "list_order": LIST_ORDERS,
    "list_fault": LIST_FAULTS,
    "failure_reason_at": FAILURE_REASON_PLACES,
    "retry_after": RETRY_AFTER_FORMATS,
    "delete_status": DELETE_STATUSES,
}
_OPTIONAL_NAMES = ("receipt_workspace", "echo_key_in")


@dataclass
class EmulatorConfig:
    """One emulator's identity, contract variants and faults. Rates (``*_rate``) are
    probabilities from 0 to 1 per request (``fail_rate``: per processing of a signal);
    ``*_ms`` are milliseconds, ``*_seconds`` seconds; ``rate_limit`` is requests per second
    per key (0 = none). Fields in :data:`LIVE_FIELDS` may change while it serves
    (:meth:`update`); the rest are fixed at start."""

    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str = DEV_API_KEY
    workspace_id: str = "6f1c2d3e-0000-4000-8000-000000000001"
    workspace_name: str = "Emulated workspace"
    scopes: tuple[str, ...] = ALL_SCOPES
    process_seconds: float = 2.0
    fail_rate: float = 0.0
    dedupe: str = "on"
    duplicate_answer: str = "replay"
    latency_ms: float = 0.0
    rate_limit: float = 0.0
    error_rate: float = 0.0
    reset_rate: float = 0.0
    drop_after_commit_rate: float = 0.0
    warmup_seconds: float = 0.0
    not_ready: bool = False
    seed: int | None = None
    inspect: bool = False
    # Time a create spends being handled after its Idempotency-Key is reserved: a repeat with the
    # same key inside this window gets 409 request_in_progress, as when a client's timeout is
    # shorter than the server's work.
    handle_ms: float = 0.0
    # externalIds the server refuses with 422 (a server-side rule the client cannot know);
    # how tests and rehearsals produce a rejection for a record that passes local checks.
    reject_external_ids: tuple[str, ...] = ()
    # "ignore": the Idempotency-Key header is not looked at, so a resend is a new create.
    idempotency: str = "honour"
    # How long a key is remembered (0 = for ever); after that a resend is a new create.
    idempotency_ttl_seconds: float = 0.0
    # Whether a 409 for a repeated identity names the existing signal (error.publicId).
    conflict_body: str = "named"
    list_order: str = "created"
    list_hides_external_id: bool = False
    list_fault: str = "none"
    # Pages hold at most this many items whatever the limit asked (0 = the documented 100).
    list_page_cap: int = 0
    # Every Nth list item (counted across pages from the 1st) lacks externalId (0 = none).
    list_drops_external_id_every: int = 0
    failure_reason: str = "transcript too short"
    failure_reason_at: str = "processing.error"
    # Queueing server: each request waits this long per other request in flight when it
    # arrives; with max_inflight > 0 a request arriving while that many are in flight gets 503.
    inflight_cost_ms: float = 0.0
    max_inflight: int = 0
    retry_after: str = "seconds"
    receipt_without_job_id: bool = False
    # A workspaceId for receipts other than the auth context's: a misrouted key or a proxy.
    receipt_workspace: str | None = None
    # (name, value) checks readyz reports beside database and workspaceQueue, e.g. a
    # degraded cache that does not make the API unready.
    readyz_extra_checks: tuple[tuple[str, str], ...] = ()
    delete_status: int = 204
    # Identity dedupe that remembers deleted signals: a repeated identity is answered with
    # the deleted signal's receipt (or a 409 naming it), as if it still existed.
    dedupe_keeps_deleted: bool = False
    # Late commits: this share of creates is still being handled when the connection drops
    # (the client sees a reset); the signal is committed late_commit_seconds later.
    late_commit_rate: float = 0.0
    late_commit_seconds: float = 0.0
    # A hostile server: this receipt field carries the bearer key the client presented.
    echo_key_in: str | None = None

    def __post_init__(self) -> None:
        self.scopes = tuple(self.scopes)
        self.reject_external_ids = tuple(self.reject_external_ids)
        extra = self.readyz_extra_checks
        pairs = extra.items() if isinstance(extra, dict) else extra
        self.readyz_extra_checks = tuple((str(name), str(value)) for name, value in pairs)
        self.validate()

    def validate(self) -> None:
        """ValueError naming the first field out of its range or choices."""
        if not self.api_key:
            raise ValueError("api_key must not be empty")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")
        for name in _RATES:
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        for name in _NON_NEGATIVE:
            value = float(getattr(self, name))
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number >= 0, not {value}")
        for name in _COUNTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, not {value!r}")
            if value < 0:
                raise ValueError(f"{name} must be >= 0 (0 = off), not {value}")
        if not self.failure_reason.strip():
            raise ValueError("failure_reason must not be empty")
        for name in _OPTIONAL_NAMES:
            value = getattr(self, name)
            if value is not None and not value.strip():
                raise ValueError(f"{name} must not be empty when set")
        for check, state in self.readyz_extra_checks:
            if not check.strip() or not state.strip():
                raise ValueError(f"readyz check {check!r}={state!r} needs a name and a value")
            if check in CORE_CHECKS:
                raise ValueError(f"readyz check {check!r} is always reported; pick another name")

    def update(self, **changes: object) -> None:
        """Apply live changes atomically: all valid, or none applied."""
        known = {f.name for f in fields(self)}
        for name in changes:
            if name not in known:
                raise TypeError(f"unknown emulator setting {name!r}")
            if name not in LIVE_FIELDS:
                raise TypeError(f"{name!r} cannot change while the emulator runs")
        previous = {name: getattr(self, name) for name in changes}
        for name, value in changes.items():
            setattr(self, name, value)
        try:
            self.validate()
        except ValueError:
            for name, value in previous.items():
                setattr(self, name, value)
            raise
