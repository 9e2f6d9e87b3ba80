"""The emulated workspace: signals, idempotency records, identity index and the counters
tests read as truth. Knows nothing of HTTP; one lock guards all of it."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zsync.emulator.config import EmulatorConfig
from zsync.emulator.faults import FaultInjector
from zsync.emulator.signals import Signal, content_digest
from zsync.emulator.validation import ApiFailure, check_create, check_patch, parse_object

FAULT_NAMES = (
    "reset",
    "dropped_after_commit",
    "error_503",
    "rate_limited_429",
    "latency",
    "overloaded_503",
    "inflight_delay",
    "late_commit",
)


def encode(value: object) -> bytes:
    """Compact UTF-8 JSON, as the API writes its bodies."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class Answer:
    """One HTTP answer from the state to the handler: status, JSON body, extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    # True only when this request made a new signal: the one case drop-after-commit applies to.
    created: bool = False


@dataclass
class _IdempotencyRecord:
    body_hash: str
    at: float  # when the answer was stored (or the key reserved), for the key's lifetime
    answer: Answer | None = None  # None while the first request with the key is in flight


def _not_found(public_id: str) -> ApiFailure:
    return ApiFailure(404, "not_found", f"signal {public_id} not found")


class EmulatorState:
    """The workspace's signals and the counters tests read as truth, behind one lock;
    ``clock`` (monotonic) times processing and key lifetimes, ``wall`` gives the timestamps
    signals show."""

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
        self._signals: dict[str, Signal] = {}
        # Deleted signals a dedupe that keeps them still answers with (dedupe_keeps_deleted).
        self._tombstones: dict[str, Signal] = {}
        self._by_identity: dict[str, str] = {}
        self._idempotency: dict[str, _IdempotencyRecord] = {}
        self._next_number = 1
        self._creates: Counter[str] = Counter()
        self._creates_by_identity: Counter[str] = Counter()
        self._deleted = 0
        self._requests: Counter[str] = Counter()
        self._fault_counts: Counter[str] = Counter()
        self._list_reads = 0
        self._late_pending = 0  # late commits not landed yet
        # List order draws come from their own generator, so they never shift fault draws.
        self._order_rng = random.Random(self.config.seed)

    def reset(self) -> None:
        """Forget every signal, key and counter: an empty workspace."""
        with self.lock:
            self._clear()

    # -- counters -------------------------------------------------------------------------

    def count_request(self, key: str) -> None:
        """Count one request under ``key`` (method, route template, outcome)."""
        with self.lock:
            self._requests[key] += 1

    def late_started(self) -> None:
        """A create whose connection dropped goes on being handled (late_commit_rate)."""
        with self.lock:
            self._late_pending += 1
            self._fault_counts["late_commit"] += 1

    def late_done(self) -> None:
        """A late commit has landed (or failed): truth stops waiting for it."""
        with self.lock:
            self._late_pending -= 1

    def count_fault(self, name: str) -> None:
        """Count one injected fault (one of :data:`FAULT_NAMES`)."""
        with self.lock:
            self._fault_counts[name] += 1

    # -- signals --------------------------------------------------------------------------

    def _identity(self, fields: dict[str, Any]) -> str | None:
        if self.config.dedupe != "on":
            return None
        return _identity_key(fields)

    def _requeue(self, signal: Signal) -> None:
        signal.job_id = f"job-{uuid.uuid4().hex}"
        signal.t0 = self._clock()
        signal.t0_wall = self._wall()
        signal.duration = self.config.process_seconds
        signal.will_fail = self._faults.chance(self.config.fail_rate)

    def create(self, raw: bytes, idempotency_key: str | None, handle_seconds: float) -> Answer:
        """POST /signals. A known Idempotency-Key replays its stored answer (409 while its first
        request is still handled, or when the body differs); a repeated (sourceKey, externalId)
        is answered as ``duplicate_answer`` says; otherwise a new signal, 201. The request is
        held ``handle_seconds`` (seconds) after its key is reserved. A failed create frees its
        key."""
        if self.config.idempotency == "ignore":
            idempotency_key = None
        if idempotency_key is not None:
            replayed = self._reserve_key(idempotency_key, hashlib.sha256(raw).hexdigest())
            if replayed is not None:
                return replayed
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
                record = self._idempotency[idempotency_key]
                record.answer = answer
                record.at = self._clock()
        return answer

    def _reserve_key(self, key: str, body_hash: str) -> Answer | None:
        """The stored answer to replay, or None once the key is reserved for this request."""
        with self.lock:
            now = self._clock()
            record = self._idempotency.get(key)
            ttl = self.config.idempotency_ttl_seconds
            kept = ttl <= 0 or record is None or record.answer is None or now - record.at <= ttl
            if not kept:
                record = None  # forgotten: this request starts afresh
            if record is None:
                self._idempotency[key] = _IdempotencyRecord(body_hash, now)
                return None
            if record.answer is None:
                raise ApiFailure(
                    409,
                    "request_in_progress",
                    "a request with this Idempotency-Key is still being handled",
                )
            if record.body_hash != body_hash:
                raise ApiFailure(
                    409,
                    "idempotency_conflict",
                    "this Idempotency-Key was used with a different request body",
                )
            replayed = record.answer
            headers = {**replayed.headers, "Idempotent-Replayed": "true"}
            return Answer(replayed.status, replayed.body, headers)

    def _duplicate(self, message: str, existing_id: str) -> ApiFailure:
        named = self.config.conflict_body == "named"
        extra = {"publicId": existing_id} if named else None
        return ApiFailure(409, "duplicate_external_id", message, extra=extra)

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
        config = self.config
        key = _identity_key(fields)
        identity = key if config.dedupe == "on" else None
        # Only one answer compares content; the others skip the canonical re-encode.
        digest = content_digest(fields) if config.duplicate_answer == "conflict-if-changed" else ""
        with self.lock:
            now = self._clock()
            existing_id = self._by_identity.get(identity) if identity is not None else None
            if existing_id is not None:
                existing = self._signals.get(existing_id) or self._tombstones[existing_id]
                answer = config.duplicate_answer
                if answer == "conflict" or (
                    answer == "conflict-if-changed" and digest != existing.digest
                ):
                    raise self._duplicate(
                        "a signal with this sourceKey and externalId already exists",
                        existing_id,
                    )
                status = 201 if answer == "created" else 200
                return Answer(status, encode(existing.receipt(now, config)))
            public_id = f"SIGNAL-{self._next_number}"
            self._next_number += 1
            wall = self._wall()
            signal = Signal(public_id, "", fields, wall, wall, now, wall, 0.0, False)
            signal.digest = digest
            signal.sort_key = self._order_rng.random()
            self._requeue(signal)
            self._signals[public_id] = signal
            if identity is not None:
                self._by_identity[identity] = public_id
            if key is not None:
                self._creates[str(fields["externalId"])] += 1
                self._creates_by_identity[key] += 1
            receipt = signal.receipt(now, config)
            receipt["status"] = "queued"
            return Answer(201, encode(receipt), created=True)

    def get(self, public_id: str) -> dict[str, Any]:
        """GET /signals/{id}: the signal as the server renders it now; 404 ApiFailure when there is
        none (a deleted one included)."""
        with self.lock:
            signal = self._signals.get(public_id)
            if signal is None:
                raise _not_found(public_id)
            return signal.to_json(self._clock(), self.config)

    def list_page(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """One page in the configured order, and the total the server claims."""
        with self.lock:
            now = self._clock()
            ordered = self._ordered()
            total = len(ordered)
            if self.config.list_page_cap:
                limit = min(limit, self.config.list_page_cap)
            if self.config.list_fault == "shrink":
                # Each read claims one signal fewer than the last, and pages agree with it.
                total = max(0, total - self._list_reads)
                self._list_reads += 1
            page = ordered[offset : min(offset + limit, total)]
            return [s.to_json(now, self.config) for s in page], total

    def _by_identity_truth(self) -> list[dict[str, Any]]:
        """Creates ever made and signals alive per (sourceKey, externalId): exactly-once is
        ``creates == 1`` for every identity a client sent."""
        live: Counter[str] = Counter()
        for signal in self._signals.values():
            key = _identity_key(signal.fields)
            if key is not None:
                live[key] += 1
        rows = []
        for key in dict.fromkeys([*self._creates_by_identity, *live]):
            source_key, external_id = json.loads(key)
            rows.append(
                {
                    "sourceKey": source_key,
                    "externalId": external_id,
                    "creates": self._creates_by_identity.get(key, 0),
                    "live": live.get(key, 0),
                }
            )
        return rows

    def _ordered(self) -> list[Signal]:
        signals = list(self._signals.values())  # creation order: dicts keep insertion order
        order = self.config.list_order
        if order == "newest":
            signals.reverse()
        elif order == "random":
            signals.sort(key=lambda s: s.sort_key)
        elif order == "unstable":
            self._order_rng.shuffle(signals)
        return signals

    def patch(self, public_id: str, raw: bytes) -> dict[str, Any]:
        """PATCH /signals/{id}: merge the changes and return the signal; 404 when there is none,
        409 when the new identity belongs to another signal, 400/422 for a bad body."""
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
                    raise self._duplicate(
                        "another signal already has this sourceKey and externalId", holder
                    )
                if old_identity is not None:
                    self._by_identity.pop(old_identity, None)
                if new_identity is not None:
                    self._by_identity[new_identity] = public_id
            signal.fields.update(changes)
            signal.changed_wall = self._wall()
            return signal.to_json(self._clock(), self.config)

    def delete(self, public_id: str) -> None:
        """DELETE /signals/{id}; 404 when there is none. With ``dedupe_keeps_deleted`` its identity
        still answers with it."""
        with self.lock:
            signal = self._signals.pop(public_id, None)
            if signal is None:
                raise _not_found(public_id)
            identity = self._identity(signal.fields)
            if self.config.dedupe_keeps_deleted:
                self._tombstones[public_id] = signal  # its identity still answers with it
            elif identity is not None and self._by_identity.get(identity) == public_id:
                del self._by_identity[identity]
            self._deleted += 1

    def process(self, public_id: str) -> dict[str, Any]:
        """POST /signals/{id}/process: queue the signal again under a new job; 404 when there is
        none."""
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
        """What tests check against: every live signal, creates and live signals per externalId
        and per identity, deletes, keys held, requests and faults counted, late commits pending."""
        with self.lock:
            now = self._clock()
            signals = [s.to_json(now, self.config) for s in self._signals.values()]
            live: Counter[str] = Counter(
                str(s["externalId"]) for s in signals if s["externalId"] is not None
            )
            by_identity = self._by_identity_truth()
            faults = {name: self._fault_counts.get(name, 0) for name in FAULT_NAMES}
            return {
                "signals": signals,
                "creates_by_external_id": dict(self._creates),
                "live_by_external_id": dict(live),
                "by_identity": by_identity,
                "deleted": self._deleted,
                "idempotency_keys": len(self._idempotency),
                "requests": dict(self._requests),
                "faults": faults,
                "late_pending": self._late_pending,
            }


def _identity_key(fields: dict[str, Any]) -> str | None:
    """(sourceKey, externalId) as one hashable string; None for a signal without externalId."""
    external_id = fields.get("externalId")
    if external_id is None:
        return None
    return json.dumps([fields.get("sourceKey"), external_id], sort_keys=True)
