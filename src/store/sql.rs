//! The store on SQL, one implementation for both engines through sqlx's `Any` driver: SQLite
//! (embedded default: one file, WAL journal, foreign keys on, `synchronous = FULL` so that a
//! committed audio chunk survives a crash) and PostgreSQL (several servers on one database).
//! The SQL is written to run unchanged on both (`$N` placeholders, `ON CONFLICT`); only the
//! connection set-up and the migrations, one folder per engine, differ.

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor, Row};

use super::*;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The engine a database URL names by its scheme.
    pub fn from_url(url: &str) -> Option<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Some(Engine::Sqlite),
            "postgres" | "postgresql" => Some(Engine::Postgres),
            _ => None,
        }
    }
}

pub struct SqlStore {
    pool: AnyPool,
}

impl SqlStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let engine = Engine::from_url(url)
            .ok_or_else(|| StoreError::UnsupportedUrl(url.split(':').next().unwrap_or_default().into()))?;
        let url = match engine {
            Engine::Sqlite => {
                create_sqlite_parent_dir(url)?;
                if url.contains('?') {
                    url.to_string()
                } else {
                    format!("{url}?mode=rwc")
                }
            }
            Engine::Postgres => url.to_string(),
        };
        let options: AnyConnectOptions = url.parse()?;
        let pool = match AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECT_TIMEOUT)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => pool,
            Err(sqlx::Error::PoolTimedOut) => return Err(StoreError::Database(unreachable_cause(&options).await)),
            Err(error) => return Err(error.into()),
        };
        match engine {
            Engine::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Engine::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Self { pool })
    }
}

/// How long opening a connection may take; the pool retries a refused one until then (the
/// database may be starting alongside the server).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The pool gave up with a bare "timed out": one direct attempt names the cause for the
/// operator (connection refused, unknown host, bad password…).
async fn unreachable_cause(options: &AnyConnectOptions) -> sqlx::Error {
    use sqlx::Connection;
    match tokio::time::timeout(CONNECT_TIMEOUT, sqlx::AnyConnection::connect_with(options)).await {
        Ok(Err(cause)) => cause,
        Ok(Ok(_)) => sqlx::Error::PoolTimedOut,
        Err(_) => sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer from the database server within {} s", CONNECT_TIMEOUT.as_secs()),
        )),
    }
}

/// SQLite creates the file but not its folder (`sqlite://data/viva.db` on a fresh clone).
fn create_sqlite_parent_dir(url: &str) -> StoreResult<()> {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::CreateDir { path: dir.display().to_string(), source })?;
    }
    Ok(())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_session(&self, s: &NewSession) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, created_at, created_at_ms, guide) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.id)
        .bind(&s.token_hash)
        .bind(&s.created_at)
        .bind(to_i64(s.created_at_ms))
        .bind(&s.guide)
        .execute(&mut *tx)
        .await?;
        for q in &s.questions {
            sqlx::query(
                "INSERT INTO questions (session_id, idx, question_id, text, competencies, time_limit_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&s.id)
            .bind(q.index as i64)
            .bind(&q.id)
            .bind(&q.text)
            .bind(serde_json::to_string(&q.competencies).expect("strings serialise"))
            .bind(q.time_limit_ms.map(to_i64))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn session(&self, id: &str) -> StoreResult<Option<SessionRow>> {
        let Some(row) = sqlx::query(
            "SELECT id, token_hash, created_at, guide, status, current_index, clock_ms FROM sessions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let questions = sqlx::query(
            "SELECT idx, question_id, text, competencies, time_limit_ms FROM questions
             WHERE session_id = $1 ORDER BY idx",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|q| {
            let competencies: String = q.get("competencies");
            Ok(Question {
                index: q.get::<i64, _>("idx") as usize,
                id: q.get("question_id"),
                text: q.get("text"),
                competencies: serde_json::from_str(&competencies)
                    .map_err(|e| StoreError::Corrupt(format!("question competencies: {e}")))?,
                time_limit_ms: q.get::<Option<i64>, _>("time_limit_ms").map(|v| v as u64),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        let status: String = row.get("status");
        Ok(Some(SessionRow {
            id: row.get("id"),
            token_hash: row.get("token_hash"),
            created_at: row.get("created_at"),
            guide: row.get("guide"),
            status: if status == "complete" { SessionStatus::Complete } else { SessionStatus::Open },
            current_index: row.get::<Option<i64>, _>("current_index").map(|v| v as usize),
            clock_ms: row.get::<i64, _>("clock_ms") as u64,
            questions,
        }))
    }

    async fn save_progress(&self, id: &str, current_index: usize, clock_ms: u64) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET current_index = $1, clock_ms = $2 WHERE id = $3")
            .bind(current_index as i64)
            .bind(to_i64(clock_ms))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn mark_complete(&self, id: &str, clock_ms: u64) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET status = 'complete', clock_ms = $1 WHERE id = $2")
            .bind(to_i64(clock_ms))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn begin_answer(&self, id: &str, index: usize, asked_at_ms: u64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO answers (session_id, idx, status, asked_at_ms) VALUES ($1, $2, 'recording', $3)
             ON CONFLICT (session_id, idx) DO NOTHING",
        )
        .bind(id)
        .bind(index as i64)
        .bind(to_i64(asked_at_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn append_audio(&self, id: &str, index: usize, start_sample: u64, samples: &[i16]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audio_chunks (session_id, idx, start_sample, pcm) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(index as i64)
        .bind(to_i64(start_sample))
        .bind(pcm_to_bytes(samples))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn add_segment(&self, id: &str, index: usize, seq: usize, segment: &Segment) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO segments (session_id, idx, seq, text, start_ms, end_ms) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(index as i64)
        .bind(seq as i64)
        .bind(&segment.text)
        .bind(to_i64(segment.start_ms))
        .bind(to_i64(segment.end_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn finish_answer(
        &self,
        id: &str,
        index: usize,
        status: AnswerStatus,
        answer: Option<&Answer>,
    ) -> StoreResult<()> {
        let json = answer.map(|a| serde_json::to_string(a).expect("answers serialise"));
        sqlx::query(
            "INSERT INTO answers (session_id, idx, status, asked_at_ms, answer_json) VALUES ($1, $2, $3, 0, $4)
             ON CONFLICT (session_id, idx) DO UPDATE SET status = excluded.status, answer_json = excluded.answer_json",
        )
        .bind(id)
        .bind(index as i64)
        .bind(status.as_str())
        .bind(json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn answers(&self, id: &str) -> StoreResult<Vec<AnswerRow>> {
        let rows = sqlx::query(
            "SELECT a.idx, a.status, a.asked_at_ms, a.answer_json,
                    (SELECT COALESCE(SUM(LENGTH(c.pcm)), 0) / 2 FROM audio_chunks c
                      WHERE c.session_id = a.session_id AND c.idx = a.idx) AS audio_samples
             FROM answers a WHERE a.session_id = $1 ORDER BY a.idx",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut answers = Vec::with_capacity(rows.len());
        for row in rows {
            let index = row.get::<i64, _>("idx") as usize;
            let answer = match row.get::<Option<String>, _>("answer_json") {
                Some(json) => Some(
                    serde_json::from_str::<Answer>(&json).map_err(|e| StoreError::Corrupt(format!("answer: {e}")))?,
                ),
                None => None,
            };
            let segments = sqlx::query(
                "SELECT text, start_ms, end_ms FROM segments WHERE session_id = $1 AND idx = $2 ORDER BY seq",
            )
            .bind(id)
            .bind(index as i64)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|s| Segment {
                text: s.get("text"),
                start_ms: s.get::<i64, _>("start_ms") as u64,
                end_ms: s.get::<i64, _>("end_ms") as u64,
            })
            .collect();
            answers.push(AnswerRow {
                index,
                status: AnswerStatus::parse(&row.get::<String, _>("status"))?,
                asked_at_ms: row.get::<i64, _>("asked_at_ms") as u64,
                answer,
                segments,
                audio_samples: row.get::<i64, _>("audio_samples") as u64,
            });
        }
        Ok(answers)
    }

    async fn answer_audio(&self, id: &str, index: usize) -> StoreResult<Option<Vec<i16>>> {
        let exists = sqlx::query("SELECT 1 FROM answers WHERE session_id = $1 AND idx = $2")
            .bind(id)
            .bind(index as i64)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let chunks =
            sqlx::query("SELECT pcm FROM audio_chunks WHERE session_id = $1 AND idx = $2 ORDER BY start_sample")
                .bind(id)
                .bind(index as i64)
                .fetch_all(&self.pool)
                .await?;
        let mut samples = Vec::new();
        for chunk in chunks {
            samples.extend(bytes_to_pcm(&chunk.get::<Vec<u8>, _>("pcm")));
        }
        Ok(Some(samples))
    }

    async fn delete_session(&self, id: &str) -> StoreResult<bool> {
        let deleted = sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn list_sessions(&self, limit: usize) -> StoreResult<Vec<SessionSummary>> {
        let rows = sqlx::query(
            "SELECT s.id, s.created_at, s.guide, s.status,
                    (SELECT COUNT(*) FROM questions q WHERE q.session_id = s.id) AS questions,
                    (SELECT COUNT(*) FROM answers a WHERE a.session_id = s.id AND a.answer_json IS NOT NULL) AS answers
             FROM sessions s ORDER BY s.created_at_ms DESC, s.id LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SessionSummary {
                id: r.get("id"),
                created_at: r.get("created_at"),
                guide: r.get("guide"),
                complete: r.get::<String, _>("status") == "complete",
                questions: r.get::<i64, _>("questions") as usize,
                answers: r.get::<i64, _>("answers") as usize,
            })
            .collect())
    }

    async fn delete_sessions_before(&self, created_before_ms: u64) -> StoreResult<u64> {
        let deleted = sqlx::query("DELETE FROM sessions WHERE created_at_ms < $1")
            .bind(to_i64(created_before_ms))
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }

    async fn add_note(&self, session_id: &str, note: &Note) -> StoreResult<()> {
        sqlx::query("INSERT INTO notes (id, session_id, idx, at_ms, text, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&note.id)
            .bind(session_id)
            .bind(note.index as i64)
            .bind(to_i64(note.at_ms))
            .bind(&note.text)
            .bind(&note.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn notes(&self, session_id: &str) -> StoreResult<Vec<Note>> {
        let rows = sqlx::query(
            "SELECT id, idx, at_ms, text, created_at FROM notes WHERE session_id = $1 ORDER BY idx, at_ms, created_at",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Note {
                id: r.get("id"),
                index: r.get::<i64, _>("idx") as usize,
                at_ms: r.get::<i64, _>("at_ms") as u64,
                text: r.get("text"),
                created_at: r.get("created_at"),
            })
            .collect())
    }

    async fn take_lease(&self, id: &str, owner: &str, now_ms: u64, until_ms: u64) -> StoreResult<bool> {
        let taken = sqlx::query(
            "UPDATE sessions SET lease_owner = $1, lease_until_ms = $2
             WHERE id = $3 AND (lease_until_ms < $4 OR lease_owner IS NULL OR lease_owner = $5)",
        )
        .bind(owner)
        .bind(to_i64(until_ms))
        .bind(id)
        .bind(to_i64(now_ms))
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    async fn release_lease(&self, id: &str, owner: &str, hold_until_ms: u64) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET lease_owner = NULL, lease_until_ms = $1 WHERE id = $2 AND lease_owner = $3")
            .bind(to_i64(hold_until_ms))
            .bind(id)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn orphaned_answers(&self, now_ms: u64) -> StoreResult<Vec<(String, usize)>> {
        let rows = sqlx::query(
            "SELECT a.session_id, a.idx FROM answers a JOIN sessions s ON s.id = a.session_id
             WHERE a.status = 'recording' AND s.lease_until_ms < $1 ORDER BY a.session_id, a.idx",
        )
        .bind(to_i64(now_ms))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.get::<String, _>("session_id"), r.get::<i64, _>("idx") as usize)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (SqlStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("nested/t.db").display());
        (SqlStore::connect(&url).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn sqlite_is_durable_and_enforces_foreign_keys() {
        let (store, _dir) = store().await;
        let mut conn = store.pool.acquire().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut *conn).await.unwrap();
        assert_eq!(mode, "wal");
        let keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut *conn).await.unwrap();
        assert_eq!(keys, 1);
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *conn).await.unwrap();
        assert_eq!(sync, 2, "synchronous = FULL");
    }

    #[test]
    fn engine_comes_from_the_url_scheme() {
        assert_eq!(Engine::from_url("sqlite://data/viva.db"), Some(Engine::Sqlite));
        assert_eq!(Engine::from_url("postgres://u@h/db"), Some(Engine::Postgres));
        assert_eq!(Engine::from_url("postgresql://u@h/db"), Some(Engine::Postgres));
        assert_eq!(Engine::from_url("mysql://u@h/db"), None);
    }

    fn question(index: usize) -> Question {
        Question {
            index,
            id: format!("q{index}"),
            text: "Why?".into(),
            competencies: vec!["x".into()],
            time_limit_ms: Some(1000),
        }
    }

    #[tokio::test]
    async fn session_answer_audio_and_segments_round_trip() {
        let (store, _dir) = store().await;
        let s = NewSession {
            id: "s1".into(),
            token_hash: vec![1, 2, 3],
            created_at: "2026-01-01T00:00:00Z".into(),
            created_at_ms: 1_000,
            guide: None,
            questions: vec![question(0), question(1)],
        };
        store.create_session(&s).await.unwrap();
        let row = store.session("s1").await.unwrap().unwrap();
        assert_eq!(row.questions.len(), 2);
        assert_eq!(row.status, SessionStatus::Open);

        store.begin_answer("s1", 0, 500).await.unwrap();
        store.append_audio("s1", 0, 0, &[1, 2, 3]).await.unwrap();
        store.append_audio("s1", 0, 3, &[4, 5]).await.unwrap();
        store.append_audio("s1", 0, 3, &[4, 5]).await.unwrap(); // a resend is ignored
        let seg = Segment { text: "hello".into(), start_ms: 10, end_ms: 20 };
        store.add_segment("s1", 0, 0, &seg).await.unwrap();
        assert_eq!(store.answer_audio("s1", 0).await.unwrap().unwrap(), vec![1, 2, 3, 4, 5]);
        assert_eq!(store.answer_audio("s1", 1).await.unwrap(), None);
        let answers = store.answers("s1").await.unwrap();
        assert_eq!(answers[0].status, AnswerStatus::Recording);
        assert_eq!(answers[0].audio_samples, 5);
        assert_eq!(answers[0].segments, vec![seg]);

        assert!(store.delete_session("s1").await.unwrap());
        assert!(store.session("s1").await.unwrap().is_none());
        assert_eq!(store.answer_audio("s1", 0).await.unwrap(), None);
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audio_chunks").fetch_one(&store.pool).await.unwrap();
        assert_eq!(left, 0);
    }
}
