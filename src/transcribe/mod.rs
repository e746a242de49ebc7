//! Speech to text. [`Transcriber`] is the small sync seam: whisper implements it for real, and a
//! fake can stand in for fast unit tests. [`Engine`] runs transcribers on dedicated worker threads
//! behind a bounded queue, so whisper never blocks the async runtime and overload is refused.

mod drafts;
mod engine;
mod whisper;

pub use engine::{Engine, EngineError, JobKind};
pub use whisper::{load_whisper, load_whisper_with, plain_transcribe, WhisperFactory};

/// A piece of recognised text, times in ms from the start of the audio handed to the transcriber.
#[derive(Debug, Clone, PartialEq)]
pub struct TextPiece {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// The pieces' text, one after another, as a reader sees it.
pub fn joined_text(pieces: &[TextPiece]) -> String {
    pieces.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join(" ")
}

impl TextPiece {
    /// The same piece on a clock that starts `offset_ms` earlier (a clip cut from a longer one).
    pub fn shifted(self, offset_ms: u64) -> Self {
        Self { text: self.text, start_ms: self.start_ms + offset_ms, end_ms: self.end_ms + offset_ms }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    #[error("transcription failed: {0}")]
    Failed(String),
    /// The call gave way to more urgent work (see [`Interrupt`]).
    #[error("transcription interrupted for more urgent work")]
    Interrupted,
}

/// Asks a running transcription to stop early: the engine hands one to partial jobs, which give
/// way as soon as a job that matters is waiting for a worker.
#[derive(Clone, Debug)]
pub struct Interrupt(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Interrupt {
    /// Requested while the counter is above zero.
    pub fn when_waiting(waiting: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Self {
        Self(waiting.clone())
    }

    pub fn requested(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed) > 0
    }
}

/// Turns 16 kHz mono audio into text. One instance per worker thread; it may keep state
/// (whisper's decoder state) between calls, which is why it is `&mut self` and not shared.
pub trait Transcriber: Send {
    fn transcribe(&mut self, audio: &[f32]) -> Result<Vec<TextPiece>, TranscribeError>;

    /// Like [`Transcriber::transcribe`], but may stop early with [`TranscribeError::Interrupted`]
    /// once `interrupt` is requested. Transcribers that cannot stop run to the end.
    fn transcribe_interruptible(
        &mut self,
        audio: &[f32],
        interrupt: Interrupt,
    ) -> Result<Vec<TextPiece>, TranscribeError> {
        let _ = interrupt;
        self.transcribe(audio)
    }

    /// A hypothesis for a stretch still open: like [`Transcriber::transcribe_interruptible`], but
    /// one piece per word, so that two successive hypotheses can agree on the words before a
    /// pause inside the stretch (see `session::agreement`); `before` is the stretch's settled
    /// text when the audio is the rest after it (see [`Transcriber::transcribe_after`]).
    /// Transcribers without word times give their usual pieces, those without a prompt ignore
    /// `before`.
    fn transcribe_words(
        &mut self,
        audio: &[f32],
        before: Option<&str>,
        interrupt: Interrupt,
    ) -> Result<Vec<TextPiece>, TranscribeError> {
        let _ = before;
        self.transcribe_interruptible(audio, interrupt)
    }

    /// Like [`Transcriber::transcribe`], for audio that follows `before`, text already settled:
    /// whisper reads it as context, as whisper.cpp does between windows. Transcribers without
    /// a prompt ignore it.
    fn transcribe_after(&mut self, audio: &[f32], before: &str) -> Result<Vec<TextPiece>, TranscribeError> {
        let _ = before;
        self.transcribe(audio)
    }

    /// Whose readings the next calls belong to: calls in one scope (one live stream) hand each
    /// other drafts (see `drafts`); `None`, no drafts. Transcribers without drafts ignore it.
    fn set_draft_scope(&mut self, scope: Option<u64>) {
        let _ = scope;
    }
}

/// Makes one [`Transcriber`] per worker thread from a model loaded once.
pub trait TranscriberFactory: Send + Sync {
    fn create(&self) -> Result<Box<dyn Transcriber>, TranscribeError>;
}

/// Whisper output that is not speech: blank markers and sound descriptions such as
/// `[BLANK_AUDIO]`, `(music)` or `*sigh*`, which whisper writes for noise.
pub fn is_non_speech(text: &str) -> bool {
    let t = text.trim();
    if t.is_empty() || !t.chars().any(char::is_alphanumeric) {
        return true;
    }
    let enclosed = |open: char, close: char| t.starts_with(open) && t.ends_with(close);
    enclosed('[', ']') || enclosed('(', ')') || enclosed('*', '*') || enclosed('♪', '♪')
}

#[cfg(test)]
mod tests {
    use super::is_non_speech;

    #[test]
    fn blank_and_sound_markers_are_not_speech() {
        for t in ["", "  ", "[BLANK_AUDIO]", " (music)", "*sighs*", "...", "♪ la la ♪"] {
            assert!(is_non_speech(t), "{t:?}");
        }
        for t in ["Hello.", " we paged the on-call (me)", "42"] {
            assert!(!is_non_speech(t), "{t:?}");
        }
    }
}
