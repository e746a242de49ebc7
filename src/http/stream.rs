//! `GET /v1/sessions/{id}/stream`: the live interview over a WebSocket.
//!
//! The upgrade handler authorises and admits the stream; [`Conn`] then runs one loop that waits
//! for the next input (a client frame, a finished transcription, a partial, shutdown) and
//! handles it. Transcriptions run on the engine's worker threads; finals are awaited in the
//! order their stretches closed, so segments go out in order.

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
use crate::session::{LiveAnswer, LiveEvent, StretchJob};
use crate::store::{AnswerStatus, SessionRow, SessionStatus, StoreError};
use crate::recovery::{now_ms, LEASE_MS};
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
        return refuse(&mut socket, "session_complete", "this session is complete; create a new one", close::POLICY).await;
    }
    let Ok(permit) = state.stream_permits.clone().try_acquire_owned() else {
        tracing::warn!("stream refused: server at capacity");
        return refuse(&mut socket, "busy", "the server is at capacity; try again shortly", close::TRY_AGAIN_LATER).await;
    };
    // One stream per session, across every server on the database: the stream holds a lease.
    let owner = super::new_lease_owner();
    let now = now_ms();
    match state.store.take_lease(&session.id, &owner, now, now + LEASE_MS).await {
        Ok(true) => {}
        Ok(false) => return refuse(&mut socket, "stream_in_use", "this session already has an open stream", close::POLICY).await,
        Err(error) => {
            tracing::error!(%error, "cannot take a stream lease");
            return refuse(&mut socket, "storage_failed", "the server could not open this session; try again", close::SERVER_ERROR).await;
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
    let _ = socket.send(Message::Close(Some(CloseFrame { code: close_code, reason: Utf8Bytes::from(code.to_string()) }))).await;
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

impl Conn {
    fn new(state: AppState, session: SessionRow, sink: SplitSink<WebSocket, Message>, permit: OwnedSemaphorePermit, lease_owner: String) -> Self {
        let renew_every = std::time::Duration::from_millis(LEASE_MS / 3);
        Self {
            state,
            session_id: session.id,
            guide: session.guide,
            questions: Arc::new(session.questions),
            sink,
            spec: None,
            clock_base_ms: session.clock_ms,
            frames_received: 0,
            current: None,
            finals: FuturesOrdered::new(),
            partials: FuturesUnordered::new(),
            permit: Some(permit),
            lease_owner,
            lease_renewal: tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every),
            outbox: VecDeque::new(),
        }
    }

    /// Frees the session for another stream and returns the capacity slot. An answer cut off
    /// mid-way stays open for the resume window; recovery finalises it after that. Only the
    /// first call acts.
    async fn release(&mut self) {
        if self.permit.take().is_none() {
            return;
        }
        let recording = self.current.as_ref().is_some_and(|c| c.live.is_some());
        let hold_until = if recording { now_ms() + self.state.limits.resume_window_ms } else { 0 };
        if let Err(error) = self.state.store.release_lease(&self.session_id, &self.lease_owner, hold_until).await {
            tracing::warn!(%error, "could not release a stream lease; it will expire");
        }
    }

    fn clock_ms(&self) -> u64 {
        let rate = self.spec.map(|s| s.sample_rate as u64).unwrap_or(16_000);
        self.clock_base_ms + self.frames_received * 1000 / rate
    }

    async fn run(&mut self, mut stream: SplitStream<WebSocket>) {
        let stop = loop {
            let input = self.next_input(&mut stream).await;
            let outcome = self.handle(input).await;
            if let Err(stop) = self.flush_outbox().await {
                break stop;
            }
            if let Err(stop) = outcome {
                break stop;
            }
        };
        // Whatever ended the stream, audio and segments already received are kept.
        let _ = self.flush_outbox().await;
        self.keep_what_was_sent().await;
        // The session is free for a reconnect from here on, and the capacity slot too.
        self.release().await;
        if let Stop::Close(code, reason) = stop {
            let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
            let _ = self.sink.send(Message::Close(Some(frame))).await;
            // Wait for the client's close reply, so unread input does not reset the connection
            // before the client has read our close frame.
            let reply = async {
                while let Some(Ok(message)) = stream.next().await {
                    if matches!(message, Message::Close(_)) {
                        return;
                    }
                }
                // The socket layer gave up reading (an oversized frame): give the client a
                // moment to read the close frame before the connection is dropped.
                tokio::time::sleep(CLOSE_LINGER).await;
            };
            let _ = tokio::time::timeout(CLOSE_LINGER * 4, reply).await;
        }
    }

    async fn next_input(&mut self, stream: &mut SplitStream<WebSocket>) -> Input {
        tokio::select! {
            biased;
            _ = self.state.shutdown.cancelled() => Input::Shutdown,
            Some(done) = self.finals.next(), if !self.finals.is_empty() => Input::Final(done),
            Some(done) = self.partials.next(), if !self.partials.is_empty() => Input::Partial(done),
            _ = self.lease_renewal.tick() => Input::RenewLease,
            message = stream.next() => Input::Client(message),
        }
    }

    async fn handle(&mut self, input: Input) -> Result<(), Stop> {
        match input {
            Input::Shutdown => {
                self.finalise_answer(true).await?;
                Err(Stop::Close(close::GOING_AWAY, "server shutting down"))
            }
            Input::Final(done) => self.on_final(done).await,
            Input::Partial(done) => {
                self.on_partial(done);
                Ok(())
            }
            Input::RenewLease => self.renew_lease().await,
            Input::Client(None) => Err(Stop::Gone),
            Input::Client(Some(Err(error))) => Err(self.on_socket_error(error)),
            Input::Client(Some(Ok(message))) => self.on_message(message).await,
        }
    }

    fn on_socket_error(&mut self, error: axum::Error) -> Stop {
        use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
        let inner = error.into_inner();
        match inner.downcast_ref::<WsError>() {
            Some(WsError::Capacity(CapacityError::MessageTooLong { .. })) => {
                self.send_error("frame_too_large", "a frame was over the size limit", true);
                Stop::Close(close::TOO_BIG, "frame too large")
            }
            Some(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) | None => Stop::Gone,
            Some(_) => Stop::Gone,
        }
    }

    async fn on_message(&mut self, message: Message) -> Result<(), Stop> {
        let len = match &message {
            Message::Text(text) => text.len(),
            Message::Binary(bytes) => bytes.len(),
            _ => 0,
        };
        if len > self.state.limits.max_frame_bytes {
            self.send_error("frame_too_large", "a frame was over the size limit", true);
            return Err(Stop::Close(close::TOO_BIG, "frame too large"));
        }
        match message {
            Message::Text(text) => match decode_client_message(&text) {
                Ok(message) => self.on_client_message(message).await,
                Err(error) => {
                    self.send_error(error.code(), error.to_string(), false);
                    Ok(())
                }
            },
            Message::Binary(bytes) => self.on_audio(&bytes).await,
            Message::Close(_) => Err(Stop::Gone),
            Message::Ping(_) | Message::Pong(_) => Ok(()),
        }
    }

    async fn on_client_message(&mut self, message: ClientMessage) -> Result<(), Stop> {
        match message {
            ClientMessage::Start { audio } => self.on_start(audio).await,
            ClientMessage::EndAnswer if self.spec.is_none() => {
                self.send_error("no_question", "no question has been asked yet; send \"start\"", false);
                Ok(())
            }
            _ if self.spec.is_none() => {
                self.send_error("not_started", "send a \"start\" message first", false);
                Ok(())
            }
            ClientMessage::EndAnswer => {
                if self.current.as_ref().is_some_and(|c| c.live.is_some()) {
                    self.finalise_answer(false).await
                } else {
                    self.send_error("no_question", "no answer is in progress", false);
                    Ok(())
                }
            }
            ClientMessage::Next => {
                self.finalise_answer(false).await?;
                self.ask_next().await
            }
            ClientMessage::Skip => {
                self.skip_answer().await?;
                self.ask_next().await
            }
            ClientMessage::Finish => {
                self.finalise_answer(false).await?;
                self.complete().await
            }
        }
    }
}

impl Conn {
    async fn on_start(&mut self, audio: AudioSpec) -> Result<(), Stop> {
        if self.spec.is_some() {
            self.send_error("already_started", "the stream has already started", false);
            return Ok(());
        }
        self.spec = Some(audio);
        let store = self.state.store.clone();
        let session = store.session(&self.session_id).await.map_err(|e| self.store_failed(e))?;
        match session.and_then(|s| s.current_index.map(|i| (i, s.clock_ms))) {
            None => self.ask(0).await,
            Some((index, clock_ms)) => self.resume(index, clock_ms).await,
        }
    }

    /// Picks the session up where the last stream left it.
    async fn resume(&mut self, index: usize, clock_ms: u64) -> Result<(), Stop> {
        let store = self.state.store.clone();
        let answers = store.answers(&self.session_id).await.map_err(|e| self.store_failed(e))?;
        let Some(row) = answers.into_iter().find(|a| a.index == index) else {
            self.clock_base_ms = clock_ms;
            return self.ask(index).await;
        };
        let question = self.questions[index].clone();
        self.outbox.push_back(ServerMessage::Question { index, question, asked_at_ms: row.asked_at_ms });
        let rate = self.spec.map(|s| s.sample_rate).unwrap_or(16_000);
        if row.status != AnswerStatus::Recording {
            self.clock_base_ms = clock_ms;
            self.current = Some(Current { index, live: None, resampler: StreamResampler::new(rate) });
            let audio_ms = crate::audio::samples_to_ms(row.audio_samples);
            self.outbox.push_back(ServerMessage::Stored { index, audio_ms });
            return Ok(());
        }
        let audio = store.answer_audio(&self.session_id, index).await.map_err(|e| self.store_failed(e))?.unwrap_or_default();
        let mut live = self.new_live(index, row.asked_at_ms);
        let events = live.resume(&audio, row.segments);
        self.clock_base_ms = row.asked_at_ms + live.audio_ms();
        self.outbox.push_back(ServerMessage::Stored { index, audio_ms: live.stored_ms() });
        tracing::info!(session = %self.session_id, index, stored_ms = live.stored_ms(), "answer resumed");
        self.current = Some(Current { index, live: Some(live), resampler: StreamResampler::new(rate) });
        self.on_live_events(index, events).await
    }

    fn new_live(&self, index: usize, asked_at_ms: u64) -> LiveAnswer {
        let limits = &self.state.limits;
        LiveAnswer::new(index, asked_at_ms, self.questions[index].time_limit_ms, limits.max_answer_ms, limits.time_warning_ms)
    }

    async fn ask(&mut self, index: usize) -> Result<(), Stop> {
        if index >= self.questions.len() {
            return self.complete().await;
        }
        let asked_at_ms = self.clock_ms();
        let store = self.state.store.clone();
        store.begin_answer(&self.session_id, index, asked_at_ms).await.map_err(|e| self.store_failed(e))?;
        store.save_progress(&self.session_id, index, asked_at_ms).await.map_err(|e| self.store_failed(e))?;
        let rate = self.spec.map(|s| s.sample_rate).unwrap_or(16_000);
        self.current = Some(Current {
            index,
            live: Some(self.new_live(index, asked_at_ms)),
            resampler: StreamResampler::new(rate),
        });
        let question = self.questions[index].clone();
        self.outbox.push_back(ServerMessage::Question { index, question, asked_at_ms });
        Ok(())
    }

    async fn ask_next(&mut self) -> Result<(), Stop> {
        let index = self.current.as_ref().map(|c| c.index + 1).unwrap_or(0);
        self.ask(index).await
    }

    async fn complete(&mut self) -> Result<(), Stop> {
        let clock = self.clock_ms();
        let store = self.state.store.clone();
        store.mark_complete(&self.session_id, clock).await.map_err(|e| self.store_failed(e))?;
        self.outbox.push_back(ServerMessage::Complete { session_id: self.session_id.clone() });
        Err(Stop::Close(close::NORMAL, "complete"))
    }

    async fn on_audio(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        let Some(spec) = self.spec else {
            self.send_error("not_started", "audio arrived before \"start\"", false);
            return Ok(());
        };
        let samples = match decode_frame(&spec, bytes) {
            Ok(samples) => samples,
            Err(error) => {
                self.send_error("bad_audio_frame", error.to_string(), false);
                return Ok(());
            }
        };
        // Silence is audio: every frame moves the clock, answered or not.
        self.frames_received += samples.len() as u64;
        let Some(current) = self.current.as_mut() else { return Ok(()) };
        let index = current.index;
        let Some(live) = current.live.as_mut() else { return Ok(()) };
        let events = live.push(&current.resampler.push(&samples));
        self.on_live_events(index, events).await?;
        self.maybe_partial();
        self.store_audio(false).await
    }

    async fn on_live_events(&mut self, index: usize, events: Vec<LiveEvent>) -> Result<(), Stop> {
        let mut limit_reached = false;
        for event in events {
            match event {
                LiveEvent::Transcribe(job) => self.schedule_final(index, job),
                LiveEvent::TimeWarning { remaining_ms } => {
                    self.outbox.push_back(ServerMessage::TimeWarning { index, remaining_ms })
                }
                LiveEvent::LimitReached => limit_reached = true,
            }
        }
        if limit_reached {
            self.finalise_answer(false).await?;
        }
        Ok(())
    }

    fn schedule_final(&mut self, index: usize, mut job: StretchJob) {
        let engine = self.state.engine.clone();
        let audio = std::mem::take(&mut job.audio);
        self.finals.push_back(Box::pin(async move {
            let result = engine.transcribe(audio, JobKind::Final).await;
            (index, job, result)
        }));
    }

    fn maybe_partial(&mut self) {
        if !self.partials.is_empty() {
            return;
        }
        let Some(current) = self.current.as_mut() else { return };
        let index = current.index;
        let Some(mut job) = current.live.as_mut().and_then(LiveAnswer::partial_job) else { return };
        let engine = self.state.engine.clone();
        let audio = std::mem::take(&mut job.audio);
        self.partials.push(Box::pin(async move {
            let result = engine.transcribe(audio, JobKind::Partial).await;
            (index, job, result)
        }));
    }

    fn live_for(&mut self, index: usize) -> Option<&mut LiveAnswer> {
        self.current.as_mut().filter(|c| c.index == index)?.live.as_mut()
    }

    async fn on_final(&mut self, (index, job, result): FinalResult) -> Result<(), Stop> {
        let store = self.state.store.clone();
        let session_id = self.session_id.clone();
        let pieces = match result {
            Ok(pieces) => pieces,
            Err(EngineError::Busy) => {
                self.send_error("busy", "the server is overloaded; part of this answer was not transcribed", false);
                return Ok(());
            }
            Err(error) => {
                tracing::error!(%error, "transcription failed");
                self.send_error("transcription_failed", "part of this answer could not be transcribed", false);
                return Ok(());
            }
        };
        let Some(live) = self.live_for(index) else { return Ok(()) };
        let segments = live.add_transcription(&job, pieces);
        for (seq, segment) in segments {
            store.add_segment(&session_id, index, seq, &segment).await.map_err(|e| self.store_failed(e))?;
            let crate::protocol::Segment { text, start_ms, end_ms } = segment;
            self.outbox.push_back(ServerMessage::Segment { index, text, start_ms, end_ms });
        }
        Ok(())
    }

    fn on_partial(&mut self, (index, job, result): FinalResult) {
        let Ok(pieces) = result else { return };
        let Some(live) = self.live_for(index) else { return };
        if !live.partial_is_current(&job) || pieces.is_empty() {
            return;
        }
        let text = pieces.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join(" ");
        let start_ms = crate::audio::samples_to_ms(job.stretch.start_sample);
        let end_ms = crate::audio::samples_to_ms(job.stretch.end_sample);
        self.outbox.push_back(ServerMessage::Partial { index, text, start_ms, end_ms });
    }

    /// Commits the answer's new audio once enough has gathered (or now, when `force`).
    async fn store_audio(&mut self, force: bool) -> Result<(), Stop> {
        let store = self.state.store.clone();
        let every = ms_to_samples(self.state.limits.store_every_ms) as usize;
        let session_id = self.session_id.clone();
        let Some(current) = self.current.as_mut() else { return Ok(()) };
        let index = current.index;
        let Some(live) = current.live.as_mut() else { return Ok(()) };
        let (start, pending) = live.unstored();
        if pending.is_empty() || (!force && pending.len() < every) {
            return Ok(());
        }
        let pcm = to_i16(pending);
        let end = start + pcm.len() as u64;
        if let Err(error) = store.append_audio(&session_id, index, start, &pcm).await {
            return Err(self.store_failed(error));
        }
        let Some(live) = self.live_for(index) else { return Ok(()) };
        live.mark_stored(end);
        let audio_ms = live.stored_ms();
        self.outbox.push_back(ServerMessage::Stored { index, audio_ms });
        Ok(())
    }

    /// Ends the answer in progress (if any): transcribes what is left, stores and sends it.
    async fn finalise_answer(&mut self, interrupted: bool) -> Result<(), Stop> {
        let Some(current) = self.current.as_mut() else { return Ok(()) };
        let index = current.index;
        let Some(live) = current.live.as_mut() else { return Ok(()) };
        let mut events = live.push(&current.resampler.flush());
        events.extend(live.finish());
        for event in events {
            if let LiveEvent::Transcribe(job) = event {
                self.schedule_final(index, job);
            }
        }
        while let Some(done) = self.finals.next().await {
            self.on_final(done).await?;
        }
        self.partials.clear();
        self.store_audio(true).await?;
        let Some(live) = self.current.as_mut().and_then(|c| c.live.take()) else { return Ok(()) };
        let mut answer = live.build_answer(interrupted);
        let competencies = &self.questions[index].competencies;
        answer.checklist = self.state.checklists.score(self.guide.as_deref(), competencies, &answer.segments);
        let status = if interrupted { AnswerStatus::Interrupted } else { AnswerStatus::Answered };
        let store = self.state.store.clone();
        let clock = self.clock_ms();
        let saved = async {
            store.finish_answer(&self.session_id, index, status, Some(&answer)).await?;
            store.save_progress(&self.session_id, index, clock).await
        };
        saved.await.map_err(|e| self.store_failed(e))?;
        tracing::info!(session = %self.session_id, index, audio_ms = answer.audio_ms, segments = answer.segments.len(), "answer finalised");
        self.outbox.push_back(ServerMessage::Answer(answer));
        Ok(())
    }

    /// Skips the question: the audio so far is kept, no answer is made.
    async fn skip_answer(&mut self) -> Result<(), Stop> {
        let Some(current) = self.current.as_ref() else { return Ok(()) };
        if current.live.is_none() {
            return Ok(());
        }
        let index = current.index;
        self.finals = FuturesOrdered::new();
        self.partials.clear();
        self.store_audio(true).await?;
        if let Some(current) = self.current.as_mut() {
            current.live = None;
        }
        let store = self.state.store.clone();
        store.finish_answer(&self.session_id, index, AnswerStatus::Skipped, None).await.map_err(|e| self.store_failed(e))
    }

    /// The client went away mid-answer: keep every segment in flight and all audio received,
    /// so a reconnect (or a restart) goes on from there.
    async fn keep_what_was_sent(&mut self) {
        while let Some(done) = self.finals.next().await {
            if self.on_final(done).await.is_err() {
                break;
            }
        }
        let _ = self.store_audio(true).await;
        self.outbox.clear();
    }

    async fn renew_lease(&mut self) -> Result<(), Stop> {
        let now = now_ms();
        let store = self.state.store.clone();
        match store.take_lease(&self.session_id, &self.lease_owner, now, now + LEASE_MS).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                // Our lease ran out (the server stalled) and another stream took the session.
                self.permit = None;
                self.send_error("stream_in_use", "another stream has taken over this session", true);
                Err(Stop::Close(close::POLICY, "stream in use"))
            }
            Err(error) => Err(self.store_failed(error)),
        }
    }

    fn store_failed(&mut self, error: StoreError) -> Stop {
        tracing::error!(%error, session = %self.session_id, "storage failed during a stream");
        self.send_error("storage_failed", "the server could not store this session; reconnect to go on", true);
        Stop::Close(close::SERVER_ERROR, "storage failed")
    }

    fn send_error(&mut self, code: &str, message: impl Into<String>, fatal: bool) {
        self.outbox.push_back(ServerMessage::error(code, message, fatal));
    }

    async fn flush_outbox(&mut self) -> Result<(), Stop> {
        while let Some(message) = self.outbox.pop_front() {
            self.sink.send(Message::Text(message.to_json().into())).await.map_err(|_| Stop::Gone)?;
        }
        Ok(())
    }
}
