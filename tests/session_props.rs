//! Property tests: random sequences of client messages and audio (good and bad formats, odd
//! frames, end_answer, next, skip, garbage, disconnect and resume) driven through the real
//! server and the real SQLite store, with a fake transcriber so each case takes milliseconds.
//!
//! Invariants: the server never panics and still answers; the segments of an answer come in
//! time order and never repeat, also across a resume; the stored audio of each answer is
//! exactly what was sent (byte for byte at 16 kHz mono s16; the exact resampled length for
//! other formats).

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::of_type;
use futures::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use viva::client::{create_session, CreatedSession};
use viva::config::Limits;
use viva::http::{serve, AppState};
use viva::store::Store;

const WAIT: Duration = Duration::from_secs(20);
const QUESTIONS: usize = 3;

struct Server {
    http: String,
    ws: String,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

/// One server for every case (a runtime of its own, shared by the cases), on SQLite.
fn server() -> &'static (tokio::runtime::Runtime, Server) {
    static SERVER: OnceLock<(tokio::runtime::Runtime, Server)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let server = runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store =
                viva::store::connect(&format!("sqlite://{}", dir.path().join("viva.db").display())).await.unwrap();
            let engine = common::fake_engine();
            // Commit often so that cases cross many `stored` boundaries.
            let limits = Limits { store_every_ms: 250, ..Limits::default() };
            let guides = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("guides");
            let checklists = Arc::new(viva::scoring::Checklists::load(&guides).unwrap());
            let state = AppState::new(store.clone(), engine, limits, checklists);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            tokio::spawn(serve(listener, state, std::future::pending::<()>()));
            Server { http: format!("http://{address}"), ws: format!("ws://{address}"), store, _dir: dir }
        });
        (runtime, server)
    })
}

/// Speech at 16 kHz mono s16 (espeak-ng's voice, resampled once), so the voice detector cuts
/// real stretches and the transcriber runs.
fn speech_16k() -> &'static [i16] {
    static SPEECH: OnceLock<Vec<i16>> = OnceLock::new();
    SPEECH.get_or_init(|| {
        viva::audio::to_i16(&common::speak_16k(
            "We declared an incident and paged the on call engineer. Then I posted updates.",
        ))
    })
}

#[derive(Debug, Clone, Copy)]
enum Sound {
    Speech,
    Silence,
    Noise,
}

#[derive(Debug, Clone)]
enum Action {
    /// `ms` of a sound, sent in frames of `frame_bytes` (odd sizes are refused and not stored).
    Audio {
        sound: Sound,
        offset: usize,
        ms: u64,
        frame_bytes: usize,
    },
    EndAnswer,
    Next,
    Skip,
    Garbage(String),
    /// Drop the connection and come back: start again and resume.
    Reconnect,
}

fn sound() -> impl Strategy<Value = Sound> {
    prop_oneof![3 => Just(Sound::Speech), 2 => Just(Sound::Silence), 1 => Just(Sound::Noise)]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => (sound(), 0usize..40_000, 40u64..2_500, prop_oneof![1 => 1usize..50, 6 => 50usize..12_000])
            // Tiny frames make many messages: keep those sounds short.
            .prop_map(|(sound, offset, ms, frame_bytes)| {
                let ms = if frame_bytes < 50 { ms.min(200) } else { ms };
                Action::Audio { sound, offset, ms, frame_bytes }
            }),
        1 => Just(Action::EndAnswer),
        1 => Just(Action::Next),
        1 => Just(Action::Skip),
        1 => prop_oneof![
            Just("{not json".to_string()),
            Just(r#"{"type":"dance"}"#.to_string()),
            Just(r#"{"kind":"next"}"#.to_string()),
            Just(r#"{"type":"start","audio":{"encoding":"pcm_s16le","sample_rate":16000}}"#.to_string()),
            "\\PC{0,40}",
        ].prop_map(Action::Garbage),
        1 => Just(Action::Reconnect),
    ]
}

/// A start that the server refuses, sent before the real one.
fn bad_start() -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(prop_oneof![
        Just(json!({"type": "start", "audio": {"encoding": "opus", "sample_rate": 16000}})),
        Just(json!({"type": "start", "audio": {"encoding": "pcm_s16le", "sample_rate": 4000}})),
        Just(json!({"type": "start", "audio": {"encoding": "pcm_f32le", "sample_rate": 16000, "channels": 6}})),
        Just(json!({"type": "start"})),
    ])
}

fn samples_of(sound: Sound, offset: usize, count: usize) -> Vec<i16> {
    match sound {
        Sound::Silence => vec![0; count],
        Sound::Noise => common::noise(count as u64 / 16 + 1, 16_000, 0.05)[..count].to_vec(),
        Sound::Speech => {
            let speech = speech_16k();
            (0..count).map(|i| speech[(offset + i) % speech.len()]).collect()
        }
    }
}

/// The format the client streams in, and how it turns into what the server stores.
#[derive(Debug, Clone, Copy)]
struct Format {
    encoding: &'static str,
    rate: u32,
    channels: u16,
}

impl Format {
    const S16_16K: Format = Format { encoding: "pcm_s16le", rate: 16_000, channels: 1 };

    fn exact(&self) -> bool {
        self.encoding == "pcm_s16le" && self.rate == 16_000 && self.channels == 1
    }

    fn start(&self) -> Value {
        json!({"type": "start", "audio": {"encoding": self.encoding, "sample_rate": self.rate, "channels": self.channels}})
    }

    /// Mono 16-bit samples as this format's bytes (stereo: the same sample twice).
    fn encode(&self, samples: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        for &s in samples {
            for _ in 0..self.channels {
                if self.encoding == "pcm_s16le" {
                    out.extend(s.to_le_bytes());
                } else {
                    out.extend((s as f32 / 32768.0).to_le_bytes());
                }
            }
        }
        out
    }

    fn frame_bytes(&self) -> usize {
        self.channels as usize * if self.encoding == "pcm_s16le" { 2 } else { 4 }
    }
}

/// The client side: its socket writer and everything the server sent, in order.
struct Link {
    sink: futures::stream::SplitSink<
        tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
        Message,
    >,
    inbox: mpsc::UnboundedReceiver<Value>,
}

impl Link {
    /// Connects and sends `start`; retries while the last stream still holds the session.
    async fn open(server: &Server, session: &CreatedSession, format: Format) -> (Link, Vec<Value>) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let url = format!("{}/v1/sessions/{}/stream?token={}", server.ws, session.id, session.token);
            let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("stream connects");
            let (sink, mut stream) = ws.split();
            let (tx, inbox) = mpsc::unbounded_channel();
            tokio::spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    if let Message::Text(text) = message {
                        let _ = tx.send(serde_json::from_str::<Value>(&text).expect("server sends JSON"));
                    }
                }
            });
            let mut link = Link { sink, inbox };
            link.send_json(format.start()).await;
            let first = link.recv().await;
            if first["type"] == "error" && first["code"] == "stream_in_use" {
                assert!(tokio::time::Instant::now() < deadline, "the old stream never let go");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            assert_eq!(first["type"], "question", "{first}");
            return (link, vec![first]);
        }
    }

    async fn send_json(&mut self, value: Value) {
        self.send(Message::Text(value.to_string().into())).await;
    }

    async fn send(&mut self, message: Message) {
        self.sink.send(message).await.expect("the server is still there");
    }

    async fn recv(&mut self) -> Value {
        tokio::time::timeout(WAIT, self.inbox.recv()).await.expect("the server answers").expect("stream open")
    }

    /// Reads up to and including the first message of `kind`.
    async fn until(&mut self, kind: &str, seen: &mut Vec<Value>) {
        loop {
            let message = self.recv().await;
            let done = message["type"] == kind;
            assert!(message["type"] != "error" || message["fatal"] == false, "fatal error: {message}");
            seen.push(message);
            if done {
                return;
            }
        }
    }

    /// Closes cleanly and collects what the server sent before.
    async fn close(mut self, seen: &mut Vec<Value>) {
        let _ = self.sink.send(Message::Close(None)).await;
        while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), self.inbox.recv()).await {
            seen.push(message);
        }
    }
}

/// What the client expects the server to hold, mirroring its state machine.
struct Model {
    format: Format,
    index: usize,
    recording: bool,
    complete: bool,
    /// Mono 16-bit samples sent while each answer was recording (before conversion).
    sent: Vec<Vec<i16>>,
    /// Samples at 16 kHz the server holds for each answer once its resampler is flushed (the
    /// answer ends, or the connection drops), and frames sent since the last flush.
    expected: Vec<u64>,
    unflushed: Vec<usize>,
}

impl Model {
    fn new(format: Format) -> Self {
        Self {
            format,
            index: 0,
            recording: true,
            complete: false,
            sent: vec![Vec::new(); QUESTIONS],
            expected: vec![0; QUESTIONS],
            unflushed: vec![0; QUESTIONS],
        }
    }

    fn take(&mut self, samples: &[i16]) {
        if self.recording {
            self.sent[self.index].extend_from_slice(samples);
            self.unflushed[self.index] += samples.len();
        }
    }

    fn flush(&mut self) {
        let frames = std::mem::take(&mut self.unflushed[self.index]);
        self.expected[self.index] += stored_samples(self.format, frames);
    }
}

/// `seen` appears within `all`, in the same order.
fn is_subsequence<T: PartialEq>(seen: &[T], all: &[T]) -> bool {
    let mut all = all.iter();
    seen.iter().all(|s| all.any(|a| a == s))
}

async fn run_case(format: Format, bad: Option<Value>, actions: Vec<Action>) -> Result<(), TestCaseError> {
    let (_, server) = server();
    let body = json!({"questions": (0..QUESTIONS)
        .map(|i| json!({"text": format!("Question {i}?"), "competencies": ["incident-communication"]}))
        .collect::<Vec<_>>()});
    let session = create_session(&server.http, &body).await.unwrap();
    let mut seen: Vec<Value> = Vec::new();
    // Messages of each connection, to check `stored` grows within one.
    let mut per_link: Vec<Vec<Value>> = Vec::new();

    if let Some(bad) = bad {
        let url = format!("{}/v1/sessions/{}/stream?token={}", server.ws, session.id, session.token);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        ws.send(Message::Text(bad.to_string().into())).await.unwrap();
        let reply = loop {
            match ws.next().await.unwrap().unwrap() {
                Message::Text(text) => break serde_json::from_str::<Value>(&text).unwrap(),
                _ => continue,
            }
        };
        prop_assert_eq!(&reply["type"], "error");
        prop_assert!(["unsupported_audio", "bad_message"].contains(&reply["code"].as_str().unwrap()), "{}", reply);
        ws.close(None).await.unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    }

    let (mut link, mut now) = Link::open(server, &session, format).await;
    let mut model = Model::new(format);
    for action in actions {
        match action {
            Action::Audio { sound, offset, ms, frame_bytes } => {
                let samples = samples_of(sound, offset, (ms * format.rate as u64 / 1000) as usize);
                let bytes = format.encode(&samples);
                let whole = frame_bytes % format.frame_bytes() == 0;
                for piece in bytes.chunks(frame_bytes) {
                    link.send(Message::Binary(piece.to_vec().into())).await;
                    // A frame that is not whole sample frames is refused and dropped entirely.
                    if whole || piece.len() % format.frame_bytes() == 0 {
                        let n = piece.len() / format.frame_bytes();
                        let start = (piece.as_ptr() as usize - bytes.as_ptr() as usize) / format.frame_bytes();
                        model.take(&samples[start..start + n]);
                    }
                }
            }
            Action::EndAnswer => {
                link.send_json(json!({"type": "end_answer"})).await;
                model.flush();
                model.recording = false;
            }
            Action::Next | Action::Skip => {
                let kind = if matches!(action, Action::Next) { "next" } else { "skip" };
                link.send_json(json!({"type": kind})).await;
                model.flush();
                model.index += 1;
                model.recording = true;
                if model.index == QUESTIONS {
                    link.until("complete", &mut now).await;
                    model.complete = true;
                    break;
                }
            }
            Action::Garbage(text) => link.send(Message::Text(text.into())).await,
            Action::Reconnect => {
                link.close(&mut now).await;
                model.flush();
                per_link.push(std::mem::take(&mut now));
                let (new_link, first) = Link::open(server, &session, format).await;
                link = new_link;
                now = first;
                prop_assert_eq!(now[0]["index"].as_u64().unwrap() as usize, model.index);
                // Then how much of this answer the server holds: everything sent.
                link.until("stored", &mut now).await;
                let stored = now.last().unwrap()["audio_ms"].as_u64().unwrap();
                prop_assert_eq!(stored, model.expected[model.index] / 16, "stored ms after resume");
            }
        }
    }
    if !model.complete {
        link.send_json(json!({"type": "finish"})).await;
        model.flush();
        link.until("complete", &mut now).await;
    }
    link.close(&mut now).await;
    per_link.push(now);
    for messages in &per_link {
        seen.extend(messages.iter().cloned());
    }

    // No fatal error, ever; bad input got its own non-fatal error.
    for m in seen.iter().filter(|m| m["type"] == "error") {
        prop_assert!(m["fatal"] == false, "{}", m);
    }
    // `stored` never goes back within one connection and one answer.
    for messages in &per_link {
        for index in 0..QUESTIONS {
            let stored: Vec<u64> = messages
                .iter()
                .filter(|m| m["type"] == "stored" && m["index"] == index)
                .map(|m| m["audio_ms"].as_u64().unwrap())
                .collect();
            prop_assert!(stored.windows(2).all(|w| w[0] <= w[1]), "stored went back: {:?}", stored);
        }
    }
    let answers = server.store.answers(&session.id).await.unwrap();
    for index in 0..QUESTIONS {
        // Segments in time order, never overlapping nor repeated, across reconnects.
        let segments: Vec<(String, u64, u64)> = seen
            .iter()
            .filter(|m| m["type"] == "segment" && m["index"] == index)
            .map(|m| {
                (
                    m["text"].as_str().unwrap().to_string(),
                    m["start_ms"].as_u64().unwrap(),
                    m["end_ms"].as_u64().unwrap(),
                )
            })
            .collect();
        for (i, s) in segments.iter().enumerate() {
            prop_assert!(s.1 <= s.2, "segment ends before it starts: {:?}", s);
            if i > 0 {
                prop_assert!(segments[i - 1].2 <= s.1, "segments out of order: {:?}", segments);
                prop_assert!(!segments[..i].contains(s), "segment repeated: {:?}", s);
            }
        }
        // What was sent is what is stored, and the segments sent are the ones stored.
        let audio = server.store.answer_audio(&session.id, index).await.unwrap().unwrap_or_default();
        let sent = &model.sent[index];
        if format.exact() {
            prop_assert!(audio == *sent, "answer {}: stored {} samples, sent {}", index, audio.len(), sent.len());
        } else {
            prop_assert_eq!(audio.len() as u64, model.expected[index], "answer {} length", index);
        }
        if let Some(row) = answers.iter().find(|a| a.index == index) {
            let stored: Vec<(String, u64, u64)> =
                row.segments.iter().map(|s| (s.text.clone(), s.start_ms, s.end_ms)).collect();
            // Stretches finished while the client was away are stored (and in the answer)
            // without being sent live, so what was seen is a part of what is stored.
            prop_assert!(
                is_subsequence(&segments, &stored),
                "answer {}: seen {:?}, stored {:?}",
                index,
                segments,
                stored
            );
            prop_assert!(stored.windows(2).all(|w| w[0].2 <= w[1].1), "stored segments out of order: {:?}", stored);
            if let Some(answer) = &row.answer {
                prop_assert_eq!(&answer.segments, &row.segments, "answer {}: the answer's segments", index);
                prop_assert_eq!(answer.audio_ms, audio.len() as u64 / 16, "answer {}: audio_ms", index);
            }
        } else {
            prop_assert!(sent.is_empty() && segments.is_empty());
        }
    }
    eprintln!(
        "case: {} links, {} segments, {} stored samples, {} errors",
        per_link.len(),
        of_type(&seen, "segment").len(),
        model.expected.iter().sum::<u64>(),
        of_type(&seen, "error").len()
    );
    // The server still answers.
    let health = reqwest::get(format!("{}/healthz", server.http)).await.unwrap();
    prop_assert!(health.status().is_success());
    Ok(())
}

/// Samples at 16 kHz the server stores for `frames` sent at the format's rate.
fn stored_samples(format: Format, frames: usize) -> u64 {
    let rate = format.rate as u64;
    (frames as u64 * 16_000 + rate / 2) / rate
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(40))]

    /// 16 kHz mono s16: the stored audio is byte for byte what was sent.
    #[test]
    fn random_sessions_keep_order_and_audio(
        bad in bad_start(),
        actions in proptest::collection::vec(action(), 1..14),
    ) {
        let (runtime, _) = server();
        runtime.block_on(run_case(Format::S16_16K, bad, actions))?;
    }
}

proptest! {
    #![proptest_config(config(16))]

    /// Other formats: converted to 16 kHz, the stored audio lasts exactly as long as what was sent.
    #[test]
    fn other_formats_keep_the_length(
        encoding in prop_oneof![Just("pcm_s16le"), Just("pcm_f32le")],
        rate in prop_oneof![Just(8_000u32), Just(22_050), Just(44_100), Just(48_000), 8_000u32..=48_000],
        channels in 1u16..=2,
        actions in proptest::collection::vec(action(), 1..8),
    ) {
        let (runtime, _) = server();
        let format = Format { encoding, rate, channels };
        runtime.block_on(run_case(format, None, actions))?;
    }
}
