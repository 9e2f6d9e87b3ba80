"""Where records come from: files, stdin or a source program; JSON, JSONL, CSV or Singer;
a mapping file applied; and the source's bookmark.

The planner sees one stream of :class:`~zsync.sources.Record` (template shape),
:class:`~zsync.sources.Problem`, :class:`~zsync.mapping.Invalid` (a record the mapping
could not use) and :class:`StateMessage` (a bookmark the source emitted). A bookmark is
saved by the planner only after every record before it is recorded in the ledger
(:class:`Bookmark`), so the next run can start the source after it and lose nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from zsync import config
from zsync.csvsource import read_csv
from zsync.engine import Emit, Event
from zsync.errors import UsageError, ZsyncError
from zsync.mapfile import MappingFile
from zsync.mapfile import load as load_mapping
from zsync.mapping import Invalid, Prepared, canonical_json, prepare, problem_to_invalid
from zsync.sources import Problem, Record, parse_jsonl_line, pipe_lines, read_records

if TYPE_CHECKING:
    from zsync.ledger import Ledger
    from zsync.plan import PlanOptions

__all__ = [
    "FORMATS",
    "IDLE",
    "Bookmark",
    "Idle",
    "Item",
    "SourceFailed",
    "StateMessage",
    "bookmark_key",
    "check",
    "preview",
    "read",
]

FORMATS = ("json", "jsonl", "ndjson", "csv", "singer")
BOOKMARK_ENV = "ZSYNC_BOOKMARK"
STATE_FILE_ENV = "ZSYNC_STATE_FILE"

Warn = Callable[[str], None]
_INTERPRETER = re.compile(r"(python|pypy|node|nodejs|ruby|perl|php|bash|sh|zsh|deno|bun)[\d.]*")


@dataclass(frozen=True, slots=True)
class StateMessage:
    """A bookmark from the source: the value of a Singer/source-program STATE line."""

    origin: str
    value: Any


class Idle:
    """The source has sent nothing for IDLE_SECONDS. The planner sends what it holds
    instead of waiting for a full batch, and a stop is noticed while the source is quiet."""

    __slots__ = ()


IDLE = Idle()
IDLE_SECONDS = 0.25

Item = Record | Problem | Invalid | StateMessage | Idle


class SourceFailed(ZsyncError):
    """The source program exited non-zero; what it emitted before was planned and recorded."""


# -- options ------------------------------------------------------------------------------


def _format(path: str, fmt: str | None) -> str | None:
    if fmt is not None:
        return "jsonl" if fmt == "ndjson" else fmt
    lower = path.lower()
    if lower.endswith((".csv", ".tsv")):
        return "csv"
    return None  # json or jsonl, decided by sources.read_records


def _delimiter(given: str | None) -> str | None:
    if given is None:
        return None
    return "\t" if given.lower() in ("tab", "\\t") else given


def bookmark_key(options: PlanOptions) -> str | None:
    """The ledger meta key of this source's bookmark; None for sources that emit none.

    A source program is identified by its command line exactly as given (stored as a hash:
    a command line may carry a token), a Singer file by its absolute path, Singer on stdin
    by "stdin" (one per ledger).
    """
    if options.source_cmd:
        digest = hashlib.sha256(options.source_cmd.encode()).hexdigest()[:16]
        return f"bookmark:cmd:{program_name(options.source_cmd)}:{digest}"
    if options.fmt == "singer" and options.inputs:
        path = options.inputs[0]
        return "bookmark:stdin" if path == "-" else f"bookmark:file:{os.path.abspath(path)}"
    return None


def program_name(command: str) -> str:
    """What messages call the program: "fetch.py" for "python3 -u fetch.py --since x"."""
    try:
        argv = shlex.split(command)
    except ValueError:
        argv = command.split()
    if not argv:
        return ""
    if _INTERPRETER.fullmatch(os.path.basename(argv[0])):
        for arg in argv[1:]:
            if not arg.startswith("-"):
                return os.path.basename(arg)
    return os.path.basename(argv[0])


def _argv(command: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"--source-cmd: cannot split {command!r}: {exc}") from None
    if not argv:
        raise UsageError("--source-cmd is empty")
    program = argv[0]
    found = shutil.which(program)
    if found is None:
        what = "is not an executable file" if os.sep in program else "is not found on PATH"
        raise UsageError(f"--source-cmd: {program} {what}")
    return argv


def check(options: PlanOptions) -> MappingFile | None:
    """Refuse combinations that cannot work, before anything is opened or sent; load and
    check the mapping file (MappingError, exit 2, names its line)."""
    if options.source_cmd and options.inputs:
        raise UsageError("give --input or --source-cmd, not both")
    if not options.source_cmd and not options.inputs:
        raise UsageError("give --input FILE (- for stdin) or --source-cmd COMMAND")
    if options.source_cmd:
        if options.fmt not in (None, "jsonl", "ndjson", "singer"):
            raise UsageError("a --source-cmd writes JSONL (or --format singer) on its stdout")
        _argv(options.source_cmd)
    if options.fmt == "singer" and len(options.inputs) > 1:
        raise UsageError("--format singer reads one input (one stream of Singer messages)")
    key = bookmark_key(options)
    if key is None and (options.state_file or options.ignore_bookmark):
        flag = "--state-file" if options.state_file else "--ignore-bookmark"
        raise UsageError(f"{flag} needs a source with bookmarks: --source-cmd or --format singer")
    if key is not None and options.prune and not options.ignore_bookmark:
        raise UsageError(
            "--prune needs the complete dataset, but a bookmarked source sends only what is "
            "new; add --ignore-bookmark to read it from the start"
        )
    formats = {_format(p, options.fmt) for p in options.inputs}
    if options.delimiter is not None:
        if formats != {"csv"}:
            raise UsageError("--delimiter is for CSV input (a .csv/.tsv file or --format csv)")
        if len(_delimiter(options.delimiter) or "") != 1:
            raise UsageError("--delimiter must be one character (or 'tab')")
    mappings = load_mapping(options.mapping) if options.mapping else None
    if "csv" in formats and mappings is None:
        raise UsageError(
            "CSV input needs --mapping FILE: rows are flat text, and the mapping says which "
            "column becomes which field"
        )
    singer = options.fmt == "singer"
    if mappings is not None and mappings.default is None and not singer:
        raise UsageError(
            f"mapping {mappings.name} has only [streams.NAME] tables, which are for "
            "--format singer; add a top-level [fields] table for this input"
        )
    return mappings


# -- reading ------------------------------------------------------------------------------


def read(
    options: PlanOptions, *, bookmark: str | None = None, warn: Warn = lambda _m: None
) -> Generator[Item, None, None]:
    """Every item of the input(s), mapped. A failed source program raises SourceFailed
    after its last item, so everything it emitted is handled first."""
    mappings = load_mapping(options.mapping) if options.mapping else None
    if options.source_cmd:
        yield from _command(options, mappings, bookmark, warn)
        return
    for path in options.inputs:
        fmt = _format(path, options.fmt)
        items: Iterable[Record | Problem | Idle]
        if path == "-" and fmt in ("jsonl", "singer") and _is_pipe(sys.stdin):
            # `tap | zsync push --input - --format singer`: records as they arrive
            items = _pipe_records(sys.stdin.fileno(), "<stdin>")
        elif fmt == "csv":
            delimiter = _delimiter(options.delimiter) or (
                "\t" if path.lower().endswith(".tsv") else None
            )
            items = read_csv(path, delimiter)
        else:
            items = read_records(path, "jsonl" if fmt == "singer" else options.fmt)
        if fmt == "singer":
            yield from _singer(items, mappings, warn)
        else:
            yield from _mapped(items, mappings)


def _is_pipe(stream: TextIO) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):  # no file descriptor behind it (a test's stand-in)
        return False


def _mapped(
    items: Iterable[Record | Problem | StateMessage | Idle], mappings: MappingFile | None
) -> Iterator[Item]:
    mapping = mappings.default if mappings is not None else None
    if mapping is None:
        yield from items
        return
    apply = mapping.apply
    for item in items:
        yield apply(item) if type(item) is Record else item


def _singer(
    messages: Iterable[Record | Problem | Idle], mappings: MappingFile | None, warn: Warn
) -> Iterator[Item]:
    """Singer messages -> records of mapped streams, STATE bookmarks; SCHEMA checks names."""
    warned: set[str] = set()

    def once(key: str, message: str) -> None:
        if key not in warned:
            warned.add(key)
            warn(message)

    def unmapped(stream: str, origin: str) -> bool:
        if mappings is None or mappings.for_stream(stream) is not None:
            return False
        once(
            f"stream:{stream}",
            f"{origin}: Singer stream {stream!r} has no mapping in {mappings.name} "
            f"(add [streams.{stream}] or top-level [fields]); its records are skipped",
        )
        return True

    for item in messages:
        if type(item) is not Record:
            yield item
            continue
        message = item.data
        kind = message.get("type") if type(message) is dict else None
        if kind == "RECORD":
            stream, record = message.get("stream"), message.get("record")
            if type(stream) is not str or not stream:
                yield Problem(item.origin, 'Singer RECORD without a "stream" name')
            elif unmapped(stream, item.origin):
                continue
            elif mappings is not None:
                mapping = mappings.for_stream(stream)
                assert mapping is not None
                yield mapping.apply(Record(item.origin, record))
            else:
                yield Record(item.origin, record)
        elif kind == "STATE":
            if "value" not in message:
                yield Problem(item.origin, 'Singer STATE without a "value"')
            else:
                yield StateMessage(item.origin, message["value"])
        elif kind == "SCHEMA":
            stream = message.get("stream")
            if type(stream) is str:
                unmapped(stream, item.origin)
        elif type(kind) is str:
            once(f"type:{kind}", f"{item.origin}: Singer message type {kind!r} is ignored")
        else:
            yield Problem(item.origin, 'not a Singer message (it needs a "type")')


def _state_lines(
    items: Iterable[Record | Problem | Idle],
) -> Iterator[Record | Problem | StateMessage | Idle]:
    """A source program's bookmark is a line that is exactly {"type": "STATE", "value": ...}."""
    for item in items:
        data = item.data if type(item) is Record else None
        if (
            type(data) is dict
            and data.get("type") == "STATE"
            and "value" in data
            and len(data) == 2
        ):
            assert type(item) is Record
            yield StateMessage(item.origin, data["value"])
        else:
            yield item


def _pipe_records(fd: int, name: str) -> Iterator[Record | Problem | Idle]:
    for got in pipe_lines(fd, name, IDLE_SECONDS):
        if got is None:
            yield IDLE
        elif (item := parse_jsonl_line(*got)) is not None:
            yield item


def _command(
    options: PlanOptions, mappings: MappingFile | None, bookmark: str | None, warn: Warn
) -> Iterator[Item]:
    assert options.source_cmd is not None
    argv = _argv(options.source_cmd)
    env = config.child_environment(
        {
            BOOKMARK_ENV: bookmark,
            STATE_FILE_ENV: os.path.abspath(options.state_file) if options.state_file else None,
        }
    )
    name = program_name(options.source_cmd)
    try:
        # stdin is not shared (zsync's may be a terminal or a pipe meant for it); stderr
        # passes through so the program's own messages reach the user or the cron mail.
        # Its own process group keeps a terminal's Ctrl-C for zsync alone: zsync stops reading,
        # records what it has, then ends the program below, instead of the program dying
        # first (with its own traceback) and the run reporting a failed source.
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env, process_group=0
        )
    except OSError as exc:
        raise UsageError(f"--source-cmd: cannot start {argv[0]}: {exc.strerror or exc}") from None
    assert proc.stdout is not None
    try:
        lines = _pipe_records(proc.stdout.fileno(), name)
        if options.fmt == "singer":
            yield from _singer(lines, mappings, warn)
        else:
            yield from _mapped(_state_lines(lines), mappings)
        code = proc.wait()
    finally:
        if proc.poll() is None:  # stopped early (Ctrl-C, a fatal error): end the program
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        raise SourceFailed(
            f"source command {name} {how}; the records it emitted before were recorded"
        )


# -- preview ------------------------------------------------------------------------------


@dataclass
class Preview:
    items: list[Prepared | Invalid]
    warnings: list[str]


def preview(options: PlanOptions, limit: int) -> Preview:
    """The bodies (or problems) of the first ``limit`` records; nothing is sent or written."""
    check(options)
    out = Preview([], [])
    stream = read(options, warn=out.warnings.append)
    with closing(stream):
        for item in stream:
            if len(out.items) >= limit:
                break
            if isinstance(item, StateMessage | Idle):
                continue
            if isinstance(item, Problem):
                out.items.append(problem_to_invalid(item))
            elif isinstance(item, Invalid):
                out.items.append(item)
            else:
                out.items.append(prepare(item, derive_external_id=options.derive_external_id))
    return out


# -- bookmarks ----------------------------------------------------------------------------


class Bookmark:
    """The source's saved bookmark: read before the source starts, saved only after every
    record before it is recorded, and never again in a run once a record before it could
    not be recorded (deferred by --limit, or a change not yet applied)."""

    def __init__(self, ledger: Ledger | None, options: PlanOptions, emit: Emit) -> None:
        self.key = bookmark_key(options)
        self.ledger = ledger
        self.options = options
        self.emit = emit
        self.writes = ledger is not None and not options.dry_run and self.key is not None
        stored = ledger.get_meta(self.key) if ledger is not None and self.key else None
        self.saved = None if options.ignore_bookmark else stored
        self.held = False
        if options.state_file and not options.dry_run:
            if stored is not None:
                _write_state_file(options.state_file, stored)
            elif not os.path.exists(options.state_file):
                _write_state_file(options.state_file, "{}")  # a tap's --state needs a file

    def batch_closed(self, unrecorded: bool) -> None:
        if unrecorded and not self.held and self.key is not None:
            self.held = True
            if self.writes:
                self.emit_warning(
                    "bookmark not advanced this run: a record before it was not recorded "
                    "(deferred by --limit, or a changed record not yet updated); the next run "
                    "reads the source again from the last saved bookmark"
                )

    def save(self, state: StateMessage) -> None:
        if not self.writes or self.held:
            return
        assert self.ledger is not None and self.key is not None
        text = canonical_json(state.value).decode()
        with self.ledger.transaction():
            self.ledger.set_meta(self.key, text)
        self.saved = text
        # data["value"] is the value as the source sent it: a Singer target hands it on
        message = f"saved after {state.origin}: {text}"
        self.emit(Event("bookmark", None, message, {"value": state.value}))
        if self.options.state_file:
            try:
                _write_state_file(self.options.state_file, text)
            except UsageError as exc:  # the ledger has it; the next run writes the file again
                self.emit_warning(str(exc))

    def emit_warning(self, message: str) -> None:
        self.emit(Event("warning", None, message))


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
