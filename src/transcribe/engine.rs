//! The worker pool: N threads, each owning one [`Transcriber`], fed by one bounded queue.
//! Replies travel back on oneshot channels; a job whose requester has gone is skipped.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;

use super::{TextPiece, TranscribeError, TranscriberFactory};
use crate::config::EngineSettings;

/// Partial hypotheses are a nicety: under load they are dropped rather than queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Final,
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

struct Job {
    audio: Vec<f32>,
    reply: oneshot::Sender<Result<Vec<TextPiece>, TranscribeError>>,
}

#[derive(Clone)]
pub struct Engine {
    queue: flume::Sender<Job>,
    queue_wait: Duration,
    workers: usize,
}

impl Engine {
    /// Starts the workers and waits until each has built its transcriber, so a bad model fails
    /// here, at start-up, rather than on the first answer.
    pub fn start(factory: Arc<dyn TranscriberFactory>, settings: &EngineSettings) -> Result<Self, TranscribeError> {
        let (queue, jobs) = flume::bounded::<Job>(settings.queue_depth.max(1));
        let workers = settings.workers.max(1);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for n in 0..workers {
            let jobs = jobs.clone();
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
                    // Ends when every sender (every Engine clone) is gone.
                    while let Ok(job) = jobs.recv() {
                        if job.reply.is_closed() {
                            continue;
                        }
                        let _ = job.reply.send(transcriber.transcribe(&job.audio));
                    }
                })
                .map_err(|e| TranscribeError::Failed(format!("cannot start worker thread: {e}")))?;
        }
        drop(ready_tx);
        for _ in 0..workers {
            ready_rx.recv().map_err(|_| TranscribeError::Failed("worker died at start".into()))??;
        }
        Ok(Self { queue, queue_wait: Duration::from_millis(settings.queue_wait_ms), workers })
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Jobs waiting for a worker now.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Transcribes 16 kHz mono audio. A final job waits a bounded time for room in the queue;
    /// a partial one is refused at once when the queue is full.
    pub async fn transcribe(&self, audio: Vec<f32>, kind: JobKind) -> Result<Vec<TextPiece>, EngineError> {
        let (reply, response) = oneshot::channel();
        let job = Job { audio, reply };
        match kind {
            JobKind::Partial => self.queue.try_send(job).map_err(|e| match e {
                flume::TrySendError::Full(_) => EngineError::Busy,
                flume::TrySendError::Disconnected(_) => EngineError::Stopped,
            })?,
            JobKind::Final => match tokio::time::timeout(self.queue_wait, self.queue.send_async(job)).await {
                Err(_) => return Err(EngineError::Busy),
                Ok(Err(_)) => return Err(EngineError::Stopped),
                Ok(Ok(())) => {}
            },
        }
        Ok(response.await.map_err(|_| EngineError::Stopped)??)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcribe::Transcriber;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Echoes the audio length, after sleeping for as many ms as the first sample says.
    struct SlowEcho(Arc<AtomicUsize>);
    impl Transcriber for SlowEcho {
        fn transcribe(&mut self, audio: &[f32]) -> Result<Vec<TextPiece>, TranscribeError> {
            thread::sleep(Duration::from_millis(audio[0] as u64));
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(vec![TextPiece { text: format!("{} samples", audio.len()), start_ms: 0, end_ms: 1 }])
        }
    }
    struct Factory(Arc<AtomicUsize>);
    impl TranscriberFactory for Factory {
        fn create(&self) -> Result<Box<dyn Transcriber>, TranscribeError> {
            Ok(Box::new(SlowEcho(self.0.clone())))
        }
    }

    fn engine(depth: usize, wait_ms: u64) -> (Engine, Arc<AtomicUsize>) {
        let done = Arc::new(AtomicUsize::new(0));
        let settings = EngineSettings { workers: 1, queue_depth: depth, queue_wait_ms: wait_ms, ..Default::default() };
        (Engine::start(Arc::new(Factory(done.clone())), &settings).unwrap(), done)
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
        let e1 = engine.clone();
        let busy = tokio::spawn(async move { e1.transcribe(vec![300.0], JobKind::Final).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let e2 = engine.clone();
        let queued = tokio::spawn(async move { e2.transcribe(vec![0.0], JobKind::Final).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(matches!(engine.transcribe(vec![0.0], JobKind::Partial).await, Err(EngineError::Busy)));
        assert!(matches!(engine.transcribe(vec![0.0], JobKind::Final).await, Err(EngineError::Busy)));
        assert!(busy.await.unwrap().is_ok());
        assert!(queued.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn jobs_of_departed_requesters_are_skipped() {
        let (engine, done) = engine(4, 1000);
        let e1 = engine.clone();
        let first = tokio::spawn(async move { e1.transcribe(vec![200.0], JobKind::Final).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Queued behind the first, then abandoned.
        let abandoned =
            tokio::time::timeout(Duration::from_millis(10), engine.transcribe(vec![0.0], JobKind::Final)).await;
        assert!(abandoned.is_err());
        first.await.unwrap().unwrap();
        engine.transcribe(vec![0.0], JobKind::Final).await.unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 2);
    }
}
