"""RunResult and status dicts -> what a person reads, or JSON a program reads."""

from __future__ import annotations

from typing import Any

from zsync.errors import ExitCode
from zsync.model import RunResult
from zsync.shape.body import CLIENT_FIELDS

# The order a person wants to read outcomes in: good news, then what needs attention.
ORDER = (
    "created",
    "replayed",
    "requeued",
    "updated",
    "deleted",
    "gone",
    "would-send",
    "would-update",
    "would-delete",
    "processed",
    "unchanged",
    "repeated",
    "superseded",
    "followed-up",
    "submitted",
    "changed",
    "deferred",
    "pending",
    "error",
    "conflict",
    "failed",
    "rejected",
    "invalid",
    "duplicate",
    "prune-refused",
)


def ok_count(result: RunResult) -> int:
    """The import template's ``ok``: records that went well by the run's own measure. A dry
    run's are the bodies it would send; a run that polls, the signals it saw processed;
    with ``--no-poll``, the sends the server accepted. Unchanged records are not sent, so
    they are in ``counts.unchanged``, not here."""
    c = result.counts
    if result.run_id is None and result.command == "push":  # --dry-run
        return c["would-send"] + c["would-update"]
    if result.polled:
        return c["processed"]
    return c["created"] + c["replayed"] + c["requeued"] + c["updated"]


def attempted_count(result: RunResult) -> int:
    """The import template's ``attempted``: every record of the input, invalid ones
    included (the template counts each item it read). A run without an input (reconcile,
    retry-failed) counts the items it took up, and so does a push whose resends of what
    earlier runs left unfinished outnumber its input."""
    if result.command == "push":
        return max(result.seen, result.counts["attempted"])
    return result.counts["attempted"]


def summary_json(result: RunResult) -> dict[str, Any]:
    """A run's summary for ``--json``: zero counts left out, ``duration_s`` in seconds, the
    fatal error as text or None."""
    return {
        "command": result.command,
        "run_id": result.run_id,
        "counts": {k: v for k, v in sorted(result.counts.items()) if v},
        "attempted": attempted_count(result),
        "ok": ok_count(result),
        "exit_code": int(result.exit_code),
        "duration_s": round(result.duration, 3),
        "requests": dict(sorted(result.requests.items())),
        "throttled": result.throttled,
        "concurrency": result.concurrency,
        "interrupted": result.interrupted,
        "timed_out": result.timed_out,
        "api_down": result.api_down,
        "problems": result.problems,
        "error": None if result.fatal is None else str(result.fatal),
    }


def summary_text(result: RunResult) -> str:
    """The summary a person reads: one line of counts, time and exit code, then a line for
    each thing left over (changed records left as they are, signals still processing, the
    API gone mid-run, unfinished items)."""
    c = result.counts
    parts = [f"{c[k]} {k}" for k in ORDER if c[k]]
    head = f"zsync {result.command}"
    if result.run_id:
        head += f" (run {result.run_id})"
    body = ", ".join(parts) if parts else "nothing to do"
    line = f"{head}: {body} in {result.duration:.1f}s"
    if result.throttled:
        line += f"; {result.throttled} rate-limited answers"
    code = result.exit_code
    if code:
        line += f" [exit {int(code)}: {_short(code)}]"
    lines = [line]
    if c["changed"]:
        lines.append(
            f"  {c['changed']} records changed since they were sent and were left as they are"
        )
    if c["submitted"] and result.polled:
        lines.append(
            f"  {c['submitted']} still processing on the server; "
            "the next push (or `zsync reconcile`) follows them up"
        )
    if result.api_down:
        lines.append("  the API stopped answering mid-run; the next run continues")
    if c["error"] or c["pending"] or c["deferred"]:
        lines.append("  unfinished items are retried automatically by the next push or reconcile")
    return "\n".join(lines)


def _short(code: ExitCode) -> str:
    """The meaning up to its first semicolon, colon or parenthesis: the summary line
    stays one line."""
    meaning = code.meaning
    for mark in (";", ":", " ("):
        meaning = meaning.split(mark, 1)[0]
    return meaning


def dropped_warnings(result: RunResult) -> list[str]:
    """One line per input field the import template does not send: most are not sent; the
    fields of Zentrik's own client (``sourceKey``, ...) are, and the line says so."""
    lines = []
    for name, (n, first) in sorted(result.dropped_fields.items()):
        where = f"({n} record{'s' if n != 1 else ''}, first at {first})"
        if name in CLIENT_FIELDS:
            lines.append(
                f"warning: field {name!r} is not sent by the import template; zsync sends it, "
                f"as Zentrik's own client does {where}"
            )
        else:
            lines.append(f"warning: field {name!r} is not sent {where}")
    return lines


def status_text(info: dict[str, Any]) -> str:
    """``zsync status`` for a person, from :func:`zsync.views.status`'s dict."""
    lines = [f"ledger {info['ledger']} (schema {info['schema']})"]
    if info.get("workspace_id") or info.get("api_base"):
        lines.append(
            f"  bound to {info.get('api_base')} workspace {info.get('workspace_id') or '?'}"
        )
    counts: dict[str, int] = info["counts"]
    total = sum(counts.values())
    if total:
        shown = ", ".join(f"{counts[k]} {k}" for k in _status_order(counts))
        lines.append(f"  {total} items: {shown}")
    else:
        lines.append("  no items yet")
    if info.get("oldest_unfinished"):
        since = info["oldest_unfinished"]
        age = _age(since)
        lines.append(f"  oldest unfinished item: {age} old (since {since})")
    lines.append(f"  lock: {info['lock'] or 'free'}")
    for source, value in (info.get("bookmarks") or {}).items():
        shown = value if len(value) <= 60 else value[:57] + "..."
        lines.append(f"  bookmark of {source}: {shown}")
    runs = info.get("recent_runs") or []
    if runs:
        lines.append("recent runs:")
        for run in runs:
            counts_s = ", ".join(f"{v} {k}" for k, v in sorted((run["counts"] or {}).items()) if v)
            state = f"exit {run['exit_code']}" if run["finished_at"] else run["state"]
            lines.append(
                f"  #{run['id']} {run['started_at']} {run['command']}: {state}"
                + (f" ({counts_s})" if counts_s else "")
            )
    attention = info.get("rejected") or []
    if attention:
        lines.append("needs attention:")
        for item in attention:
            origin = item.get("origin") or ""
            error = item.get("error") or ""
            error = error.removeprefix(f"{origin}: ") if origin else error
            where = f" at {origin}" if origin else ""
            code = f" HTTP {item['http_status']}" if item.get("http_status") else ""
            lines.append(f"  {item['external_id']}: {item['status']}{code}{where}: {error}")
    return "\n".join(lines)


def _status_order(counts: dict[str, int]) -> list[str]:
    known = [
        "processed",
        "submitted",
        "pending",
        "error",
        "conflict",
        "failed",
        "rejected",
        "invalid",
        "deleted",
    ]
    return [k for k in known if counts.get(k)] + sorted(k for k in counts if k not in known)


def runs_text(rows: list[dict[str, Any]]) -> str:
    """``zsync runs`` as a table, newest first as given; an unfinished run shows its state
    in place of its counts."""
    if not rows:
        return "no runs yet"
    lines = [f"{'run':>5}  {'started (UTC)':<24} {'command':<13} {'exit':>4} {'took':>8}  counts"]
    for run in rows:
        took = f"{run['duration_s']:.1f}s" if run.get("duration_s") is not None else "-"
        code = "-" if run["exit_code"] is None else str(run["exit_code"])
        counts = ", ".join(f"{v} {k}" for k, v in sorted((run["counts"] or {}).items()) if v)
        if run.get("state") not in (None, "finished"):
            counts = run["state"]
        lines.append(
            f"{run['id']:>5}  {run['started_at']:<24} {run['command']:<13} {code:>4} {took:>8}  "
            f"{counts}"
        )
    return "\n".join(lines)


def show_text(item: dict[str, Any]) -> str:
    """``zsync show``: an item's ledger fields that are set, then its timeline."""
    lines = [f"{item['external_id']}: {item['status']}"]
    for key in (
        "public_id",
        "job_id",
        "attempts",
        "last_http_status",
        "last_error",
        "origin",
        "payload_hash",
        "created_at",
        "updated_at",
    ):
        if item.get(key) not in (None, ""):
            lines.append(f"  {key:<17} {item[key]}")
    if item.get("events"):
        lines.append("timeline:")
        for ev in item["events"]:
            code = f" HTTP {ev['http_status']}" if ev.get("http_status") else ""
            detail = f": {ev['detail']}" if ev.get("detail") else ""
            lines.append(f"  {ev['at']}  run {ev['run_id']}  {ev['kind']}{code}{detail}")
    return "\n".join(lines)


def errors_text(causes: list[Any]) -> str:
    """``zsync errors``: one entry per cause (:class:`zsync.views.Cause`), with its count, when it
    was first and last seen, and sample external ids."""
    if not causes:
        return "no failures recorded"
    lines = []
    for c in causes:
        lines.append(f"{c.count:>6} × {c.cause}")
        lines.append(
            f"         first {c.first_seen}, last {c.last_seen}; e.g. {', '.join(c.samples)}"
        )
    return "\n".join(lines)


def check_text(report_: Any) -> str:
    """``zsync check``: one line per check (:class:`zsync.views.CheckReport`), ok or FAIL."""
    lines = [f"{'ok ' if c.ok else 'FAIL'} {c.name:<8} {c.detail}" for c in report_.checks]
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


_SETTLED = (
    "created",
    "replayed",
    "updated",
    "requeued",
    "deleted",
    "unchanged",
    "changed",
    "deferred",
    "rejected",
    "invalid",
    "duplicate",
    "error",
    "conflict",
)


def progress_line(data: dict[str, Any]) -> str:
    """One line of progress: records settled (of the total when known), rate, retries, ETA."""
    counts: dict[str, int] = data.get("counts") or {}
    elapsed = max(float(data.get("elapsed") or 0.0), 1e-6)
    done = sum(counts.get(k, 0) for k in _SETTLED)
    total = data.get("total")
    sent = sum(counts.get(k, 0) for k in ("created", "replayed", "updated", "requeued"))
    parts = [f"{done:,}/{total:,} done" if total else f"{done:,} done", f"{sent:,} sent"]
    if counts.get("processed"):
        parts.append(f"{counts['processed']:,} processed")
    if counts.get("unchanged"):
        parts.append(f"{counts['unchanged']:,} unchanged")
    bad = sum(counts.get(k, 0) for k in ("rejected", "invalid", "error", "conflict", "failed"))
    if bad:
        parts.append(f"{bad:,} problems")
    parts.append(f"{data.get('retries', 0)} retries")
    parts.append(f"{data.get('throttled', 0)} rate-limited")
    rate = done / elapsed
    parts.append(f"{rate:,.0f}/s")
    line = " · ".join(parts) + f" · {_clock(elapsed)}"
    if total and rate > 0 and done < total:
        line += f" · ETA {_clock((total - done) / rate)}"
    return line


def log_record(
    event_kind: str,
    message: str,
    *,
    run_id: int | None,
    external_id: str | None,
    http_status: int | None,
    attempt: int | None = None,
    level: str = "info",
) -> dict[str, Any]:
    """One ``--log-format json`` line, with the same keys for every event; ``message`` must
    already be redacted."""
    from zsync.ledger import now_iso

    return {
        "time": now_iso(),
        "level": level,
        "run_id": run_id,
        "event": event_kind,
        "externalId": external_id,
        "attempt": attempt,
        "http_status": http_status,
        "message": message,
    }


def _age(iso: str) -> str:
    from datetime import UTC, datetime

    then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d"
