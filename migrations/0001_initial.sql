-- zsync ledger, schema 1. One row per record (externalId), one per run, one per attempt.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE items (
    external_id      TEXT PRIMARY KEY,
    payload_hash     TEXT NOT NULL,
    -- canonical create body; kept until the item is processed so a resend is byte-identical
    payload          TEXT,
    idempotency_key  TEXT,
    status           TEXT NOT NULL CHECK (status IN (
                         'pending', 'submitted', 'processed', 'failed', 'rejected',
                         'error', 'conflict', 'invalid', 'deleted')),
    public_id        TEXT,
    job_id           TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_http_status INTEGER,
    last_error       TEXT,
    next_attempt_at  TEXT,
    origin           TEXT,
    first_run_id     INTEGER,
    last_run_id      INTEGER,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX items_status ON items (status);
CREATE INDEX items_public_id ON items (public_id);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    command     TEXT NOT NULL,
    arguments   TEXT NOT NULL,   -- JSON; never secrets
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    counts      TEXT,            -- JSON object outcome -> n
    exit_code   INTEGER
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    external_id TEXT,
    run_id      INTEGER,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,   -- sent, accepted, replayed, retry, rejected, conflict, error, invalid, polled, processed, failed, requeued
    http_status INTEGER,
    detail      TEXT
);
CREATE INDEX events_item ON events (external_id, id);

-- The run lease: at most one row. A holder whose process is gone, or whose heartbeat is
-- stale, is taken over by the next run.
CREATE TABLE lease (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    run_id       INTEGER,
    pid          INTEGER NOT NULL,
    host         TEXT NOT NULL,
    command      TEXT NOT NULL,
    acquired_at  TEXT NOT NULL,
    heartbeat_at REAL NOT NULL
);
