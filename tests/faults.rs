//! Faults: each gives a clear error and loses nothing stored.
//!
//! - database unreachable at start (PostgreSQL, SQLite): `viva serve` exits non-zero at once with
//!   one line naming the database, never its password;
//! - database gone mid-session (PostgreSQL): the stream says `storage_unavailable`, what was
//!   `stored` survives, and the answer resumes once the database is back;
//! - disk full while writing audio (a tiny tmpfs under the real binary): `storage_full`, the
//!   server stays up, what was `stored` is intact after a restart;
//! - model file missing (corrupt: `tests/cli.rs`); SIGKILL mid-answer: `tests/durability.rs`.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use viva::client::{create_session, CreatedSession, StreamClient};
use viva::config::Limits;

const WAIT: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn guides() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guides")
}

/// `viva serve` with these arguments, run to its end; returns the output and how long it took.
fn serve_once(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_viva"))
        .args(["serve", "--bind", "127.0.0.1:0", "--guides"])
        .arg(guides())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out, started.elapsed())
}

/// The one `error:` line of a failed start, after checking it failed cleanly and quickly.
fn start_error(out: &Output, took: Duration) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the server started: {stderr}");
    assert!(took < Duration::from_secs(15), "took {took:?} to fail: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    errors[0].to_string()
}

#[test]
fn unreachable_postgres_at_start_is_one_clear_line_without_the_password() {
    // Nothing listens on a port just freed.
    let url = format!("postgres://viva:s3cret-pw@127.0.0.1:{}/viva", free_port());
    let (out, took) = serve_once(&["--database", &url]);
    let line = start_error(&out, took);
    assert!(line.contains("Failed to open the database postgres://viva:***@127.0.0.1:"), "{line}");
    assert_eq!(line.matches("Connection refused").count(), 1, "the cause, once: {line}");
    eprintln!("{line} ({took:?})");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cret-pw"), "the password leaked: {line}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cret-pw"));
}

#[test]
fn unusable_sqlite_path_at_start_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    // A folder that cannot exist: its parent is a file (fails even for root).
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let url = format!("sqlite://{}", file.join("data/viva.db").display());
    let (out, took) = serve_once(&["--database", &url]);
    let line = start_error(&out, took);
    assert!(line.contains(&format!("Failed to open the database {url}")), "{line}");
    assert!(line.contains("cannot create the database folder"), "{line}");
    assert_eq!(line.matches("Not a directory").count(), 1, "the cause, once: {line}");
    eprintln!("{line}");
}

#[test]
fn a_missing_model_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("viva.db").display());
    // An unknown model name: nothing can be fetched.
    let (out, took) = serve_once(&["--database", &database, "--model", "/nonexistent/x.bin", "--model-name", "large"]);
    let line = start_error(&out, took);
    assert!(line.contains("model file /nonexistent/x.bin does not exist"), "{line}");
    assert!(line.contains("unknown model \"large\"") && line.contains("viva models import"), "{line}");
    eprintln!("{line}");
    // A known name, but the path is not that model's file: not fetched either.
    let (out, took) = serve_once(&["--database", &database, "--model", "/nonexistent/x.bin"]);
    let line = start_error(&out, took);
    assert!(line.contains("model file /nonexistent/x.bin does not exist (run `viva models import PATH`)"), "{line}");
}

/// 16 kHz mono s16 bytes of quiet noise: real data to compare, and no speech to transcribe.
fn audio(ms: u64, seed: u32) -> Vec<i16> {
    let mut x = seed | 1;
    (0..ms * 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 600) as i16 - 300
        })
        .collect()
}

/// Reads until a fatal `error`; returns it and the last `stored` position seen.
async fn until_fatal(client: &mut StreamClient, mut last_stored: u64) -> (Value, u64) {
    loop {
        let message = tokio::time::timeout(WAIT, client.recv()).await.expect("the server answers").unwrap();
        let message = message.expect("an error before the close");
        if message["type"] == "stored" {
            last_stored = message["audio_ms"].as_u64().unwrap();
        }
        if message["type"] == "error" {
            assert_eq!(message["fatal"], true, "{message}");
            return (message, last_stored);
        }
    }
}

/// Connects and starts until the server takes the stream back (the database may still be
/// coming back, or the failed stream's lease running out); returns what `start` brought.
async fn reconnect(ws: &str, session: &CreatedSession) -> (StreamClient, Vec<Value>) {
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < WAIT, "the session never came back");
        if let Ok(mut client) = StreamClient::connect(ws, session).await {
            client.start_s16(16_000).await.unwrap();
            if let Ok(seen) = client.recv_until("stored", Duration::from_secs(10)).await {
                return (client, seen);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn postgres_gone_mid_answer_is_storage_unavailable_and_the_answer_resumes() {
    let Some(db) = Db::postgres() else {
        eprintln!("skipped: set VIVA_TEST_POSTGRES_URL to run on PostgreSQL");
        return;
    };
    let Db::Postgres(server) = &db else { unreachable!() };
    let dir = tempfile::tempdir().unwrap();
    let url = db.fresh_url(dir.path()).await;
    let limits = Limits { store_every_ms: 250, ..Limits::default() };
    let app = spawn_app_with_engine(&url, limits, dir, fake_engine(), |s| s).await;
    let session = app.one_question("Still there?").await;
    let mut client = app.connect(&session).await;
    client.start_s16(16_000).await.unwrap();
    client.recv_until("question", WAIT).await.unwrap();
    let first = audio(2_000, 1);
    client.send_audio(&first, 16_000, 100, false).await.unwrap();
    let mut last_stored = 0;
    while last_stored < 1_750 {
        let seen = client.recv_until("stored", WAIT).await.unwrap();
        last_stored = seen.last().unwrap()["audio_ms"].as_u64().unwrap();
    }

    // Take the database away: its connections are cut and it cannot be reached by name.
    use sqlx::Connection;
    let name = url.rsplit('/').next().unwrap().to_string();
    let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
    take_database_away(&mut admin, &name).await;

    // More audio: the server cannot commit it and says so.
    let second = audio(1_000, 2);
    let _ = client.send_audio(&second, 16_000, 100, false).await;
    let (error, last_stored) = until_fatal(&mut client, last_stored).await;
    assert_eq!(error["code"], "storage_unavailable", "{error}");
    eprintln!("database gone after {last_stored} ms stored: {error}");
    assert!(!error.to_string().contains(&name), "no internals in errors: {error}");
    assert!(tokio::time::timeout(WAIT, client.recv()).await.unwrap().unwrap().is_none(), "the stream closes");
    drop(client);
    let health = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "the server is still up");

    bring_database_back(&mut admin, &name).await;
    // Back: the answer resumes from what was stored, all of it intact.
    let (mut client, seen) = reconnect(&app.ws, &session).await;
    let resumed_at = of_type(&seen, "stored").last().unwrap()["audio_ms"].as_u64().unwrap();
    assert!(resumed_at >= last_stored, "{resumed_at} < {last_stored}");
    let stored = app.state.store.answer_audio(&session.id, 0).await.unwrap().unwrap();
    let sent = concat(&[&first, &second]);
    assert_eq!(stored.len() as u64 / 16, resumed_at);
    assert_eq!(&stored[..], &sent[..stored.len()], "stored audio is what was sent");
    // The client sends the rest from there and the answer is made.
    client.send_audio(&sent[stored.len()..], 16_000, 100, false).await.unwrap();
    client.send_json(json!({"type": "end_answer"})).await.unwrap();
    let answer = client.recv_until("answer", WAIT).await.unwrap().pop().unwrap();
    assert_eq!(answer["audio_ms"], 3_000);
    assert_eq!(app.state.store.answer_audio(&session.id, 0).await.unwrap().unwrap(), sent);
}

/// A tmpfs of `size` at `dir`, or `None` when this machine cannot mount one (not root).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.0).status().unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A running `viva serve`, killed and reaped when dropped (also when a test fails, so the
/// tmpfs it holds can be unmounted).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_server(port: u16, database: &str, log: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_viva"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--database", database])
        .arg("--model")
        .arg(model_path())
        .arg("--guides")
        .arg(guides())
        .env("VIVA_STORE_EVERY_MS", "250")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let started = Instant::now();
    while started.elapsed() < WAIT {
        if reqwest::get(&ready).await.is_ok_and(|r| r.status() == 200) {
            return Server(child);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not become ready: {}", std::fs::read_to_string(log).unwrap_or_default());
}

#[tokio::test]
async fn disk_full_while_writing_audio_is_storage_full_and_keeps_what_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("disk");
    std::fs::create_dir(&mnt).unwrap();
    // About 25 s of 16 kHz audio fit once the database is set up.
    let Some(disk) = Tmpfs::mount(&mnt, "1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root); the disk-full path is not exercised");
        return;
    };
    let database = format!("sqlite://{}", mnt.join("viva.db").display());
    let port = free_port();
    let (http, ws) = (format!("http://127.0.0.1:{port}"), format!("ws://127.0.0.1:{port}"));
    let log = dir.path().join("viva.log");
    let server = start_server(port, &database, &log).await;
    let session = create_session(
        &http,
        &json!({"questions": [{"text": "Fill the disk?", "competencies": ["incident-communication"]}]}),
    )
    .await
    .unwrap();
    let mut client = StreamClient::connect(&ws, &session).await.unwrap();
    client.start_s16(16_000).await.unwrap();
    client.recv_until("question", WAIT).await.unwrap();

    // Stream until the disk is full (far more than fits), a second at a time.
    let sent = audio(120_000, 3);
    let mut last_stored = 0;
    let mut error = None;
    for second in sent.chunks(16_000) {
        if client.send_audio(second, 16_000, 250, false).await.is_err() {
            break;
        }
        while let Ok(Ok(Some(message))) = tokio::time::timeout(Duration::from_millis(50), client.recv()).await {
            match message["type"].as_str() {
                Some("stored") => last_stored = message["audio_ms"].as_u64().unwrap(),
                Some("error") => error = Some(message),
                _ => {}
            }
        }
        if error.is_some() {
            break;
        }
    }
    let (error, last_stored) = match error {
        Some(error) => (error, last_stored),
        None => until_fatal(&mut client, last_stored).await,
    };
    assert_eq!(error["code"], "storage_full", "{error}: {}", std::fs::read_to_string(&log).unwrap());
    assert_eq!(error["fatal"], true);
    assert!((5_000..120_000).contains(&last_stored), "stored {last_stored} ms before the disk filled");
    eprintln!("disk full after {last_stored} ms stored: {error}");
    drop(client);
    // The server stays up and still serves what it holds.
    let health = reqwest::get(format!("{http}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let wav = reqwest::Client::new()
        .get(format!("{http}/v1/sessions/{}/answers/0/audio", session.id))
        .bearer_auth(&session.token)
        .send()
        .await
        .unwrap();
    assert_eq!(wav.status(), 200);

    // The operator frees space and restarts: every stored sample is there, as sent.
    drop(server); // SIGKILL
    disk.resize("16m");
    let server = start_server(port, &database, &log).await;
    let wav = reqwest::Client::new()
        .get(format!("{http}/v1/sessions/{}/answers/0/audio", session.id))
        .bearer_auth(&session.token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let stored: Vec<i16> =
        hound::WavReader::new(std::io::Cursor::new(wav)).unwrap().samples::<i16>().map(Result::unwrap).collect();
    assert!(stored.len() as u64 >= last_stored * 16, "{} samples < {last_stored} ms", stored.len());
    assert_eq!(&stored[..], &sent[..stored.len()], "stored audio is what was sent");
    // And the answer goes on from there.
    let (mut client, _) = reconnect(&ws, &session).await;
    client.send_json(json!({"type": "end_answer"})).await.unwrap();
    let answer = client.recv_until("answer", WAIT).await.unwrap().pop().unwrap();
    assert_eq!(answer["audio_ms"].as_u64().unwrap(), stored.len() as u64 / 16);
    drop(server);
}
