"""verify: the ledger against the server's list, class by class; --repair adopts the server's
truth (and so rebuilds a lost or empty ledger).

Classes: ``unknown`` (on the server, not in the ledger), ``gone`` (accepted in the ledger, no
longer on the server), ``status`` (the server's status or publicId differs from the ledger's),
``content`` (a field the ledger recorded differs from the server's copy), ``duplicated`` (one
externalId held by several signals). A listing that may be incomplete never drives a repair
that removes or re-creates anything.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsync.engine import RetryPolicy, ZentrikClient
from zsync.errors import (
    ApiError,
    ApiUnavailable,
    ExitCode,
    IncompleteListing,
    TransientError,
    ZsyncError,
)
from zsync.ledger import Ledger, ledger_errors
from zsync.ledger.server import server_status
from zsync.model import ACCEPTED, GONE_HASH_PREFIX, ServerIndex, ServerSignal, Status
from zsync.truth.index import anchor_of_listing, read_index
from zsync.truth.reasons import recover_failure_reasons

CLASSES = ("unknown", "gone", "status", "content", "duplicated")


@dataclass
class Drift:
    """One class of disagreement: how many items fall in it, and the first few as examples."""

    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class VerifyReport:
    """What ``zsync verify`` found: counts on both sides, the list requests it made, whether
    the list was proven complete, drift by class, and (with --repair) what was changed.
    ``seconds`` is how long it took; ``deleted`` counts items deleted on the server, which
    is not drift."""

    ledger: str
    server_signals: int = 0
    ledger_items: int = 0
    requests: int = 0
    matched_by: str = "externalId"
    complete: bool = True
    problems: list[str] = field(default_factory=list)
    classes: dict[str, Drift] = field(default_factory=lambda: {c: Drift() for c in CLASSES})
    repaired: dict[str, int] | None = None  # what --repair changed, by class
    deleted: int = 0  # items whose signal was deleted on the server (final, not drift)
    seconds: float = 0.0

    @property
    def drift(self) -> int:
        """Disagreements over all classes."""
        return sum(d.count for d in self.classes.values())

    @property
    def exit_code(self) -> ExitCode:
        """1 for drift left unrepaired, else 4 when the list was not proven complete, else 0."""
        if self.drift and self.repaired is None:
            return ExitCode.ITEMS_FAILED
        if not self.complete:
            return ExitCode.UNAVAILABLE
        return ExitCode.OK

    def as_json(self) -> dict[str, Any]:
        """The report for ``--json``; ``agree`` is true only with no drift and a complete list."""
        return {
            "ledger": self.ledger,
            "agree": not self.drift and self.complete,
            "server_signals": self.server_signals,
            "ledger_items": self.ledger_items,
            "requests": self.requests,
            "matched_by": self.matched_by,
            "complete": self.complete,
            "problems": self.problems,
            "classes": {
                k: {"count": d.count, "examples": d.examples} for k, d in self.classes.items()
            },
            "repaired": self.repaired,
            "deleted_on_server": self.deleted,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Fixes:
    adopt: list[ServerSignal] = field(default_factory=list)
    found: list[tuple[str, ServerSignal]] = field(default_factory=list)
    statuses: list[tuple[str, str]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)


def load_index(
    client: ZentrikClient, retry: RetryPolicy, pace: Callable[[], bool] | None = None
) -> ServerIndex:
    """The server index, or one line saying why the list cannot be read (exit 4)."""
    try:
        return read_index(client, retry=retry, pace=pace)
    except TransientError as exc:
        raise ApiUnavailable(f"cannot read the server's list of signals: {exc}") from None
    except ApiError as exc:
        raise ApiUnavailable(f"the server's list of signals is unusable: {exc}") from None


def complete_index(
    client: ZentrikClient, retry: RetryPolicy, pace: Callable[[], bool] | None = None
) -> ServerIndex:
    """The server index, proven complete; :class:`IncompleteListing` (exit 4, one line)
    otherwise. For every caller that marks gone, adopts, deletes or resends from it."""
    index = load_index(client, retry, pace)
    if not index.complete:
        raise IncompleteListing(unproven(index))
    return index


def unproven(index: ServerIndex) -> str:
    """One line: why ``index`` cannot be trusted as complete (its last problem says why)."""
    reasons = [p for p in index.problems if "sent no X-Total-Count" not in p] or index.problems
    return (
        "the server's list of signals is not proven complete, so nothing was changed from it: "
        + (reasons[-1] if reasons else "no reason given")
    )


def compare(ledger: Ledger | None, index: ServerIndex, report: VerifyReport, keep: int) -> _Fixes:
    """Fill the report's classes; return what a repair would change."""
    report.matched_by = "externalId" if index.shows_external_id else "publicId"
    report.complete = index.complete
    report.server_signals = len(index.by_public_id)
    report.requests = index.requests
    report.problems = list(index.problems)
    fixes = _Fixes()
    matched: set[str] = set()  # publicIds the ledger accounts for

    def note(cls: str, example: dict[str, Any]) -> None:
        drift = report.classes[cls]
        drift.count += 1
        if len(drift.examples) < keep:
            drift.examples.append(example)

    for row in ledger.server.iter_truth_rows() if ledger is not None else ():
        report.ledger_items += 1
        if row["status"] == Status.DELETED and str(row["payload_hash"]).startswith(
            GONE_HASH_PREFIX
        ):
            report.deleted += 1
        _compare_row(row, index, note, fixes, matched)
    for ext, signals in index.by_external_id.items():
        if len(signals) > 1:
            ids = [s.public_id for s in signals]
            note("duplicated", {"externalId": ext, "publicIds": ids[:10], "signals": len(ids)})
    for signal in index.by_public_id.values():
        if signal.public_id in matched:
            continue
        if index.shows_external_id and signal.external_id is not None:
            if index.find(signal.external_id) is not signal:
                continue  # a duplicate: counted above, the oldest one is adopted
            fixes.adopt.append(signal)
        note(
            "unknown",
            {
                "externalId": signal.external_id,
                "publicId": signal.public_id,
                "server": signal.status,
            },
        )
    return fixes


def _compare_row(
    row: dict[str, Any],
    index: ServerIndex,
    note: Callable[[str, dict[str, Any]], None],
    fixes: _Fixes,
    matched: set[str],
) -> None:
    ext, status, public_id = row["external_id"], row["status"], row["public_id"]
    signal = _match(index, ext, public_id, index.shows_external_id)
    if signal is None:
        if status in ACCEPTED and public_id and index.complete:
            note("gone", {"externalId": ext, "publicId": public_id, "ledger": status})
            fixes.gone.append(ext)
        return
    matched.update(s.public_id for s in index.by_external_id.get(ext, [signal]))
    matched.add(signal.public_id)
    server = server_status(signal)
    if server != status or signal.public_id != public_id:
        note(
            "status",
            {
                "externalId": ext,
                "publicId": signal.public_id,
                "ledger": status,
                "ledger_publicId": public_id,
                "server": signal.status,
            },
        )
        if status in ACCEPTED and signal.public_id == public_id:
            fixes.statuses.append((ext, server))
        else:
            fixes.found.append((ext, signal))
    fields = _differing(row.get("field_hashes"), signal.field_hashes)
    if fields:
        note("content", {"externalId": ext, "publicId": signal.public_id, "fields": fields})
        # Matched by publicId when the list showed no externalId for it: the row's own.
        fixes.adopt.append(dataclasses.replace(signal, external_id=ext))


def _match(
    index: ServerIndex, ext: str, public_id: str | None, by_external: bool
) -> ServerSignal | None:
    if by_external:
        signals = index.by_external_id.get(ext)
        if signals:
            return next((s for s in signals if s.public_id == public_id), signals[0])
    signal = index.by_public_id.get(public_id) if public_id else None
    # An item the list shows without externalId is matched by publicId; one that shows
    # another externalId is not this record's.
    if signal is not None and by_external and signal.external_id not in (None, ext):
        return None
    return signal


def _differing(ledger_hashes: str | None, server_hashes: str) -> list[str]:
    """Fields the ledger recorded whose server copy differs. A field the server's copy does
    not show (absent or null) is not judged: a list may show a signal only in part."""
    if not ledger_hashes:
        return []
    try:
        ours: dict[str, str] = json.loads(ledger_hashes)
        theirs: dict[str, str] = json.loads(server_hashes)
    except ValueError:
        return []
    return sorted(k for k, h in ours.items() if k in theirs and theirs[k] != h)


def repair(ledger: Ledger, fixes: _Fixes, index: ServerIndex, run_id: int) -> dict[str, int]:
    """Adopt the server's truth. Gone signals are marked only from a complete listing."""
    ledger.server.adopt(fixes.adopt, run_id)
    ledger.server.settle_found(fixes.found, run_id, "adopted")
    ledger.server.set_status(fixes.statuses, run_id)
    gone = fixes.gone if index.complete else []
    ledger.server.mark_gone(gone, run_id)
    return {
        "adopted": len(fixes.adopt),
        "settled": len(fixes.found),
        "status": len(fixes.statuses),
        "gone": len(gone),
    }


def verify(
    path: Path,
    client: ZentrikClient,
    *,
    retry: RetryPolicy,
    repair_ledger: bool = False,
    pace: Callable[[], bool] | None = None,
    examples: int = 5,
    api_base: str = "",
) -> VerifyReport:
    """Compare the ledger at ``path`` with the server; with ``repair_ledger``, repair it
    (creating it when missing: a rebuild)."""
    report = VerifyReport(str(path))
    with ledger_errors(path):
        if not repair_ledger:
            ledger = Ledger.open_readonly(path) if path.exists() else None
            try:
                index = load_index(client, retry, pace)
                compare(ledger, index, report, examples)
            finally:
                if ledger is not None:
                    ledger.close()
        else:
            _repair_run(path, client, retry, pace, report, examples, api_base)
    return report


def _repair_run(
    path: Path,
    client: ZentrikClient,
    retry: RetryPolicy,
    pace: Callable[[], bool] | None,
    report: VerifyReport,
    examples: int,
    api_base: str,
) -> None:
    ledger = Ledger.open(path)
    try:
        ledger.lease.acquire("verify --repair")
        run_id = ledger.runs.start("verify", {"repair": True})
        exit_code = ExitCode.INTERNAL
        # Until it has finished, the ledger cannot vouch for itself: a push finishes it first.
        ledger.trust.mark_repair(finished=False)
        try:
            context = retry.call(client.auth_context)
            workspace = context.get("workspace", {}).get("id") if context else None
            ledger.bind(api_base, str(workspace) if workspace else None)
            # Nothing is adopted, settled or marked gone from a listing not proven complete.
            index = complete_index(client, retry, pace)
            fixes = compare(ledger, index, report, examples)
            report.repaired = repair(ledger, fixes, index, run_id)
            ledger.trust.mark_repair(finished=True)
            own = ledger.trust.own_signal_count()
            anchor, made = anchor_of_listing(client, retry, index, own, run_id)
            report.requests += made
            if anchor is not None:
                ledger.trust.set_anchor(anchor)
            report.requests += recover_failure_reasons(ledger, client, retry)
            exit_code = report.exit_code
        except ZsyncError as exc:
            exit_code = exc.exit_code
            raise
        finally:
            counts = {f"repaired-{k}": v for k, v in (report.repaired or {}).items()}
            ledger.runs.finish(run_id, counts, int(exit_code))
    finally:
        ledger.close()


__all__ = [
    "CLASSES",
    "Drift",
    "Status",
    "VerifyReport",
    "compare",
    "complete_index",
    "load_index",
    "unproven",
    "verify",
]
