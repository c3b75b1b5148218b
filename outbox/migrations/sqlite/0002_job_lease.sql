-- The job lease columns the PostgreSQL backend uses to share generation between instances; an
-- embedded SQLite store has one instance, so they stay empty, but both schemas keep the same rows.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until REAL;
ALTER TABLE jobs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
