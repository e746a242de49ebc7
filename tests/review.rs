//! Transcript review: notes, audio ranges, the admin list, retention, two servers on one
//! PostgreSQL database, the operator CLI, and a database outage.

mod common;

use std::time::Duration;

use common::*;
use reqwest::header::{CONTENT_RANGE, RANGE};
use serde_json::{json, Value};
use viva::client::CreatedSession;
use viva::config::Limits;

const WAIT: Duration = Duration::from_secs(120);

/// Records one short spoken answer and finishes the session.
async fn record(app: &TestApp, text: &str) -> (CreatedSession, Value) {
    let session = app.one_question("Tell me about an outage.").await;
    let (speech, rate) = speak(text);
    let mut client = app.connect(&session).await;
    client.start_s16(rate).await.unwrap();
    client.recv_until("question", WAIT).await.unwrap();
    client.send_audio(&concat(&[&silence(600, rate), &speech, &silence(700, rate)]), rate, 100, false).await.unwrap();
    client.send_json(json!({"type": "finish"})).await.unwrap();
    let messages = client.recv_until("complete", WAIT).await.unwrap();
    (session, of_type(&messages, "answer")[0].clone())
}

async fn get(app: &TestApp, session: &CreatedSession, path: &str) -> reqwest::Response {
    reqwest::Client::new().get(app.url(path)).bearer_auth(&session.token).send().await.unwrap()
}

on_both_stores! {
    async fn notes_are_validated_and_shown_in_review_and_export(db: Db) {
        let app = spawn_app(&db).await;
        let session = app.create(json!({"questions": [{"text": "One."}, {"text": "Two."}]})).await;
        let client = reqwest::Client::new();
        let notes = app.url(&format!("/v1/sessions/{}/notes", session.id));
        let r = client.post(&notes).bearer_auth(&session.token).json(&json!({"index": 1, "at_ms": 4200, "text": "Name who you told."})).send().await.unwrap();
        assert_eq!(r.status(), 201);
        for (body, field) in [
            (json!({"index": 5, "at_ms": 0, "text": "x"}), "index"),
            (json!({"index": 0, "at_ms": 0, "text": "  "}), "text"),
            (json!({"index": 0, "text": "x"}), "at_ms"),
        ] {
            let r = client.post(&notes).bearer_auth(&session.token).json(&body).send().await.unwrap();
            assert!(r.status() == 400, "{body}");
            assert!(r.text().await.unwrap().contains(field), "{body} should name {field}");
        }
        let r = client.post(&notes).json(&json!({"index": 0, "at_ms": 0, "text": "x"})).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let review: Value = get(&app, &session, &format!("/v1/sessions/{}", session.id)).await.json().await.unwrap();
        assert_eq!(review["notes"][0]["text"], "Name who you told.");
        assert_eq!(review["notes"][0]["index"], 1);
        let md = get(&app, &session, &format!("/v1/sessions/{}/export.md", session.id)).await.text().await.unwrap();
        assert!(md.contains("- at 0:04.2: Name who you told."), "{md}");
    }
}

on_both_stores! {
    async fn audio_is_served_in_ranges_and_deleted_with_the_session(db: Db) {
        let app = spawn_app(&db).await;
        let (session, answer) = record(&app, "We rolled back the deploy.").await;
        let path = format!("/v1/sessions/{}/answers/0/audio", session.id);
        let whole = get(&app, &session, &path).await;
        assert_eq!(whole.headers()["accept-ranges"], "bytes");
        let whole = whole.bytes().await.unwrap();
        assert_eq!((whole.len() as u64 - 44) / 32, answer["audio_ms"].as_u64().unwrap());
        let client = reqwest::Client::new();
        let part = client.get(app.url(&path)).bearer_auth(&session.token).header(RANGE, "bytes=44-1043").send().await.unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(part.headers()[CONTENT_RANGE], format!("bytes 44-1043/{}", whole.len()).as_str());
        assert_eq!(part.bytes().await.unwrap(), whole.slice(44..1044));
        let tail = client.get(app.url(&path)).bearer_auth(&session.token).header(RANGE, "bytes=-10").send().await.unwrap();
        assert_eq!(tail.bytes().await.unwrap(), whole.slice(whole.len() - 10..));
        let beyond = client.get(app.url(&path)).bearer_auth(&session.token).header(RANGE, format!("bytes={}-", whole.len())).send().await.unwrap();
        assert_eq!(beyond.status(), 416);

        let r = client.delete(app.url(&format!("/v1/sessions/{}", session.id))).bearer_auth(&session.token).send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(get(&app, &session, &path).await.status(), 404);
        assert!(app.state.store.answer_audio(&session.id, 0).await.unwrap().is_none());
    }
}

on_both_stores! {
    async fn the_admin_list_needs_the_admin_token(db: Db) {
        let disabled = spawn_app(&db).await;
        let r = reqwest::Client::new().get(disabled.url("/v1/admin/sessions")).bearer_auth("anything").send().await.unwrap();
        assert_eq!(r.status(), 404);

        let dir = tempfile::tempdir().unwrap();
        let url = db.fresh_url(dir.path()).await;
        let app = spawn_app_on_with(&url, Limits::default(), dir, |s| s.with_admin_token(Some("operator-secret"))).await;
        let a = app.one_question("First?").await;
        let b = app.one_question("Second?").await;
        let list = app.url("/v1/admin/sessions");
        let client = reqwest::Client::new();
        assert_eq!(client.get(&list).send().await.unwrap().status(), 401);
        assert_eq!(client.get(&list).bearer_auth(&a.token).send().await.unwrap().status(), 401);
        let r = client.get(&list).bearer_auth("operator-secret").send().await.unwrap();
        assert_eq!(r.status(), 200);
        let sessions: Value = r.json().await.unwrap();
        let ids: Vec<&str> = sessions.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [b.id.as_str(), a.id.as_str()], "newest first");
        assert!(!sessions.to_string().contains("token"));
    }
}

on_both_stores! {
    async fn retention_deletes_old_sessions(db: Db) {
        let limits = Limits { retention_days: Some(0), maintenance_every_ms: 200, ..Limits::default() };
        let app = spawn_app_with(&db, limits).await;
        let session = app.one_question("Soon gone?").await;
        let path = format!("/v1/sessions/{}", session.id);
        let mut status = 200;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            status = get(&app, &session, &path).await.status().as_u16();
            if status == 404 {
                break;
            }
        }
        assert_eq!(status, 404, "a session past retention is deleted");
    }
}

on_both_stores! {
    async fn the_operator_cli_lists_shows_and_exports(db: Db) {
        let app = spawn_app(&db).await;
        let (session, answer) = record(&app, "We declared an incident.").await;
        let run = |args: &[&str]| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_viva"))
                .args(["sessions", "--database", &app.database_url])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        assert!(run(&["list"]).contains(&session.id));
        let shown: Value = serde_json::from_str(&run(&["show", &session.id])).unwrap();
        assert_eq!(shown["answers"][0]["transcript"], answer["transcript"]);
        assert!(run(&["export", &session.id]).contains("## 1. Tell me about an outage."));
    }
}

#[tokio::test]
async fn two_servers_on_one_postgres_database() {
    let Some(db) = Db::postgres() else {
        eprintln!("skipped: set VIVA_TEST_POSTGRES_URL to run on PostgreSQL");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = db.fresh_url(dir.path()).await;
    let first = spawn_app_on(&url, Limits::default(), dir).await;
    let second = spawn_app_on(&url, Limits::default(), tempfile::tempdir().unwrap()).await;

    let session = first.one_question("Tell me about an outage.").await;
    let (speech, rate) = speak("We declared an incident and opened a bridge.");
    let mut client = first.connect(&session).await;
    client.start_s16(rate).await.unwrap();
    client.recv_until("question", WAIT).await.unwrap();
    // While the first server streams the session, the second refuses a second stream.
    let mut rival = second.connect(&session).await;
    let refused = rival.recv_until("error", WAIT).await.unwrap();
    assert_eq!(refused.last().unwrap()["code"], "stream_in_use");
    client.send_audio(&concat(&[&silence(500, rate), &speech, &silence(700, rate)]), rate, 100, false).await.unwrap();
    client.send_json(json!({"type": "finish"})).await.unwrap();
    let messages = client.recv_until("complete", WAIT).await.unwrap();
    let answer = of_type(&messages, "answer")[0].clone();

    let review: Value = get(&second, &session, &format!("/v1/sessions/{}", session.id)).await.json().await.unwrap();
    assert_eq!(review["answers"][0]["transcript"], answer["transcript"]);
    assert!(lower_words(answer["transcript"].as_str().unwrap()).contains("incident"));
    let audio = get(&second, &session, &format!("/v1/sessions/{}/answers/0/audio", session.id)).await;
    assert_eq!(audio.status(), 200);
}

#[tokio::test]
async fn a_database_outage_is_503_and_passes_on_its_own() {
    let Some(db) = Db::postgres() else {
        eprintln!("skipped: set VIVA_TEST_POSTGRES_URL to run on PostgreSQL");
        return;
    };
    let Db::Postgres(server) = &db else { unreachable!() };
    let app = spawn_app(&db).await;
    let session = app.one_question("Still there?").await;
    let path = format!("/v1/sessions/{}", session.id);
    let name = app.database_url.rsplit('/').next().unwrap().to_string();
    let admin = || async {
        use sqlx::Connection;
        sqlx::PgConnection::connect(server).await.unwrap()
    };
    // Take the database away: its connections are cut and it cannot be reached by name.
    let mut conn = admin().await;
    take_database_away(&mut conn, &name).await;
    let r = get(&app, &session, &path).await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "database_unavailable");
    assert!(!body.to_string().contains(&name), "no internals in errors: {body}");
    bring_database_back(&mut conn, &name).await;
    // Back: the next request succeeds without a restart.
    let r = get(&app, &session, &path).await;
    assert_eq!(r.status(), 200);
}
