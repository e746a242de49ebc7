//! End to end over a real WebSocket with real whisper on generated speech.

mod common;

use std::time::Duration;

use common::*;
use futures::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const ANSWER: &str = "We rolled back the deploy and paged the on call engineer. \
                      Then we wrote a blameless postmortem with three follow up actions.";
const LONG_WAIT: Duration = Duration::from_secs(120);

/// Streams silence, speech, silence and ends the answer; returns every message up to `answer`.
async fn answer_once(app: &TestApp, lead_silence_ms: u64, realtime: bool) -> Vec<Value> {
    let (speech, rate) = speak(ANSWER);
    let audio = concat(&[&silence(lead_silence_ms, rate), &speech, &silence(1_000, rate)]);
    let session = app.one_question("Tell me about an outage.").await;
    let mut client = app.connect(&session).await;
    client.start_s16(rate).await.unwrap();
    let first = client.recv_until("question", LONG_WAIT).await.unwrap();
    assert_eq!(first.last().unwrap()["asked_at_ms"], 0);
    client.send_audio(&audio, rate, 100, realtime).await.unwrap();
    client.send_json(json!({"type": "end_answer"})).await.unwrap();
    client.recv_until("answer", LONG_WAIT).await.unwrap()
}

fn assert_answer_is_right(messages: &[Value], lead_silence_ms: u64) -> Value {
    let answer = messages.last().unwrap().clone();
    let words = lower_words(answer["transcript"].as_str().unwrap());
    for expected in ["rolled back", "deploy", "engineer", "follow"] {
        assert!(words.contains(expected), "{expected:?} missing from {words:?}");
    }
    let think = answer["timing"]["think_ms"].as_i64().unwrap();
    assert!((think - lead_silence_ms as i64).abs() <= 300, "think_ms {think}, silence sent {lead_silence_ms}");
    // Segments: as sent, in order, never overlapping, and the same as in the answer.
    let sent: Vec<&Value> = of_type(messages, "segment");
    assert!(!sent.is_empty());
    let segments = answer["segments"].as_array().unwrap();
    assert_eq!(sent.len(), segments.len());
    let mut last_end = 0;
    for (s, a) in sent.iter().zip(segments) {
        assert_eq!(s["text"], a["text"]);
        let (start, end) = (a["start_ms"].as_u64().unwrap(), a["end_ms"].as_u64().unwrap());
        assert!(start >= last_end && end >= start, "segments overlap or go back: {segments:?}");
        last_end = end;
    }
    let timing = &answer["timing"];
    assert!(timing["answer_ms"].as_u64().unwrap() > 4_000);
    assert!(timing["speaking_ms"].as_u64().unwrap() <= timing["answer_ms"].as_u64().unwrap());
    assert!(answer["speech"]["words"].as_u64().unwrap() >= 15);
    assert!(answer["speech"]["wpm"].as_f64().unwrap() > 60.0);
    assert!(!of_type(messages, "stored").is_empty());
    answer
}

on_both_stores! {
    async fn real_time_and_faster_than_real_time_give_the_same_answer(db: Db) {
        let app = spawn_app(&db).await;
        let fast = answer_once(&app, 1_500, false).await;
        let fast_answer = assert_answer_is_right(&fast, 1_500);
        let live = answer_once(&app, 1_500, true).await;
        let live_answer = assert_answer_is_right(&live, 1_500);
        assert_eq!(fast_answer["transcript"], live_answer["transcript"]);
        assert_eq!(fast_answer["timing"], live_answer["timing"]);
        assert!(!of_type(&live, "partial").is_empty(), "no partial hypothesis while speaking in real time");
    }
}

on_both_stores! {
    async fn think_time_follows_the_silence_before_speech(db: Db) {
        let app = spawn_app(&db).await;
        let messages = answer_once(&app, 4_000, false).await;
        assert_answer_is_right(&messages, 4_000);
    }
}

on_both_stores! {
    async fn silence_and_noise_give_no_text(db: Db) {
        let app = spawn_app(&db).await;
        let session = app.one_question("Tell me about yourself.").await;
        let mut client = app.connect(&session).await;
        client.start_s16(16_000).await.unwrap();
        client.recv_until("question", LONG_WAIT).await.unwrap();
        // Noise right after digital silence is what fools the voice detector most (measured).
        let audio = concat(&[
            &silence(4_000, 16_000),
            &noise(3_000, 16_000, 0.05),
            &silence(1_000, 16_000),
            &noise(2_000, 16_000, 0.02),
            &silence(1_000, 16_000),
        ]);
        client.send_audio(&audio, 16_000, 250, false).await.unwrap();
        client.send_json(json!({"type": "end_answer"})).await.unwrap();
        let messages = client.recv_until("answer", LONG_WAIT).await.unwrap();
        let answer = messages.last().unwrap();
        assert_eq!(answer["transcript"], "");
        assert_eq!(answer["segments"], json!([]));
        assert_eq!(answer["timing"]["think_ms"], 11_000);
        assert_eq!(answer["timing"]["answer_ms"], 0);
        assert_eq!(answer["speech"]["words"], 0);
        assert!(of_type(&messages, "segment").is_empty() && of_type(&messages, "partial").is_empty());
    }
}

on_both_stores! {
    async fn stereo_float_48k_is_mixed_down_and_resampled(db: Db) {
        let app = spawn_app(&db).await;
        let (speech, rate) = speak("Kubernetes health checks restart the container.");
        // Resample espeak's 22050 Hz to 48 kHz by linear interpolation and duplicate the channel.
        let n = speech.len() as u64 * 48_000 / rate as u64;
        let mut bytes = Vec::new();
        for i in 0..n {
            let pos = i as f64 * rate as f64 / 48_000.0;
            let (k, frac) = (pos as usize, pos.fract());
            let a = speech[k.min(speech.len() - 1)] as f64;
            let b = speech[(k + 1).min(speech.len() - 1)] as f64;
            let v = ((a + (b - a) * frac) / 32768.0) as f32;
            bytes.extend_from_slice(&v.to_le_bytes());
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.extend(std::iter::repeat_n(0u8, 48_000 * 8));
        let session = app.one_question("How do you keep a service healthy?").await;
        let mut client = app.connect(&session).await;
        client
            .send_json(json!({"type": "start", "audio": {"encoding": "pcm_f32le", "sample_rate": 48000, "channels": 2}}))
            .await
            .unwrap();
        client.recv_until("question", LONG_WAIT).await.unwrap();
        for chunk in bytes.chunks(48_000 * 8 / 10) {
            client.inner().send(Message::Binary(chunk.to_vec().into())).await.unwrap();
        }
        client.send_json(json!({"type": "end_answer"})).await.unwrap();
        let messages = client.recv_until("answer", LONG_WAIT).await.unwrap();
        let answer = messages.last().unwrap();
        let words = lower_words(answer["transcript"].as_str().unwrap());
        assert!(words.contains("health") && words.contains("container"), "{words:?}");
        let audio_ms = answer["audio_ms"].as_u64().unwrap();
        let expected = n * 1000 / 48_000 + 1_000;
        assert!(audio_ms.abs_diff(expected) < 100, "audio_ms {audio_ms}, sent {expected}");
    }
}

on_both_stores! {
    async fn time_limit_warns_and_finalises_over_limit(db: Db) {
        let app = spawn_app(&db).await;
        let session = app
            .create(json!({"questions": [{"text": "Quick one.", "time_limit_ms": 6000}, {"text": "Next."}]}))
            .await;
        let (speech, rate) = speak("I would start with the simplest thing that works and measure it first.");
        let audio = concat(&[&silence(1_000, rate), &speech, &silence(6_000, rate)]);
        let mut client = app.connect(&session).await;
        client.start_s16(rate).await.unwrap();
        client.recv_until("question", LONG_WAIT).await.unwrap();
        client.send_audio(&audio, rate, 100, false).await.unwrap();
        let messages = client.recv_until("answer", LONG_WAIT).await.unwrap();
        let warning = of_type(&messages, "time_warning");
        assert_eq!(warning.len(), 1);
        assert_eq!(warning[0]["remaining_ms"], 3000);
        let answer = messages.last().unwrap();
        assert_eq!(answer["timing"]["over_limit"], true);
        assert_eq!(answer["timing"]["time_limit_ms"], 6000);
        assert_eq!(answer["audio_ms"], 6000);
        assert!(lower_words(answer["transcript"].as_str().unwrap()).contains("simplest"));
        // The rest of the audio is not an answer; `next` asks the second question.
        client.send_json(json!({"type": "next"})).await.unwrap();
        let next = client.recv_until("question", LONG_WAIT).await.unwrap();
        let question = next.last().unwrap();
        assert_eq!(question["index"], 1);
        let sent_ms = audio.len() as u64 * 1000 / rate as u64;
        assert!(question["asked_at_ms"].as_u64().unwrap().abs_diff(sent_ms) <= 1);
    }
}

on_both_stores! {
    async fn a_dropped_stream_resumes_where_the_store_left_it(db: Db) {
        let app = spawn_app(&db).await;
        let (first, rate) = speak("First we checked the error logs and the dashboards.");
        let (second, _) = speak("Then we bisected the recent deploys and found the bad commit.");
        let audio = concat(&[&silence(1_000, rate), &first, &silence(1_500, rate), &second, &silence(1_000, rate)]);
        let cut = (1_000 + 1_500) * rate as usize / 1000 + first.len();
        let session = app.one_question("Tell me about a hard bug.").await;

        let mut client = app.connect(&session).await;
        client.start_s16(rate).await.unwrap();
        client.recv_until("question", LONG_WAIT).await.unwrap();
        client.send_audio(&audio[..cut], rate, 100, false).await.unwrap();
        // Wait until some audio is durably stored, then drop the connection without a close.
        client.recv_until("stored", LONG_WAIT).await.unwrap();
        drop(client);
        tokio::time::sleep(Duration::from_millis(300)).await;

        let mut client = app.connect(&session).await;
        client.start_s16(rate).await.unwrap();
        let resumed = client.recv_until("stored", LONG_WAIT).await.unwrap();
        let question = of_type(&resumed, "question")[0];
        assert_eq!((question["index"].as_u64(), question["asked_at_ms"].as_u64()), (Some(0), Some(0)));
        let stored_ms = resumed.last().unwrap()["audio_ms"].as_u64().unwrap();
        assert!(stored_ms > 0 && stored_ms <= (cut as u64 * 1000 / rate as u64));
        let from = (stored_ms * rate as u64 / 1000) as usize;
        client.send_audio(&audio[from..], rate, 100, false).await.unwrap();
        client.send_json(json!({"type": "end_answer"})).await.unwrap();
        let messages = client.recv_until("answer", LONG_WAIT).await.unwrap();
        let answer = messages.last().unwrap();
        let words = lower_words(answer["transcript"].as_str().unwrap());
        assert!(words.contains("logs") && words.contains("dashboards"), "{words:?}");
        assert!(words.contains("bisected") || words.contains("commit"), "{words:?}");
        assert_eq!(words.matches("dashboards").count(), 1, "a segment was repeated: {words:?}");
        let total_ms = audio.len() as u64 * 1000 / rate as u64;
        assert!(answer["audio_ms"].as_u64().unwrap().abs_diff(total_ms) < 100);
        let think = answer["timing"]["think_ms"].as_i64().unwrap();
        assert!((think - 1_000).abs() <= 300, "think_ms {think}");
    }
}

on_both_stores! {
    async fn graceful_shutdown_finalises_the_open_answer(db: Db) {
        let app = spawn_app(&db).await;
        let session = app.one_question("Tell me about an outage.").await;
        let (speech, rate) = speak("We declared an incident and opened a bridge.");
        let mut client = app.connect(&session).await;
        client.start_s16(rate).await.unwrap();
        client.recv_until("question", LONG_WAIT).await.unwrap();
        client.send_audio(&concat(&[&silence(500, rate), &speech]), rate, 100, false).await.unwrap();
        client.recv_until("stored", LONG_WAIT).await.unwrap();
        let store = app.state.store.clone();
        let shutdown = tokio::spawn(app.shutdown());
        let messages = client.recv_until("answer", LONG_WAIT).await.unwrap();
        let answer = messages.last().unwrap();
        assert_eq!(answer["interrupted"], true);
        assert!(lower_words(answer["transcript"].as_str().unwrap()).contains("incident"));
        shutdown.await.unwrap();
        let rows = store.answers(&session.id).await.unwrap();
        assert_eq!(rows[0].status, viva::store::AnswerStatus::Interrupted);
        assert!(rows[0].answer.as_ref().unwrap().transcript.to_lowercase().contains("incident"));
    }
}
