//! The real transcriber: whisper.cpp through `whisper-rs`. The model is loaded once into a
//! shared [`WhisperContext`]; each worker gets its own [`WhisperState`] (whisper's scratch
//! buffers), so workers never contend for a lock while decoding.

use std::path::Path;
use std::sync::Arc;

use whisper_rs::{
    DtwMode, DtwModelPreset, DtwParameters, FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters,
    WhisperState,
};

use super::drafts::{Drafts, DRAFTS_KEPT};
use super::{is_non_speech, Interrupt, TextPiece, TranscribeError, Transcriber, TranscriberFactory};

/// Whisper's encoder sees 50 positions per second of audio (16 kHz / hop 160 / conv stride 2).
const SAMPLES_PER_AUDIO_CTX: usize = 320;
/// Context kept beyond the audio itself when trimming: a small margin keeps accuracy on the
/// last word of a stretch.
const AUDIO_CTX_MARGIN: usize = 64;
const FULL_AUDIO_CTX: usize = 1500;
/// The encoder's matrix products take ggml's fast tiled path (llamafile's sgemm) only when the
/// context is a multiple of 16; otherwise they fall back to dot products, measured 20–45 %
/// slower (an 8 s clip: 1000 positions 347 ms, 1024 positions 272 ms). Rounding up is free
/// accuracy and time.
const AUDIO_CTX_ALIGN: usize = 16;
/// The least encoder context a call gets (7.7 s). Fitted tight to a clip of a second or two
/// (128 to 192 positions), tiny.en often loops ("We have a outage." eight times) and the clip is
/// read again without the filler prompt, or dropped as repetitive. A stretch's first partials
/// read exactly such clips. The first 0.6 to 2 s of three espeak sentences
/// (`a_stretchs_first_second_is_read_at_the_first_try`): 7 of 18 looped fitted tight, 3 with a
/// floor of 256 positions, none with 384 or 512.
const MIN_AUDIO_CTX: usize = 384;
/// whisper.cpp refuses audio shorter than 100 ms and is unreliable under a second: pad to this.
const MIN_SAMPLES: usize = 16_000 + 1_600;
/// A segment is dropped as not speech when whisper both thinks it probably is not speech and is
/// unsure of its words (whisper.cpp's own rule: the first alone drops real speech with tiny models),
/// or when it is very unsure of its words and its audio does not move like speech (`is_invented`).
const NO_SPEECH_PROBABILITY: f32 = 0.6;
const UNSURE_MEAN_LOG_PROBABILITY: f32 = -1.0;
/// Below this mean log probability, words are taken for whisper's invention unless their audio's
/// level moves like speech. Measured on tiny.en: words invented for noise that got past the voice
/// detector, -1.66 to -4.8 (one a whole sentence for 2 s of white noise, at -1.99); the bench's
/// espeak voice, never below -1.1; other espeak voices under light noise, real words at -1.68 to
/// -1.91, which confidence alone dropped (an answer lost its last sentence).
const INVENTED_MEAN_LOG_PROBABILITY: f32 = -1.6;
/// Below this, words are dropped however their audio moves: they are garbled past use (no real
/// words kept were measured under -1.91).
const GARBLED_MEAN_LOG_PROBABILITY: f32 = -2.5;
/// The least spread of level (`speech::level_spread_db`) taken for speech: espeak speech 15.7 dB
/// clean and 22 to 30 under light noise; steady noise 0.7 (white) to 3.5 (brown).
const SPEECH_LEVEL_SPREAD_DB: f32 = 10.0;

/// Loads a ggml model once. Validate the file first (see `models::validate_ggml`): whisper.cpp
/// can crash on a corrupt file rather than report it.
pub fn load_whisper(path: &Path) -> Result<Arc<WhisperContext>, TranscribeError> {
    load_whisper_with(path, &crate::config::EngineSettings::default())
}

/// Loads a model with the engine's settings (flash attention, DTW word times).
pub fn load_whisper_with(
    path: &Path,
    settings: &crate::config::EngineSettings,
) -> Result<Arc<WhisperContext>, TranscribeError> {
    whisper_rs::install_logging_hooks();
    let path_str = path.to_str().ok_or_else(|| TranscribeError::Failed("model path is not UTF-8".into()))?;
    let mut params = WhisperContextParameters::default();
    params.flash_attn(settings.flash_attn);
    if settings.dtw_word_times && !settings.flash_attn {
        // Only models whose alignment heads whisper.cpp knows: heads picked any other way time
        // words badly, and a bigger model's alignment can overflow whisper.cpp's scratch, which
        // aborts the process. Other models keep whisper.cpp's estimates.
        let shape = crate::models::validate_ggml(path).map(|info| info.hparams);
        if let Some(model_preset) = shape.ok().as_ref().and_then(dtw_preset) {
            // whisper.cpp's own scratch size for an alignment (128 MB, of which only what a
            // call's tokens and audio need is touched): a 30 s window of 220 tokens overflowed
            // 16 MB, and whisper.cpp aborts the process when it does.
            params.dtw_parameters(DtwParameters {
                mode: DtwMode::ModelPreset { model_preset },
                ..DtwParameters::default()
            });
        }
    }
    WhisperContext::new_with_params(path_str, params)
        .map(Arc::new)
        .map_err(|e| TranscribeError::Failed(format!("whisper could not load {}: {e}", path.display())))
}

/// The alignment heads whisper.cpp knows for a model of this shape: tiny and base, English-only
/// (a 51 864-token vocabulary) or not.
fn dtw_preset(h: &crate::models::Hparams) -> Option<DtwModelPreset> {
    let english = h.n_vocab == 51_864;
    match (h.n_text_layer, h.n_text_state, english) {
        (4, 384, true) => Some(DtwModelPreset::TinyEn),
        (4, 384, false) => Some(DtwModelPreset::Tiny),
        (6, 512, true) => Some(DtwModelPreset::BaseEn),
        (6, 512, false) => Some(DtwModelPreset::Base),
        _ => None,
    }
}

pub struct WhisperFactory {
    pub context: Arc<WhisperContext>,
    pub threads: usize,
    pub trim_audio_ctx: bool,
    /// Text whisper sees as preceding speech; a prompt written with fillers keeps them in output.
    pub initial_prompt: Option<String>,
    /// Recent calls' tokens, shared by the workers (`None`: calls get no draft).
    pub drafts: Option<Arc<Drafts>>,
}

impl WhisperFactory {
    pub fn new(context: Arc<WhisperContext>, settings: &crate::config::EngineSettings) -> Self {
        let prompt = settings.initial_prompt.trim();
        Self {
            context,
            threads: settings.threads_per_worker,
            trim_audio_ctx: settings.trim_audio_ctx,
            initial_prompt: (!prompt.is_empty()).then(|| prompt.to_string()),
            drafts: settings.draft_tokens.then(|| Arc::new(Drafts::new(DRAFTS_KEPT))),
        }
    }
}

impl WhisperFactory {
    /// A transcriber with its own whisper state, as each worker gets one.
    pub fn create_whisper(&self) -> Result<WhisperTranscriber, TranscribeError> {
        let state = self
            .context
            .create_state()
            .map_err(|e| TranscribeError::Failed(format!("cannot create whisper state: {e}")))?;
        Ok(WhisperTranscriber {
            state,
            threads: self.threads.max(1),
            trim_audio_ctx: self.trim_audio_ctx,
            initial_prompt: self.initial_prompt.clone(),
            drafts: self.drafts.clone(),
            draft_scope: None,
            last_windows: 0,
            last_decodes: 0,
            last_drafted: 0,
            eot: self.context.token_eot(),
        })
    }
}

impl TranscriberFactory for WhisperFactory {
    fn create(&self) -> Result<Box<dyn Transcriber>, TranscribeError> {
        Ok(Box::new(self.create_whisper()?))
    }
}

pub struct WhisperTranscriber {
    state: WhisperState,
    threads: usize,
    trim_audio_ctx: bool,
    initial_prompt: Option<String>,
    drafts: Option<Arc<Drafts>>,
    /// Whose readings the calls are (see [`Transcriber::set_draft_scope`]); `None`: no drafts.
    draft_scope: Option<u64>,
    /// Windows whisper took for the last clip, its own and the rest-of-clip passes.
    last_windows: usize,
    /// Times the last clip was decoded: more than one when a decoding loop made it read again
    /// with less context.
    last_decodes: usize,
    /// Decoding steps of the last clip served by a draft (`scripts/whisper-patches/draft-tokens.cmake`).
    last_drafted: usize,
    /// The first special token: ids from here on are not text.
    eot: i32,
}

impl WhisperTranscriber {
    /// Transcribes one clip (16 kHz mono), as a worker does.
    pub fn transcribe_clip(&mut self, audio: &[f32]) -> Result<Vec<TextPiece>, TranscribeError> {
        self.run(audio, None, Pieces::Segments)
    }

    /// How many windows the last clip took (1 when whisper's text reached the clip's end).
    pub fn last_windows(&self) -> usize {
        self.last_windows
    }

    /// How many times the last clip was decoded (1 when whisper read it at the first try).
    pub fn last_decodes(&self) -> usize {
        self.last_decodes
    }

    /// How many decoding steps of the last clip took their logits from a draft: a recent call's
    /// tokens over the same start of audio with the same prompt.
    pub fn last_drafted(&self) -> usize {
        self.last_drafted
    }
}

fn mean_log_probability(segment: &whisper_rs::WhisperSegment<'_>) -> f32 {
    let n = segment.n_tokens();
    if n <= 0 {
        return f32::NEG_INFINITY;
    }
    let sum: f32 = (0..n).filter_map(|i| segment.get_token(i)).map(|t| t.token_probability().max(1e-6).ln()).sum();
    sum / n as f32
}

/// The encoder context for a clip: its own length plus a margin, at least `MIN_AUDIO_CTX`, never
/// more than whisper's 30 s.
pub fn audio_ctx_for(samples: usize) -> usize {
    (samples.div_ceil(SAMPLES_PER_AUDIO_CTX) + AUDIO_CTX_MARGIN)
        .next_multiple_of(AUDIO_CTX_ALIGN)
        .clamp(MIN_AUDIO_CTX, FULL_AUDIO_CTX)
}

/// The encoder context for one window: fitted to its audio, and for the rest of a clip (`tail_of`
/// the whole clip's context) at least `TAIL_MIN_AUDIO_CTX`, but never more than the clip's own.
fn window_audio_ctx(samples: usize, tail_of: Option<usize>) -> usize {
    let fitted = audio_ctx_for(samples);
    match tail_of {
        None => fitted,
        Some(clip_ctx) => fitted.max(TAIL_MIN_AUDIO_CTX.min(clip_ctx)),
    }
}

impl Transcriber for WhisperTranscriber {
    fn transcribe(&mut self, audio: &[f32]) -> Result<Vec<TextPiece>, TranscribeError> {
        self.run(audio, None, Pieces::Segments)
    }

    fn transcribe_interruptible(
        &mut self,
        audio: &[f32],
        interrupt: Interrupt,
    ) -> Result<Vec<TextPiece>, TranscribeError> {
        self.run(audio, Some(interrupt), Pieces::Segments)
    }

    fn transcribe_words(
        &mut self,
        audio: &[f32],
        before: Option<&str>,
        interrupt: Interrupt,
    ) -> Result<Vec<TextPiece>, TranscribeError> {
        self.run_after(audio, before, Some(interrupt), Pieces::Words)
    }

    /// The settled text follows the filler prompt. Without that context the rest of a stretch
    /// read worse: on the agreement measurement, 0.245 word error rate against 0.210 with it
    /// (0.207 for whole stretches).
    fn transcribe_after(&mut self, audio: &[f32], before: &str) -> Result<Vec<TextPiece>, TranscribeError> {
        self.run_after(audio, Some(before), None, Pieces::Segments)
    }

    fn set_draft_scope(&mut self, scope: Option<u64>) {
        self.draft_scope = scope;
    }
}

/// What whisper's abort callback looks at: the call's wall-clock budget and the engine's request
/// to give way.
struct AbortCheck {
    deadline: std::time::Instant,
    interrupt: Option<Interrupt>,
}

/// whisper.cpp asks this before each node of the encoder's graphs (viva's patch,
/// scripts/whisper-patches/encoder-abort.cmake: otherwise only once the whole encoder has run)
/// and after each decoding step.
unsafe extern "C" fn should_abort(user_data: *mut std::ffi::c_void) -> bool {
    // SAFETY: `decode` passes a pointer to an `AbortCheck` that lives across the whole call.
    let check = unsafe { &*(user_data as *const AbortCheck) };
    std::time::Instant::now() > check.deadline || check.interrupt.as_ref().is_some_and(Interrupt::requested)
}

/// Normal speech stays well under this many tokens a second; past it whisper is repeating.
const MAX_TOKENS_PER_SECOND: usize = 8;
const MIN_MAX_TOKENS: usize = 24;

/// Counts whisper.cpp's windows and lets only the first be encoded; see [`WhisperTranscriber::decode`].
unsafe extern "C" fn first_window_only(
    _ctx: *mut whisper_rs::whisper_rs_sys::whisper_context,
    _state: *mut whisper_rs::whisper_rs_sys::whisper_state,
    user_data: *mut std::ffi::c_void,
) -> bool {
    // SAFETY: `decode_window` passes a pointer to a `Cell<u32>` that lives across the whole call,
    // and whisper.cpp calls this from the calling thread only.
    let windows = unsafe { &*(user_data as *const std::cell::Cell<u32>) };
    windows.set(windows.get() + 1);
    windows.get() == 1
}

/// whisper.cpp stops when less than this much audio is left past its last timestamp (its
/// `delta_min`, 100 ms).
const MIN_TAIL_MS: u64 = 100;
/// …and drops the text context for a last window this short, because a long prompt before a
/// little audio makes tiny models repeat or invent words (whisper.cpp: `seek + 500 >= seek_end`).
const PROMPTLESS_TAIL_MS: u64 = 5_000;
/// The least encoder context for the rest of a clip. whisper.cpp encodes it with the whole clip's
/// context, mostly padding; fitted tight to a 2 s tail, tiny.en dropped words ("the metrics and
/// the traces" came out "and the traces", then filtered as unsure). 512 positions (10 s) kept
/// them and the bench's word error rate went from 0.214 to 0.207 (384: 0.212, 256: 0.217), still
/// at well under the cost of a second full-context window. Never more than the whole clip's own
/// context, though, which is what whisper.cpp would give it: the rest of a 7 s clip took 281 ms
/// at 512 positions, nearly as long as the clip's first window at 432.
const TAIL_MIN_AUDIO_CTX: usize = 512;
/// A bound on the windows one clip takes; each takes at least `MIN_TAIL_MS` of audio, and a clip
/// is at most 30 s, but the bound does not rest on whisper's timestamps being sane.
const MAX_WINDOWS: usize = 8;

/// How a transcription is cut into pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pieces {
    /// One per whisper segment (a phrase or sentence): what transcripts are made of.
    Segments,
    /// One per word, timed by whisper.cpp's token timestamps (estimated from its timestamp
    /// tokens' probabilities, so within a word or so): what live hypotheses agree on.
    Words,
}

/// What one whisper window gave.
struct Window {
    pieces: Vec<TextPiece>,
    /// The raw text, all segments, kept or not: whisper's context for the next window.
    text: String,
    /// Where whisper's last segment ended, if it produced any.
    end_ms: Option<u64>,
    /// Whether whisper wanted another window: it stopped before the clip's end.
    wants_more: bool,
}

impl WhisperTranscriber {
    fn run(
        &mut self,
        audio: &[f32],
        interrupt: Option<Interrupt>,
        cut: Pieces,
    ) -> Result<Vec<TextPiece>, TranscribeError> {
        self.run_after(audio, None, interrupt, cut)
    }

    /// Transcribes audio that follows `before` (text already settled, read as context after
    /// the filler prompt), falling back to less context on a decoding loop.
    fn run_after(
        &mut self,
        audio: &[f32],
        before: Option<&str>,
        interrupt: Option<Interrupt>,
        cut: Pieces,
    ) -> Result<Vec<TextPiece>, TranscribeError> {
        // The prompt keeps fillers, but on some short clips it sends greedy decoding into a
        // loop ("The low air. The low air. …"): then the clip is decoded again with less of it,
        // down to none.
        self.last_decodes = 0;
        self.last_drafted = 0;
        let initial = self.initial_prompt.clone();
        let with_before = before.map(|b| format!("{} {b}", initial.as_deref().unwrap_or_default()).trim().to_string());
        for prompt in [with_before, initial].into_iter().flatten() {
            match self.decode(audio, Some(&prompt), interrupt.clone(), cut) {
                Ok(pieces) if !is_repetitive(&pieces) => return Ok(pieces),
                Err(TranscribeError::Interrupted) => return Err(TranscribeError::Interrupted),
                _ => {}
            }
        }
        let pieces = self.decode(audio, None, interrupt, cut)?;
        Ok(if is_repetitive(&pieces) { Vec::new() } else { pieces })
    }

    /// Transcribes a clip window by window, the way whisper.cpp does, but with each window's
    /// encoder context fitted to the audio it has left.
    ///
    /// whisper.cpp moves to a second window when its text ends before the clip does (the filler
    /// prompt makes that common), and encodes that window with the first one's context: a 12 s
    /// clip measured 234 ms in one window and 389 ms in two, for the same words. Stopping at the
    /// first window lost those words (word error rate 0.214 → 0.230 on the bench). So whisper.cpp
    /// is stopped before its second encode, and the rest of the clip, from where its last segment
    /// ended, is transcribed as a clip of its own, with the context whisper.cpp would have given
    /// it: the prompt and the text so far, none for a last window under 5 s.
    fn decode(
        &mut self,
        audio: &[f32],
        prompt: Option<&str>,
        interrupt: Option<Interrupt>,
        cut: Pieces,
    ) -> Result<Vec<TextPiece>, TranscribeError> {
        let mut pieces = Vec::new();
        let mut context = prompt.map(str::to_string);
        let mut offset_ms = 0u64;
        let clip_ctx = audio_ctx_for(audio.len());
        self.last_windows = 0;
        self.last_decodes += 1;
        for _ in 0..MAX_WINDOWS {
            self.last_windows += 1;
            let rest = &audio[(offset_ms as usize * 16).min(audio.len())..];
            let tail_of = (offset_ms > 0).then_some(clip_ctx);
            let window = self.decode_window(rest, context.as_deref(), interrupt.clone(), true, tail_of, cut)?;
            pieces.extend(window.pieces.into_iter().map(|p| p.shifted(offset_ms)));
            if !window.wants_more {
                return Ok(pieces);
            }
            let rest_ms = (rest.len() / 16) as u64;
            match window.end_ms {
                // What is left is padding or under whisper's own minimum.
                Some(end_ms) if end_ms > 0 && end_ms + MIN_TAIL_MS >= rest_ms => return Ok(pieces),
                Some(end_ms) if end_ms > 0 => {
                    offset_ms += end_ms;
                    let left_ms = rest_ms - end_ms;
                    context = match (&context, left_ms > PROMPTLESS_TAIL_MS) {
                        (_, false) => None,
                        (Some(before), true) => Some(format!("{before} {}", window.text)),
                        (None, true) => Some(window.text),
                    };
                }
                // whisper moved on without a timestamp to say where: let it do the rest its own way.
                _ => {
                    let window =
                        self.decode_window(rest, context.as_deref(), interrupt.clone(), false, tail_of, cut)?;
                    pieces.extend(window.pieces.into_iter().map(|p| p.shifted(offset_ms)));
                    return Ok(pieces);
                }
            }
        }
        Ok(pieces)
    }

    /// One bounded whisper call: tokens capped by the clip's length, and aborted when it runs
    /// past a wall-clock budget, so no input can hold a worker for long. With `one_window`,
    /// whisper stops before encoding a second window. `tail_of` is set for the rest of a clip
    /// after a window: the whole clip's encoder context.
    fn decode_window(
        &mut self,
        audio: &[f32],
        prompt: Option<&str>,
        interrupt: Option<Interrupt>,
        one_window: bool,
        tail_of: Option<usize>,
        cut: Pieces,
    ) -> Result<Window, TranscribeError> {
        let mut padded;
        let audio = if audio.len() < MIN_SAMPLES {
            padded = audio.to_vec();
            padded.resize(MIN_SAMPLES, 0.0);
            &padded[..]
        } else {
            audio
        };
        let seconds = audio.len() / 16_000 + 1;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads as i32);
        params.set_language(Some("en"));
        params.set_translate(false);
        // Each stretch stands alone: carrying text across calls lets one error repeat itself.
        params.set_no_context(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        // No temperature fallback: the same audio always gives the same text, whether it was
        // streamed live or uploaded faster than real time.
        params.set_temperature(0.0);
        params.set_temperature_inc(0.0);
        params.set_no_speech_thold(NO_SPEECH_PROBABILITY);
        // Word times are computed after decoding, from the same tokens: the text is the same.
        params.set_token_timestamps(cut == Pieces::Words);
        params.set_max_tokens((MIN_MAX_TOKENS + MAX_TOKENS_PER_SECOND * seconds) as i32);
        // The token cap already stops decoding loops; the clock is the last guard against a
        // stuck call. It must allow for a machine busy with other work: whisper's threads
        // spin-wait on each other, so on an oversubscribed CPU a call measured 15 times slower
        // than on an idle one, and a tight budget threw away real speech.
        let budget = std::time::Duration::from_millis(10_000 + 5_000 * seconds as u64);
        let deadline = std::time::Instant::now() + budget;
        // whisper-rs's `set_abort_callback_safe` hands whisper a pointer to a boxed trait object
        // but reads it back as the closure itself, so a closure with captures reads garbage
        // (it aborted real calls at random). The plain callback with our own data is used instead.
        let check = AbortCheck { deadline, interrupt: interrupt.clone() };
        let windows = std::cell::Cell::new(0u32);
        // SAFETY: `check` and `windows` outlive `self.state.full` below, the only call that uses
        // the pointers, and each callback reads its pointer as the type given here.
        unsafe {
            params.set_abort_callback(Some(should_abort));
            params.set_abort_callback_user_data(&check as *const AbortCheck as *mut std::ffi::c_void);
            if one_window {
                params.set_start_encoder_callback(Some(first_window_only));
                params.set_start_encoder_callback_user_data(
                    &windows as *const std::cell::Cell<u32> as *mut std::ffi::c_void,
                );
            }
        }
        let audio_ctx = if self.trim_audio_ctx { window_audio_ctx(audio.len(), tail_of) } else { FULL_AUDIO_CTX };
        if self.trim_audio_ctx {
            params.set_audio_ctx(audio_ctx as i32);
        }
        if let Some(prompt) = prompt {
            params.set_initial_prompt(prompt);
        }
        // Drafts only with drafts on and inside a stream's scope.
        let drafts = match (&self.drafts, self.draft_scope) {
            (Some(drafts), Some(scope)) => Some((drafts, Drafts::key(scope, prompt, audio))),
            _ => None,
        };
        let draft = drafts.and_then(|(drafts, key)| drafts.get(key)).unwrap_or_default();
        // SAFETY: the patched whisper.cpp copies the draft; the call below runs on this thread,
        // which is the one whose draft it takes.
        unsafe { viva_whisper_set_draft(draft.as_ptr(), draft.len() as i32) };
        let started = std::time::Instant::now();
        let result = self.state.full(params, audio);
        let elapsed = started.elapsed();
        // SAFETY: plain reads of this thread's figures from the call that just ended.
        let drafted = unsafe { viva_whisper_drafted() };
        self.last_drafted += drafted.max(0) as usize;
        let stopped = interrupt.as_ref().is_some_and(Interrupt::requested);
        if let (Some((drafts, key)), true) = (drafts, result.is_ok() && !stopped) {
            drafts.put(key, produced_tokens());
        }
        // An aborted decode may still return Ok with part of the text: never trust it.
        if stopped {
            return Err(TranscribeError::Interrupted);
        }
        result.map_err(|e| TranscribeError::Failed(format!("whisper failed: {e}")))?;
        let audio_ms = (audio.len() / 16) as u64;
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut end_ms = None;
        for segment in self.state.as_iter() {
            let raw = segment.to_str_lossy().map(|t| t.trim().to_string()).unwrap_or_default();
            let start_ms = (segment.start_timestamp().max(0) as u64 * 10).min(audio_ms);
            let segment_end_ms = (segment.end_timestamp().max(0) as u64 * 10).clamp(start_ms, audio_ms);
            end_ms = Some(segment_end_ms);
            if !raw.is_empty() {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(&raw);
            }
            let confidence = mean_log_probability(&segment);
            let not_speech =
                segment.no_speech_probability() > NO_SPEECH_PROBABILITY && confidence < UNSURE_MEAN_LOG_PROBABILITY;
            let heard = || audio.get(start_ms as usize * 16..segment_end_ms as usize * 16).unwrap_or_default();
            if not_speech || is_invented(confidence, heard) || is_non_speech(&raw) {
                // Why a stretch's words went missing, for an operator (no text: it is the candidate's).
                tracing::debug!(
                    start_ms,
                    end_ms = segment_end_ms,
                    no_speech = segment.no_speech_probability(),
                    confidence,
                    chars = raw.chars().count(),
                    "segment dropped"
                );
                continue;
            }
            match cut {
                Pieces::Segments => pieces.push(TextPiece { text: raw, start_ms, end_ms: segment_end_ms }),
                Pieces::Words => pieces.extend(word_pieces(&segment, self.eot, start_ms, segment_end_ms)),
            }
        }
        // Operators tuning workers and threads read these (VIVA_LOG=viva::transcribe=debug).
        tracing::debug!(
            audio_ms,
            audio_ctx,
            tokens = self.state.as_iter().map(|s| s.n_tokens()).sum::<i32>(),
            prompt = prompt.is_some(),
            words = cut == Pieces::Words,
            windows = windows.get(),
            draft = draft.len(),
            drafted,
            elapsed_ms = elapsed.as_millis() as u64,
            "whisper call"
        );
        Ok(Window { pieces, text, end_ms, wants_more: windows.get() > 1 })
    }
}

// The draft-token entry points viva's patch adds to whisper.cpp
// (scripts/whisper-patches/draft-tokens.cmake). Each works on the calling thread's own draft.
extern "C" {
    /// Sets the draft for this thread's next whisper call.
    fn viva_whisper_set_draft(tokens: *const i32, n_tokens: i32);
    /// Copies up to `capacity` of the tokens this thread's last call sampled in its first window;
    /// returns how many there are.
    fn viva_whisper_produced(out: *mut i32, capacity: i32) -> i32;
    /// How many decoding steps of this thread's last call took their logits from its draft.
    fn viva_whisper_drafted() -> i32;
}

/// Whether a segment's words are whisper's invention rather than speech: words it is very unsure
/// of, unless the audio they came from (`heard`, read only then) rises and falls like speech;
/// whisper is as unsure of real words in an unfamiliar voice as of what it invents for noise, but
/// the noise that fools the voice detector is steady. Garbled words go whatever their audio.
fn is_invented<'a>(confidence: f32, heard: impl FnOnce() -> &'a [f32]) -> bool {
    if confidence < GARBLED_MEAN_LOG_PROBABILITY {
        return true;
    }
    confidence < INVENTED_MEAN_LOG_PROBABILITY
        && !crate::speech::level_spread_db(heard()).is_some_and(|spread| spread >= SPEECH_LEVEL_SPREAD_DB)
}

/// The tokens this thread's last whisper call sampled in its first window (no end-of-text).
fn produced_tokens() -> Vec<i32> {
    // SAFETY: the first call only counts; the second copies at most `n` ids into a buffer of `n`.
    unsafe {
        let n = viva_whisper_produced(std::ptr::null_mut(), 0).max(0);
        let mut tokens = vec![0i32; n as usize];
        let copied = viva_whisper_produced(tokens.as_mut_ptr(), n).clamp(0, n);
        tokens.truncate(copied as usize);
        tokens
    }
}

/// A segment's words, timed by its tokens, kept inside the segment's own times. A token that
/// starts with a space starts a word; punctuation and word pieces join the word before them.
/// Special tokens (timestamps and the like) are skipped.
///
/// With DTW (`t_dtw` set), each token's time is where the alignment moves on to the next token,
/// so it marks the token's end: a word ends at its last spoken token's time, and starts at the
/// time of the token before it. A word's punctuation is not spoken: its token soaks up the pause
/// after the word, so it does not move the word's end. Without DTW, whisper.cpp's estimates
/// (`t0`, `t1`) are used; in a partial that ends mid-sentence they often collapse to the clip's
/// end after the first few seconds ("failure.@15010-15010").
fn word_pieces(segment: &whisper_rs::WhisperSegment<'_>, eot: i32, start_ms: u64, end_ms: u64) -> Vec<TextPiece> {
    let mut tokens: Vec<TokenTime> = (0..segment.n_tokens())
        .filter_map(|i| segment.get_token(i))
        .filter(|t| t.token_id() < eot)
        .filter_map(|t| {
            let d = t.token_data();
            Some(TokenTime {
                text: t.to_str_lossy().ok()?.into_owned(),
                t0: d.t0,
                t1: d.t1,
                dtw: (d.t_dtw >= 0).then_some(d.t_dtw),
            })
        })
        .collect();
    // DTW times, or none: a word is never timed half one way, half the other.
    if tokens.iter().any(|t| t.dtw.is_none()) {
        tokens.iter_mut().for_each(|t| t.dtw = None);
    }
    words_from_tokens(&tokens, start_ms, end_ms)
}

/// One text token and its times (whisper.cpp's, in 10 ms units).
struct TokenTime {
    text: String,
    t0: i64,
    t1: i64,
    dtw: Option<i64>,
}

/// Joins tokens into timed words; see [`word_pieces`].
fn words_from_tokens(tokens: &[TokenTime], start_ms: u64, end_ms: u64) -> Vec<TextPiece> {
    let ms = |t: i64| (t.max(0) as u64 * 10).clamp(start_ms, end_ms);
    let spoken = |text: &str| text.chars().any(char::is_alphanumeric);
    let mut words: Vec<TextPiece> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let (t0, t1) = match token.dtw {
            Some(end) => {
                let start = i.checked_sub(1).and_then(|p| tokens[p].dtw).map_or(start_ms, ms);
                (start.min(ms(end)), ms(end))
            }
            None => (ms(token.t0), ms(token.t1).max(ms(token.t0))),
        };
        match words.last_mut() {
            Some(word) if !token.text.starts_with(' ') => {
                word.text.push_str(&token.text);
                if token.dtw.is_none() || spoken(&token.text) {
                    word.end_ms = word.end_ms.max(t1);
                }
            }
            _ => words.push(TextPiece { text: token.text.trim_start().to_string(), start_ms: t0, end_ms: t1 }),
        }
    }
    words.retain(|w| !w.text.trim().is_empty());
    words
}

/// Whether the text is a decoding loop: most of its three-word runs are repeats.
pub fn is_repetitive(pieces: &[TextPiece]) -> bool {
    let words: Vec<String> = pieces
        .iter()
        .flat_map(|p| p.text.split_whitespace())
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() < 12 {
        return false;
    }
    let trigrams: Vec<&[String]> = words.windows(3).collect();
    let distinct: std::collections::HashSet<&[String]> = trigrams.iter().copied().collect();
    distinct.len() * 2 < trigrams.len()
}

/// The floor the bench compares with: one whisper call on a whole recording with whisper.cpp's
/// defaults (full 30 s windows, its own silence handling), greedy, English.
pub fn plain_transcribe(context: &WhisperContext, threads: usize, audio: &[f32]) -> Result<String, TranscribeError> {
    let mut state =
        context.create_state().map_err(|e| TranscribeError::Failed(format!("cannot create whisper state: {e}")))?;
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(threads as i32);
    params.set_language(Some("en"));
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    params.set_print_timestamps(false);
    state.full(params, audio).map_err(|e| TranscribeError::Failed(format!("whisper failed: {e}")))?;
    let texts: Vec<String> =
        state.as_iter().map(|s| s.to_str_lossy().map(|t| t.trim().to_string()).unwrap_or_default()).collect();
    Ok(texts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::{
        audio_ctx_for, dtw_preset, is_invented, is_repetitive, window_audio_ctx, words_from_tokens, TextPiece,
        TokenTime,
    };
    use whisper_rs::DtwModelPreset;

    #[test]
    fn dtw_heads_are_chosen_by_the_model_shape_and_only_where_known() {
        let shape = |n_vocab, n_text_layer, n_text_state| crate::models::Hparams {
            n_vocab,
            n_audio_ctx: 1500,
            n_audio_state: n_text_state,
            n_audio_head: 6,
            n_audio_layer: n_text_layer,
            n_text_ctx: 448,
            n_text_state,
            n_text_head: 6,
            n_text_layer,
            n_mels: 80,
            ftype: 1,
        };
        assert!(matches!(dtw_preset(&shape(51_864, 4, 384)), Some(DtwModelPreset::TinyEn)));
        assert!(matches!(dtw_preset(&shape(51_865, 4, 384)), Some(DtwModelPreset::Tiny)));
        assert!(matches!(dtw_preset(&shape(51_864, 6, 512)), Some(DtwModelPreset::BaseEn)));
        assert!(matches!(dtw_preset(&shape(51_865, 6, 512)), Some(DtwModelPreset::Base)));
        assert!(dtw_preset(&shape(51_865, 32, 1280)).is_none(), "large: no preset, no DTW");
    }

    fn token(text: &str, t0: i64, t1: i64, dtw: Option<i64>) -> TokenTime {
        TokenTime { text: text.into(), t0, t1, dtw }
    }

    fn timed(words: &[TextPiece]) -> Vec<(&str, u64, u64)> {
        words.iter().map(|w| (w.text.as_str(), w.start_ms, w.end_ms)).collect()
    }

    #[test]
    fn words_are_timed_by_dtw_when_it_ran_and_punctuation_does_not_move_their_end() {
        // DTW times mark where each token ends; the full stop's time is past the pause after
        // "deploy" (472–502), so it must not stretch the word over the pause.
        let tokens = [
            token(" every", 0, 0, Some(434)),
            token(" dep", 0, 0, Some(455)),
            token("loy", 0, 0, Some(472)),
            token(".", 0, 0, Some(516)),
            token(" We", 0, 0, Some(530)),
        ];
        assert_eq!(
            timed(&words_from_tokens(&tokens, 4_000, 9_000)),
            vec![("every", 4_000, 4_340), ("deploy.", 4_340, 4_720), ("We", 5_160, 5_300)]
        );
        // Without DTW, whisper.cpp's estimates, punctuation included, kept in the segment.
        let tokens = [
            token(" every", 386, 424, None),
            token(" deploy", 424, 465, None),
            token(".", 465, 474, None),
            token(" We", 504, 1_000, None),
        ];
        assert_eq!(
            timed(&words_from_tokens(&tokens, 0, 9_000)),
            vec![("every", 3_860, 4_240), ("deploy.", 4_240, 4_740), ("We", 5_040, 9_000)]
        );
    }

    fn pieces(text: &str) -> Vec<TextPiece> {
        vec![TextPiece { text: text.into(), start_ms: 0, end_ms: 1000 }]
    }

    #[test]
    fn decoding_loops_are_recognised() {
        assert!(is_repetitive(&pieces(&"The low air. ".repeat(10))));
        assert!(!is_repetitive(&pieces(
            "We rolled back the deploy, paged the on-call engineer and posted updates every thirty minutes."
        )));
        assert!(!is_repetitive(&pieces("Yes, yes, yes.")));
    }

    #[test]
    fn unsure_words_are_kept_only_from_audio_that_moves_like_speech() {
        let steady: Vec<f32> = (0..32_000).map(|i| if i % 2 == 0 { 0.02 } else { -0.02 }).collect();
        let syllables: Vec<f32> = (0..32_000)
            .map(|i| if (i / 2_400) % 2 == 0 { 0.3 } else { 0.003 } * if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        // Sure words stay, whatever the audio (which is then not even read).
        assert!(!is_invented(-0.4, || panic!("read")));
        assert!(!is_invented(-1.59, || &steady));
        // Unsure words stay where the audio rises and falls, and go where it is steady or silent.
        assert!(!is_invented(-1.68, || &syllables));
        assert!(is_invented(-1.99, || &steady));
        assert!(is_invented(-1.7, || &[]));
        // Garbled words go whatever the audio.
        assert!(is_invented(-2.87, || &syllables));
    }

    #[test]
    fn the_rest_of_a_clip_gets_the_least_context_but_never_more_than_the_clip() {
        let two_s = 16_000 * 2;
        assert_eq!(window_audio_ctx(two_s, None), 384, "a clip of its own: fitted (176), but the floor");
        // After a 20 s clip (context 1072): the minimum of 512.
        assert_eq!(window_audio_ctx(two_s, Some(audio_ctx_for(16_000 * 20))), 512);
        // After a 7.2 s clip (context 432): no more than the clip had, as in whisper.cpp.
        assert_eq!(window_audio_ctx(two_s, Some(audio_ctx_for(16 * 7_224))), 432);
        // A long rest keeps its fitted context.
        assert_eq!(window_audio_ctx(16_000 * 12, Some(audio_ctx_for(16_000 * 25))), audio_ctx_for(16_000 * 12));
    }

    #[test]
    fn audio_ctx_follows_the_clip_length() {
        assert_eq!(audio_ctx_for(16_000), 384); // 50 + 64 = 114: the floor, MIN_AUDIO_CTX
        assert_eq!(audio_ctx_for(16_000 * 7), 416); // 350 + 64, rounded up to a multiple of 16
        assert_eq!(audio_ctx_for(16_000 * 7 + 1), 416);
        assert_eq!(audio_ctx_for(16_000 * 10), 576);
        assert_eq!(audio_ctx_for(16_000 * 29), 1500);
        assert_eq!(audio_ctx_for(16_000 * 30), 1500);
    }
}
