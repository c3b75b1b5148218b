-- Edits after upload (issue 14); see outbox/migrations/sqlite/0003_item_updates.sql.
ALTER TABLE items ADD COLUMN written TEXT;
ALTER TABLE items ADD COLUMN conflict TEXT;
ALTER TABLE items ADD COLUMN dirty BOOLEAN NOT NULL DEFAULT FALSE;
