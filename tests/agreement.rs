//! Local agreement on real speech: partial transcriptions of the open stretch, made once a
//! second of audio as a live stream makes them, settle how the stretch begins, and the final
//! then transcribes only the rest. Real whisper, the real voice detector, espeak speech.

mod common;

use viva::bench::word_error_rate;
use viva::session::{agreement, LiveAnswer, LiveEvent, StretchJob};
use viva::transcribe::{JobKind, TextPiece};

/// Two sentences in one breath (about 12 s): one stretch, whisper segments at the sentence end.
const SPEECH: &str = "Afterwards we held a blameless postmortem and wrote three follow up actions: \
a regression test, an alert on pool saturation and a runbook. \
Errors dropped by ninety five percent and we have not had a repeat since.";

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
                let pieces = engine.transcribe(std::mem::take(&mut job.audio), JobKind::Partial).await.unwrap();
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

#[tokio::test]
async fn the_final_transcribes_only_what_the_partials_did_not_settle() {
    let engine = common::engine();
    let mut audio = vec![0.0; 16 * 1_000];
    audio.extend(common::speak_16k(SPEECH));
    let (live, mut job, partials) = stream_live(&audio).await;

    let prefix = live.agreed_prefix(&job).unwrap_or_else(|| panic!("no agreement; partials:\n{}", partials.join("\n")));
    let clip = std::mem::take(&mut job.audio);
    let clip_ms = clip.len() as u64 / 16;
    assert!(prefix.cut_ms >= 2_000 && prefix.cut_ms + 1_000 < clip_ms, "cut at {} of {clip_ms} ms", prefix.cut_ms);

    let rest = clip[(prefix.cut_ms * 16) as usize..].to_vec();
    let joined = agreement::join(prefix, engine.transcribe(rest, JobKind::Closing).await.unwrap());
    let whole = engine.transcribe(clip, JobKind::Closing).await.unwrap();

    // The text on both sides of the cut is there, once: close to what the whole clip gives.
    let (joined_text, whole_text) = (words(&joined), words(&whole));
    for word in ["blameless", "regression", "runbook", "repeat"] {
        assert_eq!(joined_text.to_lowercase().matches(word).count(), 1, "{word}: {joined_text}");
    }
    let difference = word_error_rate(&whole_text, &joined_text);
    assert!(difference <= 0.15, "{difference}: {joined_text} | {whole_text}");
    // In order, inside the clip.
    for pair in joined.windows(2) {
        assert!(pair[0].end_ms <= pair[1].start_ms + 10, "{joined:?}");
    }
    assert!(joined.iter().all(|p| p.start_ms <= p.end_ms && p.end_ms <= clip_ms), "{joined:?}");
}
