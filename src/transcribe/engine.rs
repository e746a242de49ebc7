//! The worker pool: N threads, each owning one [`Transcriber`], fed by one bounded queue with
//! four priorities. Replies travel back on oneshot channels; a job whose requester has gone is
//! skipped.
//!
//! Why priorities: a candidate who presses "end answer" waits for the last stretch, while the
//! other work can wait a little. So the stretch that closes an answer goes first, stretches
//! closed mid-answer next, then pause decodes (the likely final text of a stretch whose speaker
//! has stopped, which an answer ending in that pause waits for), and partial hypotheses last; a
//! partial or pause decode already running gives way (whisper's abort callback, asked inside the
//! encoder too: scripts/whisper-patches/encoder-abort.cmake) as soon as a closing or final stretch
//! is waiting, and a running partial also gives way to a pause decode.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::{Interrupt, TextPiece, TranscribeError, TranscriberFactory};
use crate::config::EngineSettings;
use crate::session::agreement::{self, AgreedPrefix};

/// What a job is for, highest priority first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// The last stretch of an answer: the candidate is waiting for the result.
    Closing,
    /// A stretch closed while the candidate goes on speaking.
    Final,
    /// The open stretch, transcribed once the candidate has paused: the final text if the pause
    /// goes on. Waits and gives way like a partial, but its pieces are whisper's segments.
    Pause,
    /// A hypothesis for the stretch still open, word by word: a nicety, dropped or interrupted
    /// under load.
    Partial,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the transcription queue is full")]
    Busy,
    #[error("the transcription engine has stopped")]
    Stopped,
    #[error(transparent)]
    Transcribe(#[from] TranscribeError),
}

type Reply = oneshot::Sender<Result<Vec<TextPiece>, TranscribeError>>;

struct Job {
    kind: JobKind,
    audio: Vec<f32>,
    /// Settled text the audio follows, for whisper's context.
    before: Option<String>,
    /// The live stream the job reads for, whose earlier readings may serve as drafts.
    draft_scope: Option<u64>,
    reply: Reply,
    /// Room in the queue, given back when a worker takes the job.
    _room: OwnedSemaphorePermit,
    /// When the job was queued, for the time it waited (logged at debug level).
    queued_at: Instant,
}

#[derive(Default)]
struct Queues {
    closing: VecDeque<Job>,
    finals: VecDeque<Job>,
    pauses: VecDeque<Job>,
    partials: VecDeque<Job>,
    stopped: bool,
}

impl Queues {
    fn pop(&mut self) -> Option<Job> {
        self.closing
            .pop_front()
            .or_else(|| self.finals.pop_front())
            .or_else(|| self.pauses.pop_front())
            .or_else(|| self.partials.pop_front())
    }

    fn len(&self) -> usize {
        self.closing.len() + self.finals.len() + self.pauses.len() + self.partials.len()
    }
}

struct Shared {
    queues: Mutex<Queues>,
    work: Condvar,
    /// Closing and final jobs waiting for a worker: a running pause decode or partial gives way
    /// while > 0.
    urgent_waiting: Arc<AtomicUsize>,
    /// Jobs of any kind but partials waiting for a worker: a running partial gives way while > 0.
    /// A pause decode covers the same stretch as the partial it stops, and its text is the one
    /// an answer ending in that pause waits for.
    outranking_partials: Arc<AtomicUsize>,
    /// Workers decoding right now.
    busy_workers: AtomicUsize,
}

impl Shared {
    fn push(&self, job: Job) -> Result<(), Job> {
        let mut queues = self.queues.lock().expect("engine queue lock");
        if queues.stopped {
            return Err(job);
        }
        match job.kind {
            JobKind::Closing => queues.closing.push_back(job),
            JobKind::Final => queues.finals.push_back(job),
            // Under load every stream has a partial queued; a pause decode behind them all made an
            // answer ending in that pause wait seconds (8 candidates: max 2.3–3.4 s).
            JobKind::Pause => queues.pauses.push_back(job),
            JobKind::Partial => queues.partials.push_back(job),
        }
        drop(queues);
        self.work.notify_one();
        Ok(())
    }

    /// Blocks until there is a job, or returns `None` once the engine is dropped.
    fn take(&self) -> Option<Job> {
        let mut queues = self.queues.lock().expect("engine queue lock");
        loop {
            if let Some(job) = queues.pop() {
                for waiting in self.waiting_counters(job.kind) {
                    waiting.fetch_sub(1, Ordering::SeqCst);
                }
                return Some(job);
            }
            if queues.stopped {
                return None;
            }
            queues = self.work.wait(queues).expect("engine queue lock");
        }
    }

    /// The counters a job of this kind is counted in while it waits for a worker.
    fn waiting_counters(&self, kind: JobKind) -> impl Iterator<Item = &AtomicUsize> {
        let urgent = kind.is_urgent().then_some(&*self.urgent_waiting);
        let outranking = (kind != JobKind::Partial).then_some(&*self.outranking_partials);
        urgent.into_iter().chain(outranking)
    }
}

impl JobKind {
    /// Whether a running pause decode or partial gives way to this job (a partial also gives way to
    /// a pause decode: `Shared::outranking_partials`).
    fn is_urgent(self) -> bool {
        matches!(self, JobKind::Closing | JobKind::Final)
    }
}

/// Stops the workers when the last [`Engine`] clone is dropped.
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.queues.lock().map(|mut q| q.stopped = true).ok();
        self.shared.work.notify_all();
    }
}

#[derive(Clone)]
pub struct Engine {
    owner: Arc<Owner>,
    room: Arc<Semaphore>,
    queue_wait: Duration,
    workers: usize,
    /// Stamped on this handle's jobs (see [`Engine::with_draft_scope`]).
    draft_scope: Option<u64>,
}

impl Engine {
    /// Starts the workers and waits until each has built its transcriber, so a bad model fails
    /// here, at start-up, rather than on the first answer.
    pub fn start(factory: Arc<dyn TranscriberFactory>, settings: &EngineSettings) -> Result<Self, TranscribeError> {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            work: Condvar::new(),
            urgent_waiting: Arc::new(AtomicUsize::new(0)),
            outranking_partials: Arc::new(AtomicUsize::new(0)),
            busy_workers: AtomicUsize::new(0),
        });
        let workers = settings.workers.max(1);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for n in 0..workers {
            let shared = shared.clone();
            let factory = factory.clone();
            let ready = ready_tx.clone();
            thread::Builder::new()
                .name(format!("whisper-{n}"))
                .spawn(move || {
                    let mut transcriber = match factory.create() {
                        Ok(t) => {
                            let _ = ready.send(Ok(()));
                            t
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    drop(ready);
                    while let Some(Job { kind, audio, before, draft_scope, reply, _room: room, queued_at }) =
                        shared.take()
                    {
                        // Taken by a worker: its place in the queue is free again.
                        drop(room);
                        if reply.is_closed() {
                            continue;
                        }
                        let started = Instant::now();
                        shared.busy_workers.fetch_add(1, Ordering::SeqCst);
                        transcriber.set_draft_scope(draft_scope);
                        let result = match kind {
                            JobKind::Partial => transcriber.transcribe_words(
                                &audio,
                                before.as_deref(),
                                Interrupt::when_waiting(&shared.outranking_partials),
                            ),
                            JobKind::Pause => transcriber
                                .transcribe_interruptible(&audio, Interrupt::when_waiting(&shared.urgent_waiting)),
                            JobKind::Closing | JobKind::Final => match &before {
                                Some(before) => transcriber.transcribe_after(&audio, before),
                                None => transcriber.transcribe(&audio),
                            },
                        };
                        shared.busy_workers.fetch_sub(1, Ordering::SeqCst);
                        // Where a job's time goes, waiting or running, for operators sizing workers
                        // and for latency work (VIVA_LOG=viva::transcribe=debug).
                        tracing::debug!(
                            ?kind,
                            audio_ms = audio.len() / 16,
                            waited_ms = (started - queued_at).as_millis() as u64,
                            ran_ms = started.elapsed().as_millis() as u64,
                            interrupted = matches!(result, Err(TranscribeError::Interrupted)),
                            "job done"
                        );
                        let _ = reply.send(result);
                    }
                })
                .map_err(|e| TranscribeError::Failed(format!("cannot start worker thread: {e}")))?;
        }
        drop(ready_tx);
        let owner = Arc::new(Owner { shared });
        for _ in 0..workers {
            // On failure the owner is dropped here, which stops the workers that did start.
            ready_rx.recv().map_err(|_| TranscribeError::Failed("worker died at start".into()))??;
        }
        Ok(Self {
            owner,
            room: Arc::new(Semaphore::new(settings.queue_depth.max(1))),
            queue_wait: Duration::from_millis(settings.queue_wait_ms),
            workers,
            draft_scope: None,
        })
    }

    /// A handle whose jobs belong to `scope`: one live stream's readings, which hand each other
    /// drafts (`transcribe::drafts`). Only a stream's own earlier readings serve it: candidates
    /// never share them, and a recording read again (a benchmark's second round) gets none.
    pub fn with_draft_scope(&self, scope: Option<u64>) -> Self {
        Self { draft_scope: scope, ..self.clone() }
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Jobs waiting for a worker now.
    pub fn queued(&self) -> usize {
        self.owner.shared.queues.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// Workers decoding now.
    pub fn busy_workers(&self) -> usize {
        self.owner.shared.busy_workers.load(Ordering::SeqCst)
    }

    /// Transcribes 16 kHz mono audio. A job that matters waits a bounded time for room in the
    /// queue; a partial one is refused at once when the queue is full, and comes back `Busy`
    /// when it gave way to more urgent work.
    pub async fn transcribe(&self, audio: Vec<f32>, kind: JobKind) -> Result<Vec<TextPiece>, EngineError> {
        self.transcribe_after(audio, kind, None).await
    }

    /// A stretch's clip, transcribed whole, or, when the partials agreed on how it begins (see
    /// `session::agreement`), only the rest after that prefix, read with the prefix's text as
    /// context and joined to it. Partials of a stretch with a settled prefix are read the same
    /// way: on the agreement measurement (`tests/agreement.rs`) they read 1717 s of audio instead
    /// of 2837, and the live transcripts' word error rate went from 0.200 to 0.186, that of whole
    /// stretches.
    pub async fn transcribe_stretch(
        &self,
        mut clip: Vec<f32>,
        kind: JobKind,
        prefix: Option<AgreedPrefix>,
    ) -> Result<Vec<TextPiece>, EngineError> {
        let Some(prefix) = prefix else { return self.transcribe(clip, kind).await };
        let rest = clip.split_off((crate::audio::ms_to_samples(prefix.cut_ms) as usize).min(clip.len()));
        let before = super::joined_text(&prefix.pieces);
        let pieces = self.transcribe_after(rest, kind, Some(before)).await?;
        Ok(agreement::join(prefix, pieces))
    }

    /// Like [`Engine::transcribe`], for audio that follows `before`, text already settled (see
    /// [`Transcriber::transcribe_after`](super::Transcriber::transcribe_after)); pause decodes
    /// ignore it.
    pub async fn transcribe_after(
        &self,
        audio: Vec<f32>,
        kind: JobKind,
        before: Option<String>,
    ) -> Result<Vec<TextPiece>, EngineError> {
        let room = match kind {
            JobKind::Pause | JobKind::Partial => {
                self.room.clone().try_acquire_owned().map_err(|_| EngineError::Busy)?
            }
            JobKind::Closing | JobKind::Final => {
                match tokio::time::timeout(self.queue_wait, self.room.clone().acquire_owned()).await {
                    Err(_) => return Err(EngineError::Busy),
                    Ok(Err(_)) => return Err(EngineError::Stopped),
                    Ok(Ok(permit)) => permit,
                }
            }
        };
        let (reply, response) = oneshot::channel();
        let shared = &self.owner.shared;
        for waiting in shared.waiting_counters(kind) {
            waiting.fetch_add(1, Ordering::SeqCst);
        }
        let job =
            Job { kind, audio, before, draft_scope: self.draft_scope, reply, _room: room, queued_at: Instant::now() };
        if shared.push(job).is_err() {
            for waiting in shared.waiting_counters(kind) {
                waiting.fetch_sub(1, Ordering::SeqCst);
            }
            return Err(EngineError::Stopped);
        }
        match response.await.map_err(|_| EngineError::Stopped)? {
            Ok(pieces) => Ok(pieces),
            Err(TranscribeError::Interrupted) => Err(EngineError::Busy),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcribe::Transcriber;
    use std::sync::atomic::AtomicUsize;

    /// Echoes the audio length after sleeping for as many ms as the first sample says; the
    /// second sample, when present, tags the job so tests can see the order of work. An
    /// interruptible call checks its interrupt every millisecond.
    struct SlowEcho(Arc<Mutex<Vec<f32>>>);
    impl SlowEcho {
        fn run(&mut self, audio: &[f32], interrupt: Option<&Interrupt>) -> Result<Vec<TextPiece>, TranscribeError> {
            for _ in 0..audio[0] as u64 {
                thread::sleep(Duration::from_millis(1));
                if interrupt.is_some_and(Interrupt::requested) {
                    return Err(TranscribeError::Interrupted);
                }
            }
            self.0.lock().unwrap().push(audio.get(1).copied().unwrap_or(-1.0));
            Ok(vec![TextPiece { text: format!("{} samples", audio.len()), start_ms: 0, end_ms: 1 }])
        }
    }
    impl Transcriber for SlowEcho {
        fn transcribe(&mut self, audio: &[f32]) -> Result<Vec<TextPiece>, TranscribeError> {
            self.run(audio, None)
        }
        fn transcribe_interruptible(
            &mut self,
            audio: &[f32],
            interrupt: Interrupt,
        ) -> Result<Vec<TextPiece>, TranscribeError> {
            self.run(audio, Some(&interrupt))
        }
    }
    struct Factory(Arc<Mutex<Vec<f32>>>);
    impl TranscriberFactory for Factory {
        fn create(&self) -> Result<Box<dyn Transcriber>, TranscribeError> {
            Ok(Box::new(SlowEcho(self.0.clone())))
        }
    }

    fn engine(depth: usize, wait_ms: u64) -> (Engine, Arc<Mutex<Vec<f32>>>) {
        let done = Arc::new(Mutex::new(Vec::new()));
        let settings = EngineSettings { workers: 1, queue_depth: depth, queue_wait_ms: wait_ms, ..Default::default() };
        (Engine::start(Arc::new(Factory(done.clone())), &settings).unwrap(), done)
    }

    fn spawn(
        engine: &Engine,
        audio: Vec<f32>,
        kind: JobKind,
    ) -> tokio::task::JoinHandle<Result<Vec<TextPiece>, EngineError>> {
        let engine = engine.clone();
        tokio::spawn(async move { engine.transcribe(audio, kind).await })
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(40)).await;
    }

    #[tokio::test]
    async fn transcribes_through_the_worker() {
        let (engine, _) = engine(2, 1000);
        let text = engine.transcribe(vec![0.0; 5], JobKind::Final).await.unwrap();
        assert_eq!(text[0].text, "5 samples");
    }

    #[tokio::test]
    async fn full_queue_refuses_partials_at_once_and_finals_after_the_wait() {
        let (engine, _) = engine(1, 50);
        // One job occupies the worker, one fills the queue.
        let busy = spawn(&engine, vec![300.0], JobKind::Final);
        settle().await;
        let queued = spawn(&engine, vec![0.0], JobKind::Final);
        settle().await;
        assert!(matches!(engine.transcribe(vec![0.0], JobKind::Partial).await, Err(EngineError::Busy)));
        assert!(matches!(engine.transcribe(vec![0.0], JobKind::Closing).await, Err(EngineError::Busy)));
        assert!(busy.await.unwrap().is_ok());
        let queued = queued.await.unwrap();
        assert!(queued.is_ok(), "{queued:?}");
    }

    #[tokio::test]
    async fn jobs_of_departed_requesters_are_skipped() {
        let (engine, done) = engine(4, 1000);
        let first = spawn(&engine, vec![200.0], JobKind::Final);
        settle().await;
        // Queued behind the first, then abandoned.
        let abandoned =
            tokio::time::timeout(Duration::from_millis(10), engine.transcribe(vec![0.0], JobKind::Final)).await;
        assert!(abandoned.is_err());
        first.await.unwrap().unwrap();
        engine.transcribe(vec![0.0], JobKind::Final).await.unwrap();
        assert_eq!(done.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn closing_stretches_go_first_then_finals_then_partials() {
        let (engine, done) = engine(8, 1000);
        let blocker = spawn(&engine, vec![150.0, 0.0], JobKind::Final);
        settle().await;
        let partial = spawn(&engine, vec![1.0, 3.0], JobKind::Partial);
        let last_final = spawn(&engine, vec![1.0, 2.0], JobKind::Final);
        let closing = spawn(&engine, vec![1.0, 1.0], JobKind::Closing);
        for job in [blocker, partial, last_final, closing] {
            job.await.unwrap().unwrap();
        }
        assert_eq!(*done.lock().unwrap(), vec![0.0, 1.0, 2.0, 3.0]);
    }

    #[tokio::test]
    async fn a_pause_decode_goes_before_the_partials_queued_ahead_of_it() {
        let (engine, done) = engine(8, 1000);
        let blocker = spawn(&engine, vec![150.0, 0.0], JobKind::Final);
        settle().await;
        let partials: Vec<_> = (0..3).map(|_| spawn(&engine, vec![1.0, 2.0], JobKind::Partial)).collect();
        settle().await;
        let pause = spawn(&engine, vec![1.0, 1.0], JobKind::Pause);
        blocker.await.unwrap().unwrap();
        pause.await.unwrap().unwrap();
        for partial in partials {
            partial.await.unwrap().unwrap();
        }
        assert_eq!(*done.lock().unwrap(), vec![0.0, 1.0, 2.0, 2.0, 2.0]);
    }

    #[tokio::test]
    async fn a_running_partial_gives_way_to_a_final() {
        let (engine, done) = engine(8, 1000);
        let partial = spawn(&engine, vec![5_000.0, 9.0], JobKind::Partial);
        settle().await;
        assert_eq!(engine.busy_workers(), 1);
        let started = std::time::Instant::now();
        engine.transcribe(vec![1.0, 1.0], JobKind::Closing).await.unwrap();
        assert!(matches!(partial.await.unwrap(), Err(EngineError::Busy)));
        // The partial stopped long before its 5 s were up and never produced text.
        assert!(started.elapsed() < Duration::from_secs(4));
        assert_eq!(*done.lock().unwrap(), vec![1.0]);
        assert_eq!(engine.busy_workers(), 0);
    }

    #[tokio::test]
    async fn a_running_partial_gives_way_to_a_pause_decode_but_a_pause_decode_does_not() {
        let (engine, done) = engine(8, 1000);
        let partial = spawn(&engine, vec![5_000.0, 9.0], JobKind::Partial);
        settle().await;
        let started = std::time::Instant::now();
        let first = spawn(&engine, vec![100.0, 1.0], JobKind::Pause);
        settle().await;
        engine.transcribe(vec![1.0, 2.0], JobKind::Pause).await.unwrap();
        assert!(matches!(partial.await.unwrap(), Err(EngineError::Busy)));
        assert!(started.elapsed() < Duration::from_secs(4));
        // The first pause decode was running when the second came, and finished.
        first.await.unwrap().unwrap();
        assert_eq!(*done.lock().unwrap(), vec![1.0, 2.0]);
    }

    #[tokio::test]
    async fn a_running_pause_decode_gives_way_to_a_closing_stretch() {
        let (engine, done) = engine(8, 1000);
        let pause = spawn(&engine, vec![5_000.0, 9.0], JobKind::Pause);
        settle().await;
        engine.transcribe(vec![1.0, 1.0], JobKind::Closing).await.unwrap();
        assert!(matches!(pause.await.unwrap(), Err(EngineError::Busy)));
        assert_eq!(*done.lock().unwrap(), vec![1.0]);
    }

    /// Tells which call a job came through, and the settled text it was given.
    struct Calls;
    impl Transcriber for Calls {
        fn transcribe(&mut self, audio: &[f32]) -> Result<Vec<TextPiece>, TranscribeError> {
            Ok(vec![TextPiece { text: format!("whole {}", audio.len()), start_ms: 0, end_ms: 100 }])
        }
        fn transcribe_words(
            &mut self,
            audio: &[f32],
            before: Option<&str>,
            _: Interrupt,
        ) -> Result<Vec<TextPiece>, TranscribeError> {
            match before {
                Some(before) => {
                    Ok(vec![TextPiece { text: format!("after '{before}' {}", audio.len()), start_ms: 0, end_ms: 100 }])
                }
                None => self.transcribe(audio),
            }
        }
    }
    struct CallsFactory;
    impl TranscriberFactory for CallsFactory {
        fn create(&self) -> Result<Box<dyn Transcriber>, TranscribeError> {
            Ok(Box::new(Calls))
        }
    }

    #[tokio::test]
    async fn a_partial_after_a_settled_prefix_reads_only_the_rest_with_the_prefix_as_context() {
        let settings = EngineSettings { workers: 1, queue_depth: 4, queue_wait_ms: 1000, ..Default::default() };
        let engine = Engine::start(Arc::new(CallsFactory), &settings).unwrap();
        let prefix = AgreedPrefix {
            pieces: vec![TextPiece { text: "We paged the on-call.".into(), start_ms: 0, end_ms: 1_900 }],
            cut_ms: 2_000,
        };
        let clip = vec![0.0; 16 * 5_000];
        let pieces = engine.transcribe_stretch(clip.clone(), JobKind::Partial, Some(prefix)).await.unwrap();
        let texts: Vec<_> = pieces.iter().map(|p| (p.text.as_str(), p.start_ms)).collect();
        assert_eq!(texts, [("We paged the on-call.", 0), ("after 'We paged the on-call.' 48000", 2_000)]);
        // Without a prefix, the whole clip.
        let pieces = engine.transcribe_stretch(clip, JobKind::Partial, None).await.unwrap();
        assert_eq!(pieces[0].text, "whole 80000");
    }

    #[tokio::test]
    async fn dropping_the_engine_stops_the_workers() {
        let counter = Arc::new(AtomicUsize::new(0));
        let (engine, _) = engine(2, 1000);
        engine.transcribe(vec![0.0], JobKind::Final).await.unwrap();
        counter.fetch_add(1, Ordering::SeqCst);
        let shared = Arc::downgrade(&engine.owner.shared);
        drop(engine);
        for _ in 0..100 {
            if shared.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the worker still holds the queue after the engine was dropped");
    }

    /// Remembers the draft scope each call was made in.
    struct Scopes(Arc<Mutex<Vec<Option<u64>>>>, Option<u64>);
    impl Transcriber for Scopes {
        fn transcribe(&mut self, _audio: &[f32]) -> Result<Vec<TextPiece>, TranscribeError> {
            self.0.lock().unwrap().push(self.1);
            Ok(Vec::new())
        }
        fn set_draft_scope(&mut self, scope: Option<u64>) {
            self.1 = scope;
        }
    }
    struct ScopesFactory(Arc<Mutex<Vec<Option<u64>>>>);
    impl TranscriberFactory for ScopesFactory {
        fn create(&self) -> Result<Box<dyn Transcriber>, TranscribeError> {
            Ok(Box::new(Scopes(self.0.clone(), Some(99))))
        }
    }

    #[tokio::test]
    async fn each_job_is_read_in_the_draft_scope_of_the_handle_that_sent_it() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let settings = EngineSettings { workers: 1, ..Default::default() };
        let engine = Engine::start(Arc::new(ScopesFactory(seen.clone())), &settings).unwrap();
        engine.with_draft_scope(Some(7)).transcribe(vec![0.0], JobKind::Final).await.unwrap();
        engine.transcribe(vec![0.0], JobKind::Final).await.unwrap();
        engine.with_draft_scope(Some(8)).transcribe(vec![0.0], JobKind::Partial).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![Some(7), None, Some(8)]);
    }
}
