//! One question after another: asking, taking audio, transcribing stretches, finalising.

use super::*;

impl Conn {
    pub(super) async fn on_start(&mut self, audio: AudioSpec, upload: bool) -> Result<(), Stop> {
        if self.spec.is_some() {
            self.send_error("already_started", "the stream has already started", false);
            return Ok(());
        }
        self.spec = Some(audio);
        self.upload = upload;
        let store = self.state.store.clone();
        let session = store.session(&self.session_id).await.map_err(|e| self.store_failed(e))?;
        match session.and_then(|s| s.current_index.map(|i| (i, s.clock_ms))) {
            None => self.ask(0).await,
            Some((index, clock_ms)) => self.resume(index, clock_ms).await,
        }
    }

    /// Picks the session up where the last stream left it.
    pub(super) async fn resume(&mut self, index: usize, clock_ms: u64) -> Result<(), Stop> {
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
        let audio =
            store.answer_audio(&self.session_id, index).await.map_err(|e| self.store_failed(e))?.unwrap_or_default();
        let mut live = self.new_live(index, row.asked_at_ms);
        let events = live.resume(&audio, row.segments);
        self.clock_base_ms = row.asked_at_ms + live.audio_ms();
        self.outbox.push_back(ServerMessage::Stored { index, audio_ms: live.stored_ms() });
        tracing::info!(session = %self.session_id, index, stored_ms = live.stored_ms(), "answer resumed");
        self.current = Some(Current { index, live: Some(live), resampler: StreamResampler::new(rate) });
        self.on_live_events(index, events).await
    }

    pub(super) fn new_live(&self, index: usize, asked_at_ms: u64) -> LiveAnswer {
        LiveAnswer::for_question(&self.questions[index], asked_at_ms, &self.state.limits)
    }

    pub(super) async fn ask(&mut self, index: usize) -> Result<(), Stop> {
        if index >= self.questions.len() {
            return self.complete().await;
        }
        let asked_at_ms = self.clock_ms();
        self.upload_bytes = 0;
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

    pub(super) async fn ask_next(&mut self) -> Result<(), Stop> {
        let index = self.current.as_ref().map(|c| c.index + 1).unwrap_or(0);
        self.ask(index).await
    }

    pub(super) async fn complete(&mut self) -> Result<(), Stop> {
        let clock = self.clock_ms();
        let store = self.state.store.clone();
        store.mark_complete(&self.session_id, clock).await.map_err(|e| self.store_failed(e))?;
        self.outbox.push_back(ServerMessage::Complete { session_id: self.session_id.clone() });
        Err(Stop::Close(close::NORMAL, "complete"))
    }

    pub(super) async fn on_audio(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        let Some(spec) = self.spec else {
            self.send_error("not_started", "audio arrived before \"start\"", false);
            return Ok(());
        };
        if self.upload {
            // A recording may come as fast as the network allows, but only so much of it.
            self.upload_bytes += bytes.len() as u64;
            if self.upload_bytes > self.state.limits.max_upload_bytes {
                self.send_error("upload_too_large", "this answer's upload is over the byte limit", true);
                return Err(Stop::Close(close::POLICY, "upload too large"));
            }
        }
        let samples = match decode_frame(&spec, bytes) {
            Ok(samples) => samples,
            Err(error) => {
                self.send_error("bad_audio_frame", error.to_string(), false);
                return Ok(());
            }
        };
        // Silence is audio: every frame moves the clock, answered or not.
        self.frames_received += samples.len() as u64;
        if !self.upload {
            let audio_ms = samples.len() as f64 * 1000.0 / spec.sample_rate as f64;
            self.audio_bucket.take_with_debt(audio_ms, std::time::Instant::now());
        }
        let Some(current) = self.current.as_mut() else { return Ok(()) };
        let index = current.index;
        let Some(live) = current.live.as_mut() else { return Ok(()) };
        let events = live.push(&current.resampler.push(&samples));
        self.on_live_events(index, events).await?;
        self.maybe_partial();
        self.store_audio(false).await
    }

    pub(super) async fn on_live_events(&mut self, index: usize, events: Vec<LiveEvent>) -> Result<(), Stop> {
        let mut limit_reached = false;
        for event in events {
            match event {
                LiveEvent::Transcribe(job) => self.schedule_final(index, job, JobKind::Final),
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

    /// Queues a closed stretch; `Closing` when the candidate is waiting for the answer.
    pub(super) fn schedule_final(&mut self, index: usize, mut job: StretchJob, kind: JobKind) {
        let engine = self.engine();
        let audio = std::mem::take(&mut job.audio);
        let ready = self
            .pause_decode
            .take()
            .filter(|p| p.index == index && p.clip_start_sample == job.clip_start_sample && p.clip_len == audio.len());
        // When the last partials agree on how the stretch begins, only the rest is transcribed
        // (see `session::agreement`): the candidate may be waiting for it, and the worker is
        // shared. Live streams only: an upload has no partials.
        let prefix = self.live_for(index).and_then(|live| live.agreed_prefix(&job));
        tracing::debug!(
            clip_ms = crate::audio::samples_to_ms(job.clip_samples),
            ?kind,
            pause_decode = ready.is_some(),
            agreed_ms = prefix.as_ref().map(|p| p.cut_ms),
            "stretch closed"
        );
        self.finals.push_back(Box::pin(async move {
            if let Some(pause) = ready {
                // Same clip, same deterministic decoding: its text is this final's text. If it
                // gave way to other work, the final is transcribed as usual.
                if let Ok(Ok(pieces)) = pause.result.await {
                    return (index, job, Ok(pieces));
                }
            }
            let result = engine.transcribe_stretch(audio, kind, prefix).await;
            (index, job, result)
        }));
    }

    pub(super) fn maybe_partial(&mut self) {
        // A recording upload arrives faster than anyone reads it: a hypothesis for the stretch in
        // progress would be stale before it was sent, and would take the worker from the finals.
        if self.upload {
            return;
        }
        let Some(current) = self.current.as_mut() else { return };
        let index = current.index;
        let Some(live) = current.live.as_mut() else { return };
        if self.pause_decode.as_ref().is_some_and(|p| p.index != index || !live.pause_job_current(p.stretch_end_sample))
        {
            self.pause_decode = None; // the candidate spoke again
        }
        if let Some(mut job) = live.pause_job() {
            let engine = self.engine();
            let audio = std::mem::take(&mut job.audio);
            let clip_len = audio.len();
            let task = tokio::spawn(async move { engine.transcribe(audio, JobKind::Pause).await });
            self.pause_decode = Some(PauseDecode {
                index,
                stretch_end_sample: job.stretch.end_sample,
                clip_start_sample: job.clip_start_sample,
                clip_len,
                result: tokio_util::task::AbortOnDropHandle::new(task),
            });
            return;
        }
        // During a pause the pause decode covers the stretch: a partial would repeat it.
        if self.pause_decode.is_some() || !self.partials.is_empty() {
            return;
        }
        // A partial that falls due starts on the next frame, not on the one that crossed the
        // second: when that frame was the answer's last, `end_answer` comes next, and the
        // closing stretch would find the worker busy with it (measured when whisper's encoder
        // could not be interrupted: about 40 ms more from `end_answer` to `answer`; the encoder
        // now gives way when asked, scripts/whisper-patches/encoder-abort.cmake, but a partial
        // started only to be stopped is still wasted work).
        if !live.partial_due() {
            self.partial_armed = false;
            return;
        }
        if !std::mem::replace(&mut self.partial_armed, true) {
            return;
        }
        self.partial_armed = false;
        let Some(mut job) = live.partial_job() else { return };
        // Once the partials have settled how the stretch begins, the next ones read only the rest,
        // as the final will: cheaper (partials read 39 % less audio on the agreement measurement),
        // and the final's words after the cut are read the way the partials read them.
        let prefix = live.agreed_prefix(&job);
        let engine = self.engine();
        let audio = std::mem::take(&mut job.audio);
        self.partials.push(Box::pin(async move {
            let result = engine.transcribe_stretch(audio, JobKind::Partial, prefix).await;
            (index, job, result)
        }));
    }

    /// The engine, with this stream's readings in one draft scope. A recording upload reads each
    /// stretch once: nothing of its own to draft from.
    pub(super) fn engine(&self) -> crate::transcribe::Engine {
        self.state.engine.with_draft_scope((!self.upload).then_some(self.draft_scope))
    }

    pub(super) fn live_for(&mut self, index: usize) -> Option<&mut LiveAnswer> {
        self.current.as_mut().filter(|c| c.index == index)?.live.as_mut()
    }

    pub(super) async fn on_final(&mut self, (index, job, result): FinalResult) -> Result<(), Stop> {
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

    pub(super) fn on_partial(&mut self, (index, job, result): FinalResult) {
        let Ok(pieces) = result else { return };
        let Some(live) = self.live_for(index) else { return };
        if !live.partial_is_current(&job) || pieces.is_empty() {
            return;
        }
        live.note_partial(&job, &pieces);
        let text = crate::transcribe::joined_text(&pieces);
        let start_ms = crate::audio::samples_to_ms(job.stretch.start_sample);
        let end_ms = crate::audio::samples_to_ms(job.stretch.end_sample);
        self.outbox.push_back(ServerMessage::Partial { index, text, start_ms, end_ms });
    }

    /// Commits the answer's new audio once enough has gathered (or now, when `force`).
    pub(super) async fn store_audio(&mut self, force: bool) -> Result<(), Stop> {
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
    pub(super) async fn finalise_answer(&mut self, interrupted: bool) -> Result<(), Stop> {
        let began = std::time::Instant::now();
        let Some((index, mut events)) = self.drain_resampler() else { return Ok(()) };
        let Some(live) = self.live_for(index) else { return Ok(()) };
        events.extend(live.finish());
        for event in events {
            if let LiveEvent::Transcribe(job) = event {
                self.schedule_final(index, job, JobKind::Closing);
            }
        }
        self.drain_finals().await?;
        self.partials.clear();
        self.pause_decode = None;
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
        // `took_ms`: from the answer's end (`end_answer`, the time limit) to its report, as the
        // candidate waits for it.
        let took_ms = began.elapsed().as_millis() as u64;
        tracing::info!(session = %self.session_id, index, audio_ms = answer.audio_ms, segments = answer.segments.len(), took_ms, "answer finalised");
        self.outbox.push_back(ServerMessage::Answer(answer));
        Ok(())
    }

    /// Waits for every transcription in flight, keeping the session's lease alive meanwhile
    /// (on a loaded server this can take a while).
    pub(super) async fn drain_finals(&mut self) -> Result<(), Stop> {
        while !self.finals.is_empty() {
            tokio::select! {
                Some(done) = self.finals.next() => self.on_final(done).await?,
                _ = self.lease_renewal.tick() => self.renew_lease().await?,
            }
        }
        Ok(())
    }

    /// The answer's audio is over (finished, skipped, or this stream ends): pushes what the
    /// resampler still holds into it, so the stored audio lasts exactly as long as what was
    /// sent. Returns the answer's index and the events that audio produced.
    pub(super) fn drain_resampler(&mut self) -> Option<(usize, Vec<LiveEvent>)> {
        let current = self.current.as_mut()?;
        let live = current.live.as_mut()?;
        Some((current.index, live.push(&current.resampler.flush())))
    }

    /// Skips the question: the audio so far is kept, no answer is made.
    pub(super) async fn skip_answer(&mut self) -> Result<(), Stop> {
        let Some((index, _)) = self.drain_resampler() else { return Ok(()) };
        self.finals = FuturesOrdered::new();
        self.partials.clear();
        self.pause_decode = None;
        self.store_audio(true).await?;
        if let Some(current) = self.current.as_mut() {
            current.live = None;
        }
        let store = self.state.store.clone();
        store
            .finish_answer(&self.session_id, index, AnswerStatus::Skipped, None)
            .await
            .map_err(|e| self.store_failed(e))
    }

    /// The client went away mid-answer: keep every segment in flight and all audio received,
    /// so a reconnect (or a restart) goes on from there.
    pub(super) async fn keep_what_was_sent(&mut self) {
        // Stretches closed by the resampler's last audio are transcribed like the others; a
        // time limit reached here is handled when the answer is resumed or recovered.
        if let Some((index, events)) = self.drain_resampler() {
            for event in events {
                if let LiveEvent::Transcribe(job) = event {
                    self.schedule_final(index, job, JobKind::Final);
                }
            }
        }
        let _ = self.drain_finals().await;
        let _ = self.store_audio(true).await;
        self.outbox.clear();
    }
}
