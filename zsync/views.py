"""What the operator commands show: status, runs, one item's timeline, errors by cause,
export, check, retry previews and input previews.

Everything here reads; only ``check`` talks to the API, and it writes nothing anywhere.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from zsync import plan, read
from zsync.config import Settings
from zsync.engine import ZentrikClient
from zsync.errors import ApiError, ApiUnavailable, AuthError, LedgerError, ZsyncError
from zsync.ledger import Ledger, reading
from zsync.model import NEEDS_LOOK, Idle, Invalid, Prepared, StateMessage, Status
from zsync.plan import PlanOptions
from zsync.shape import Shaper

# Scopes each kind of work needs; `check` compares them with the key's.
SCOPES_FOR = {
    "push": ("signals:write", "signals:read"),
    "push --no-poll": ("signals:write",),
    "push --prune": ("signals:write", "signals:read", "signals:delete"),
    "reconcile": ("signals:write", "signals:read"),
}


def _duration(started: str | None, finished: str | None) -> float | None:
    if not started or not finished:
        return None
    start = datetime.fromisoformat(started.replace("Z", "+00:00"))
    end = datetime.fromisoformat(finished.replace("Z", "+00:00"))
    return round((end - start).total_seconds(), 3)


def runs(settings: Settings, limit: int = 20) -> list[dict[str, Any]]:
    """The ``limit`` newest runs, newest first, each with ``duration_s`` (seconds, None while
    unfinished) and ``state``: finished, running, or did not finish."""
    with reading(settings.ledger_path) as ledger:
        return _runs(ledger, limit)


def _runs(ledger: Ledger, limit: int) -> list[dict[str, Any]]:
    """Recent runs, each with its duration and state: a run that never finished is running
    only while the lease names its process; otherwise it was killed or crashed."""
    holder = ledger.lease.holder()
    rows = ledger.runs.recent(limit)
    for row in rows:
        row["duration_s"] = _duration(row["started_at"], row["finished_at"])
        if row["finished_at"] is None:
            alive = holder is not None and holder.pid == row["pid"]
            row["state"] = "running" if alive else "did not finish (killed or crashed)"
        else:
            row["state"] = "finished"
    return rows


def show(settings: Settings, external_id: str) -> dict[str, Any] | None:
    """One item's ledger row with its payload parsed and its timeline (``events``); None when
    the ledger has no such external id."""
    with reading(settings.ledger_path) as ledger:
        item = ledger.items.get_item(external_id)
        if item is None:
            return None
        item.pop("field_hashes", None)
        payload = item.pop("payload", None)
        item["payload"] = json.loads(payload) if payload else None
        item["events"] = ledger.items.events_for(external_id)
        return item


_NUMBER = re.compile(r"\b\d+(\.\d+)?\b")
_QUOTED = re.compile(r"(?<!field )('[^']*'|\"[^\"]*\")")
_STATUS_PREFIX = re.compile(r"^\d{3} ")
_IDS = re.compile(r"\b(SIGNAL|job)-[0-9A-Za-z]+\b")


def cause_of(status: str, http_status: int | None, error: str | None) -> str:
    """Group key for an error message: the same problem with other ids and numbers."""
    text = _STATUS_PREFIX.sub("", error or "")
    if status == "invalid" and ": " in text:
        text = text.split(": ", 1)[1]  # drop the origin (file:line), which differs per record
    text = _IDS.sub(r"\1-…", text)
    text = _QUOTED.sub("'…'", text)
    text = _NUMBER.sub("N", text)
    code = f"HTTP {http_status}" if http_status else status
    return f"{status} {code}: {text}".strip()


@dataclass
class Cause:
    """One group of failed items whose errors differ only in ids and numbers."""

    cause: str
    status: str
    http_status: int | None
    count: int = 0
    first_seen: str = ""
    last_seen: str = ""
    samples: list[str] = field(default_factory=list)


def errors(settings: Settings, samples: int = 3) -> list[Cause]:
    """The items that need a look, grouped by :func:`cause_of`, largest group first, each with
    up to ``samples`` external ids."""
    groups: dict[str, Cause] = {}
    with reading(settings.ledger_path) as ledger:
        for external_id, status, http_status, error, at in ledger.items.iter_failures():
            key = cause_of(status, http_status, error)
            group = groups.get(key)
            if group is None:
                group = groups[key] = Cause(key, status, http_status, first_seen=at)
            group.count += 1
            group.last_seen = max(group.last_seen, at)
            group.first_seen = min(group.first_seen, at)
            if len(group.samples) < samples:
                group.samples.append(external_id)
    return sorted(groups.values(), key=lambda g: (-g.count, g.cause))


def export(settings: Settings, fmt: str, statuses: tuple[str, ...] = ()) -> Iterator[str]:
    """Ledger rows as one JSON array, JSONL lines or CSV lines (header first), streamed."""
    with reading(settings.ledger_path) as ledger:
        rows = ledger.items.iter_export(statuses or None)
        if fmt == "json":  # one array, still streamed
            yield "["
            for n, row in enumerate(rows):
                yield (
                    ("," if n else "") + "\n" + json.dumps(row, sort_keys=True, ensure_ascii=False)
                )
            yield "\n]\n"
            return
        if fmt == "jsonl":
            for row in rows:
                yield json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n"
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(ledger.items.EXPORT_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        if buffer.getvalue():
            yield buffer.getvalue()


@dataclass
class Check:
    """One line of ``zsync check``: what was checked, whether it passed, and what was seen."""

    name: str
    ok: bool
    detail: str


@dataclass
class CheckReport:
    """All of ``zsync check``'s checks. ``error`` is the API or key failure whose exit code
    the command exits with (an auth failure wins over an unavailable API); a failed ledger
    check leaves it None and the command exits 5."""

    checks: list[Check]
    error: ZsyncError | None = None

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)


def check(settings: Settings, client: ZentrikClient, needs: str) -> CheckReport:
    """readyz, auth context and scopes, and the ledger's binding; writes nothing."""
    report = CheckReport([])
    add = report.checks.append
    try:
        checks = client.readyz()
        add(Check("readyz", True, ", ".join(f"{k}={v}" for k, v in sorted(checks.items()))))
    except (ApiError, ApiUnavailable) as exc:
        add(Check("readyz", False, str(exc)))
        report.error = report.error or ApiUnavailable(str(exc))
    workspace: str | None = None
    try:
        context = client.auth_context()
    except AuthError as exc:
        add(Check("auth", False, str(exc)))
        report.error = exc
        context = None
    except ApiError as exc:
        add(Check("auth", False, str(exc)))
        report.error = report.error or ApiUnavailable(str(exc))
        context = None
    if context is not None:
        ws = context.get("workspace") or {}
        workspace = str(ws.get("id")) if ws.get("id") else None
        name = ws.get("name")
        if isinstance(name, str):
            name = settings.redact(name)  # the server chose it: it may echo the key
        add(
            Check("auth", True, f"key opens workspace {workspace}" + (f" ({name})" if name else ""))
        )
        have = set((context.get("credential") or {}).get("scopes") or [])
        wanted = SCOPES_FOR.get(needs, SCOPES_FOR["push"])
        missing = [s for s in wanted if s not in have]
        detail = f"{needs} needs {', '.join(wanted)}" + (
            f"; missing {', '.join(missing)}" if missing else ""
        )
        add(Check("scopes", not missing, detail))
        if missing:
            report.error = report.error or AuthError(f"the key lacks {', '.join(missing)}")
    add(_ledger_check(settings, workspace))
    return report


def _ledger_check(settings: Settings, workspace: str | None) -> Check:
    path = settings.ledger_path
    if not path.exists():
        return Check("ledger", True, f"{path} does not exist yet; the first push creates it")
    try:
        ledger = Ledger.open_readonly(settings.ledger_path)
    except LedgerError as exc:
        return Check("ledger", False, str(exc))
    try:
        ledger.raise_if_damaged()  # SQLite's own check of every page
        bound = ledger.meta.get("workspace_id")
        schema = ledger.schema_version()
        holder = ledger.lease.holder()
        replay = ledger.server.replay_observed()
    except LedgerError as exc:
        return Check("ledger", False, str(exc))
    except sqlite3.DatabaseError:
        return Check("ledger", False, f"ledger {path}: the file is corrupt")
    finally:
        ledger.close()
    if bound and workspace and bound != workspace:
        return Check("ledger", False, f"{path} belongs to workspace {bound}, not {workspace}")
    lock = f"; in use by {holder.describe()}" if holder else ""
    # Whether a resend is known to be answered with the original signal (docs/server-truth.md).
    resends = (
        f"; resends replayed: observed {replay}"
        if replay
        else "; resends replayed: not observed yet (sends in doubt are looked up first)"
    )
    return Check(
        "ledger",
        True,
        f"{path} schema {schema}, workspace {bound or 'not bound yet'}{lock}{resends}",
    )


def status(settings: Settings) -> dict[str, Any]:
    """``zsync status`` as a dict: schema, binding, counts by status, oldest unfinished item,
    lock, bookmarks, the five newest runs and up to 20 items that need a look (``rejected``).
    LedgerError when the ledger is damaged."""
    with reading(settings.ledger_path) as ledger:
        ledger.raise_if_damaged()  # damage is never reported as a healthy ledger
        holder = ledger.lease.holder()
        return {
            "ledger": str(settings.ledger_path),
            "schema": ledger.schema_version(),
            "workspace_id": ledger.meta.get("workspace_id"),
            "api_base": ledger.meta.get("api_base"),
            "counts": ledger.items.counts_by_status(),
            "oldest_unfinished": ledger.items.oldest_unfinished(),
            "lock": None if holder is None else holder.describe(),
            "bookmarks": ledger.meta.bookmarks(),
            "recent_runs": _runs(ledger, 5),
            "rejected": ledger.items.items_in(NEEDS_LOOK - {Status.ERROR}, limit=20),
        }


def retry_candidates(
    settings: Settings, include_rejected: bool, limit: int = 1000
) -> list[dict[str, Any]]:
    """What retry-failed would do, item by item; nothing is changed."""
    statuses = [Status.FAILED, Status.ERROR] + ([Status.REJECTED] if include_rejected else [])
    with reading(settings.ledger_path) as ledger:
        return ledger.items.items_in(statuses, limit=limit)


@dataclass
class Preview:
    """``zsync preview``'s result: the shaped bodies or problems, and the warnings met on the
    way."""

    items: list[Prepared | Invalid]
    warnings: list[str]


def preview(options: PlanOptions, limit: int) -> Preview:
    """The bodies (or problems) of the first ``limit`` records; nothing is sent or written."""
    mappings = plan.check(options)
    out = Preview([], [])
    shaper = Shaper(
        mappings,
        derive_external_id=options.derive_external_id,
        warn=out.warnings.append,
        singer=options.singer_body(),
    )
    stream = read.read(options.source, warn=out.warnings.append)
    with closing(stream):
        for item in stream:
            if len(out.items) >= limit:
                break
            if isinstance(item, StateMessage | Idle):
                continue
            shaped = shaper(item)
            if shaped is not None:
                out.items.append(shaped)
    return out
