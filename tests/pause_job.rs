//! The pause-time job of an open stretch (`LiveAnswer::pause_job`) is reused as the stretch's
//! final text only when it is the very same clip. These tests check that promise on real
//! speech (espeak-ng) through the real voice detector: the same clip when the candidate stays
//! silent, a different one when they speak again.

mod common;

use viva::session::{LiveAnswer, LiveEvent, StretchJob};

fn answer() -> LiveAnswer {
    LiveAnswer::new(0, 0, None, 600_000, 15_000)
}

/// Feeds audio in 100 ms chunks, as a live client sends it; returns the pause jobs handed out
/// and the stretches closed.
fn feed(live: &mut LiveAnswer, audio: &[f32]) -> (Vec<StretchJob>, Vec<StretchJob>) {
    let (mut pause_jobs, mut closed) = (Vec::new(), Vec::new());
    for chunk in audio.chunks(1_600) {
        for event in live.push(chunk) {
            if let LiveEvent::Transcribe(job) = event {
                closed.push(job);
            }
        }
        pause_jobs.extend(live.pause_job());
    }
    (pause_jobs, closed)
}

fn same_clip(a: &StretchJob, b: &StretchJob) -> bool {
    a.clip_start_sample == b.clip_start_sample && a.audio == b.audio
}

#[test]
fn a_pause_job_is_the_final_clip_when_the_candidate_stays_silent() {
    let speech = common::speak_16k_trimmed("We rolled back the deploy and paged the on call engineer.");

    // The pause closes the stretch by itself (600 ms of silence).
    let mut live = answer();
    let mut audio = speech.clone();
    audio.extend(vec![0.0; 16 * 1_000]);
    let (pause_jobs, closed) = feed(&mut live, &audio);
    assert_eq!(pause_jobs.len(), 1, "one pause job per pause");
    assert_eq!(closed.len(), 1);
    assert!(same_clip(&pause_jobs[0], &closed[0]));

    // The candidate ends the answer 400 ms into the pause.
    let mut live = answer();
    let mut audio = speech.clone();
    audio.extend(vec![0.0; 16 * 400]);
    let (pause_jobs, closed) = feed(&mut live, &audio);
    assert!(closed.is_empty(), "the stretch is still open");
    assert_eq!(pause_jobs.len(), 1);
    let finished: Vec<StretchJob> = live
        .finish()
        .into_iter()
        .filter_map(|e| match e {
            LiveEvent::Transcribe(job) => Some(job),
            _ => None,
        })
        .collect();
    assert_eq!(finished.len(), 1);
    assert!(same_clip(&pause_jobs[0], &finished[0]));
}

#[test]
fn speaking_again_makes_the_pause_job_stale() {
    let first = common::speak_16k_trimmed("We rolled back the deploy.");
    let second = common::speak_16k_trimmed("Then we paged the on call engineer.");
    let mut live = answer();
    // 400 ms: long enough for a pause job, too short to close the stretch.
    let mut audio = first.clone();
    audio.extend(vec![0.0; 16 * 400]);
    let (pause_jobs, closed) = feed(&mut live, &audio);
    assert_eq!((pause_jobs.len(), closed.len()), (1, 0));
    let stale = pause_jobs.into_iter().next().unwrap();
    assert!(live.pause_job_current(stale.stretch.end_sample));

    let mut more = second.clone();
    more.extend(vec![0.0; 16 * 1_000]);
    let (pause_jobs, closed) = feed(&mut live, &more);
    assert!(!live.pause_job_current(stale.stretch.end_sample));
    assert_eq!(closed.len(), 1, "one stretch holds both phrases");
    assert!(!same_clip(&stale, &closed[0]), "the stale job lacks the second phrase");
    let last = pause_jobs.last().expect("the final pause gets its own job");
    assert!(same_clip(last, &closed[0]));
}
