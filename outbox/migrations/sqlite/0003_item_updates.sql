-- Edits after upload (issue 14): an uploaded row edited again becomes an update of its work item.
-- written: the owned ADO fields as we last wrote them (JSON), compared with the work item after a
-- failed `test /rev`; conflict: {"ours", "theirs"} while the item waits for the user to choose;
-- dirty: edited while its upload was in flight, so that upload's success is followed by an update.
ALTER TABLE items ADD COLUMN written TEXT;
ALTER TABLE items ADD COLUMN conflict TEXT;
ALTER TABLE items ADD COLUMN dirty INTEGER NOT NULL DEFAULT 0;
