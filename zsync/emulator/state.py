"""The emulated workspace: signals, idempotency records, identity index and the counters
tests read as truth. Knows nothing of HTTP; one lock guards all of it."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from zsync.emulator.config import EmulatorConfig
from zsync.emulator.faults import FaultInjector
from zsync.emulator.validation import ApiFailure, check_create, check_patch, parse_object

FAULT_NAMES = ("reset", "dropped_after_commit", "error_503", "rate_limited_429", "latency")
QUEUED_SHARE = 0.2
FAILURE_MESSAGE = "processing failed (injected by the emulator's fail_rate)"


def encode(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _iso(wall: float) -> str:
    return (
        datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    # True only when this request made a new signal: the one case drop-after-commit applies to.
    created: bool = False


@dataclass
class _Signal:
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

    def status(self, now: float) -> str:
        elapsed = now - self.t0
        if elapsed >= self.duration:
            return "failed" if self.will_fail else "processed"
        return "queued" if elapsed < self.duration * QUEUED_SHARE else "processing"

    def to_json(self, now: float, workspace_id: str) -> dict[str, Any]:
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
            "workspaceId": workspace_id,
            "status": status,
            "externalId": self.fields.get("externalId"),
            "name": self.fields.get("name"),
            "signalType": self._signal_type(),
            "createdAt": _iso(self.created_wall),
            "updatedAt": _iso(updated),
            "processing": {
                "attempts": self.attempts,
                "error": FAILURE_MESSAGE if status == "failed" else None,
            },
        }
        for name, value in self.fields.items():
            out.setdefault(name, value)
        return out

    def _signal_type(self) -> Any:
        # raw_signal bodies carry their type inside the source descriptor (see the template).
        if "signalType" in self.fields:
            return self.fields["signalType"]
        source = self.fields.get("source")
        external = source.get("external_data") if isinstance(source, dict) else None
        return external.get("signalType") if isinstance(external, dict) else None

    def receipt(self, now: float, workspace_id: str) -> dict[str, Any]:
        return {
            "publicId": self.public_id,
            "jobId": self.job_id,
            "workspaceId": workspace_id,
            "status": self.status(now),
        }


@dataclass
class _IdempotencyRecord:
    body_hash: str
    answer: Answer | None = None  # None while the first request with the key is in flight


def _not_found(public_id: str) -> ApiFailure:
    return ApiFailure(404, "not_found", f"signal {public_id} not found")


class EmulatorState:
    def __init__(
        self,
        config: EmulatorConfig,
        faults: FaultInjector,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.lock = threading.Lock()
        self._faults = faults
        self._clock = clock
        self._wall = wall
        self._clear()

    def _clear(self) -> None:
        self._signals: dict[str, _Signal] = {}
        self._by_identity: dict[str, str] = {}
        self._idempotency: dict[str, _IdempotencyRecord] = {}
        self._next_number = 1
        self._creates: Counter[str] = Counter()
        self._deleted = 0
        self._requests: Counter[str] = Counter()
        self._fault_counts: Counter[str] = Counter()

    def reset(self) -> None:
        with self.lock:
            self._clear()

    # -- counters -------------------------------------------------------------------------

    def count_request(self, key: str) -> None:
        with self.lock:
            self._requests[key] += 1

    def count_fault(self, name: str) -> None:
        with self.lock:
            self._fault_counts[name] += 1

    # -- signals --------------------------------------------------------------------------

    def _identity(self, fields: dict[str, Any]) -> str | None:
        external_id = fields.get("externalId")
        if self.config.dedupe != "on" or external_id is None:
            return None
        return json.dumps([fields.get("sourceKey"), external_id], sort_keys=True)

    def _requeue(self, signal: _Signal) -> None:
        signal.job_id = f"job-{uuid.uuid4().hex}"
        signal.t0 = self._clock()
        signal.t0_wall = self._wall()
        signal.duration = self.config.process_seconds
        signal.will_fail = self._faults.chance(self.config.fail_rate)

    def create(self, raw: bytes, idempotency_key: str | None, handle_seconds: float) -> Answer:
        body_hash = hashlib.sha256(raw).hexdigest()
        if idempotency_key is not None:
            with self.lock:
                record = self._idempotency.get(idempotency_key)
                if record is None:
                    self._idempotency[idempotency_key] = _IdempotencyRecord(body_hash)
                elif record.answer is None:
                    raise ApiFailure(
                        409,
                        "request_in_progress",
                        "a request with this Idempotency-Key is still being handled",
                    )
                elif record.body_hash != body_hash:
                    raise ApiFailure(
                        409,
                        "idempotency_conflict",
                        "this Idempotency-Key was used with a different request body",
                    )
                else:
                    replayed = record.answer
                    headers = {**replayed.headers, "Idempotent-Replayed": "true"}
                    return Answer(replayed.status, replayed.body, headers)
        try:
            if handle_seconds > 0:
                time.sleep(handle_seconds)
            answer = self._create_unkeyed(raw)
        except BaseException:
            # Like Stripe, a request that did not succeed leaves no record: the same key may
            # be used again (with a corrected body, too).
            if idempotency_key is not None:
                with self.lock:
                    self._idempotency.pop(idempotency_key, None)
            raise
        if idempotency_key is not None:
            with self.lock:
                self._idempotency[idempotency_key].answer = answer
        return answer

    def _create_unkeyed(self, raw: bytes) -> Answer:
        fields = parse_object(raw)
        check_create(fields)
        if str(fields.get("externalId")) in self.config.reject_external_ids:
            raise ApiFailure(
                422,
                "rejected_by_rule",
                "this record is refused by a workspace rule",
                field="externalId",
            )
        identity = self._identity(fields)
        workspace = self.config.workspace_id
        with self.lock:
            now = self._clock()
            existing_id = self._by_identity.get(identity) if identity is not None else None
            if existing_id is not None:
                existing = self._signals[existing_id]
                answer = self.config.duplicate_answer
                if answer == "conflict":
                    raise ApiFailure(
                        409,
                        "duplicate_external_id",
                        "a signal with this sourceKey and externalId already exists",
                        extra={"publicId": existing_id},
                    )
                status = 200 if answer == "replay" else 201
                return Answer(status, encode(existing.receipt(now, workspace)))
            public_id = f"SIGNAL-{self._next_number}"
            self._next_number += 1
            wall = self._wall()
            signal = _Signal(public_id, "", fields, wall, wall, now, wall, 0.0, False)
            self._requeue(signal)
            self._signals[public_id] = signal
            if identity is not None:
                self._by_identity[identity] = public_id
            if fields.get("externalId") is not None:
                self._creates[str(fields["externalId"])] += 1
            receipt = signal.receipt(now, workspace)
            receipt["status"] = "queued"
            return Answer(201, encode(receipt), created=True)

    def get(self, public_id: str) -> dict[str, Any]:
        with self.lock:
            signal = self._signals.get(public_id)
            if signal is None:
                raise _not_found(public_id)
            return signal.to_json(self._clock(), self.config.workspace_id)

    def list(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        with self.lock:
            now = self._clock()
            live = list(self._signals.values())
            page = live[offset : offset + limit]
            return [s.to_json(now, self.config.workspace_id) for s in page], len(live)

    def patch(self, public_id: str, raw: bytes) -> dict[str, Any]:
        changes = parse_object(raw)
        check_patch(changes)
        with self.lock:
            signal = self._signals.get(public_id)
            if signal is None:
                raise _not_found(public_id)
            old_identity = self._identity(signal.fields)
            new_identity = self._identity({**signal.fields, **changes})
            if new_identity != old_identity:
                holder = self._by_identity.get(new_identity) if new_identity else None
                if holder is not None and holder != public_id:
                    raise ApiFailure(
                        409,
                        "duplicate_external_id",
                        "another signal already has this sourceKey and externalId",
                        extra={"publicId": holder},
                    )
                if old_identity is not None:
                    self._by_identity.pop(old_identity, None)
                if new_identity is not None:
                    self._by_identity[new_identity] = public_id
            signal.fields.update(changes)
            signal.changed_wall = self._wall()
            return signal.to_json(self._clock(), self.config.workspace_id)

    def delete(self, public_id: str) -> None:
        with self.lock:
            signal = self._signals.pop(public_id, None)
            if signal is None:
                raise _not_found(public_id)
            identity = self._identity(signal.fields)
            if identity is not None and self._by_identity.get(identity) == public_id:
                del self._by_identity[identity]
            self._deleted += 1

    def process(self, public_id: str) -> dict[str, Any]:
        with self.lock:
            signal = self._signals.get(public_id)
            if signal is None:
                raise _not_found(public_id)
            self._requeue(signal)
            signal.attempts += 1
            signal.changed_wall = signal.t0_wall
            return {"publicId": public_id, "jobId": signal.job_id, "status": "queued"}

    # -- truth ----------------------------------------------------------------------------

    def truth(self) -> dict[str, Any]:
        with self.lock:
            now = self._clock()
            signals = [s.to_json(now, self.config.workspace_id) for s in self._signals.values()]
            live: Counter[str] = Counter(
                str(s["externalId"]) for s in signals if s["externalId"] is not None
            )
            faults = {name: self._fault_counts.get(name, 0) for name in FAULT_NAMES}
            return {
                "signals": signals,
                "creates_by_external_id": dict(self._creates),
                "live_by_external_id": dict(live),
                "deleted": self._deleted,
                "idempotency_keys": len(self._idempotency),
                "requests": dict(self._requests),
                "faults": faults,
            }
