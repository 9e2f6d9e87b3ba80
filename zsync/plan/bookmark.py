"""The source's bookmark: read before the source starts, saved only after every record
before it is recorded in the ledger, so the next run starts after it and loses nothing."""

from __future__ import annotations

import os
import tempfile

from zsync import read
from zsync.errors import UsageError
from zsync.ledger import Ledger
from zsync.model import Emit, Event, EventKind, StateMessage
from zsync.plan.options import PlanOptions
from zsync.shape.canonical import canonical_json


class Bookmark:
    """The source's saved bookmark: read before the source starts, saved only after every
    record before it is recorded, and never again in a run once a record before it could
    not be recorded (deferred by --limit, or a change not yet applied)."""

    def __init__(self, ledger: Ledger | None, options: PlanOptions, emit: Emit) -> None:
        source = read.source_id(options.source)
        self.key = None if source is None else f"bookmark:{source}"
        self.ledger = ledger
        self.options = options
        self.emit = emit
        self.writes = ledger is not None and not options.dry_run and self.key is not None
        stored = ledger.meta.get(self.key) if ledger is not None and self.key else None
        self.saved = None if options.ignore_bookmark else stored
        self.held = False
        if options.state_file and not options.dry_run:
            if stored is not None:
                _write_state_file(options.state_file, stored)
            elif not os.path.exists(options.state_file):
                _write_state_file(options.state_file, "{}")  # a tap's --state needs a file

    def batch_closed(self, unrecorded: bool) -> None:
        """A batch was planned; ``unrecorded``: it left records unrecorded, so no later
        bookmark may be saved this run."""
        if unrecorded and not self.held and self.key is not None:
            self.held = True
            if self.writes:
                self.emit_warning(
                    "bookmark not advanced this run: a record before it was not recorded "
                    "(deferred by --limit, or a changed record not yet updated); the next run "
                    "reads the source again from the last saved bookmark"
                )

    def save(self, state: StateMessage) -> None:
        """Save the Singer state after a batch whose records are all recorded."""
        if not self.writes or self.held:
            return
        assert self.ledger is not None and self.key is not None
        text = canonical_json(state.value).decode()
        with self.ledger.transaction():
            self.ledger.meta.set(self.key, text)
        self.saved = text
        self.emit(
            Event(
                EventKind.BOOKMARK,
                None,
                f"saved after {state.origin}: {text}",
                {"value": state.value},
            )
        )
        if self.options.state_file:
            try:
                _write_state_file(self.options.state_file, text)
            except UsageError as exc:  # the ledger has it; the next run writes the file again
                self.emit_warning(str(exc))

    def emit_warning(self, message: str) -> None:
        """Say something about the bookmark that is not a record's problem."""
        self.emit(Event(EventKind.WARNING, None, message))


def _write_state_file(path: str, text: str) -> None:
    """Atomically: a tap reading the file while zsync writes it sees old or new, never half."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".zsync-state-", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"--state-file {path}: {exc.strerror or exc}") from None
