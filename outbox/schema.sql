-- backlogd store. One writer connection (WAL, BEGIN IMMEDIATE), readers on their own connections.
-- Nothing is deleted on success: an uploaded item keeps its row with the ADO id, URL and revision.

CREATE TABLE IF NOT EXISTS jobs (
    id            TEXT PRIMARY KEY,
    status        TEXT NOT NULL,          -- queued running awaiting_upload completed completed_with_errors failed cancelled
    vision        TEXT NOT NULL,          -- the parsed vision (JSON)
    options       TEXT NOT NULL,          -- limits, include_qa, target, upload mode (JSON, never a secret)
    metadata      TEXT NOT NULL DEFAULT '{}',
    error         TEXT,
    last_seq      INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    finished_at   REAL
);

CREATE TABLE IF NOT EXISTS job_events (
    job_id      TEXT NOT NULL REFERENCES jobs(id),
    seq         INTEGER NOT NULL,
    type        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS llm_calls (
    job_id             TEXT NOT NULL REFERENCES jobs(id),
    call_key           TEXT NOT NULL,     -- "<stage>:<parent id or root>"
    stage              TEXT NOT NULL,
    parent_id          TEXT,
    status             TEXT NOT NULL,     -- done failed
    prompt_hash        TEXT NOT NULL,
    attempts           INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    latency_ms         REAL NOT NULL DEFAULT 0,
    error              TEXT,
    created_at         REAL NOT NULL,
    PRIMARY KEY (job_id, call_key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS items (
    id               TEXT PRIMARY KEY,
    job_id           TEXT NOT NULL REFERENCES jobs(id),
    parent_id        TEXT,
    depends_on       TEXT NOT NULL DEFAULT '[]',   -- extra prerequisites (JSON list of item ids)
    kind             TEXT NOT NULL,
    level            INTEGER NOT NULL,             -- upload order: parents have a lower level
    position         INTEGER NOT NULL,
    title            TEXT NOT NULL,
    body             TEXT NOT NULL,
    call_key         TEXT NOT NULL,
    state            TEXT NOT NULL,   -- held pending in_flight uploaded retry_wait dead blocked
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_until      REAL,
    fence            INTEGER NOT NULL DEFAULT 0,   -- bumped on every claim; a stale owner's write is refused
    next_attempt_at  REAL NOT NULL DEFAULT 0,
    reconcile        INTEGER NOT NULL DEFAULT 0,   -- a previous attempt was ambiguous: look up before creating
    ado_id           INTEGER,
    ado_url          TEXT,
    ado_rev          INTEGER,
    ado_extra        TEXT NOT NULL DEFAULT '{}',
    error            TEXT,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL
);

CREATE INDEX IF NOT EXISTS items_job ON items(job_id, level, position);
CREATE INDEX IF NOT EXISTS items_claim ON items(state, next_attempt_at, level);
CREATE INDEX IF NOT EXISTS items_parent ON items(parent_id);
-- "is this job settled?" is asked after every upload: answer it from the index, not a scan
CREATE INDEX IF NOT EXISTS items_job_state ON items(job_id, state);
