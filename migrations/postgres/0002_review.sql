-- Review and durability: creation time as a number (retention), the stream lease that keeps
-- one stream per session across servers and tells recovery which answers are orphaned, and
-- reviewer notes pinned to an answer and a time.

ALTER TABLE sessions ADD COLUMN created_at_ms BIGINT NOT NULL DEFAULT 0;
-- The stream holding the session (a random id per stream) and until when (epoch ms); a
-- recording answer whose lease has run out lost its stream and is finalised by recovery.
ALTER TABLE sessions ADD COLUMN lease_owner TEXT;
ALTER TABLE sessions ADD COLUMN lease_until_ms BIGINT NOT NULL DEFAULT 0;
CREATE INDEX sessions_by_created ON sessions (created_at_ms);

CREATE TABLE notes (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    -- The answer (question index) and the time within it the note is about.
    idx        BIGINT NOT NULL,
    at_ms      BIGINT NOT NULL,
    text       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX notes_by_session ON notes (session_id, idx, at_ms);
