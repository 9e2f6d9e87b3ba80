"""One emulated signal: its processing clock, and how the server renders it (the full signal
for GET and list, the receipt for create) under the configured contract variant."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from zsync.emulator.config import EmulatorConfig

QUEUED_SHARE = 0.2


def _iso(wall: float) -> str:
    return (
        datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def content_digest(fields: dict[str, Any]) -> str:
    """Equal for bodies with equal content, whatever their key order or spacing."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class Signal:
    """One stored signal. ``t0`` (monotonic) and ``t0_wall`` mark when its current processing
    began; it takes ``duration`` seconds, the first fifth of them queued, and then fails if
    ``will_fail``, else is processed."""

    public_id: str
    job_id: str
    fields: dict[str, Any]
    created_wall: float
    changed_wall: float
    t0: float
    t0_wall: float
    duration: float
    will_fail: bool
    attempts: int = 1
    # What the create body said, to tell an identical repeat from a changed one.
    digest: str = ""
    # Where the signal sits in a "random" list order; drawn once, at create.
    sort_key: float = 0.0

    def status(self, now: float) -> str:
        """queued, processing, processed or failed at monotonic time ``now``."""
        elapsed = now - self.t0
        if elapsed >= self.duration:
            return "failed" if self.will_fail else "processed"
        return "queued" if elapsed < self.duration * QUEUED_SHARE else "processing"

    def to_json(self, now: float, config: EmulatorConfig) -> dict[str, Any]:
        """The full signal as GET and list show it at ``now``, with the failure reason where the
        configured variant puts it and the body's other fields echoed."""
        status = self.status(now)
        updated = self.changed_wall
        elapsed = now - self.t0
        # The clock moves the status without a write, so updatedAt follows the last transition.
        for share in (QUEUED_SHARE, 1.0):
            if elapsed >= self.duration * share:
                updated = max(updated, self.t0_wall + self.duration * share)
        out: dict[str, Any] = {
            "publicId": self.public_id,
            "jobId": self.job_id,
            "workspaceId": config.workspace_id,
            "status": status,
            "externalId": self.fields.get("externalId"),
            "name": self.fields.get("name"),
            "signalType": self._signal_type(),
            "createdAt": _iso(self.created_wall),
            "updatedAt": _iso(updated),
            "processing": {"status": status, "attempts": self.attempts},
        }
        _place_failure_reason(out, config, status == "failed")
        for name, value in self.fields.items():
            out.setdefault(name, value)
        if config.echo_key_in is not None and config.echo_key_in in out:
            _echo_key(out, config)  # a hostile server echoes it in every signal it shows
        return out

    def _signal_type(self) -> Any:
        # raw_signal bodies carry their type inside the source descriptor (see the template).
        if "signalType" in self.fields:
            return self.fields["signalType"]
        source = self.fields.get("source")
        external = source.get("external_data") if isinstance(source, dict) else None
        return external.get("signalType") if isinstance(external, dict) else None

    def receipt(self, now: float, config: EmulatorConfig) -> dict[str, Any]:
        """The create answer: publicId, jobId (unless configured away), workspaceId and status."""
        receipt: dict[str, Any] = {
            "publicId": self.public_id,
            "jobId": self.job_id,
            "workspaceId": config.receipt_workspace or config.workspace_id,
            "status": self.status(now),
        }
        if config.receipt_without_job_id:
            del receipt["jobId"]
        if config.echo_key_in is not None:
            _echo_key(receipt, config)
        return receipt


def _echo_key(out: dict[str, Any], config: EmulatorConfig) -> None:
    name = str(config.echo_key_in)
    usual = out.get(name)
    out[name] = f"{usual}-{config.api_key}" if isinstance(usual, str) else config.api_key


def _place_failure_reason(out: dict[str, Any], config: EmulatorConfig, failed: bool) -> None:
    reason = config.failure_reason if failed else None
    where = config.failure_reason_at
    if where == "processing.error":
        out["processing"]["error"] = reason
    elif where == "processing.error.message":
        error = {"code": "processing_failed", "message": reason} if failed else None
        out["processing"]["error"] = error
    elif where == "error":
        out["error"] = reason
