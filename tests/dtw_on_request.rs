//! viva patches whisper.cpp so that DTW word times, a setting of the whole context, are computed
//! only in the calls that ask for token times (`scripts/whisper-patches/dtw-on-request.cmake`):
//! live partials need them, finals and uploads do not, and the alignment cost them a quarter of
//! their time. Real whisper through whisper-rs on espeak speech, with the context viva loads.

mod common;

use viva::transcribe::load_whisper;
use whisper_rs::WhisperState;

const SPEECH: &str = "I declared an incident and paged the on call engineer.";

/// Transcribes `audio` as viva's calls do, with or without token times, and returns the text and
/// each text token's DTW time (-1: not computed).
fn transcribe(state: &mut WhisperState, eot: i32, audio: &[f32], token_times: bool) -> (String, Vec<i64>) {
    let mut params = common::greedy_params();
    params.set_token_timestamps(token_times);
    state.full(params, audio).expect("whisper runs");
    let mut text = String::new();
    let mut dtw = Vec::new();
    for segment in state.as_iter() {
        text.push_str(&segment.to_str_lossy().expect("text"));
        for i in 0..segment.n_tokens() {
            let token = segment.get_token(i).expect("token");
            if token.token_id() < eot {
                dtw.push(token.token_data().t_dtw);
            }
        }
    }
    (text, dtw)
}

#[test]
fn dtw_runs_only_in_calls_that_ask_for_token_times() {
    // viva's default settings: DTW word times on, for tiny.en's alignment heads.
    let context = load_whisper(&common::model_path()).expect("model loads");
    let mut state = context.create_state().expect("whisper state");
    let eot = context.token_eot();
    let mut audio = vec![0.0; 16 * 300];
    audio.extend(common::speak_16k(SPEECH));
    audio.extend(vec![0.0; 16 * 300]);
    let clip = (audio.len() / 160) as i64;

    let (timed_text, timed) = transcribe(&mut state, eot, &audio, true);
    assert!(timed.len() >= 8, "{timed_text}: {timed:?}");
    assert!(timed.iter().all(|&t| (0..=clip).contains(&t)), "every word timed by DTW: {timed:?}");
    assert!(timed.windows(2).all(|p| p[0] <= p[1]), "in order: {timed:?}");

    let (text, untimed) = transcribe(&mut state, eot, &audio, false);
    assert!(untimed.iter().all(|&t| t == -1), "DTW ran without being asked: {untimed:?}");
    // DTW only times the tokens whisper chose: the text is the same either way.
    assert_eq!(text, timed_text);
    assert!(common::lower_words(&text).contains("incident"), "{text}");
}
