//! Persistence. SQL lives only here, behind the [`Store`] trait, so the HTTP and streaming code
//! never see an engine. SQLite is the embedded default, PostgreSQL the scale-out store; the
//! database URL's scheme picks one.

mod sql;

use async_trait::async_trait;

use crate::protocol::{Answer, Question, Segment};
pub use sql::{Engine as DatabaseEngine, SqlStore};

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
    async fn finish_answer(&self, id: &str, index: usize, status: AnswerStatus, answer: Option<&Answer>)
        -> StoreResult<()>;
    async fn answers(&self, id: &str) -> StoreResult<Vec<AnswerRow>>;
    /// The answer's whole audio, or `None` when no answer has that index.
    async fn answer_audio(&self, id: &str, index: usize) -> StoreResult<Option<Vec<i16>>>;
    /// Deletes the session with everything it owns; false when there was none.
    async fn delete_session(&self, id: &str) -> StoreResult<bool>;
}

/// Opens the store a database URL names (`sqlite://PATH` or `postgres://…`) and migrates it.
pub async fn connect(url: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    Ok(std::sync::Arc::new(SqlStore::connect(url).await?))
}

pub(crate) fn pcm_to_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

pub(crate) fn bytes_to_pcm(bytes: &[u8]) -> Vec<i16> {
    bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}
