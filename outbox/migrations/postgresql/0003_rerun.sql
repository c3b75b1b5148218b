-- Re-running a vision (update_of): a job's vision key (its normalised vision and target, hashed) finds
-- an earlier backlog of the same vision in one indexed query; each item of a re-run records how it
-- matched the previous job's items (unchanged, updated, new, vanished).
ALTER TABLE jobs ADD COLUMN vision_key TEXT;
CREATE INDEX jobs_vision_key ON jobs(vision_key, created_at);
ALTER TABLE items ADD COLUMN match_kind TEXT;
