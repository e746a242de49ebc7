//! A small client of the contract, used by the bench command and the tests: creates a session
//! over HTTP and drives its WebSocket stream.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A created session: its id, token and questions as the server returned them.
#[derive(Debug, Clone)]
pub struct CreatedSession {
    pub id: String,
    pub token: String,
    pub body: Value,
}

/// `POST /v1/sessions` with the given body.
pub async fn create_session(http_base: &str, body: &Value) -> anyhow::Result<CreatedSession> {
    let response = reqwest::Client::new().post(format!("{http_base}/v1/sessions")).json(body).send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if status.as_u16() != 201 {
        bail!("creating a session failed: {status} {body}");
    }
    Ok(CreatedSession {
        id: body["id"].as_str().context("id")?.to_string(),
        token: body["token"].as_str().context("token")?.to_string(),
        body,
    })
}

pub struct StreamClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl StreamClient {
    pub async fn connect(ws_base: &str, session: &CreatedSession) -> anyhow::Result<Self> {
        let url = format!("{ws_base}/v1/sessions/{}/stream?token={}", session.id, session.token);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.context("WebSocket connect")?;
        Ok(Self { ws })
    }

    pub async fn send_json(&mut self, value: Value) -> anyhow::Result<()> {
        self.ws.send(Message::Text(value.to_string().into())).await?;
        Ok(())
    }

    pub async fn start_s16(&mut self, sample_rate: u32) -> anyhow::Result<()> {
        self.send_json(
            json!({"type": "start", "audio": {"encoding": "pcm_s16le", "sample_rate": sample_rate, "channels": 1}}),
        )
        .await
    }

    /// `start` for a recording upload: not held to the audio rate limit, capped in bytes.
    pub async fn start_upload_s16(&mut self, sample_rate: u32) -> anyhow::Result<()> {
        self.send_json(json!({
            "type": "start",
            "audio": {"encoding": "pcm_s16le", "sample_rate": sample_rate, "channels": 1},
            "upload": true
        }))
        .await
    }

    /// Sends mono 16-bit samples in chunks of `chunk_ms`, paced in real time when `realtime`.
    pub async fn send_audio(
        &mut self,
        samples: &[i16],
        sample_rate: u32,
        chunk_ms: u64,
        realtime: bool,
    ) -> anyhow::Result<()> {
        let chunk = (sample_rate as u64 * chunk_ms / 1000).max(1) as usize;
        let started = Instant::now();
        for (n, piece) in samples.chunks(chunk).enumerate() {
            if realtime {
                let due = Duration::from_millis(n as u64 * chunk_ms);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            let bytes: Vec<u8> = piece.iter().flat_map(|s| s.to_le_bytes()).collect();
            self.ws.send(Message::Binary(bytes.into())).await?;
        }
        Ok(())
    }

    /// The next text message as JSON; `None` when the server closed.
    pub async fn recv(&mut self) -> anyhow::Result<Option<Value>> {
        while let Some(message) = self.ws.next().await {
            match message? {
                Message::Text(text) => return Ok(Some(serde_json::from_str(&text)?)),
                Message::Close(_) => return Ok(None),
                _ => continue,
            }
        }
        Ok(None)
    }

    /// Reads messages up to and including the first of type `kind` (bails on timeout or close).
    pub async fn recv_until(&mut self, kind: &str, timeout: Duration) -> anyhow::Result<Vec<Value>> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = tokio::time::timeout(left, self.recv())
                .await
                .with_context(|| format!("no {kind:?} message within {timeout:?}; got {seen:?}"))??;
            let Some(message) = message else { bail!("stream closed before {kind:?}; got {seen:?}") };
            let done = message["type"] == kind;
            seen.push(message);
            if done {
                return Ok(seen);
            }
        }
    }

    /// The raw stream, for tests that need to send or read frames themselves.
    pub fn inner(&mut self) -> &mut WebSocketStream<MaybeTlsStream<TcpStream>> {
        &mut self.ws
    }
}
