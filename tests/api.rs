//! The REST API and the stream's refusals: tokens, validation, bad input, limits.

mod common;

use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use viva::client::StreamClient;
use viva::config::Limits;

const WAIT: Duration = Duration::from_secs(120);

async fn expect_error(client: &mut StreamClient, code: &str) -> Value {
    let messages = client.recv_until("error", WAIT).await.unwrap();
    let error = messages.last().unwrap().clone();
    assert_eq!(error["code"], code, "{error}");
    assert_eq!(error["fatal"], false, "{error}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    error
}

/// Reads until the server closes; returns the close code.
async fn expect_close(client: &mut StreamClient) -> (Vec<Value>, Option<CloseCode>) {
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, client.inner().next()).await.expect("server closes") {
            Some(Ok(Message::Text(t))) => seen.push(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => return (seen, frame.map(|f| f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (seen, None),
        }
    }
}

on_both_stores! {
    async fn health_and_readiness(db: Db) {
        let app = spawn_app(&db).await;
        let r = reqwest::get(app.url("/healthz")).await.unwrap();
        assert_eq!(r.status(), 200);
        let r = reqwest::get(app.url("/readyz")).await.unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["database"], true);
        assert_eq!(body["model"], true);
    }
}

on_both_stores! {
    async fn creating_a_session_validates_the_body_and_names_the_field(db: Db) {
        let app = spawn_app(&db).await;
        let client = reqwest::Client::new();
        let post = |body: Value| client.post(app.url("/v1/sessions")).json(&body).send();
        let created = app.create(json!({"questions": [{"text": "Tell me about an outage.", "competencies": ["incident-communication"], "time_limit_ms": 120000}]})).await;
        assert_eq!(created.body["questions"][0]["index"], 0);
        assert_eq!(created.body["questions"][0]["time_limit_ms"], 120000);
        assert!(created.token.len() >= 22);

        for (body, field) in [
            (json!({"questions": []}), "questions"),
            (json!({"questions": [{"text": "  "}]}), "questions[0].text"),
            (json!({"questions": [{"text": "ok", "time_limit_ms": 10}]}), "questions[0].time_limit_ms"),
            (json!({"questions": [{"text": "ok", "competencies": ["bad id!"]}]}), "questions[0].competencies"),
            (json!({"questions": [{"text": 5}]}), "questions[0].text"),
        ] {
            let r = post(body.clone()).await.unwrap();
            assert_eq!(r.status(), 400, "{body}");
            let error: Value = r.json().await.unwrap();
            assert!(error["code"].is_string());
            assert!(error["message"].as_str().unwrap().contains(field), "{error} should name {field}");
        }
        let r = client.post(app.url("/v1/sessions")).body("{not json").header("content-type", "application/json").send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "malformed_json");
        let too_many: Vec<Value> = (0..51).map(|_| json!({"text": "q"})).collect();
        let r = post(json!({"questions": too_many})).await.unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "too_many_questions");
    }
}

on_both_stores! {
    async fn session_data_needs_its_own_token(db: Db) {
        let app = spawn_app(&db).await;
        let mine = app.one_question("Why this role?").await;
        let other = app.one_question("Why this role?").await;
        let client = reqwest::Client::new();
        let paths = [
            format!("/v1/sessions/{}", mine.id),
            format!("/v1/sessions/{}/answers/0/audio", mine.id),
            format!("/v1/sessions/{}/export.md", mine.id),
        ];
        for path in &paths {
            let r = client.get(app.url(path)).send().await.unwrap();
            assert_eq!(r.status(), 401, "{path}");
            assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthorized");
            let r = client.get(app.url(path)).bearer_auth(&other.token).send().await.unwrap();
            assert_eq!(r.status(), 404, "{path}");
            let body = r.text().await.unwrap();
            assert!(body.contains("session_not_found") && !body.contains("Why this role"));
        }
        // An unknown id looks exactly like a wrong token.
        let r = client.get(app.url("/v1/sessions/AAAAAAAAAAAAAAAA")).bearer_auth(&mine.token).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let r = client.get(app.url(&paths[0])).bearer_auth(&mine.token).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let review: Value = r.json().await.unwrap();
        assert_eq!(review["questions"][0]["text"], "Why this role?");
        assert_eq!(review["answers"], json!([]));
        // The WebSocket upgrade needs the token too.
        let url = format!("{}/v1/sessions/{}/stream", app.ws, mine.id);
        assert!(tokio_tungstenite::connect_async(url.clone()).await.is_err());
        assert!(tokio_tungstenite::connect_async(format!("{url}?token={}", other.token)).await.is_err());
        // Delete needs the token, then nothing remains.
        let r = client.delete(app.url(&paths[0])).bearer_auth(&other.token).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let r = client.delete(app.url(&paths[0])).bearer_auth(&mine.token).send().await.unwrap();
        assert_eq!(r.status(), 204);
        let r = client.get(app.url(&paths[0])).bearer_auth(&mine.token).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
}

on_both_stores! {
    async fn every_bad_input_gets_its_code_and_the_session_survives(db: Db) {
        let app = spawn_app(&db).await;
        let session = app.create(json!({"questions": [{"text": "One."}, {"text": "Two."}]})).await;
        let mut client = app.connect(&session).await;

        client.inner().send(Message::Binary(vec![0u8; 320].into())).await.unwrap();
        expect_error(&mut client, "not_started").await;
        client.send_json(json!({"type": "end_answer"})).await.unwrap();
        expect_error(&mut client, "no_question").await;
        client.send_json(json!({"type": "next"})).await.unwrap();
        expect_error(&mut client, "not_started").await;
        client.inner().send(Message::Text("{oops".into())).await.unwrap();
        expect_error(&mut client, "malformed_json").await;
        client.send_json(json!({"type": "sing"})).await.unwrap();
        expect_error(&mut client, "unknown_type").await;
        client.send_json(json!({"hello": 1})).await.unwrap();
        expect_error(&mut client, "missing_type").await;
        client.send_json(json!({"type": "start", "audio": {"encoding": "mp3", "sample_rate": 16000, "channels": 1}})).await.unwrap();
        expect_error(&mut client, "unsupported_audio").await;
        client.send_json(json!({"type": "start", "audio": {"encoding": "pcm_s16le", "sample_rate": 4000, "channels": 1}})).await.unwrap();
        expect_error(&mut client, "unsupported_audio").await;

        client.start_s16(16_000).await.unwrap();
        client.recv_until("question", WAIT).await.unwrap();
        client.start_s16(16_000).await.unwrap();
        expect_error(&mut client, "already_started").await;
        client.inner().send(Message::Binary(vec![0u8; 3].into())).await.unwrap();
        expect_error(&mut client, "bad_audio_frame").await;
        client.send_audio(&silence(2_500, 16_000), 16_000, 100, false).await.unwrap();
        client.recv_until("stored", WAIT).await.unwrap();
        client.send_json(json!({"type": "end_answer"})).await.unwrap();
        client.recv_until("answer", WAIT).await.unwrap();
        client.send_json(json!({"type": "end_answer"})).await.unwrap();
        expect_error(&mut client, "no_question").await;
        client.send_json(json!({"type": "next"})).await.unwrap();
        client.recv_until("question", WAIT).await.unwrap();
        client.send_audio(&silence(1_500, 16_000), 16_000, 100, false).await.unwrap();
        client.recv_until("stored", WAIT).await.unwrap();

        // A frame over 1 MiB closes the stream with 1009 ...
        client.inner().send(Message::Binary(vec![0u8; (1 << 20) + 2].into())).await.unwrap();
        let (messages, code) = expect_close(&mut client).await;
        assert_eq!(code, Some(CloseCode::Size), "{messages:?}");
        // ... and the session, with what was stored, goes on after a reconnect.
        let mut client = app.connect(&session).await;
        client.start_s16(16_000).await.unwrap();
        let resumed = client.recv_until("stored", WAIT).await.unwrap();
        assert_eq!(of_type(&resumed, "question")[0]["index"], 1);
        assert!(resumed.last().unwrap()["audio_ms"].as_u64().unwrap() >= 1_000);
        client.send_json(json!({"type": "finish"})).await.unwrap();
        let done = client.recv_until("complete", WAIT).await.unwrap();
        assert_eq!(of_type(&done, "answer").len(), 1);
        assert_eq!(done.last().unwrap()["session_id"], session.id.as_str());

        let review: Value = reqwest::Client::new()
            .get(app.url(&format!("/v1/sessions/{}", session.id)))
            .bearer_auth(&session.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(review["answers"].as_array().unwrap().len(), 2);
        assert_eq!(review["answers"][0]["audio_ms"], 2_500);

        // A complete session accepts no new stream.
        let mut client = app.connect(&session).await;
        let (messages, code) = expect_close(&mut client).await;
        assert_eq!(code, Some(CloseCode::Policy));
        assert_eq!(messages[0]["code"], "session_complete");
    }
}

on_both_stores! {
    async fn one_stream_per_session_and_capacity_is_refused_clearly(db: Db) {
        let app = spawn_app_with(&db, Limits { max_streams: 2, ..Limits::default() }).await;
        let a = app.one_question("A").await;
        let b = app.one_question("B").await;
        let c = app.one_question("C").await;
        let mut first = app.connect(&a).await;
        first.start_s16(16_000).await.unwrap();
        first.recv_until("question", WAIT).await.unwrap();
        let mut second = app.connect(&a).await;
        let (messages, code) = expect_close(&mut second).await;
        assert_eq!(code, Some(CloseCode::Policy));
        assert_eq!(messages[0]["code"], "stream_in_use");

        let mut other = app.connect(&b).await;
        other.start_s16(16_000).await.unwrap();
        other.recv_until("question", WAIT).await.unwrap();
        let mut refused = app.connect(&c).await;
        let (messages, code) = expect_close(&mut refused).await;
        assert_eq!(code, Some(CloseCode::Again));
        assert_eq!(messages[0]["code"], "busy");
        assert_eq!(messages[0]["fatal"], true);
        // The admitted streams carry on.
        first.send_audio(&silence(1_200, 16_000), 16_000, 100, false).await.unwrap();
        first.recv_until("stored", WAIT).await.unwrap();
    }
}

on_both_stores! {
    async fn answer_audio_comes_back_as_wav(db: Db) {
        let app = spawn_app(&db).await;
        let session = app.one_question("Say something.").await;
        let (speech, rate) = speak("Hello there.");
        let mut client = app.connect(&session).await;
        client.start_s16(rate).await.unwrap();
        client.recv_until("question", WAIT).await.unwrap();
        client.send_audio(&concat(&[&silence(500, rate), &speech]), rate, 100, false).await.unwrap();
        client.send_json(json!({"type": "end_answer"})).await.unwrap();
        let answer = client.recv_until("answer", WAIT).await.unwrap().pop().unwrap();
        let r = reqwest::Client::new()
            .get(app.url(&format!("/v1/sessions/{}/answers/0/audio", session.id)))
            .bearer_auth(&session.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "audio/wav");
        let wav = r.bytes().await.unwrap();
        let reader = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).unwrap();
        assert_eq!(reader.spec().sample_rate, 16_000);
        let ms = reader.duration() as u64 / 16;
        assert!(ms.abs_diff(answer["audio_ms"].as_u64().unwrap()) <= 1);
        let md = reqwest::Client::new()
            .get(app.url(&format!("/v1/sessions/{}/export.md", session.id)))
            .bearer_auth(&session.token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(md.contains("## 1. Say something."));
        let r = reqwest::Client::new()
            .get(app.url(&format!("/v1/sessions/{}/answers/7/audio", session.id)))
            .bearer_auth(&session.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "answer_not_found");
    }
}

on_both_stores! {
    async fn every_response_carries_the_security_headers(db: Db) {
        let app = spawn_app(&db).await;
        for path in ["/", "/v1/guides", "/healthz", "/v1/sessions/nope"] {
            let r = reqwest::get(app.url(path)).await.unwrap();
            let h = r.headers();
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
            assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
            assert!(h["permissions-policy"].to_str().unwrap().contains("microphone=(self)"), "{path}");
        }
        let page = reqwest::get(app.url("/")).await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let review = reqwest::get(app.url("/sessions/abcdefgh12345678")).await.unwrap();
        assert_eq!(review.status(), 200, "the review page is served for any session path");
    }
}
