//! `GET /v1/sessions/{id}/stream`: the live interview over a WebSocket.
//!
//! The upgrade handler authorises and admits the stream; [`Conn`] then runs one loop that waits
//! for the next input (a client frame, a finished transcription, a partial, shutdown) and
//! handles it. Transcriptions run on the engine's worker threads; finals are awaited in the
//! order their stretches closed, so segments go out in order.
//!
//! - [`conn`]: the loop, decoding client frames, the lease, sending.
//! - [`answer`]: asking questions, taking audio, finalising, skipping, resuming.

mod answer;
mod conn;

use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered, SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::auth::authorize;
use super::origin::origin_allowed;
use super::rate_limit::{ConnectionSlot, TokenBucket};
use super::{ApiError, AppState};
use crate::audio::{decode_frame, ms_to_samples, to_i16, StreamResampler};
use crate::protocol::{decode_client_message, AudioSpec, ClientMessage, Question, ServerMessage};
use crate::recovery::{now_ms, LEASE_MS};
use crate::session::{LiveAnswer, LiveEvent, StretchJob};
use crate::store::{AnswerStatus, Failure, SessionRow, SessionStatus, StoreError};
use crate::transcribe::{EngineError, JobKind, TextPiece};

/// WebSocket close codes used by the contract.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const SERVER_ERROR: u16 = 1011;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/sessions/{id}/stream", get(upgrade))
}

#[derive(Deserialize)]
struct StreamQuery {
    token: Option<String>,
}

async fn upgrade(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
    connect_info: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    // Cross-site WebSocket hijacking: a page of another site may not open a stream. Checked
    // before anything else, and before the upgrade, so such a page learns nothing.
    let origin = headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or("null"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !origin_allowed(origin, host, &state.limits.allowed_origins) {
        tracing::warn!("stream refused: origin not allowed");
        return Err(ApiError::Forbidden {
            code: "origin_not_allowed",
            message: "this page's origin may not open a stream (see VIVA_ALLOWED_ORIGINS)",
        });
    }
    let session = authorize(state.store.as_ref(), &id, query.token.as_deref()).await?;
    // Concurrent streams per address: the slot is held for the stream's whole life.
    let slot = match connect_info {
        Some(Extension(ConnectInfo(address))) => {
            let slot = state.connections.try_open(address.ip(), state.limits.max_connections_per_address);
            let Some(slot) = slot else {
                tracing::warn!(ip = %address.ip(), "stream refused: too many connections from this address");
                return Err(ApiError::TooMany {
                    code: "too_many_connections",
                    message: "too many open streams from this address; close one and retry",
                    retry_after_secs: 1,
                });
            };
            Some(slot)
        }
        None => None,
    };
    // The socket layer allows twice the limit so that a frame just over it is read whole and
    // refused by `on_message` with a clean closing handshake; past that the socket layer stops.
    // Compression is never negotiated: axum ignores `Sec-WebSocket-Extensions` (a test keeps
    // it so), so no client can make the server inflate a small frame into a huge one.
    let max = state.limits.max_frame_bytes.saturating_mul(2);
    let ws = ws.max_frame_size(max).max_message_size(max).write_buffer_size(0);
    Ok(ws
        .on_upgrade(move |socket| {
            let tracker = state.streams.clone();
            tracker.track_future(admit(socket, state, session, slot))
        })
        .into_response())
}

/// Refuses what the contract refuses (finished session, second stream, capacity), else runs.
async fn admit(mut socket: WebSocket, state: AppState, session: SessionRow, _slot: Option<ConnectionSlot>) {
    if session.status == SessionStatus::Complete {
        return refuse(&mut socket, "session_complete", "this session is complete; create a new one", close::POLICY)
            .await;
    }
    let Ok(permit) = state.stream_permits.clone().try_acquire_owned() else {
        tracing::warn!("stream refused: server at capacity");
        return refuse(&mut socket, "busy", "the server is at capacity; try again shortly", close::TRY_AGAIN_LATER)
            .await;
    };
    // One stream per session, across every server on the database: the stream holds a lease.
    let owner = super::new_lease_owner();
    let now = now_ms();
    match state.store.take_lease(&session.id, &owner, now, now + LEASE_MS).await {
        Ok(true) => {}
        Ok(false) => {
            return refuse(&mut socket, "stream_in_use", "this session already has an open stream", close::POLICY).await
        }
        Err(error) => {
            tracing::error!(%error, "cannot take a stream lease");
            let (code, message) = conn::storage_error(&error);
            return refuse(&mut socket, code, message, close::SERVER_ERROR).await;
        }
    }
    let id = session.id.clone();
    let (sink, stream) = socket.split();
    let (outgoing, queued) = mpsc::channel(state.limits.ws_outgoing_queue.max(1));
    let send_timeout = Duration::from_millis(state.limits.ws_send_timeout_ms);
    let writer = tokio::spawn(write_out(sink, queued, send_timeout));
    let mut conn = Conn::new(state, session, outgoing, writer, permit, owner);
    tracing::info!(session = %id, "stream opened");
    conn.run(stream).await;
    conn.release().await;
    tracing::info!(session = %id, "stream closed");
}

async fn refuse(socket: &mut WebSocket, code: &str, message: &str, close_code: u16) {
    let _ = socket.send(Message::Text(ServerMessage::error(code, message, true).to_json().into())).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame { code: close_code, reason: Utf8Bytes::from(code.to_string()) })))
        .await;
}

/// Sends what the loop queues, in order. A client that does not read a message within the send
/// timeout is given up on: the task ends, and with it the socket, instead of holding messages
/// for it without bound (the queue in front of it is bounded too).
async fn write_out(mut sink: SplitSink<WebSocket, Message>, mut queued: mpsc::Receiver<Message>, timeout: Duration) {
    while let Some(message) = queued.recv().await {
        let closing = matches!(message, Message::Close(_));
        match tokio::time::timeout(timeout, sink.send(message)).await {
            Ok(Ok(())) if !closing => {}
            Ok(Ok(())) | Ok(Err(_)) => return,
            Err(_) => {
                tracing::warn!("stream client does not read; disconnecting it");
                return;
            }
        }
    }
}

/// How long a closing server waits for the client to read its close frame.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_millis(500);

type FinalResult = (usize, StretchJob, Result<Vec<TextPiece>, EngineError>);

/// Why the loop stops.
enum Stop {
    Close(u16, &'static str),
    /// The client went away; nothing can be sent.
    Gone,
    /// The client sent a close frame; the socket layer has queued its reply.
    ClientClosed,
}

/// One input for the loop.
enum Input {
    Client(Option<Result<Message, axum::Error>>),
    Final(FinalResult),
    Partial(FinalResult),
    RenewLease,
    Shutdown,
    /// No frame from the client within the idle timeout.
    Idle,
    /// Half the idle timeout without a frame: ask the client for a sign of life.
    Heartbeat,
    /// The audio rate limit paused reading for a while; reading goes on.
    Throttled,
}

/// A pause-time transcription of the open stretch (`LiveAnswer::pause_job`). It runs as a
/// partial (lowest priority, gives way to finals); its result is used only for a final whose
/// clip is the very same audio, so the text is exactly what the final would have produced.
struct PauseDecode {
    index: usize,
    stretch_end_sample: u64,
    clip_start_sample: u64,
    clip_len: usize,
    /// Aborted when dropped: speech went on, or the answer ended another way.
    result: tokio_util::task::AbortOnDropHandle<Result<Vec<crate::transcribe::TextPiece>, EngineError>>,
}

/// The question being asked now.
struct Current {
    index: usize,
    /// `None` once the answer is finished (waiting for `next`).
    live: Option<LiveAnswer>,
    resampler: StreamResampler,
}

struct Conn {
    state: AppState,
    session_id: String,
    /// The guide the session was built from, whose checklists score its answers.
    guide: Option<String>,
    questions: Arc<Vec<Question>>,
    /// The bounded queue to the writer task; `None` once the stream is closing.
    outgoing: Option<mpsc::Sender<Message>>,
    writer: Option<tokio::task::JoinHandle<()>>,
    spec: Option<AudioSpec>,
    /// The stream declared a recording upload: no rate limit, a byte cap per answer instead.
    upload: bool,
    /// This stream's scope for whisper's drafts: its own earlier readings of a stretch serve its
    /// later ones, nobody else's (`transcribe::drafts`).
    draft_scope: u64,
    /// Audio bytes received for the current answer (counted against the upload cap).
    upload_bytes: u64,
    /// Audio (ms) the stream may still send at once; refilled at the allowed rate.
    audio_bucket: TokenBucket,
    /// When the stream is idle if no frame arrives before.
    idle_deadline: Instant,
    /// A ping went out since the client's last frame.
    pinged: bool,
    /// Audio clock: `clock_base_ms` plus the frames received since `start` at the client's rate.
    clock_base_ms: u64,
    frames_received: u64,
    current: Option<Current>,
    finals: FuturesOrdered<BoxFuture<'static, FinalResult>>,
    partials: FuturesUnordered<BoxFuture<'static, FinalResult>>,
    /// The open stretch transcribed during a pause, ready to become its final text.
    pause_decode: Option<PauseDecode>,
    /// A partial fell due on the last audio frame; it starts on the next one (see `maybe_partial`).
    partial_armed: bool,
    /// Held while the stream runs: one unit of the server's capacity.
    permit: Option<OwnedSemaphorePermit>,
    /// This stream's id in the session's lease, and when to renew it.
    lease_owner: String,
    lease_renewal: tokio::time::Interval,
    /// Messages to send after the current input is handled (keeps handlers free of I/O order).
    outbox: VecDeque<ServerMessage>,
}
