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

/// The status, `Retry-After` and JSON `code` of a refused WebSocket upgrade.
async fn refused_upgrade(url: &str) -> (u16, Option<u64>, Value) {
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
            let body = response.body().as_deref().map(|b| serde_json::from_slice(b).unwrap()).unwrap_or(Value::Null);
            (response.status().as_u16(), retry, body)
        }
        Err(other) => panic!("refused without an HTTP answer: {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

on_both_stores! {
    async fn streams_per_address_are_limited_and_given_back(db: Db) {
        let app = spawn_app_with(&db, Limits { max_connections_per_address: 2, ..Limits::default() }).await;
        let sessions = [app.one_question("A").await, app.one_question("B").await, app.one_question("C").await];
        let first = app.connect(&sessions[0]).await;
        let _second = app.connect(&sessions[1]).await;
        let url = format!("{}/v1/sessions/{}/stream?token={}", app.ws, sessions[2].id, sessions[2].token);
        let (status, retry, body) = refused_upgrade(&url).await;
        assert_eq!(status, 429);
        assert!(retry.is_some_and(|s| s >= 1));
        assert_eq!(body["code"], "too_many_connections");
        // Closing one gives its place back.
        drop(first);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio_tungstenite::connect_async(url.clone()).await {
                Ok(_) => break,
                Err(_) if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(error) => panic!("the place was not given back: {error}"),
            }
        }
    }
}

on_both_stores! {
    async fn sessions_per_address_per_hour_are_limited(db: Db) {
        let app = spawn_app_with(&db, Limits { max_sessions_per_address_per_hour: 3, ..Limits::default() }).await;
        let body = json!({"questions": [{"text": "Q"}]});
        for _ in 0..3 {
            app.create(body.clone()).await;
        }
        let r = reqwest::Client::new().post(app.url("/v1/sessions")).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 429);
        let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        // One session back every 3600 / 3 s.
        assert!((1_100..=1_200).contains(&retry), "{retry}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "too_many_sessions");
    }
}

on_both_stores! {
    async fn the_rest_api_is_rate_limited_per_address(db: Db) {
        let limits = Limits { rate_limit_per_second: 0.5, rate_limit_burst: 5, ..Limits::default() };
        let app = spawn_app_with(&db, limits).await;
        let client = reqwest::Client::new();
        for _ in 0..5 {
            assert_eq!(client.get(app.url("/v1/guides")).send().await.unwrap().status(), 200);
        }
        let r = client.get(app.url("/v1/guides")).send().await.unwrap();
        assert_eq!(r.status(), 429);
        let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "one request back every 2 s: {retry}");
        assert!(r.headers().contains_key("content-security-policy"), "refusals carry the security headers");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "rate_limited");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        // The stream upgrade is part of the API ...
        let session_url = format!("{}/v1/sessions/AAAAAAAAAAAA/stream?token=x", app.ws);
        assert_eq!(refused_upgrade(&session_url).await.0, 429);
        // ... the browser client's files and the health probes are not.
        for path in ["/", "/app.js", "/healthz"] {
            assert_eq!(client.get(app.url(path)).send().await.unwrap().status(), 200, "{path}");
        }
    }
}

on_both_stores! {
    async fn request_bodies_are_capped(db: Db) {
        let app = spawn_app_with(&db, Limits { max_body_bytes: 4_096, ..Limits::default() }).await;
        let text = "x".repeat(5_000);
        let r = reqwest::Client::new()
            .post(app.url("/v1/sessions"))
            .json(&json!({"questions": [{"text": text}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "body_too_large");
    }
}

on_both_stores! {
    async fn cors_is_closed(db: Db) {
        let app = spawn_app(&db).await;
        let client = reqwest::Client::new();
        let preflight = client
            .request(reqwest::Method::OPTIONS, app.url("/v1/sessions"))
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type, authorization")
            .send()
            .await
            .unwrap();
        assert!(!preflight.status().is_success(), "{}", preflight.status());
        let get = client.get(app.url("/v1/guides")).header("origin", "https://evil.example").send().await.unwrap();
        assert_eq!(get.status(), 200);
        for r in [&preflight, &get] {
            for name in ["access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-headers"] {
                assert!(!r.headers().contains_key(name), "{name} sent");
            }
        }
    }
}

on_both_stores! {
    async fn session_data_is_never_cached(db: Db) {
        let app = spawn_app(&db).await;
        let client = reqwest::Client::new();
        let r = client.post(app.url("/v1/sessions")).json(&json!({"questions": [{"text": "Q"}]})).send().await.unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["cache-control"], "no-store", "the response holds the token");
        let created: Value = r.json().await.unwrap();
        let (id, token) = (created["id"].as_str().unwrap(), created["token"].as_str().unwrap());
        let mut session = app.connect(&viva::client::CreatedSession { id: id.into(), token: token.into(), body: created.clone() }).await;
        session.start_s16(16_000).await.unwrap();
        session.send_audio(&silence(1_200, 16_000), 16_000, 100, false).await.unwrap();
        session.send_json(json!({"type": "finish"})).await.unwrap();
        session.recv_until("complete", WAIT).await.unwrap();
        let get = |path: String| client.get(app.url(&path)).bearer_auth(token).send();
        for (path, status) in [
            (format!("/v1/sessions/{id}"), 200),
            (format!("/v1/sessions/{id}/answers/0/audio"), 200),
            (format!("/v1/sessions/{id}/export.md"), 200),
            (format!("/v1/sessions/{id}/answers/9/audio"), 404),
            ("/v1/sessions/AAAAAAAAAAAA".to_string(), 404),
        ] {
            let r = get(path.clone()).await.unwrap();
            assert_eq!(r.status(), status, "{path}");
            assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
        }
        let r = client.delete(app.url(&format!("/v1/sessions/{id}"))).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
}

on_both_stores! {
    async fn a_database_error_never_reaches_the_client(db: Db) {
        let app = spawn_app(&db).await;
        let session = app.one_question("Q").await;
        // Break the schema under the running server.
        sqlx::any::install_default_drivers();
        let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.database_url).await.unwrap();
        sqlx::query("ALTER TABLE sessions RENAME TO sessions_gone").execute(&mut admin).await.unwrap();
        let r = reqwest::Client::new()
            .get(app.url(&format!("/v1/sessions/{}", session.id)))
            .bearer_auth(&session.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 500);
        let body = r.text().await.unwrap();
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["code"], "internal");
        for leak in ["sessions", "sql", "table", "relation", "error returned", ".rs"] {
            assert!(!body.to_lowercase().contains(leak), "{leak:?} in {body}");
        }
    }
}

on_both_stores! {
    async fn a_client_that_does_not_read_is_disconnected(db: Db) {
        let limits = Limits {
            max_question_chars: 200_000,
            max_body_bytes: 32 << 20,
            ws_outgoing_queue: 4,
            ws_send_timeout_ms: 500,
            max_streams: 2,
            ..Limits::default()
        };
        let app = spawn_app_with(&db, limits).await;
        // 40 questions of 200 kB: 8 MB of `question` messages for a client that reads none.
        let questions: Vec<Value> = (0..40).map(|i| json!({"text": format!("{i} {}", "x".repeat(199_000))})).collect();
        let session = app.create(json!({ "questions": questions })).await;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4_096).unwrap();
        let tcp = socket.connect(app.http.strip_prefix("http://").unwrap().parse().unwrap()).await.unwrap();
        let url = format!("{}/v1/sessions/{}/stream?token={}", app.ws, session.id, session.token);
        let (mut ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
        let start = json!({"type": "start", "audio": {"encoding": "pcm_s16le", "sample_rate": 16000, "channels": 1}});
        ws.send(Message::Text(start.to_string().into())).await.unwrap();
        for _ in 0..40 {
            // Once the server has given up, sending fails; that is the point.
            if ws.send(Message::Text(json!({"type": "next"}).to_string().into())).await.is_err() {
                break;
            }
        }
        // Without reading a byte: the server frees the stream's place on its own.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready: Value = reqwest::get(app.url("/readyz")).await.unwrap().json().await.unwrap();
            if ready["free_streams"] == 2 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the slow client still holds its stream: {ready}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // What it reads now ends before the session does.
        let mut questions_read = 0;
        while let Ok(Some(Ok(message))) = tokio::time::timeout(WAIT, ws.next()).await {
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).unwrap();
                assert_ne!(value["type"], "complete");
                questions_read += (value["type"] == "question") as usize;
            }
        }
        assert!(questions_read < 40, "{questions_read}");
    }
}

on_both_stores! {
    async fn audio_faster_than_the_rate_is_slowed_not_lost(db: Db) {
        let limits = Limits { max_audio_rate: 1.0, audio_burst_ms: 1_000, ..Limits::default() };
        let app = spawn_app_with(&db, limits).await;
        let session = app.one_question("Slowly.").await;
        let mut client = app.connect(&session).await;
        client.start_s16(16_000).await.unwrap();
        client.recv_until("question", WAIT).await.unwrap();
        // 12 s of audio at once; the server may take 1 s at once and then real time.
        let started = std::time::Instant::now();
        client.send_audio(&silence(12_000, 16_000), 16_000, 100, false).await.unwrap();
        let mut stored = 0;
        while stored < 10_000 {
            let messages = client.recv_until("stored", WAIT).await.unwrap();
            stored = messages.last().unwrap()["audio_ms"].as_u64().unwrap();
        }
        // Reading frame k waits until (k - 1) × 100 ms - 1 s of audio time has passed.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_secs(8), "10 s of audio acknowledged after {elapsed:?}");
        // Nothing was lost.
        client.send_json(json!({"type": "end_answer"})).await.unwrap();
        let answer = client.recv_until("answer", WAIT).await.unwrap().pop().unwrap();
        assert_eq!(answer["audio_ms"], 12_000);
    }
}

on_both_stores! {
    async fn a_recording_upload_is_not_throttled_but_capped_in_bytes(db: Db) {
        let limits = Limits {
            max_audio_rate: 1.0,
            audio_burst_ms: 1_000,
            max_upload_bytes: 200_000,
            ..Limits::default()
        };
        let app = spawn_app_with(&db, limits).await;
        let session = app.one_question("Upload.").await;
        let mut client = app.connect(&session).await;
        client.start_upload_s16(16_000).await.unwrap();
        client.recv_until("question", WAIT).await.unwrap();
        // 6 s (192 000 bytes) fits; at 1x with a 1 s burst it would take 5 s, as an upload
        // it is stored without waiting for the audio clock.
        let started = std::time::Instant::now();
        client.send_audio(&silence(6_000, 16_000), 16_000, 100, false).await.unwrap();
        let mut stored = 0;
        while stored < 6_000 {
            stored = client.recv_until("stored", WAIT).await.unwrap().last().unwrap()["audio_ms"].as_u64().unwrap();
        }
        let elapsed = started.elapsed();
        eprintln!("6 s of upload stored after {elapsed:?}");
        // One more second is over the cap.
        client.send_audio(&silence(1_000, 16_000), 16_000, 100, false).await.unwrap();
        let (messages, code) = expect_close(&mut client).await;
        assert_eq!(code, Some(CloseCode::Policy), "{messages:?}");
        assert_eq!(of_type(&messages, "error")[0]["code"], "upload_too_large");
        // What was stored stays.
        let mut client = app.connect(&session).await;
        client.start_upload_s16(16_000).await.unwrap();
        let resumed = client.recv_until("stored", WAIT).await.unwrap();
        assert!(resumed.last().unwrap()["audio_ms"].as_u64().unwrap() >= 6_000);
    }
}

on_both_stores! {
    async fn answers_are_cut_at_the_servers_length_limit(db: Db) {
        let app = spawn_app_with(&db, Limits { max_answer_ms: 5_000, ..Limits::default() }).await;
        let session = app.one_question("No time limit of its own.").await;
        let mut client = app.connect(&session).await;
        client.start_s16(16_000).await.unwrap();
        client.recv_until("question", WAIT).await.unwrap();
        client.send_audio(&silence(7_000, 16_000), 16_000, 100, false).await.unwrap();
        let answer = client.recv_until("answer", WAIT).await.unwrap().pop().unwrap();
        assert_eq!(answer["audio_ms"], 5_000);
        assert_eq!(answer["timing"]["over_limit"], true);
    }
}

/// The token is a password: it must never reach a log, whatever the log level.
#[tokio::test]
async fn tokens_never_reach_the_logs() {
    let model = model_path();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("viva.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_viva"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database"])
        .arg(format!("sqlite://{}", dir.path().join("viva.db").display()))
        .arg("--model")
        .arg(&model)
        .env("VIVA_LOG", "debug")
        .env("VIVA_LOG_FORMAT", "json")
        .env("VIVA_ADMIN_TOKEN", "admin-secret-token-1234")
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let address = loop {
        let text = std::fs::read_to_string(&log_path).unwrap();
        let listening = text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find_map(|l| {
            (l["fields"]["message"] == "viva is listening")
                .then(|| l["fields"]["address"].as_str().unwrap().to_string())
        });
        if let Some(address) = listening {
            break address;
        }
        assert!(std::time::Instant::now() < deadline, "the server did not start: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let http = format!("http://{address}");
    let session = viva::client::create_session(&http, &json!({"questions": [{"text": "Q"}]})).await.unwrap();
    // Every way a token travels: the stream's query string, bearer headers, right and wrong.
    let mut client = StreamClient::connect(&format!("ws://{address}"), &session).await.unwrap();
    client.start_s16(16_000).await.unwrap();
    client.send_audio(&silence(1_200, 16_000), 16_000, 100, false).await.unwrap();
    client.recv_until("stored", WAIT).await.unwrap();
    client.send_json(json!({"type": "finish"})).await.unwrap();
    client.recv_until("complete", WAIT).await.unwrap();
    let web = reqwest::Client::new();
    let wrong = format!("{}x", session.token);
    for token in [session.token.as_str(), wrong.as_str(), "admin-secret-token-1234"] {
        web.get(format!("{http}/v1/sessions/{}", session.id)).bearer_auth(token).send().await.unwrap();
        web.get(format!("{http}/v1/admin/sessions")).bearer_auth(token).send().await.unwrap();
    }
    let refused = format!("ws://{address}/v1/sessions/{}/stream?token={wrong}", session.id);
    assert!(tokio_tungstenite::connect_async(refused).await.is_err());
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill().await.unwrap();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains(&session.id), "the stream was not logged at all:\n{logs}");
    assert!(logs.lines().count() > 10);
    for secret in [session.token.as_str(), wrong.as_str(), "admin-secret-token-1234"] {
        assert!(!logs.contains(secret), "a token reached the logs:\n{logs}");
    }
}
