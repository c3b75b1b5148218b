-- backlogd store on PostgreSQL: the SQLite schema (outbox/schema.sql) with PostgreSQL types, plus
-- what several instances need: a lease and fence on each job (generation runs on one instance at a
-- time) and the pauses an upstream asked for (one instance's 429 pauses all of them).

CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    vision        TEXT NOT NULL,
    options       TEXT NOT NULL,
    metadata      JSONB NOT NULL DEFAULT '{}',
    error         TEXT,
    last_seq      BIGINT NOT NULL DEFAULT 0,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL,
    finished_at   DOUBLE PRECISION,
    lease_owner   TEXT,                       -- the instance running the job
    lease_until   DOUBLE PRECISION,           -- renewed by its heartbeat; past it, anyone may take over
    fence         BIGINT NOT NULL DEFAULT 0   -- bumped on every take-over; a stale owner's commit is refused
);
CREATE INDEX jobs_created ON jobs(created_at);
CREATE INDEX jobs_open ON jobs(status, created_at) WHERE status IN ('queued', 'running');

CREATE TABLE job_events (
    job_id      TEXT NOT NULL REFERENCES jobs(id),
    seq         BIGINT NOT NULL,
    type        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE llm_calls (
    job_id             TEXT NOT NULL REFERENCES jobs(id),
    call_key           TEXT NOT NULL,
    stage              TEXT NOT NULL,
    parent_id          TEXT,
    status             TEXT NOT NULL,
    prompt_hash        TEXT NOT NULL,
    attempts           INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    latency_ms         DOUBLE PRECISION NOT NULL DEFAULT 0,
    error              TEXT,
    created_at         DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (job_id, call_key)
);

CREATE TABLE items (
    id               TEXT PRIMARY KEY,
    job_id           TEXT NOT NULL REFERENCES jobs(id),
    parent_id        TEXT,
    depends_on       JSONB NOT NULL DEFAULT '[]',
    kind             TEXT NOT NULL,
    level            INTEGER NOT NULL,
    position         INTEGER NOT NULL,
    title            TEXT NOT NULL,
    body             TEXT NOT NULL,
    call_key         TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_until      DOUBLE PRECISION,
    fence            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  DOUBLE PRECISION NOT NULL DEFAULT 0,
    reconcile        BOOLEAN NOT NULL DEFAULT FALSE,
    ado_id           BIGINT,
    ado_url          TEXT,
    ado_rev          INTEGER,
    ado_extra        TEXT NOT NULL DEFAULT '{}',
    error            TEXT,
    created_at       DOUBLE PRECISION NOT NULL,
    updated_at       DOUBLE PRECISION NOT NULL
);
CREATE INDEX items_job ON items(job_id, level, position);
CREATE INDEX items_claim ON items(state, next_attempt_at, level);
CREATE INDEX items_parent ON items(parent_id);
CREATE INDEX items_job_state ON items(job_id, state);

-- An upstream identity (an LLM endpoint, an ADO organisation) that asked everyone to wait.
CREATE TABLE upstream_pauses (
    identity     TEXT PRIMARY KEY,
    until        DOUBLE PRECISION NOT NULL
);
