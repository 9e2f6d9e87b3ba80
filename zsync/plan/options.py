"""What a push is asked to do, and the refusals that come before anything is opened."""

from __future__ import annotations

from dataclasses import dataclass, field

from zsync import read, shape
from zsync.errors import UsageError
from zsync.read import InputSpec

ON_CHANGE = ("update", "skip", "resend")
# Records planned (and intents committed) together; also the skip path's lookup chunk and the
# follow-ups read from the ledger at a time.
BATCH = 500


@dataclass
class PlanOptions:
    source: InputSpec = field(default_factory=InputSpec)
    mapping: str | None = None  # a mapping file (TOML); required for CSV
    derive_external_id: bool = False
    limit: int | None = None
    dry_run: bool = False
    on_change: str = "update"
    prune: bool = False
    prune_max: float = 0.10
    force: bool = False
    state_file: str | None = None  # kept equal to the saved bookmark (for Singer taps)
    ignore_bookmark: bool = False  # start the source from scratch
    # Poll the signals earlier runs left processing (a push that waits for processing does;
    # a --no-poll push does not wait for its own signals either).
    follow_up: bool = True
    # A Singer record without a mapping: its signalType (None: the stream's name) and a
    # template for its name (zsync.shape.singer_body)
    signal_type: str | None = None
    name_template: str | None = None

    def singer_body(self) -> shape.SingerBody:
        """How Singer records without a mapping are shaped (UsageError for a bad template)."""
        return shape.SingerBody(self.signal_type, self.name_template)


def check(options: PlanOptions) -> shape.MappingFile | None:
    """Refuse combinations that cannot work, before anything is opened or sent; load and
    check the mapping file (MappingError, exit 2, names its line)."""
    spec = options.source
    read.check(spec)
    bookmarked = read.source_id(spec) is not None
    if not bookmarked and (options.state_file or options.ignore_bookmark):
        flag = "--state-file" if options.state_file else "--ignore-bookmark"
        raise UsageError(f"{flag} needs a source with bookmarks: --source-cmd or --format singer")
    if bookmarked and options.prune and not options.ignore_bookmark:
        raise UsageError(
            "--prune needs the complete dataset, but a bookmarked source sends only what is "
            "new; add --ignore-bookmark to read it from the start"
        )
    options.singer_body()
    mappings = shape.load(options.mapping) if options.mapping else None
    formats = {read.input_format(p, spec.fmt) for p in spec.inputs}
    if "csv" in formats and mappings is None:
        raise UsageError(
            "CSV input needs --mapping FILE: rows are flat text, and the mapping says which "
            "column becomes which field"
        )
    if mappings is not None and mappings.default is None and not spec.singer:
        raise UsageError(
            f"mapping {mappings.name} has only [streams.NAME] tables, which are for "
            "--format singer; add a top-level [fields] table for this input"
        )
    return mappings
