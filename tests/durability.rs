//! Nothing stored is lost when the server dies: the real `viva` binary is killed with SIGKILL
//! in the middle of an answer and started again on the same database.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use viva::client::{create_session, StreamClient};

const WAIT: Duration = Duration::from_secs(120);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `viva serve` and waits until it is ready.
async fn start_server(port: u16, database: &str) -> Child {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_viva"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--database", database])
        .arg("--model")
        .arg(model_path())
        .arg("--guides")
        .arg(root.join("guides"))
        .env("VIVA_MAINTENANCE_EVERY_MS", "300")
        .env("VIVA_RESUME_WINDOW_MS", "1000")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(std::env::temp_dir().join(format!("viva-durability-{port}.log"))).unwrap())
        .spawn()
        .unwrap();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let started = Instant::now();
    while started.elapsed() < WAIT {
        if reqwest::get(&ready).await.is_ok_and(|r| r.status() == 200) {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not become ready");
}

on_both_stores! {
    async fn sigkill_mid_answer_loses_nothing_stored_and_the_answer_is_finalised_after_restart(db: Db) {
        let dir = tempfile::tempdir().unwrap();
        let database = db.fresh_url(dir.path()).await;
        let port = free_port();
        let http = format!("http://127.0.0.1:{port}");
        let ws = format!("ws://127.0.0.1:{port}");
        let mut server = start_server(port, &database).await;

        let session = create_session(&http, &json!({"guide": "backend-developer", "question_ids": ["incident-story"]})).await.unwrap();
        let (first, rate) = speak("We declared an incident and paged the on call engineer.");
        let (second, _) = speak("Then I posted updates to the support team every thirty minutes.");
        let mut client = StreamClient::connect(&ws, &session).await.unwrap();
        client.start_s16(rate).await.unwrap();
        client.recv_until("question", WAIT).await.unwrap();
        client.send_audio(&concat(&[&silence(600, rate), &first, &silence(1_200, rate)]), rate, 100, false).await.unwrap();
        let mut seen = client.recv_until("segment", WAIT).await.unwrap();
        client.send_audio(&second[..second.len() / 2], rate, 100, false).await.unwrap();
        let sent_ms = ((600 + 1_200) * rate as u64 / 1000 + first.len() as u64 + second.len() as u64 / 2) * 1000 / rate as u64;
        // Read until the server has stored (nearly) all that was sent: it commits every second.
        loop {
            let message = tokio::time::timeout(WAIT, client.recv()).await.unwrap().unwrap().unwrap();
            let done = message["type"] == "stored" && message["audio_ms"].as_u64().unwrap() + 1_000 >= sent_ms;
            seen.push(message);
            if done {
                break;
            }
        }
        let last_stored = of_type(&seen, "stored").last().unwrap()["audio_ms"].as_u64().unwrap();
        let segments: Vec<Value> = of_type(&seen, "segment")
            .into_iter()
            .map(|s| json!({"text": s["text"], "start_ms": s["start_ms"], "end_ms": s["end_ms"]}))
            .collect();
        assert!(!segments.is_empty());

        server.kill().unwrap(); // SIGKILL: no chance to finalise or flush anything
        server.wait().unwrap();
        drop(client);

        let mut server = start_server(port, &database).await;
        // After the dead stream's lease runs out, the restarted server finalises the answer.
        let review_path = format!("{http}/v1/sessions/{}", session.id);
        let started = Instant::now();
        let review = loop {
            let review: Value = reqwest::Client::new().get(&review_path).bearer_auth(&session.token).send().await.unwrap().json().await.unwrap();
            if !review["answers"].as_array().unwrap().is_empty() {
                break review;
            }
            assert!(started.elapsed() < WAIT, "the interrupted answer was never finalised");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        server.kill().unwrap();
        server.wait().unwrap();

        let answer = &review["answers"][0];
        assert_eq!(answer["interrupted"], true);
        assert!(answer["audio_ms"].as_u64().unwrap() >= last_stored, "{} < {last_stored}", answer["audio_ms"]);
        // Every segment sent before the crash is there, unchanged, in order.
        let stored_segments = answer["segments"].as_array().unwrap();
        assert_eq!(&stored_segments[..segments.len()], &segments[..]);
        let words = lower_words(answer["transcript"].as_str().unwrap());
        assert!(words.contains("incident"), "{words}");
        // The answer was scored after the restart.
        let declare = answer["checklist"].as_array().unwrap().iter().find(|i| i["id"] == "incident-communication.declare").unwrap();
        assert_eq!(declare["status"], "covered");
    }
}
