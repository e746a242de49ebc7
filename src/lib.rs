//! viva: a self-hosted voice mock-interview server.
//!
//! How audio flows through the modules:
//!
//! ```text
//! browser ──WebSocket──▶ http::stream ──bytes──▶ audio (decode, mix down, resample to 16 kHz)
//!                             │                        │
//!                             │                        ▼
//!                             │                 speech (voice activity → stretches of speech)
//!                             │                        │ closed stretch / partial tick
//!                             │                        ▼
//!                             │                 transcribe (bounded queue → whisper worker threads)
//!                             │                        │ text + times
//!                             ▼                        ▼
//!                          store ◀───────────── session (answer recorder: segments, timing, speech figures)
//! ```
//!
//! - [`config`]: every setting and limit, one typed home (flags and `VIVA_*` variables).
//! - [`protocol`]: the wire messages of `PROTOCOL.md` and their decoding; pure.
//! - [`audio`]: PCM decoding, channel mix-down, resampling and WAV encoding; pure.
//! - [`speech`]: voice activity detection and the segmenter that cuts speech into stretches; pure.
//! - [`transcribe`]: the `Transcriber` seam, the whisper implementation and the worker pool.
//! - [`session`]: one answer's live state, the agreement between its partials, and the
//!   timing/speech figures computed from it; pure.
//! - [`store`]: the only place with SQL; sessions, answers, segments and audio chunks.
//! - [`http`]: the axum router, REST handlers, the WebSocket stream loop and error mapping.
//! - [`models`]: fetching, converting (CTranslate2 → ggml) and validating Whisper models.
//! - [`guide`]: interview guides as data (`guides/*.toml`), loaded and validated at start-up.
//! - [`scoring`]: the checklist scorer: which items an answer covers, with evidence; pure.
//! - [`review`]: a recording through the live pipeline, for `viva review`.
//! - [`recovery`]: finalising answers whose stream died, and retention.
//! - [`client`]: a client of the contract, for the bench command and the tests.
//! - [`bench`]: the benchmark command that compares viva with a plain whisper call.

pub mod audio;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod guide;
pub mod http;
pub mod load;
pub mod models;
pub mod protocol;
pub mod recovery;
pub mod review;
pub mod scoring;
pub mod session;
pub mod speech;
pub mod store;
pub mod transcribe;
