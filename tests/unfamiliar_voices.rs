//! Real words in voices tiny.en finds hard are kept. whisper is as unsure of such words (mean log
//! probability under -1.6) as of words it invents for noise, and confidence alone dropped these
//! clips whole (in an answer, the sentence they were); their audio rises and falls like speech,
//! where the noise that fools the voice detector is steady (`silence_and_noise_give_no_text` in
//! tests/stream.rs checks that such noise still gives no words).

mod common;

use std::path::Path;
use std::process::Command;
use viva::config::EngineSettings;
use viva::transcribe::{load_whisper, WhisperFactory};

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

/// espeak-ng speech in `voice` at `wpm` words a minute, at 16 kHz with 300 ms of silence either
/// side, mixed with a quiet room's white noise (sox in repeatable mode: the same noise every run).
fn speak_in(dir: &Path, voice: &str, wpm: u32, text: &str) -> Vec<f32> {
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (raw, clean, noisy) = (path("raw.wav"), path("clean.wav"), path("noisy.wav"));
    run("espeak-ng", &["-v", voice, "-s", &wpm.to_string(), "-w", &raw, text]);
    run("sox", &["-R", &raw, "-r", "16000", "-c", "1", "-b", "16", &clean, "pad", "0.3", "0.3"]);
    let mix = format!("sox -R {clean} -p synth whitenoise vol 0.01 | sox -R -m {clean} - {noisy}");
    run("sh", &["-c", &mix]);
    viva::audio::read_wav_mono_16k(Path::new(&noisy)).expect("a 16 kHz WAV")
}

#[test]
fn unsure_words_from_audio_that_moves_like_speech_are_kept() {
    let context = load_whisper(&common::model_path()).expect("model loads");
    let factory = WhisperFactory::new(context, &EngineSettings::default());
    let mut whisper = factory.create_whisper().expect("whisper state");
    let dir = tempfile::tempdir().unwrap();
    let mut lost = Vec::new();
    // With confidence alone as the rule, both were dropped whole: mean log probability -1.69 and
    // -1.85.
    for (voice, wpm) in [("en-029+f2", 180), ("en-gb-x-gbcwmd+f4", 140)] {
        let pieces = whisper.transcribe_clip(&speak_in(dir.path(), voice, wpm, "tokens never appear in the logs"));
        let heard = pieces.expect("transcribed").iter().map(|p| p.text.clone()).collect::<Vec<_>>().join(" ");
        if heard.split_whitespace().count() < 3 {
            lost.push((voice, heard));
        }
    }
    assert!(lost.is_empty(), "speech dropped: {lost:?}");
}
