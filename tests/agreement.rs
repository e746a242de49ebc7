//! Local agreement on real speech: partial transcriptions of the open stretch, made once a
//! second of audio as a live stream makes them, settle how the stretch begins, and later
//! partials and the final then transcribe only the rest. Real whisper, the real voice detector, espeak speech.

mod common;

use viva::bench::word_error_rate;
use viva::session::{agreement, LiveAnswer, LiveEvent, StretchJob};
use viva::transcribe::{JobKind, TextPiece};

/// Two sentences with a pause between them (500 ms: one stretch, which closes after 600 ms), and
/// a comma's pause in the second: the places a prefix may be cut.
const FIRST: &str = "Afterwards we held a blameless postmortem and wrote a runbook.";
const SECOND: &str = "Errors dropped by ninety five percent after the regression test and the alert went in, \
and we have not had a repeat since.";

fn words(pieces: &[TextPiece]) -> String {
    pieces.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join(" ")
}

/// Streams the speech through a live answer in 100 ms chunks, transcribing each partial as it
/// falls due (an idle server), and returns the answer with the job `end_answer` closes.
async fn stream_live(audio: &[f32]) -> (LiveAnswer, StretchJob, Vec<String>) {
    let engine = common::engine();
    let mut live = LiveAnswer::new(0, 0, None, 600_000, 15_000);
    let mut partials = Vec::new();
    for chunk in audio.chunks(1_600) {
        let closed = live.push(chunk).into_iter().filter(|e| matches!(e, LiveEvent::Transcribe(_))).count();
        assert_eq!(closed, 0, "the speech is one stretch");
        if live.partial_due() {
            if let Some(mut job) = live.partial_job() {
                let prefix = live.agreed_prefix(&job);
                let pieces =
                    engine.transcribe_stretch(std::mem::take(&mut job.audio), JobKind::Partial, prefix).await.unwrap();
                partials.push(format!("{} ms: {pieces:?}", job.clip_samples / 16));
                live.note_partial(&job, &pieces);
            }
        }
    }
    let mut closing = live.finish();
    assert_eq!(closing.len(), 1);
    let Some(LiveEvent::Transcribe(job)) = closing.pop() else { panic!("the open stretch closes") };
    (live, job, partials)
}

/// `lead_ms` of silence, `FIRST`, the 500 ms pause and `SECOND`; and where `FIRST` ends (ms).
fn two_sentences(lead_ms: u64) -> (Vec<f32>, u64) {
    let mut audio = vec![0.0; 16 * lead_ms as usize];
    audio.extend(common::speak_16k_trimmed(FIRST));
    let first_end_ms = audio.len() as u64 / 16;
    audio.extend(vec![0.0; 16 * 500]);
    audio.extend(common::speak_16k_trimmed(SECOND));
    (audio, first_end_ms)
}

#[tokio::test]
async fn the_final_transcribes_only_what_the_partials_did_not_settle() {
    let engine = common::engine();
    let (mut audio, _) = two_sentences(1_000);
    audio.extend(vec![0.0; 16 * 300]);
    let (live, mut job, partials) = stream_live(&audio).await;

    let prefix = live.agreed_prefix(&job).unwrap_or_else(|| panic!("no agreement; partials:\n{}", partials.join("\n")));
    let clip = std::mem::take(&mut job.audio);
    let clip_ms = clip.len() as u64 / 16;
    // The cut is in a pause, not in a word: the audio 30 ms either side of it is silent.
    let cut = (job.clip_start_sample + prefix.cut_ms * 16) as usize;
    let peak = |samples: &[f32]| samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    let around = peak(&audio[cut - 480..cut + 480]);
    assert!(around < 0.05 * peak(&audio), "cut at {} ms is in speech (peak {around})", cut / 16);

    let rest = clip[(prefix.cut_ms * 16) as usize..].to_vec();
    let before = Some(words(&prefix.pieces));
    let joined = agreement::join(prefix, engine.transcribe_after(rest, JobKind::Closing, before).await.unwrap());
    let whole = engine.transcribe(clip, JobKind::Closing).await.unwrap();

    // The words on both sides of the cut are there, once; the settled part is the partials' reading,
    // which may differ from the whole clip's in a word or two ("most modern" for "postmortem").
    let (joined_text, whole_text) = (words(&joined), words(&whole));
    for word in ["blameless", "runbook", "dropped", "regression", "repeat"] {
        assert_eq!(joined_text.to_lowercase().matches(word).count(), 1, "{word}: {joined_text}");
    }
    let script = format!("{FIRST} {SECOND}");
    let (joined_wer, whole_wer) = (word_error_rate(&script, &joined_text), word_error_rate(&script, &whole_text));
    assert!(joined_wer <= whole_wer + 0.15, "{joined_wer} vs {whole_wer}: {joined_text} | {whole_text}");
    // In order, inside the clip.
    for pair in joined.windows(2) {
        assert!(pair[0].end_ms <= pair[1].start_ms + 10, "{joined:?}");
    }
    assert!(joined.iter().all(|p| p.start_ms <= p.end_ms && p.end_ms <= clip_ms), "{joined:?}");
}

/// Measures what the agreement costs in accuracy, deterministically: each bench recording goes
/// through a live answer with a partial every second (each finished before the next, as on an
/// idle server), and every stretch's final is made both ways, whole and from the settled prefix.
/// `bash scripts/make-bench-wavs.sh && cargo test --release --test agreement -- --ignored --nocapture`
#[tokio::test]
#[ignore = "a measurement over the bench recordings (minutes), not a check"]
async fn agreement_accuracy_on_the_bench_recordings() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-wavs");
    let (mut whole_all, mut joined_all, mut reference_all) = (String::new(), String::new(), String::new());
    let (mut stretches, mut settled, mut settled_ms, mut clip_ms, mut partial_ms) = (0, 0, 0, 0, 0u64);
    for (scope, name) in ["answer-10s", "answer-30s", "answer-60s", "answer-90s", "answer-180s"].into_iter().enumerate()
    {
        // Each recording is one live stream: its readings draft for each other, as in the server.
        let engine = common::engine().with_draft_scope(Some(scope as u64));
        let audio = viva::audio::read_wav_mono_16k(&dir.join(format!("{name}.wav"))).expect("bench recordings");
        reference_all += &std::fs::read_to_string(dir.join(format!("{name}.txt"))).unwrap();
        reference_all.push(' ');
        let mut live = LiveAnswer::new(0, 0, None, 600_000, 15_000);
        let mut closed = Vec::new();
        for chunk in audio.chunks(1_600) {
            for event in live.push(chunk) {
                if let LiveEvent::Transcribe(job) = event {
                    closed.push(job);
                }
            }
            for mut job in closed.drain(..) {
                let (whole, joined) = both_ways(&engine, &live, &mut job, &mut settled, &mut settled_ms).await;
                stretches += 1;
                clip_ms += job.clip_samples / 16;
                whole_all += &(words(&whole) + " ");
                joined_all += &(words(&joined) + " ");
                live.add_transcription(&job, whole);
            }
            if live.partial_due() {
                if let Some(mut job) = live.partial_job() {
                    // As the server does: once a prefix is settled, partials read only the rest.
                    let prefix = live.agreed_prefix(&job);
                    partial_ms += job.clip_samples / 16 - prefix.as_ref().map_or(0, |p| p.cut_ms);
                    let audio = std::mem::take(&mut job.audio);
                    let pieces = engine.transcribe_stretch(audio, JobKind::Partial, prefix).await.unwrap();
                    live.note_partial(&job, &pieces);
                }
            }
        }
        for event in live.finish() {
            if let LiveEvent::Transcribe(mut job) = event {
                let (whole, joined) = both_ways(&engine, &live, &mut job, &mut settled, &mut settled_ms).await;
                stretches += 1;
                clip_ms += job.clip_samples / 16;
                whole_all += &(words(&whole) + " ");
                joined_all += &(words(&joined) + " ");
            }
        }
    }
    println!(
        "stretches {stretches}, settled prefix in {settled}, {settled_ms} of {clip_ms} ms of clips settled; \
         partials read {partial_ms} ms of audio; WER whole {:.3}, with agreement {:.3}",
        word_error_rate(&reference_all, &whole_all),
        word_error_rate(&reference_all, &joined_all)
    );
}

async fn both_ways(
    engine: &viva::transcribe::Engine,
    live: &LiveAnswer,
    job: &mut StretchJob,
    settled: &mut usize,
    settled_ms: &mut u64,
) -> (Vec<TextPiece>, Vec<TextPiece>) {
    let clip = std::mem::take(&mut job.audio);
    let whole = engine.transcribe(clip.clone(), JobKind::Final).await.unwrap();
    let joined = match live.agreed_prefix(job) {
        Some(prefix) => {
            *settled += 1;
            *settled_ms += prefix.cut_ms;
            let rest = clip[(prefix.cut_ms * 16) as usize..].to_vec();
            let before = Some(words(&prefix.pieces));
            agreement::join(prefix, engine.transcribe_after(rest, JobKind::Final, before).await.unwrap())
        }
        None => whole.clone(),
    };
    if std::env::var("SHOW").is_ok() && words(&whole) != words(&joined) {
        println!("WHOLE  {:?}\nJOINED {:?}\n", whole, joined);
    }
    (whole, joined)
}

/// Partials time their words by DTW: in a long partial cut off mid-sentence, whisper.cpp's own
/// estimates put every word past the first few seconds at the clip's end, and then no pause
/// between them could ever be settled on.
#[tokio::test]
async fn a_long_partial_cut_mid_sentence_keeps_its_word_times_apart() {
    let engine = common::engine();
    let (mut audio, first_end_ms) = two_sentences(300);
    // Cut a second before the end, inside the second sentence.
    audio.truncate(audio.len() - 16 * 1_000);
    let clip_ms = audio.len() as u64 / 16;
    let words = engine.transcribe(audio, JobKind::Partial).await.unwrap();
    assert!(words.len() >= 20, "{words:?}");
    let at_the_end = words.iter().filter(|w| w.end_ms + 300 >= clip_ms).count();
    assert!(at_the_end <= 3, "{at_the_end} words timed at the clip's end ({clip_ms} ms): {words:?}");
    for pair in words.windows(2) {
        assert!(pair[0].end_ms <= pair[1].end_ms, "out of order: {words:?}");
    }
    // "runbook." ends the first sentence: its end is near the pause after it, not seconds off.
    let runbook = words.iter().find(|w| w.text.to_lowercase().starts_with("runbook")).expect("runbook");
    assert!(
        runbook.end_ms.abs_diff(first_end_ms) <= 400,
        "runbook ends at {} ms, the sentence at {first_end_ms}",
        runbook.end_ms
    );
}
