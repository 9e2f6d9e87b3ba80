"""The SQL behind ``zsync ui``: the dashboard's queries and the canned queries Datasette lists.

Every query here only reads. They are served by Datasette over a read-only connection (and
``PRAGMA query_only``), so the UI never writes to the ledger and never takes the run lock.
``zsync_cause(status, http_status, text)`` is :func:`zsync.views.cause_of` registered as an SQL
function, so failure causes group exactly as ``zsync errors`` groups them.
"""

from __future__ import annotations

from dataclasses import dataclass

from zsync.model import NEEDS_LOOK

# How many runs the per-run charts draw: a month of nightly runs stays readable.
CHART_RUNS = 30
# Rows of "needs a person" on the dashboard; the canned query lists them all.
NEEDS_PERSON_ROWS = 25

_NEEDS = ", ".join(f"'{s.value}'" for s in sorted(NEEDS_LOOK))
# The events that start processing on the server: a create, a replayed create, an update
# (PATCH + process) and a re-queue (retry-failed).
_STARTS = "'created', 'replayed', 'updated', 'requeued'"
# Histogram buckets of processing time: (upper bound in seconds, label).
BUCKETS: tuple[tuple[float, str], ...] = (
    (0.5, "< 0.5 s"),
    (1, "0.5–1 s"),
    (2, "1–2 s"),
    (5, "2–5 s"),
    (10, "5–10 s"),
    (30, "10–30 s"),
    (60, "30–60 s"),
    (300, "1–5 min"),
    (900, "5–15 min"),
    (3600, "15–60 min"),
)
_OVER = "> 1 h"


def _seconds(start: str, end: str) -> str:
    return f"(julianday({end}) - julianday({start})) * 86400"


_LAST_RUNS = f"(SELECT id FROM runs ORDER BY id DESC LIMIT {CHART_RUNS})"

# One row per processed event of the last runs: the seconds from the start that preceded it
# (same item). Materialized: each use of `seconds` would otherwise look the start up again.
# Only the last runs: the look-up costs about 5 µs per event, and a ledger's history grows.
_STARTED = (
    "(SELECT max(s.at) FROM events s WHERE s.external_id = p.external_id "
    f"AND s.id < p.id AND s.kind IN ({_STARTS}))"
)
_PROCESSING = f"""
WITH done AS MATERIALIZED (
  SELECT p.run_id AS run, p.at AS processed_at, {_seconds(_STARTED, "p.at")} AS seconds
  FROM events p WHERE p.kind = 'processed' AND p.run_id IN {_LAST_RUNS}
)"""


def _bucket_case() -> str:
    whens = " ".join(
        f"WHEN seconds < {bound} THEN {n}" for n, (bound, _label) in enumerate(BUCKETS)
    )
    labels = " ".join(f"WHEN {n} THEN '{label}'" for n, (_b, label) in enumerate(BUCKETS))
    return (
        f"CASE {whens} ELSE {len(BUCKETS)} END AS bucket_order, "
        f"CASE CASE {whens} ELSE {len(BUCKETS)} END {labels} ELSE '{_OVER}' END AS bucket"
    )


@dataclass(frozen=True)
class Query:
    """A named read-only query: on the dashboard, and in Datasette's list of canned queries."""

    name: str
    title: str
    description: str
    sql: str

    def canned(self) -> dict[str, str]:
        """The metadata Datasette wants for a canned query."""
        return {"title": self.title, "description": self.description, "sql": self.sql.strip()}


RUNS = Query(
    "runs",
    "Runs",
    "Every run, newest first: command, start, duration, exit code and counts.",
    f"""
SELECT id AS run, command, started_at, finished_at,
  round({_seconds("started_at", "finished_at")}, 1) AS seconds,
  exit_code, counts, host, pid
FROM runs ORDER BY id DESC
""",
)

RUN_OUTCOMES = Query(
    "run_outcomes",
    "Records per run, by outcome",
    f"The last {CHART_RUNS} runs' counts, one row per outcome (attempted and unchanged left "
    "out: the first is the sum, the second dwarfs the rest in a steady state).",
    f"""
SELECT r.id AS run, r.started_at, j.key AS outcome, j.value AS records
FROM runs r, json_each(r.counts) j
WHERE r.id IN {_LAST_RUNS} AND j.key NOT IN ('attempted', 'unchanged') AND j.value > 0
ORDER BY r.id, j.key
""",
)

PROCESSING_HISTOGRAM = Query(
    "processing_histogram",
    "How long processing takes",
    f"Signals of the last {CHART_RUNS} runs by the time from their create (or replay, update, "
    "re-queue) to processed.",
    f"""{_PROCESSING}
SELECT {_bucket_case()}, count(*) AS signals
FROM done WHERE seconds IS NOT NULL GROUP BY bucket_order ORDER BY bucket_order
""",
)

PROCESSING_TREND = Query(
    "processing_trend",
    "Processing time per run",
    "Median, 90th percentile and slowest time from create to processed, for each of the last "
    f"{CHART_RUNS} runs that saw signals processed.",
    f"""{_PROCESSING},
ranked AS (
  SELECT run, seconds,
    row_number() OVER (PARTITION BY run ORDER BY seconds) AS k,
    count(*) OVER (PARTITION BY run) AS n
  FROM done WHERE seconds IS NOT NULL
)
SELECT run, max(n) AS signals,
  round(max(CASE WHEN k = (n + 1) / 2 THEN seconds END), 2) AS median_seconds,
  round(max(CASE WHEN k = (9 * n + 9) / 10 THEN seconds END), 2) AS p90_seconds,
  round(max(seconds), 2) AS max_seconds
FROM ranked GROUP BY run ORDER BY run
""",
)

STATUSES = Query(
    "statuses",
    "Items by status now",
    "How many items the ledger holds in each status.",
    "SELECT status, count(*) AS items FROM items GROUP BY status ORDER BY items DESC, status",
)

FAILURE_CAUSES = Query(
    "failure_causes",
    "Failure causes",
    "Items that need a person, grouped by cause as `zsync errors` groups them.",
    f"""
SELECT zsync_cause(status, last_http_status, last_error) AS cause, count(*) AS items,
  min(updated_at) AS first_seen, max(updated_at) AS last_seen, min(external_id) AS example
FROM items WHERE status IN ({_NEEDS})
GROUP BY cause ORDER BY items DESC, cause
""",
)

FAILURE_TREND = Query(
    "failure_trend",
    "Failure causes per run",
    f"Failure events of the last {CHART_RUNS} runs, by cause.",
    f"""
SELECT run_id AS run, zsync_cause(kind, http_status, detail) AS cause, count(*) AS events
FROM events
WHERE kind IN ({_NEEDS}) AND run_id IN {_LAST_RUNS}
GROUP BY run, cause ORDER BY run, events DESC
""",
)

NEEDS_PERSON = Query(
    "needs_a_person",
    "Items that need a person",
    "Failed, rejected, invalid, in conflict or in error, newest first.",
    f"""
SELECT external_id, status, last_http_status AS http, last_error AS reason, origin,
  updated_at, last_run_id AS run
FROM items WHERE status IN ({_NEEDS})
ORDER BY updated_at DESC, external_id
""",
)

TIMELINE = Query(
    "timeline",
    "Timeline of one item",
    "Every attempt outcome recorded for one externalId, oldest first (as `zsync show`).",
    """
SELECT at, run_id AS run, kind, http_status, detail
FROM events WHERE external_id = :external_id ORDER BY id
""",
)

BOOKMARKS = Query(
    "bookmarks",
    "Source bookmarks",
    "The last bookmark (Singer STATE or source-program state) saved for each source.",
    "SELECT substr(key, 10) AS source, value AS bookmark FROM meta "
    "WHERE key LIKE 'bookmark:%' ORDER BY key",
)

# The README's recipes ("The ledger"), word for word but for the ledger's path.
REJECTED_RECENTLY = Query(
    "rejected_recently",
    "What was rejected, and why",
    "README recipe: the 20 most recent rejections.",
    "SELECT external_id, last_http_status, last_error FROM items WHERE status = 'rejected' "
    "ORDER BY updated_at DESC LIMIT 20",
)

PROCESSING_PER_DAY = Query(
    "processing_per_day",
    "How long processing takes, per day",
    "README recipe: average seconds from create (or replay) to processed, per day.",
    "SELECT substr(e1.at,1,10) AS day, "
    "round(avg((julianday(e2.at)-julianday(e1.at))*86400),1) AS seconds "
    "FROM events e1 JOIN events e2 ON e2.external_id = e1.external_id AND e2.kind = 'processed' "
    "WHERE e1.kind IN ('created','replayed') GROUP BY day",
)

CANNED: tuple[Query, ...] = (
    RUNS,
    NEEDS_PERSON,
    TIMELINE,
    FAILURE_CAUSES,
    FAILURE_TREND,
    STATUSES,
    RUN_OUTCOMES,
    PROCESSING_HISTOGRAM,
    PROCESSING_TREND,
    BOOKMARKS,
    REJECTED_RECENTLY,
    PROCESSING_PER_DAY,
)

# Small lookups of the dashboard's header; not worth a canned query each.
BINDING = "SELECT key, value FROM meta WHERE key IN ('api_base', 'workspace_id', 'zsync_version')"
LEASE = "SELECT run_id, pid, host, command, acquired_at FROM lease"
