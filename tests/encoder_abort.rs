//! viva patches whisper.cpp so that a call's abort callback is asked inside the encoder, before
//! each graph node, not only once the whole encoder has run
//! (`scripts/whisper-patches/encoder-abort.cmake`): a partial that must give way to the stretch
//! closing an answer then stops at once instead of finishing its encoder pass first. Real whisper
//! through whisper-rs on espeak speech, with the context viva loads.

mod common;

use std::cell::Cell;

use viva::transcribe::load_whisper;
use whisper_rs::WhisperState;

const SPEECH: &str = "I declared an incident and paged the on call engineer.";

/// What the test's abort callback sees: how often whisper asked, and from which question on it
/// is told to stop (0: never).
struct Questions {
    asked: Cell<u32>,
    stop_from: u32,
}

unsafe extern "C" fn count_and_maybe_stop(user_data: *mut std::ffi::c_void) -> bool {
    // SAFETY: `transcribe` passes a pointer to a `Questions` that outlives the call; ggml asks
    // from one thread at a time (the graph's thread 0, or whisper's own between graphs).
    let questions = unsafe { &*(user_data as *const Questions) };
    questions.asked.set(questions.asked.get() + 1);
    questions.stop_from != 0 && questions.asked.get() >= questions.stop_from
}

/// One greedy call as viva makes it (no token times), asking the callback as whisper.cpp does.
/// Returns whether the call succeeded, its text and its number of text tokens.
fn transcribe(state: &mut WhisperState, eot: i32, audio: &[f32], questions: &Questions) -> (bool, String, usize) {
    let mut params = common::greedy_params();
    params.set_audio_ctx(384);
    // SAFETY: `questions` outlives `state.full`, the only call that uses the pointer.
    unsafe {
        params.set_abort_callback(Some(count_and_maybe_stop));
        params.set_abort_callback_user_data(questions as *const Questions as *mut std::ffi::c_void);
    }
    let ok = state.full(params, audio).is_ok();
    let mut text = String::new();
    let mut tokens = 0;
    for segment in state.as_iter() {
        text.push_str(&segment.to_str_lossy().expect("text"));
        tokens += (0..segment.n_tokens()).filter(|&i| segment.get_token(i).expect("token").token_id() < eot).count();
    }
    (ok, text, tokens)
}

fn clip() -> Vec<f32> {
    let mut audio = vec![0.0; 16 * 300];
    audio.extend(common::speak_16k(SPEECH));
    audio.extend(vec![0.0; 16 * 300]);
    audio
}

#[test]
fn the_encoder_asks_whether_to_give_way() {
    let context = load_whisper(&common::model_path()).expect("model loads");
    let mut state = context.create_state().expect("whisper state");
    let eot = context.token_eot();
    let audio = clip();

    let questions = Questions { asked: Cell::new(0), stop_from: 0 };
    let (ok, text, tokens) = transcribe(&mut state, eot, &audio, &questions);
    assert!(ok && common::lower_words(&text).contains("incident"), "{text}");
    // Unpatched, whisper.cpp asks once after the encoder and once per decoding step: about one
    // question per token (measured: 16 questions for 13 tokens). Patched, the encoder's graphs
    // also ask before each of their hundreds of nodes.
    let asked = questions.asked.get() as usize;
    assert!(
        asked > tokens + 100,
        "asked {asked} times for {tokens} tokens: the encoder never asked (whisper.cpp built before \
         the patch? cargo does not track scripts/whisper-patches/: `cargo clean -p whisper-rs-sys`)"
    );
}

#[test]
fn a_call_stopped_inside_the_encoder_fails_and_leaves_the_state_as_good_as_new() {
    let context = load_whisper(&common::model_path()).expect("model loads");
    let mut state = context.create_state().expect("whisper state");
    let eot = context.token_eot();
    let audio = clip();
    let never = || Questions { asked: Cell::new(0), stop_from: 0 };

    let (_, expected, _) = transcribe(&mut context.create_state().expect("whisper state"), eot, &audio, &never());

    // Told to stop at the third question: inside the encoder, which then asks no more.
    let stop = Questions { asked: Cell::new(0), stop_from: 3 };
    let (ok, _, _) = transcribe(&mut state, eot, &audio, &stop);
    assert!(!ok, "a call told to stop inside its encoder must fail, not return a half-encoded text");
    assert_eq!(stop.asked.get(), 3, "the call went on asking after it was told to stop");

    // The same state reads the clip as a fresh one does, and the stopped call's callback (whose
    // data is gone once its call returns) is not asked again.
    let again = never();
    let (ok, text, _) = transcribe(&mut state, eot, &audio, &again);
    assert!(ok);
    assert_eq!(text, expected);
    assert_eq!(stop.asked.get(), 3);
}
