-- Sessions, their questions, answers, transcribed segments and the answers' audio; the same
-- shape as the SQLite schema (see migrations/sqlite) in PostgreSQL types. Everything hangs off
-- `sessions` with ON DELETE CASCADE, so deleting a session deletes its audio too.

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash    BYTEA NOT NULL,
    created_at    TEXT NOT NULL,
    guide         TEXT,
    -- 'open' until the stream sends `complete`, then 'complete' (no new streams).
    status        TEXT NOT NULL DEFAULT 'open',
    -- The question being asked now (NULL before the first `start`).
    current_index BIGINT,
    -- Position on the audio clock (ms) when progress was last saved.
    clock_ms      BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE questions (
    session_id    TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    idx           BIGINT NOT NULL,
    question_id   TEXT NOT NULL,
    text          TEXT NOT NULL,
    -- JSON array of competency ids.
    competencies  TEXT NOT NULL,
    time_limit_ms BIGINT,
    PRIMARY KEY (session_id, idx)
);

CREATE TABLE answers (
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    idx         BIGINT NOT NULL,
    -- 'recording' while audio flows, then 'answered', 'skipped' or 'interrupted'.
    status      TEXT NOT NULL,
    asked_at_ms BIGINT NOT NULL,
    -- The finished answer message as JSON (NULL while recording or when skipped).
    answer_json TEXT,
    PRIMARY KEY (session_id, idx)
);

-- Final segments, written as soon as each is sent so a crash keeps them.
CREATE TABLE segments (
    session_id TEXT NOT NULL,
    idx        BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    text       TEXT NOT NULL,
    start_ms   BIGINT NOT NULL,
    end_ms     BIGINT NOT NULL,
    PRIMARY KEY (session_id, idx, seq),
    FOREIGN KEY (session_id, idx) REFERENCES answers(session_id, idx) ON DELETE CASCADE
);

-- The answer's audio as 16 kHz mono 16-bit little-endian PCM, in the chunks it was committed in,
-- keyed by the first sample so a resumed stream never stores the same audio twice.
CREATE TABLE audio_chunks (
    session_id   TEXT NOT NULL,
    idx          BIGINT NOT NULL,
    start_sample BIGINT NOT NULL,
    pcm          BYTEA NOT NULL,
    PRIMARY KEY (session_id, idx, start_sample),
    FOREIGN KEY (session_id, idx) REFERENCES answers(session_id, idx) ON DELETE CASCADE
);
