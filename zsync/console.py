"""What a person sees while a command runs: item lines, the progress line, JSON logs.

Part of the command line (with ``zsync/cli/``, the only code that prints): it renders the
:class:`~zsync.model.Event` values the stages emit, and knows a terminal from cron.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import click

from zsync import config, report
from zsync.model import Event, EventKind

# Per-item problems shown on stderr before the rest are only counted (cron mail stays short).
_MAX_ITEM_LINES = 20


class State:
    """The global options of one invocation, and the key to redact from every line once
    the settings are loaded (``secret``; None until then)."""

    def __init__(self) -> None:
        self.debug = False
        self.verbose = 0
        self.quiet = False
        self.log_format = "text"
        self.progress_interval = 30.0
        self.secret: str | None = None


_ATTENTION = frozenset(
    {
        "invalid",
        "duplicate",
        "rejected",
        "conflict",
        "error",
        "failed",
        "gone",
        "prune-refused",
        "warning",
        "api-down",
        "notice",
    }
)


_LEVELS = {"changed": "warning", "warning": "warning", "notice": "info", "gone": "warning"}
# Lines about the run as a whole, always shown: the cap on item lines does not apply.
_RUN_NOTES = frozenset({"notice", "warning", "api-down", "prune-refused"})


class Console:
    """Renders engine events: item lines, progress, logs. Knows terminal from cron."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.lock = threading.Lock()
        self.shown = 0
        self.hidden = 0
        self.tty = sys.stderr.isatty()
        self._bar_visible = False
        self._last_progress_line = 0.0

    def _err(self, line: str) -> None:
        if self._bar_visible:
            click.echo("\r\033[K", nl=False, err=True)
            self._bar_visible = False
        click.echo(config.redact(line, self.state.secret), err=True)

    def _log(self, event: Event, level: str) -> None:
        record = report.log_record(
            event.kind,
            config.redact(event.message, self.state.secret),
            run_id=event.data.get("run_id"),
            external_id=event.external_id,
            http_status=event.data.get("status"),
            attempt=event.data.get("attempts"),
            level=level,
        )
        click.echo(json.dumps(record, ensure_ascii=False), err=True)

    def emit(self, event: Event) -> None:
        """Show one event: dry-run lines on stdout; problems on stderr (as text, item
        problems after the first 20 only counted unless -v; with --log-format json, every
        one); other events only with -v (retries with -vv); progress, unless -q, as a redrawn
        bar on a terminal, else a line every ``--progress-interval`` seconds."""
        state = self.state
        if event.kind == "would-send":
            click.echo(event.message)
            return
        if event.kind in ("would-update", "would-delete"):
            action = {"action": event.kind.removeprefix("would-"), "externalId": event.external_id}
            if event.kind == "would-update":
                action["fields"] = json.loads(event.message)
            else:
                action["publicId"] = event.message
            click.echo(json.dumps(action, sort_keys=True))
            return
        if event.kind == "progress":
            self._progress(event.data)
            return
        if event.kind == "notice" and state.quiet:
            return  # news, not a problem: -q stays silent (a first cron run mails nothing)
        with self.lock:
            if event.kind in _ATTENTION:
                if state.log_format == "json":
                    level = _LEVELS.get(event.kind, "error")
                    self._log(event, level)
                    return
                if event.kind not in _RUN_NOTES:  # only item problems are capped
                    if self.shown >= _MAX_ITEM_LINES and state.verbose == 0:
                        self.hidden += 1
                        return
                    self.shown += 1
                who = (
                    f"{event.external_id}: "
                    if event.external_id and event.kind != "invalid"
                    else ""
                )
                self._err(f"{event.kind}: {who}{event.message}")
            elif state.verbose and event.kind != "polling":
                if event.kind == "retry" and state.verbose < 2:
                    return
                if state.log_format == "json":
                    self._log(event, "debug" if event.kind == "retry" else "info")
                    return
                what = " ".join(p for p in (event.external_id, event.message) if p)
                self._err(f"{event.kind}: {what}")

    def _progress(self, data: dict[str, Any]) -> None:
        state = self.state
        if state.quiet:
            return
        line = report.progress_line(data)
        with self.lock:
            if self.tty and state.log_format == "text":
                click.echo(f"\r\033[K{line}", nl=False, err=True)
                self._bar_visible = True
                return
            elapsed = float(data.get("elapsed") or 0.0)
            if elapsed - self._last_progress_line < state.progress_interval:
                return
            self._last_progress_line = elapsed
            if state.log_format == "json":
                self._log(Event(EventKind.PROGRESS, message=line, data={}), "info")
            else:
                click.echo(f"progress: {line}", err=True)

    def close(self) -> None:
        """Clear the progress bar and say how many item problems were not shown."""
        with self.lock:
            if self._bar_visible:
                click.echo("\r\033[K", nl=False, err=True)
                self._bar_visible = False
            if self.hidden:
                click.echo(f"... and {self.hidden} more item problems (see zsync errors)", err=True)
