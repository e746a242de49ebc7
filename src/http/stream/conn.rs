//! The stream's loop: wait for the next input, handle it, send what it produced.

use super::*;

impl Conn {
    pub(super) fn new(
        state: AppState,
        session: SessionRow,
        sink: SplitSink<WebSocket, Message>,
        permit: OwnedSemaphorePermit,
        lease_owner: String,
    ) -> Self {
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

    pub(super) async fn next_input(&mut self, stream: &mut SplitStream<WebSocket>) -> Input {
        tokio::select! {
            biased;
            _ = self.state.shutdown.cancelled() => Input::Shutdown,
            Some(done) = self.finals.next(), if !self.finals.is_empty() => Input::Final(done),
            Some(done) = self.partials.next(), if !self.partials.is_empty() => Input::Partial(done),
            _ = self.lease_renewal.tick() => Input::RenewLease,
            message = stream.next() => Input::Client(message),
        }
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
            Input::Client(None) => Err(Stop::Gone),
            Input::Client(Some(Err(error))) => Err(self.on_socket_error(error)),
            Input::Client(Some(Ok(message))) => self.on_message(message).await,
        }
    }

    pub(super) fn on_socket_error(&mut self, error: axum::Error) -> Stop {
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
            Message::Close(_) => Err(Stop::Gone),
            Message::Ping(_) | Message::Pong(_) => Ok(()),
        }
    }

    pub(super) async fn on_client_message(&mut self, message: ClientMessage) -> Result<(), Stop> {
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
        while let Some(message) = self.outbox.pop_front() {
            self.sink.send(Message::Text(message.to_json().into())).await.map_err(|_| Stop::Gone)?;
        }
        Ok(())
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
