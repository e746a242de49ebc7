//! Test harness: the real server on port 0 with a scratch database of its own (SQLite always,
//! PostgreSQL too when `VIVA_TEST_POSTGRES_URL` is set), the real tiny.en model (fetched and
//! converted on first use), and speech generated with espeak-ng.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};
use viva::client::{create_session, CreatedSession, StreamClient};
use viva::config::{EngineSettings, Limits};
use viva::http::{serve, AppState};
use viva::transcribe::{load_whisper, Engine, WhisperFactory};

/// Parameters for one greedy whisper call as viva makes it (two threads, English, no context
/// from earlier calls, nothing printed), for tests that call whisper directly.
pub fn greedy_params<'a, 'b>() -> whisper_rs::FullParams<'a, 'b> {
    let mut params = whisper_rs::FullParams::new(whisper_rs::SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(2);
    params.set_language(Some("en"));
    params.set_no_context(true);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params
}

pub fn model_path() -> PathBuf {
    static READY: Mutex<bool> = Mutex::new(false);
    // The model the server runs by default (tiny.en, 8-bit weights).
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(viva::config::DEFAULT_MODEL);
    let mut ready = READY.lock().unwrap();
    if !*ready {
        viva::cli::ensure_model(&path, viva::config::DEFAULT_MODEL_NAME).expect("the tiny.en model is available");
        *ready = true;
    }
    path
}

/// One engine per test binary: the model is loaded once, as in the server.
pub fn engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let context = load_whisper(&model_path()).expect("model loads");
            // VIVA_DRAFT_TOKENS=false turns drafts off, to measure what they change (tests/agreement.rs).
            let draft_tokens = std::env::var("VIVA_DRAFT_TOKENS").map_or(true, |v| v != "false");
            let settings = EngineSettings {
                workers: 1,
                threads_per_worker: 2,
                queue_depth: 16,
                draft_tokens,
                ..Default::default()
            };
            let factory = WhisperFactory::new(context, &settings);
            Engine::start(Arc::new(factory), &settings).expect("engine starts")
        })
        .clone()
}

pub struct TestApp {
    pub database_url: String,
    pub http: String,
    pub ws: String,
    pub state: AppState,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub async fn create(&self, body: Value) -> CreatedSession {
        create_session(&self.http, &body).await.expect("session created")
    }

    pub async fn one_question(&self, text: &str) -> CreatedSession {
        self.create(json!({"questions": [{"text": text, "competencies": ["incident-communication"]}]})).await
    }

    pub async fn connect(&self, session: &CreatedSession) -> StreamClient {
        StreamClient::connect(&self.ws, session).await.expect("stream connects")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }

    /// Graceful shutdown, waiting for open streams to finalise.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// Runs each scenario once per store: `NAME::sqlite` always, `NAME::postgres` when
/// `VIVA_TEST_POSTGRES_URL` is set (CI sets it).
#[macro_export]
macro_rules! on_both_stores {
    ($(#[$attr:meta])* async fn $name:ident($db:ident: Db) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$attr])*
            async fn scenario($db: Db) $body

            #[tokio::test]
            async fn sqlite() {
                scenario(Db::Sqlite).await
            }

            #[tokio::test]
            async fn postgres() {
                match Db::postgres() {
                    Some(db) => scenario(db).await,
                    None => eprintln!("skipped: set VIVA_TEST_POSTGRES_URL to run on PostgreSQL"),
                }
            }
        }
    };
}

/// Which database a test runs on.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite,
    /// The server URL; each test gets a new database on it.
    Postgres(String),
}

impl Db {
    pub fn postgres() -> Option<Db> {
        std::env::var("VIVA_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()).map(Db::Postgres)
    }

    /// A new, empty database for one test.
    pub async fn fresh_url(&self, dir: &Path) -> String {
        match self {
            Db::Sqlite => format!("sqlite://{}", dir.join("viva.db").display()),
            Db::Postgres(server) => {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(server).await.expect("PostgreSQL is reachable");
                // Databases left by earlier test processes (test binaries run one after another).
                // Never this process's own: a test's database exists before its server connects,
                // and dropping it in that moment failed the test.
                let ours = format!("viva_test_{}_", std::process::id());
                let stale: Vec<String> =
                    sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'viva_test_%'")
                        .fetch_all(&mut admin)
                        .await
                        .unwrap();
                for name in stale.into_iter().filter(|n| !n.starts_with(&ours)) {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\"")).execute(&mut admin).await;
                }
                let name = format!("{ours}{:016x}", rand::random::<u64>());
                sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).await.unwrap();
                let (base, _) = server.split('?').next().unwrap().rsplit_once('/').expect("URL names a database");
                format!("{base}/{name}")
            }
        }
    }
}

/// A PostgreSQL outage for one test's database: its connections are cut and it is renamed, so
/// it cannot be reached by name until `bring_database_back`. `admin` is a connection to another
/// database on the same server.
pub async fn take_database_away(admin: &mut sqlx::PgConnection, name: &str) {
    // A backend ends a moment after pg_terminate_backend returns, and the server's pool may
    // reconnect in between, so the rename is retried while PostgreSQL still reports the database
    // in use (55006). A CI run failed on this race.
    for tries in 0.. {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .execute(&mut *admin)
        .await
        .unwrap();
        let renamed =
            sqlx::query(&format!("ALTER DATABASE \"{name}\" RENAME TO \"{name}_away\"")).execute(&mut *admin).await;
        match renamed {
            Ok(_) => return,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55006") && tries < 50 => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("taking database {name} away: {e}"),
        }
    }
}

/// Ends the outage `take_database_away` made.
pub async fn bring_database_back(admin: &mut sqlx::PgConnection, name: &str) {
    sqlx::query(&format!("ALTER DATABASE \"{name}_away\" RENAME TO \"{name}\"")).execute(&mut *admin).await.unwrap();
}

pub async fn spawn_app(db: &Db) -> TestApp {
    spawn_app_with(db, Limits::default()).await
}

pub async fn spawn_app_with(db: &Db, limits: Limits) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = db.fresh_url(dir.path()).await;
    spawn_app_on(&url, limits, dir).await
}

/// A server on an existing database (two servers may share one).
pub async fn spawn_app_on(url: &str, limits: Limits, dir: tempfile::TempDir) -> TestApp {
    spawn_app_on_with(url, limits, dir, |state| state).await
}

pub async fn spawn_app_on_with(
    url: &str,
    limits: Limits,
    dir: tempfile::TempDir,
    configure: impl FnOnce(AppState) -> AppState,
) -> TestApp {
    let engine = tokio::task::spawn_blocking(engine).await.unwrap();
    spawn_app_with_engine(url, limits, dir, engine, configure).await
}

/// Deterministic and instant stand-in for whisper: one piece per half of each stretch, named
/// after its length. For tests about streaming and storage rather than recognition.
pub struct FakeTranscriber;

impl viva::transcribe::Transcriber for FakeTranscriber {
    fn transcribe(
        &mut self,
        audio: &[f32],
    ) -> Result<Vec<viva::transcribe::TextPiece>, viva::transcribe::TranscribeError> {
        use viva::transcribe::TextPiece;
        let ms = audio.len() as u64 / 16;
        Ok(vec![
            TextPiece { text: format!("first{}", audio.len()), start_ms: 0, end_ms: ms / 2 },
            TextPiece { text: format!("second{}", audio.len()), start_ms: ms / 2, end_ms: ms },
        ])
    }
}

pub struct FakeFactory;

impl viva::transcribe::TranscriberFactory for FakeFactory {
    fn create(&self) -> Result<Box<dyn viva::transcribe::Transcriber>, viva::transcribe::TranscribeError> {
        Ok(Box::new(FakeTranscriber))
    }
}

pub fn fake_engine() -> Engine {
    Engine::start(Arc::new(FakeFactory), &EngineSettings::default()).expect("fake engine starts")
}

/// A server with the given engine (the fake one needs no model).
pub async fn spawn_app_with_engine(
    url: &str,
    limits: Limits,
    dir: tempfile::TempDir,
    engine: Engine,
    configure: impl FnOnce(AppState) -> AppState,
) -> TestApp {
    let store = viva::store::connect(url).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let guides = Path::new(env!("CARGO_MANIFEST_DIR")).join("guides");
    let checklists = Arc::new(viva::scoring::Checklists::load(&guides).expect("guides load"));
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let state = configure(AppState::new(store, engine, limits, checklists).with_web_dir(web));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    TestApp {
        database_url: url.to_string(),
        http: format!("http://{address}"),
        ws: format!("ws://{address}"),
        state,
        _dir: dir,
        stop: Some(stop),
        server: Some(server),
    }
}

/// Speaks `text` with espeak-ng; returns mono 16-bit samples at espeak's own rate (22050 Hz).
pub fn speak(text: &str) -> (Vec<i16>, u32) {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    let status = Command::new("espeak-ng").arg("-w").arg(&wav).arg(text).status().expect("espeak-ng is installed");
    assert!(status.success(), "espeak-ng failed");
    let mut reader = hound::WavReader::open(&wav).unwrap();
    let rate = reader.spec().sample_rate;
    (reader.samples::<i16>().map(Result::unwrap).collect(), rate)
}

/// Speaks `text` with espeak-ng and resamples it to 16 kHz with the server's own resampler:
/// what a live answer's stretches are cut from.
pub fn speak_16k(text: &str) -> Vec<f32> {
    let (pcm, rate) = speak(text);
    let mut resampler = viva::audio::StreamResampler::new(rate);
    let mut out = resampler.push(&viva::audio::to_f32(&pcm));
    out.extend(resampler.flush());
    out
}

/// espeak speech at 16 kHz without espeak's own trailing silence: tests add the pauses they mean.
pub fn speak_16k_trimmed(text: &str) -> Vec<f32> {
    let mut out = speak_16k(text);
    let end = out.iter().rposition(|x| x.abs() > 0.01).map_or(0, |i| i + 1);
    out.truncate(end);
    out
}

pub fn silence(ms: u64, rate: u32) -> Vec<i16> {
    vec![0; (rate as u64 * ms / 1000) as usize]
}

/// Quiet deterministic white noise.
pub fn noise(ms: u64, rate: u32, amplitude: f32) -> Vec<i16> {
    let mut x: u32 = 0x1234_5678;
    (0..(rate as u64 * ms / 1000))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            ((x as f32 / u32::MAX as f32 - 0.5) * 2.0 * amplitude * 32767.0) as i16
        })
        .collect()
}

pub fn concat(parts: &[&[i16]]) -> Vec<i16> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

pub fn lower_words(text: &str) -> String {
    text.to_lowercase().chars().map(|c| if c.is_alphanumeric() || c == ' ' { c } else { ' ' }).collect()
}

pub fn of_type<'a>(messages: &'a [Value], kind: &str) -> Vec<&'a Value> {
    messages.iter().filter(|m| m["type"] == kind).collect()
}
