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
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered, SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;

use super::auth::authorize;
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
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let session = authorize(state.store.as_ref(), &id, query.token.as_deref()).await?;
    // The socket layer allows twice the limit so that a frame just over it is read whole and
    // refused by `on_message` with a clean closing handshake; past that the socket layer stops.
    let max = state.limits.max_frame_bytes.saturating_mul(2);
    let ws = ws.max_frame_size(max).max_message_size(max).write_buffer_size(0);
    Ok(ws
        .on_upgrade(move |socket| {
            let tracker = state.streams.clone();
            tracker.track_future(admit(socket, state, session))
        })
        .into_response())
}

/// Refuses what the contract refuses (finished session, second stream, capacity), else runs.
async fn admit(mut socket: WebSocket, state: AppState, session: SessionRow) {
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
    let mut conn = Conn::new(state, session, sink, permit, owner);
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

/// How long a closing server waits for the client to read its close frame.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_millis(500);

type FinalResult = (usize, StretchJob, Result<Vec<TextPiece>, EngineError>);

/// Why the loop stops.
enum Stop {
    Close(u16, &'static str),
    /// The client went away; nothing can be sent.
    Gone,
}

/// One input for the loop.
enum Input {
    Client(Option<Result<Message, axum::Error>>),
    Final(FinalResult),
    Partial(FinalResult),
    RenewLease,
    Shutdown,
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
    sink: SplitSink<WebSocket, Message>,
    spec: Option<AudioSpec>,
    /// Audio clock: `clock_base_ms` plus the frames received since `start` at the client's rate.
    clock_base_ms: u64,
    frames_received: u64,
    current: Option<Current>,
    finals: FuturesOrdered<BoxFuture<'static, FinalResult>>,
    partials: FuturesUnordered<BoxFuture<'static, FinalResult>>,
    /// Held while the stream runs: one unit of the server's capacity.
    permit: Option<OwnedSemaphorePermit>,
    /// This stream's id in the session's lease, and when to renew it.
    lease_owner: String,
    lease_renewal: tokio::time::Interval,
    /// Messages to send after the current input is handled (keeps handlers free of I/O order).
    outbox: VecDeque<ServerMessage>,
}
