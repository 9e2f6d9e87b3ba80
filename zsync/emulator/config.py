"""What an emulator instance pretends to be, and which faults it injects."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from zsync.config import DEV_API_KEY

ALL_SCOPES: tuple[str, ...] = ("signals:read", "signals:write", "signals:delete")
DEDUPE_MODES = ("on", "off")
DUPLICATE_ANSWERS = ("replay", "created", "conflict")

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
    }
)

_RATES = ("fail_rate", "error_rate", "reset_rate", "drop_after_commit_rate")
_NON_NEGATIVE = ("process_seconds", "latency_ms", "rate_limit", "warmup_seconds", "handle_ms")


@dataclass
class EmulatorConfig:
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

    def __post_init__(self) -> None:
        self.scopes = tuple(self.scopes)
        self.reject_external_ids = tuple(self.reject_external_ids)
        self.validate()

    def validate(self) -> None:
        if not self.api_key:
            raise ValueError("api_key must not be empty")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range")
        if self.dedupe not in DEDUPE_MODES:
            raise ValueError(f"dedupe must be one of {DEDUPE_MODES}, not {self.dedupe!r}")
        if self.duplicate_answer not in DUPLICATE_ANSWERS:
            raise ValueError(
                f"duplicate_answer must be one of {DUPLICATE_ANSWERS}, "
                f"not {self.duplicate_answer!r}"
            )
        for name in _RATES:
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        for name in _NON_NEGATIVE:
            value = float(getattr(self, name))
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number >= 0, not {value}")

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
