//! The stream's WebSocket edge with raw bytes over TCP, the way a hostile or broken client
//! would speak: the upgrade (origin, compression) and RFC 6455 framing errors, each answered
//! with its close code.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use viva::client::CreatedSession;
use viva::config::Limits;

const WAIT: Duration = Duration::from_secs(30);

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Sends the upgrade request by hand; returns the socket and the response head (status line
/// and headers, lower-cased), having read nothing past it.
async fn handshake(app: &TestApp, session: &CreatedSession, extra_headers: &[(&str, &str)]) -> (TcpStream, String) {
    let address = app.http.strip_prefix("http://").unwrap();
    let mut socket = TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "GET /v1/sessions/{}/stream?token={} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        session.id, session.token
    );
    for (name, value) in extra_headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = tokio::time::timeout(WAIT, socket.read_u8()).await.expect("a response").expect("a response");
        head.push(byte);
    }
    (socket, String::from_utf8(head).unwrap().to_ascii_lowercase())
}

/// An upgraded raw socket on a new one-question session.
async fn upgraded(app: &TestApp) -> TcpStream {
    let session = app.one_question("Raw frames.").await;
    let (socket, head) = handshake(app, &session, &[]).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    socket
}

/// One frame as a client writes it (masked unless `mask` is `None`).
fn frame(fin: bool, rsv1: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![((fin as u8) << 7) | ((rsv1 as u8) << 6) | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(true, false, opcode, payload, Some([0x37, 0xfa, 0x21, 0x3d]))
}

/// Reads one server frame: (opcode, payload); `None` when the connection ended.
async fn read_frame(socket: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    socket.read_exact(&mut head).await.ok()?;
    assert_eq!(head[1] & 0x80, 0, "the server never masks its frames");
    let len = match head[1] & 0x7f {
        126 => socket.read_u16().await.ok()? as usize,
        127 => socket.read_u64().await.ok()? as usize,
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    socket.read_exact(&mut payload).await.ok()?;
    Some((head[0] & 0x0f, payload))
}

/// Reads frames until the server's close frame; returns its code (`None` if the connection
/// ended without one) and the `error` messages seen before it.
async fn read_until_close(socket: &mut TcpStream) -> (Option<u16>, Vec<Value>) {
    let mut errors = Vec::new();
    let read = async {
        while let Some((opcode, payload)) = read_frame(socket).await {
            match opcode {
                CLOSE => return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]])),
                TEXT => errors.push(serde_json::from_slice::<Value>(&payload).unwrap()),
                _ => {}
            }
        }
        None
    };
    let code = tokio::time::timeout(WAIT, read).await.expect("the server closes");
    (code, errors)
}

on_both_stores! {
    async fn a_reserved_bit_closes_with_1002(db: Db) {
        let app = spawn_app(&db).await;
        let mut socket = upgraded(&app).await;
        socket.write_all(&frame(true, true, TEXT, br#"{"type":"next"}"#, Some([1, 2, 3, 4]))).await.unwrap();
        let (code, errors) = read_until_close(&mut socket).await;
        assert_eq!(code, Some(1002), "{errors:?}");
        assert_eq!(errors[0]["code"], "protocol_error");
    }
}

on_both_stores! {
    async fn a_fragmented_control_frame_closes_with_1002(db: Db) {
        let app = spawn_app(&db).await;
        let mut socket = upgraded(&app).await;
        socket.write_all(&frame(false, false, PING, b"half", Some([9, 9, 9, 9]))).await.unwrap();
        let (code, _) = read_until_close(&mut socket).await;
        assert_eq!(code, Some(1002));
    }
}

on_both_stores! {
    async fn an_unmasked_client_frame_is_refused_with_1002(db: Db) {
        let app = spawn_app(&db).await;
        let mut socket = upgraded(&app).await;
        socket.write_all(&frame(true, false, TEXT, br#"{"type":"next"}"#, None)).await.unwrap();
        let (code, errors) = read_until_close(&mut socket).await;
        // RFC 6455 5.1: the server must fail the connection; it does so with a close frame.
        assert_eq!(code, Some(1002), "{errors:?}");
        assert!(errors.iter().all(|e| e["code"] != "not_started"), "the frame was acted on: {errors:?}");
    }
}

on_both_stores! {
    async fn invalid_utf8_text_closes_with_1007(db: Db) {
        let app = spawn_app(&db).await;
        let mut socket = upgraded(&app).await;
        socket.write_all(&masked(TEXT, b"{\"type\":\"\xff\xfe\"}")).await.unwrap();
        let (code, errors) = read_until_close(&mut socket).await;
        assert_eq!(code, Some(1007), "{errors:?}");
        assert_eq!(errors[0]["code"], "invalid_utf8");
    }
}

on_both_stores! {
    async fn an_oversized_frame_closes_with_1009(db: Db) {
        let limits = Limits { max_frame_bytes: 4_096, ..Limits::default() };
        let app = spawn_app_with(&db, limits).await;
        // Just over the limit (read whole, then refused) and far over it (refused by the
        // socket layer from the header alone): the same close code.
        for size in [4_097, 100_000] {
            let mut socket = upgraded(&app).await;
            // The server may close before the whole payload is written; that is its right.
            let _ = socket.write_all(&masked(BINARY, &vec![0u8; size])).await;
            let (code, errors) = read_until_close(&mut socket).await;
            assert_eq!(code, Some(1009), "{size} bytes: {errors:?}");
            assert_eq!(errors[0]["code"], "frame_too_large");
        }
    }
}

on_both_stores! {
    async fn ping_gets_pong_with_the_same_payload(db: Db) {
        let app = spawn_app(&db).await;
        let mut socket = upgraded(&app).await;
        socket.write_all(&masked(PING, b"are you there?")).await.unwrap();
        let (opcode, payload) = tokio::time::timeout(WAIT, read_frame(&mut socket)).await.unwrap().unwrap();
        assert_eq!((opcode, payload.as_slice()), (PONG, &b"are you there?"[..]));
        // And the stream goes on: a normal close is answered with a normal close.
        socket.write_all(&masked(CLOSE, &1000u16.to_be_bytes())).await.unwrap();
        let (code, _) = read_until_close(&mut socket).await;
        assert_eq!(code, Some(1000));
    }
}

on_both_stores! {
    async fn compression_is_never_negotiated(db: Db) {
        let app = spawn_app(&db).await;
        let session = app.one_question("Compressed?").await;
        let offer = ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits");
        let (_socket, head) = handshake(&app, &session, &[offer]).await;
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(!head.contains("sec-websocket-extensions"), "an extension was accepted: {head}");
    }
}

/// The JSON body of a refused upgrade, whose response `head` was read already.
async fn refusal_body(socket: &mut TcpStream, head: &str) -> Value {
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .expect("a refusal has a sized body");
    let mut body = vec![0u8; length];
    tokio::time::timeout(WAIT, socket.read_exact(&mut body)).await.unwrap().unwrap();
    serde_json::from_slice(&body).unwrap()
}

on_both_stores! {
    async fn a_page_of_another_site_cannot_open_a_stream(db: Db) {
        let limits = Limits { allowed_origins: vec!["https://app.example.com".into()], ..Limits::default() };
        let app = spawn_app_with(&db, limits).await;
        let session = app.one_question("Whose page?").await;
        for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
            let (mut socket, head) = handshake(&app, &session, &[("Origin", origin)]).await;
            assert!(head.starts_with("http/1.1 403"), "{origin}: {head}");
            assert!(!head.contains("access-control-allow-origin"), "{head}");
            let body = refusal_body(&mut socket, &head).await;
            assert_eq!(body["code"], "origin_not_allowed", "{origin}");
        }
        // The server's own origin (the bundled client), an allowed one, and no origin at all
        // (a non-browser client) are upgraded.
        let own = app.http.clone();
        for origin in [Some(own.as_str()), Some("https://app.example.com"), None] {
            let session = app.one_question("Whose page?").await;
            let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
            let (_socket, head) = handshake(&app, &session, &headers).await;
            assert!(head.starts_with("http/1.1 101"), "{origin:?}: {head}");
        }
    }
}

on_both_stores! {
    async fn the_upgrade_needs_the_session_token(db: Db) {
        let app = spawn_app(&db).await;
        let session = app.one_question("Token?").await;
        for token in ["", "not-the-token"] {
            let forged = CreatedSession { token: token.to_string(), ..session.clone() };
            let (mut socket, head) = handshake(&app, &forged, &[]).await;
            let status = if token.is_empty() { "401" } else { "404" };
            assert!(head.starts_with(&format!("http/1.1 {status}")), "{head}");
            let body = refusal_body(&mut socket, &head).await;
            assert!(body["code"] == "unauthorized" || body["code"] == "session_not_found", "{body}");
        }
    }
}

/// 100 ms of silence at 16 kHz as a masked binary frame.
fn silence_frame() -> Vec<u8> {
    masked(BINARY, &[0u8; 3_200])
}

on_both_stores! {
    async fn a_silent_unresponsive_stream_is_closed_and_its_answer_resumes(db: Db) {
        let app = spawn_app_with(&db, Limits { ws_idle_timeout_ms: 1_500, ..Limits::default() }).await;
        let session = app.one_question("Still there?").await;
        let (mut socket, head) = handshake(&app, &session, &[]).await;
        assert!(head.starts_with("http/1.1 101"), "{head}");
        let start = br#"{"type":"start","audio":{"encoding":"pcm_s16le","sample_rate":16000,"channels":1}}"#;
        socket.write_all(&masked(TEXT, start)).await.unwrap();
        for _ in 0..12 {
            socket.write_all(&silence_frame()).await.unwrap();
        }
        // Then nothing at all, not even a pong to the server's ping.
        let mut pings = 0;
        let read = async {
            while let Some((opcode, payload)) = read_frame(&mut socket).await {
                match opcode {
                    PING => pings += 1,
                    TEXT => {
                        let message: Value = serde_json::from_slice(&payload).unwrap();
                        if message["type"] == "error" {
                            assert_eq!(message["code"], "idle_timeout");
                            assert_eq!(message["fatal"], true);
                        }
                    }
                    CLOSE => return Some(u16::from_be_bytes([payload[0], payload[1]])),
                    _ => {}
                }
            }
            None
        };
        let code = tokio::time::timeout(WAIT, read).await.expect("the server closes an idle stream");
        assert_eq!(code, Some(1008));
        assert_eq!(pings, 1, "one ping at half the idle timeout");
        // The answer stays, resumable.
        let mut client = app.connect(&session).await;
        client.start_s16(16_000).await.unwrap();
        let resumed = client.recv_until("stored", WAIT).await.unwrap();
        assert_eq!(resumed.last().unwrap()["audio_ms"], 1_200);
    }
}

on_both_stores! {
    async fn a_quiet_client_that_answers_pings_is_not_idle(db: Db) {
        // A browser between answers sends nothing, but answers the server's pings on its own.
        let app = spawn_app_with(&db, Limits { ws_idle_timeout_ms: 1_000, ..Limits::default() }).await;
        let session = app.one_question("Take your time.").await;
        let mut client = app.connect(&session).await;
        client.start_s16(16_000).await.unwrap();
        client.recv_until("question", WAIT).await.unwrap();
        // Reading (which answers pings) for three idle timeouts: no message, no close.
        let quiet = tokio::time::timeout(Duration::from_secs(3), client.recv()).await;
        assert!(quiet.is_err(), "the server said something: {quiet:?}");
        client.send_audio(&vec![0; 16_000 * 12 / 10], 16_000, 100, false).await.unwrap();
        client.recv_until("stored", WAIT).await.unwrap();
    }
}
