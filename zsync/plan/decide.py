"""The diff: one shaped record against what the ledger holds -> unchanged, a job, or a note.

``decide`` is the whole rule (send | unchanged | changed); ``plan_one`` turns its answer into
a :class:`Decision`: a create (with its intent), an update, a resend of an unsettled body,
or nothing, with the counts and the note it adds. It returns values; the planner applies them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from zsync.ledger import Ledger
from zsync.model import (
    ACCEPTED,
    ADOPTED_HASH,
    GONE_HASH_PREFIX,
    UNSETTLED,
    Event,
    EventKind,
    Intent,
    ItemRow,
    Job,
    Prepared,
    SendJob,
    Status,
    UpdateJob,
)
from zsync.plan.options import PlanOptions
from zsync.plan.stream import SKIPPABLE
from zsync.shape.canonical import field_hashes, idempotency_key


def intent_for(prepared: Prepared, nonce: str = "") -> Intent:
    """The intent a send of ``prepared`` commits first: its body, hashes and key (a
    ``nonce`` gives a deliberate resend a key of its own)."""
    return Intent(
        prepared.external_id,
        prepared.payload_hash,
        prepared.canonical.decode(),
        idempotency_key(prepared.canonical, nonce),
        prepared.origin,
        field_hashes(prepared.body),
        prepared.raw_hash,
        prepared.source,
    )


# An adopted row's hashes learned from the record: (externalId, payload hash, field hashes,
# raw hash).
Learned = tuple[str, str, str, str | None]


@dataclass(frozen=True, slots=True)
class Decision:
    """What became of one record at planning, as a value the planner applies: the job to
    run (None: nothing to send now), the counts it adds, a note for the person, the intent
    to commit before the job is sent, an adopted row's hashes to learn, and whether it
    spends one of ``--limit``."""

    job: Job | None = None
    counts: tuple[str, ...] = ()
    event: Event | None = None
    intent: Intent | None = None
    learned: Learned | None = None
    spends: bool = False


def plan_one(
    ledger: Ledger | None,
    options: PlanOptions,
    prepared: Prepared,
    row: ItemRow | None,
    budget: int | None = None,
) -> Decision:
    """The :class:`Decision` for one shaped record against its ledger row (None: unknown);
    ``budget`` is what is left of ``--limit`` (None: no limit)."""
    ext = prepared.external_id
    decision = decide(prepared, row)
    if decision == "adopted":
        assert row is not None
        decision, learned = _match_adopted(ledger, prepared, row)
        if learned is not None:
            return Decision(counts=("unchanged",), learned=learned)
    if decision == "unchanged":
        return Decision(counts=("unchanged",))
    if decision == "changed":
        stored = _unsettled_stored(ledger, ext)
        if stored is not None:
            # The old body may have reached the server: settle it first, with its own key;
            # the change is picked up by the run after it is accepted.
            note = Event(EventKind.CHANGED, ext, "changed while unsettled: settling first")
            return Decision(stored, ("changed",), note)
        if options.on_change == "skip" or row is None or not row.public_id:
            note = Event(EventKind.CHANGED, ext, "content changed since it was sent")
            return Decision(None, ("changed",), note)
    if budget is not None and budget <= 0:
        return Decision(counts=("deferred",))
    spends = budget is not None
    if decision == "changed" and options.on_change == "update":
        assert row is not None and row.public_id is not None
        fields = _changed_fields(ledger, prepared)
        if options.dry_run:
            note = Event(EventKind.WOULD_UPDATE, ext, json.dumps(fields, sort_keys=True))
            return Decision(None, ("attempted", "would-update"), note, spends=spends)
        update = UpdateJob(ext, row.public_id, fields, intent_for(prepared))
        return Decision(update, ("attempted",), spends=spends)
    if options.dry_run:
        note = Event(EventKind.WOULD_SEND, ext, prepared.canonical.decode())
        return Decision(None, ("attempted", "would-send"), note, spends=spends)
    # A deliberate resend of changed content needs a key the server has not seen; so does
    # re-creating a signal known to be gone (a server that keeps keys would replay the old,
    # deleted signal).
    nonce = f"resend:{row.public_id}" if decision == "changed" and row is not None else ""
    if row is not None and row.status == Status.DELETED:
        nonce = f"recreate:{row.public_id or ''}:{_deleted_times(ledger, ext)}"
    intent = intent_for(prepared, nonce)
    send = SendJob(ext, prepared.canonical, intent.idempotency_key)
    return Decision(send, ("attempted",), intent=intent, spends=spends)


def raw_hashes_to_learn(batch: list[Prepared], known: dict[str, ItemRow]) -> list[tuple[str, str]]:
    """Unchanged items whose raw hash the ledger lacks (written by an older zsync, or the
    same record read from other bytes)."""
    pairs = []
    for p in batch:
        row = known.get(p.external_id)
        if (
            p.raw_hash is not None
            and row is not None
            and row.raw_hash != p.raw_hash
            and row.payload_hash == p.payload_hash
            and row.status in SKIPPABLE
        ):
            pairs.append((p.external_id, p.raw_hash))
    return pairs


def sources_to_learn(batch: list[Prepared], known: dict[str, ItemRow]) -> list[tuple[str, str]]:
    """Accepted items whose source the ledger lacks (rows written before it kept one)."""
    return [
        (p.external_id, p.source)
        for p in batch
        if p.source is not None
        and (row := known.get(p.external_id)) is not None
        and row.source is None
        and row.status in ACCEPTED
    ]


def decide(prepared: Prepared, row: ItemRow | None) -> str:
    """send | unchanged | changed."""
    if row is not None and row.payload_hash == GONE_HASH_PREFIX + prepared.payload_hash:
        return "unchanged"  # deleted on the server, its record unchanged: not created again
    if row is None or row.status in (Status.INVALID, Status.DELETED):
        return "send"  # never sent, or its signal is gone (pruned, or found gone by verify)
    if row.payload_hash == ADOPTED_HASH:
        return "adopted"
    if row.payload_hash == prepared.payload_hash:
        return "send" if row.status in UNSETTLED else "unchanged"
    if row.status == Status.REJECTED:
        return "send"  # the earlier body never became a signal
    if row.status in ACCEPTED or row.status in UNSETTLED or row.status == Status.CONFLICT:
        return "changed"
    return "send"


def _match_adopted(
    ledger: Ledger | None, prepared: Prepared, row: ItemRow
) -> tuple[str, tuple[str, str, str, str | None] | None]:
    """A row adopted from the server meets its input record: unchanged when every field the
    record sends equals the server's copy (the row then learns the record's hashes), else
    changed (only the differing fields are PATCHed; fields only the server has stay)."""
    item = ledger.items.get_item(prepared.external_id) if ledger is not None else None
    theirs: dict[str, str] = json.loads(item["field_hashes"] or "{}") if item else {}
    ours: dict[str, str] = json.loads(field_hashes(prepared.body))
    if all(theirs.get(k) == h for k, h in ours.items()):
        return "unchanged", (
            prepared.external_id,
            prepared.payload_hash,
            json.dumps(ours, sort_keys=True, separators=(",", ":")),
            prepared.raw_hash,
        )
    if row.status not in ACCEPTED or not row.public_id:
        return "send", None
    return "changed", None


def _deleted_times(ledger: Ledger | None, external_id: str) -> int:
    """How often this record's signal was found deleted: each re-creation gets its own key."""
    if ledger is None:
        return 0
    return sum(e["kind"] in ("deleted", "gone") for e in ledger.items.events_for(external_id))


def _changed_fields(ledger: Ledger | None, prepared: Prepared) -> dict[str, Any]:
    """The fields whose value differs from the body the server last accepted."""
    item = ledger.items.get_item(prepared.external_id) if ledger is not None else None
    old_raw = item.get("field_hashes") if item else None
    if not old_raw:
        return dict(prepared.body)  # no record of the old fields: send them all
    old: dict[str, str] = json.loads(old_raw)
    new: dict[str, str] = json.loads(field_hashes(prepared.body))
    fields = {k: prepared.body[k] for k, h in new.items() if old.get(k) != h}
    if item is not None and item.get("payload_hash") != ADOPTED_HASH:
        # An adopted row's hashes are the server's copy: fields only it has are not ours.
        fields.update({k: None for k in old if k not in new})
    return fields


def _unsettled_stored(ledger: Ledger | None, external_id: str) -> SendJob | None:
    """The stored send of an unsettled item, to be settled before a change is sent."""
    if ledger is None:
        return None
    item = ledger.items.get_item(external_id)
    if item is None or item["status"] not in UNSETTLED:
        return None
    if not item.get("payload") or not item.get("idempotency_key"):
        return None
    return SendJob(external_id, str(item["payload"]).encode(), str(item["idempotency_key"]))
