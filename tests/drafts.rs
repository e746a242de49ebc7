//! Draft tokens (`scripts/whisper-patches/draft-tokens.cmake`, `src/transcribe/drafts.rs`): a
//! live stretch is read again as it grows, and each reading hands whisper the tokens of the last
//! one over the same start of audio, checked in one decoder pass. Real whisper on espeak speech:
//! the text must be the text read without drafts, and the draft must have been used.

mod common;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use viva::config::EngineSettings;
use viva::transcribe::{joined_text, load_whisper, Interrupt, Transcriber, WhisperFactory};

const STRETCH: &str = "We had an outage when the payments database ran out of connections. \
I declared an incident and paged the on call engineer.";

extern "C" {
    /// viva's patch: the draft for this thread's next whisper call.
    fn viva_whisper_set_draft(tokens: *const i32, n_tokens: i32);
    /// viva's patch: how many decoding steps this thread's last call took from its draft.
    fn viva_whisper_drafted() -> i32;
}

fn stretch() -> Vec<f32> {
    let mut audio = vec![0.0; 16 * 200];
    audio.extend(common::speak_16k(STRETCH));
    audio.extend(vec![0.0; 16 * 300]);
    audio
}

fn factory(draft_tokens: bool) -> WhisperFactory {
    let context = load_whisper(&common::model_path()).expect("model loads");
    WhisperFactory::new(context, &EngineSettings { draft_tokens, ..EngineSettings::default() })
}

fn never() -> Interrupt {
    Interrupt::when_waiting(&Arc::new(AtomicUsize::new(0)))
}

#[test]
fn a_growing_stretch_is_read_from_its_last_reading_with_the_same_text() {
    let audio = stretch();
    let without = factory(false).create_whisper().expect("whisper state").transcribe_clip(&audio).expect("read");

    let mut whisper = factory(true).create_whisper().expect("whisper state");
    whisper.set_draft_scope(Some(1));
    // Partials every second as the candidate speaks, then the stretch's final reading.
    let mut partials = Vec::new();
    for seconds in [3, 4, 5, 6, 7] {
        let words = whisper.transcribe_words(&audio[..16_000 * seconds], None, never()).expect("partial");
        partials.push((joined_text(&words), whisper.last_drafted()));
    }
    let with = whisper.transcribe_clip(&audio).expect("read");

    assert_eq!(joined_text(&with), joined_text(&without));
    assert!(common::lower_words(&joined_text(&with)).contains("incident"), "{with:?}");
    // Each partial after the first, and the final, took most of its steps from the reading
    // before it: a partial a second shorter says the same up to its last word or two. Without the
    // patch (or with drafts off) nothing is drafted.
    assert_eq!(partials[0].1, 0, "the first reading has no draft: {partials:?}");
    for (text, drafted) in &partials[1..] {
        assert!(*drafted >= 4, "{drafted} steps drafted for {text:?}: {partials:?}");
    }
    let tokens = with.iter().map(|p| p.text.split_whitespace().count()).sum::<usize>();
    assert!(
        whisper.last_drafted() * 2 >= tokens,
        "the final took {} steps from its draft, for {tokens} words: {partials:?}",
        whisper.last_drafted()
    );
}

#[test]
fn without_drafts_or_a_scope_nothing_is_drafted() {
    let audio = stretch();
    for (draft_tokens, scope) in [(false, Some(1)), (true, None)] {
        let mut whisper = factory(draft_tokens).create_whisper().expect("whisper state");
        whisper.set_draft_scope(scope);
        whisper.transcribe_clip(&audio[..16_000 * 4]).expect("read");
        whisper.transcribe_clip(&audio).expect("read");
        assert_eq!(whisper.last_drafted(), 0, "drafts {draft_tokens}, scope {scope:?}");
    }
}

#[test]
fn readings_in_another_scope_are_no_draft() {
    let audio = stretch();
    let mut whisper = factory(true).create_whisper().expect("whisper state");
    whisper.set_draft_scope(Some(1));
    whisper.transcribe_clip(&audio[..16_000 * 4]).expect("read");
    whisper.set_draft_scope(Some(2));
    whisper.transcribe_clip(&audio).expect("read");
    assert_eq!(whisper.last_drafted(), 0);
    // Back in the first stream, its own reading serves.
    whisper.set_draft_scope(Some(1));
    whisper.transcribe_clip(&audio).expect("read");
    assert!(whisper.last_drafted() > 0);
}

/// One call as viva makes it, with `draft` as its draft: its text, its tokens (no end-of-text)
/// and how many steps it took from the draft.
fn read(state: &mut whisper_rs::WhisperState, eot: i32, audio: &[f32], draft: &[i32]) -> (String, Vec<i32>, i32) {
    // SAFETY: the draft is copied; the call below runs on this thread.
    unsafe { viva_whisper_set_draft(draft.as_ptr(), draft.len() as i32) };
    let mut params = common::greedy_params();
    params.set_audio_ctx(464);
    state.full(params, audio).expect("read");
    // SAFETY: a plain read of this thread's figure from the call that just ended.
    let drafted = unsafe { viva_whisper_drafted() };
    let text = state.as_iter().map(|s| s.to_str_lossy().expect("text").to_string()).collect::<String>();
    let tokens = state
        .as_iter()
        .flat_map(|s| (0..s.n_tokens()).map(move |i| s.get_token(i).expect("token").token_id()))
        .filter(|&t| t != eot)
        .collect();
    (text, tokens, drafted)
}

#[test]
fn a_wrong_draft_changes_nothing() {
    let audio = stretch();
    let context = load_whisper(&common::model_path()).expect("model loads");
    let mut state = context.create_state().expect("state");
    let eot = context.token_eot();
    let (expected, right, drafted) = read(&mut state, eot, &audio, &[]);
    assert_eq!(drafted, 0);

    // The right draft serves nearly every step.
    let (text, _, drafted) = read(&mut state, eot, &audio, &right);
    assert_eq!(text, expected);
    assert!(drafted as usize + 2 >= right.len(), "{drafted} of {} drafted", right.len());

    // Another sentence's tokens, and the right ones with a wrong token in the middle: the call
    // leaves each draft where it differs and goes on from the tokens it chose.
    let other = context.tokenize(" The cache was cold and the queue grew without bound.", 64).expect("tokens");
    let mut bent = right.clone();
    let middle = bent.len() / 2;
    bent[middle] = other[3];
    let (text, _, drafted) = read(&mut state, eot, &audio, &other);
    assert_eq!(text, expected, "draft {other:?}");
    assert_eq!(drafted, 0);
    let (text, _, drafted) = read(&mut state, eot, &audio, &bent);
    assert_eq!(text, expected, "draft {bent:?}");
    assert!(
        drafted as usize + 1 >= middle && (drafted as usize) < right.len() - 1,
        "{drafted} drafted, bent at {middle}"
    );
}
