//! The load generator against the real server: simulated candidates streaming espeak answers in
//! real time, one of them dropping its connection half-way and resuming. Checks what the load
//! report must show on a server within its capacity: everyone admitted, every answer back,
//! no segment lost, transcripts close to the script.

mod common;

use common::*;
use viva::load::{run_load, Clip, LoadPlan};

const SCRIPT: &str = "I declared an incident and paged the on call engineer. \
    Then I posted status updates to the support team every thirty minutes.";

/// The script spoken by espeak-ng, loaded as the load generator loads any recording.
fn clip() -> Clip {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("incident.wav");
    let status = std::process::Command::new("espeak-ng").arg("-w").arg(&wav).arg(SCRIPT).status().unwrap();
    assert!(status.success(), "espeak-ng failed");
    std::fs::write(wav.with_extension("txt"), SCRIPT).unwrap();
    Clip::load(&wav).expect("the recording loads")
}

on_both_stores! {
    async fn candidates_stream_in_real_time_and_nothing_is_lost(db: Db) {
        let app = spawn_app(&db).await;
        let plan = LoadPlan {
            streams: 2,
            answers: 2,
            think_ms: 500,
            tail_ms: 300,
            stagger_ms: Some(700),
            drop_every: 3,
            max_seconds: 120,
            ..LoadPlan::default()
        };
        let report = run_load(&app.http, &plan, &[clip()]).await.expect("the load run completes");
        assert_eq!((report.refused, report.failed), (0, 0), "{:?}", report.failures);
        assert_eq!(report.answers.len(), 4);
        assert_eq!(report.lost_segments(), 0, "{:?}", report.answers);
        assert_eq!(report.answers.iter().filter(|a| a.dropped_and_resumed).count(), 1);
        for answer in &report.answers {
            let wer = answer.word_error_rate.expect("the clip has a script");
            assert!(wer < 0.35, "word error rate {wer} for {answer:?}");
        }
        app.shutdown().await;
    }
}

on_both_stores! {
    async fn candidates_past_the_stream_limit_are_refused(db: Db) {
        let app = spawn_app_with(&db, viva::config::Limits { max_streams: 1, ..Default::default() }).await;
        let plan = LoadPlan { streams: 3, think_ms: 200, stagger_ms: Some(0), max_seconds: 60, ..LoadPlan::default() };
        let report = run_load(&app.http, &plan, &[clip()]).await.expect("the load run completes");
        assert_eq!(report.refused, 2, "{:?}", report.failures);
        assert_eq!(report.answers.len(), 1);
        assert_eq!(report.lost_segments(), 0);
        app.shutdown().await;
    }
}
