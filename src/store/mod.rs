//! Persistence. SQL lives only here, behind the [`Store`] trait, so the HTTP and streaming code
//! never see an engine. SQLite is the embedded default, PostgreSQL the scale-out store; the
//! database URL's scheme picks one.

mod failure;
mod sql;

use async_trait::async_trait;

use crate::protocol::{Answer, Question, Segment};
pub use failure::Failure;
pub use sql::SqlStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported database URL scheme {0:?} (use sqlite://PATH or postgres://…)")]
    UnsupportedUrl(String),
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Open,
    Complete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerStatus {
    Recording,
    Answered,
    Skipped,
    Interrupted,
}

impl AnswerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerStatus::Recording => "recording",
            AnswerStatus::Answered => "answered",
            AnswerStatus::Skipped => "skipped",
            AnswerStatus::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "recording" => AnswerStatus::Recording,
            "answered" => AnswerStatus::Answered,
            "skipped" => AnswerStatus::Skipped,
            "interrupted" => AnswerStatus::Interrupted,
            other => return Err(StoreError::Corrupt(format!("answer status {other:?}"))),
        })
    }
}

pub struct NewSession {
    pub id: String,
    pub token_hash: Vec<u8>,
    pub created_at: String,
    pub created_at_ms: u64,
    pub guide: Option<String>,
    pub questions: Vec<Question>,
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub token_hash: Vec<u8>,
    pub created_at: String,
    pub guide: Option<String>,
    pub status: SessionStatus,
    pub current_index: Option<usize>,
    pub clock_ms: u64,
    pub questions: Vec<Question>,
}

#[derive(Debug, Clone)]
pub struct AnswerRow {
    pub index: usize,
    pub status: AnswerStatus,
    pub asked_at_ms: u64,
    pub answer: Option<Answer>,
    /// Segments committed so far (all of them once the answer is finished).
    pub segments: Vec<Segment>,
    /// Samples of audio committed (16 kHz).
    pub audio_samples: u64,
}

/// One line of the operator's session list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionSummary {
    pub id: String,
    pub created_at: String,
    pub guide: Option<String>,
    pub complete: bool,
    pub questions: usize,
    pub answers: usize,
}

/// A reviewer's note pinned to an answer and a time in it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Note {
    pub id: String,
    pub index: usize,
    pub at_ms: u64,
    pub text: String,
    pub created_at: String,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn ping(&self) -> StoreResult<()>;
    async fn create_session(&self, session: &NewSession) -> StoreResult<()>;
    async fn session(&self, id: &str) -> StoreResult<Option<SessionRow>>;
    /// Records which question is being asked and where the audio clock stands.
    async fn save_progress(&self, id: &str, current_index: usize, clock_ms: u64) -> StoreResult<()>;
    async fn mark_complete(&self, id: &str, clock_ms: u64) -> StoreResult<()>;
    /// Opens an answer for recording; a no-op when it exists (a resumed stream).
    async fn begin_answer(&self, id: &str, index: usize, asked_at_ms: u64) -> StoreResult<()>;
    /// Appends audio at `start_sample`; the same chunk twice is ignored.
    async fn append_audio(&self, id: &str, index: usize, start_sample: u64, samples: &[i16]) -> StoreResult<()>;
    async fn add_segment(&self, id: &str, index: usize, seq: usize, segment: &Segment) -> StoreResult<()>;
    async fn finish_answer(
        &self,
        id: &str,
        index: usize,
        status: AnswerStatus,
        answer: Option<&Answer>,
    ) -> StoreResult<()>;
    async fn answers(&self, id: &str) -> StoreResult<Vec<AnswerRow>>;
    /// The answer's whole audio, or `None` when no answer has that index.
    async fn answer_audio(&self, id: &str, index: usize) -> StoreResult<Option<Vec<i16>>>;
    /// Deletes the session with everything it owns; false when there was none.
    async fn delete_session(&self, id: &str) -> StoreResult<bool>;

    /// Newest first, at most `limit`.
    async fn list_sessions(&self, limit: usize) -> StoreResult<Vec<SessionSummary>>;
    /// Deletes sessions created before `created_before_ms` (epoch ms); returns how many.
    async fn delete_sessions_before(&self, created_before_ms: u64) -> StoreResult<u64>;

    async fn add_note(&self, session_id: &str, note: &Note) -> StoreResult<()>;
    async fn notes(&self, session_id: &str) -> StoreResult<Vec<Note>>;

    /// Takes the session's stream lease for `owner` until `until_ms` if it is free (released,
    /// or expired by `now_ms`) or already `owner`'s; false when another stream holds it.
    async fn take_lease(&self, id: &str, owner: &str, now_ms: u64, until_ms: u64) -> StoreResult<bool>;
    /// Ends `owner`'s lease (a no-op when someone else holds it now). Until `hold_until_ms` any
    /// new stream may take the session but recovery leaves its recording answer alone, so a
    /// dropped client can come back and resume.
    async fn release_lease(&self, id: &str, owner: &str, hold_until_ms: u64) -> StoreResult<()>;
    /// Answers still recording in sessions whose lease ran out by `now_ms`: their stream is gone.
    async fn orphaned_answers(&self, now_ms: u64) -> StoreResult<Vec<(String, usize)>>;
}

/// Everything a review shows: the session's questions, its finished answers in question order
/// and the reviewers' notes. Serialises as the `GET /v1/sessions/{id}` body.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Review {
    pub id: String,
    pub created_at: String,
    pub guide: Option<String>,
    pub complete: bool,
    pub questions: Vec<Question>,
    pub answers: Vec<Answer>,
    pub notes: Vec<Note>,
}

impl Review {
    pub fn markdown(&self) -> String {
        crate::session::export_markdown(&self.created_at, &self.questions, &self.answers, &self.notes)
    }
}

pub async fn load_review(store: &dyn Store, session: SessionRow) -> StoreResult<Review> {
    let answers = store
        .answers(&session.id)
        .await?
        .into_iter()
        .filter(|a| matches!(a.status, AnswerStatus::Answered | AnswerStatus::Interrupted))
        .filter_map(|a| a.answer)
        .collect();
    let notes = store.notes(&session.id).await?;
    Ok(Review {
        complete: session.status == SessionStatus::Complete,
        id: session.id,
        created_at: session.created_at,
        guide: session.guide,
        questions: session.questions,
        answers,
        notes,
    })
}

/// Opens the store a database URL names (`sqlite://PATH` or `postgres://…`) and migrates it.
pub async fn connect(url: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    Ok(std::sync::Arc::new(SqlStore::connect(url).await?))
}

/// A database URL fit for messages and logs: any password (`user:PASSWORD@host` or a
/// `password=` parameter) is replaced by `***`.
pub fn redacted_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        // The last `@` ends the user info, even when an unescaped password holds `/` or `@`.
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host_and_path)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host_and_path}"),
                None => base.to_string(),
            },
            None => base.to_string(),
        },
        None => base.to_string(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => p.to_string(),
            })
            .collect();
        out = format!("{out}?{}", params.join("&"));
    }
    out
}

pub(crate) fn pcm_to_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

pub(crate) fn bytes_to_pcm(bytes: &[u8]) -> Vec<i16> {
    bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redacted_url("postgres://viva:s3cret@db:5432/viva"), "postgres://viva:***@db:5432/viva");
        assert_eq!(redacted_url("postgres://viva:p@ss@db/viva"), "postgres://viva:***@db/viva");
        assert_eq!(redacted_url("postgres://viva:a/b@db/viva"), "postgres://viva:***@db/viva");
        assert_eq!(
            redacted_url("postgres://viva@db/viva?sslmode=require&password=s3cret"),
            "postgres://viva@db/viva?sslmode=require&password=***"
        );
        assert_eq!(redacted_url("sqlite://data/viva.db"), "sqlite://data/viva.db");
    }
}
