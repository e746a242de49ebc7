//! The stream's loop: wait for the next input, handle it, send what it produced.

use super::*;

/// Each stream's own scope for whisper's drafts.
static NEXT_DRAFT_SCOPE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Conn {
    pub(super) fn new(
        state: AppState,
        session: SessionRow,
        outgoing: mpsc::Sender<Message>,
        writer: tokio::task::JoinHandle<()>,
        permit: OwnedSemaphorePermit,
        lease_owner: String,
    ) -> Self {
        let renew_every = std::time::Duration::from_millis(LEASE_MS / 3);
        let limits = &state.limits;
        // Tokens are ms of audio: a burst, then `max_audio_rate` times real time.
        let audio_bucket =
            TokenBucket::new(limits.audio_burst_ms as f64, limits.max_audio_rate * 1000.0, std::time::Instant::now());
        let idle_deadline = Instant::now() + Duration::from_millis(limits.ws_idle_timeout_ms);
        Self {
            state,
            session_id: session.id,
            guide: session.guide,
            questions: Arc::new(session.questions),
            outgoing: Some(outgoing),
            writer: Some(writer),
            spec: None,
            upload: false,
            draft_scope: NEXT_DRAFT_SCOPE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            upload_bytes: 0,
            audio_bucket,
            idle_deadline,
            pinged: false,
            clock_base_ms: session.clock_ms,
            frames_received: 0,
            current: None,
            finals: FuturesOrdered::new(),
            partials: FuturesUnordered::new(),
            pause_decode: None,
            partial_armed: false,
            permit: Some(permit),
            lease_owner,
            lease_renewal: tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every),
            outbox: VecDeque::new(),
        }
    }

    /// Frees the session for another stream and returns the capacity slot. An answer cut off
    /// mid-way stays open for the resume window; recovery finalises it after that. Only the
    /// first call acts.
    pub(super) async fn release(&mut self) {
        if self.permit.take().is_none() {
            return;
        }
        let recording = self.current.as_ref().is_some_and(|c| c.live.is_some());
        let hold_until = if recording { now_ms() + self.state.limits.resume_window_ms } else { 0 };
        if let Err(error) = self.state.store.release_lease(&self.session_id, &self.lease_owner, hold_until).await {
            tracing::warn!(%error, "could not release a stream lease; retrying until it expires");
            // The database is likely away for a moment: keep trying in the background, so that
            // a client reconnecting once it is back need not wait for the lease to run out.
            let (store, id, owner) = (self.state.store.clone(), self.session_id.clone(), self.lease_owner.clone());
            tokio::spawn(async move {
                let give_up = tokio::time::Instant::now() + std::time::Duration::from_millis(LEASE_MS);
                while tokio::time::Instant::now() < give_up {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    if store.release_lease(&id, &owner, hold_until).await.is_ok() {
                        return;
                    }
                }
            });
        }
    }

    pub(super) fn clock_ms(&self) -> u64 {
        let rate = self.spec.map(|s| s.sample_rate as u64).unwrap_or(16_000);
        self.clock_base_ms + self.frames_received * 1000 / rate
    }

    pub(super) async fn run(&mut self, mut stream: SplitStream<WebSocket>) {
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
        let writer = self.writer.take();
        match stop {
            Stop::Close(code, reason) => {
                let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
                self.queue_message(Message::Close(Some(frame))).await.ok();
                // The writer sends what is queued, then the close frame, and ends.
                self.outgoing = None;
                // Wait for the client's close reply, so unread input does not reset the
                // connection before the client has read our close frame.
                let reply = async {
                    while let Some(Ok(message)) = stream.next().await {
                        if matches!(message, Message::Close(_)) {
                            return;
                        }
                    }
                    // The socket layer gave up reading (an oversized frame, a protocol
                    // error): give the client a moment to read the close frame before the
                    // connection is dropped.
                    tokio::time::sleep(CLOSE_LINGER).await;
                };
                let _ = tokio::time::timeout(CLOSE_LINGER * 4, reply).await;
                if let Some(mut writer) = writer {
                    if tokio::time::timeout(CLOSE_LINGER, &mut writer).await.is_err() {
                        writer.abort();
                    }
                }
            }
            Stop::ClientClosed => {
                // One more read sends the close reply the socket layer queued, completing the
                // closing handshake the client started.
                self.outgoing = None;
                let _ = tokio::time::timeout(CLOSE_LINGER, stream.next()).await;
                if let Some(writer) = writer {
                    writer.abort();
                }
            }
            Stop::Gone => {
                // Nothing more can reach the client: drop the socket now.
                self.outgoing = None;
                if let Some(writer) = writer {
                    writer.abort();
                }
            }
        }
    }

    pub(super) async fn next_input(&mut self, stream: &mut SplitStream<WebSocket>) -> Input {
        let throttle = self.throttle();
        let (idle_at, ping_at, pinged) =
            (self.idle_deadline, self.idle_deadline - self.idle_timeout() / 2, self.pinged);
        tokio::select! {
            biased;
            _ = self.state.shutdown.cancelled() => Input::Shutdown,
            Some(done) = self.finals.next(), if !self.finals.is_empty() => Input::Final(done),
            Some(done) = self.partials.next(), if !self.partials.is_empty() => Input::Partial(done),
            _ = self.lease_renewal.tick() => Input::RenewLease,
            // Over the audio rate: stop reading until the debt is paid; TCP back-pressure then
            // slows the client down and nothing is lost. (In slices, so a long debt cannot
            // overflow a timer.)
            _ = tokio::time::sleep(throttle.min(Duration::from_secs(1))), if !throttle.is_zero() => Input::Throttled,
            message = stream.next(), if throttle.is_zero() => Input::Client(message),
            _ = tokio::time::sleep_until(ping_at), if throttle.is_zero() && !pinged => Input::Heartbeat,
            _ = tokio::time::sleep_until(idle_at), if throttle.is_zero() => Input::Idle,
        }
    }

    /// How long reading must pause for the audio rate limit (zero for an upload).
    fn throttle(&mut self) -> Duration {
        if self.upload {
            Duration::ZERO
        } else {
            self.audio_bucket.wait(std::time::Instant::now())
        }
    }

    fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.state.limits.ws_idle_timeout_ms)
    }

    /// The client has the idle timeout again before the stream counts as idle.
    fn touch(&mut self) {
        self.idle_deadline = Instant::now() + self.idle_timeout();
        self.pinged = false;
    }

    pub(super) async fn handle(&mut self, input: Input) -> Result<(), Stop> {
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
            Input::Throttled => {
                // The client could not be heard meanwhile; it is not idle.
                self.touch();
                Ok(())
            }
            Input::Heartbeat => {
                // A client between answers sends nothing (a browser stops its microphone);
                // its pong (browsers send one on their own) shows it is still there. A client
                // that is gone, or does not read, sends none and is closed as idle.
                self.pinged = true;
                self.queue_message(Message::Ping(axum::body::Bytes::from_static(b"viva"))).await
            }
            Input::Idle => {
                tracing::info!(session = %self.session_id, "stream idle; closing it");
                self.send_error("idle_timeout", "no frame arrived for too long; reconnect to go on", true);
                Err(Stop::Close(close::POLICY, "idle timeout"))
            }
            Input::Client(None) => Err(Stop::Gone),
            Input::Client(Some(Err(error))) => Err(self.on_socket_error(error)),
            Input::Client(Some(Ok(message))) => {
                self.touch();
                self.on_message(message).await
            }
        }
    }

    /// A frame the socket layer refused: each kind closes with the code RFC 6455 gives it.
    pub(super) fn on_socket_error(&mut self, error: axum::Error) -> Stop {
        use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
        let inner = error.into_inner();
        match inner.downcast_ref::<WsError>() {
            Some(WsError::Capacity(CapacityError::MessageTooLong { .. })) => {
                self.send_error("frame_too_large", "a frame was over the size limit", true);
                Stop::Close(close::TOO_BIG, "frame too large")
            }
            Some(WsError::Utf8(_)) => {
                self.send_error("invalid_utf8", "a text frame was not valid UTF-8", true);
                Stop::Close(close::INVALID_DATA, "invalid utf-8")
            }
            Some(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) | None => Stop::Gone,
            Some(WsError::Protocol(error)) => {
                tracing::info!(session = %self.session_id, %error, "WebSocket protocol error");
                self.send_error("protocol_error", "the client broke the WebSocket protocol", true);
                Stop::Close(close::PROTOCOL_ERROR, "protocol error")
            }
            Some(_) => Stop::Gone,
        }
    }

    pub(super) async fn on_message(&mut self, message: Message) -> Result<(), Stop> {
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
            Message::Close(_) => Err(Stop::ClientClosed),
            Message::Ping(_) | Message::Pong(_) => Ok(()),
        }
    }

    pub(super) async fn on_client_message(&mut self, message: ClientMessage) -> Result<(), Stop> {
        match message {
            ClientMessage::Start { audio, upload } => self.on_start(audio, upload).await,
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

    pub(super) async fn renew_lease(&mut self) -> Result<(), Stop> {
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

    /// The stream cannot go on without its store. It stops rather than buffer audio it cannot
    /// commit (memory stays bounded); everything acknowledged by `stored` is kept, and the
    /// client resends from there when it reconnects.
    pub(super) fn store_failed(&mut self, error: StoreError) -> Stop {
        tracing::error!(%error, session = %self.session_id, "storage failed during a stream");
        let (code, message) = storage_error(&error);
        self.send_error(code, message, true);
        Stop::Close(close::SERVER_ERROR, code)
    }

    pub(super) fn send_error(&mut self, code: &str, message: impl Into<String>, fatal: bool) {
        self.outbox.push_back(ServerMessage::error(code, message, fatal));
    }

    pub(super) async fn flush_outbox(&mut self) -> Result<(), Stop> {
        let sent = !self.outbox.is_empty();
        while let Some(message) = self.outbox.pop_front() {
            self.queue_message(Message::Text(message.to_json().into())).await?;
        }
        if sent {
            // The client may have been waiting for these (an answer after a long
            // transcription): its idle time starts now.
            self.touch();
        }
        Ok(())
    }

    /// Queues one message for the writer. A queue that stays full for the send timeout means a
    /// client that does not read: it is disconnected.
    pub(super) async fn queue_message(&mut self, message: Message) -> Result<(), Stop> {
        let Some(outgoing) = self.outgoing.as_ref() else { return Err(Stop::Gone) };
        let timeout = Duration::from_millis(self.state.limits.ws_send_timeout_ms);
        match outgoing.send_timeout(message, timeout).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                tracing::warn!(session = %self.session_id, "stream client does not read; disconnecting it");
                Err(Stop::Gone)
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(Stop::Gone),
        }
    }
}

/// The `error` a client gets when the store fails: a code per kind of failure, and what to do.
pub(super) fn storage_error(error: &StoreError) -> (&'static str, &'static str) {
    match error.failure() {
        Failure::Unavailable => (
            "storage_unavailable",
            "the database is unavailable; audio up to the last \"stored\" message is kept: reconnect and resume shortly",
        ),
        Failure::Full => (
            "storage_full",
            "the server's storage is full; audio up to the last \"stored\" message is kept: reconnect once space is freed",
        ),
        Failure::Other => ("storage_failed", "the server could not store this session; reconnect to go on"),
    }
}
