//! `viva load`: simulated candidates over loopback. Each one creates a session, streams spoken
//! answers in real time over the WebSocket (think-time silence, the recording, optional silence
//! before `end_answer`), reads everything the server sends while it streams, and measures the
//! time from `end_answer` to `answer`. Some may drop their connection mid-answer and resume from
//! the server's `stored` position, as the browser client does. The run is bounded in candidates,
//! answers and wall time, and stops by itself.
//!
//! It speaks only the public contract (PROTOCOL.md), so it can load any viva server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::audio::{read_wav_mono_16k, to_i16};
use crate::bench::word_error_rate;
use crate::client::{create_session, CreatedSession};

const RATE: usize = 16_000;

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Base URL of the server (http://HOST:PORT).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    #[command(flatten)]
    pub plan: LoadPlan,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Spoken answers (WAV, any PCM format); candidate n speaks file n mod count. A `FILE.txt`
    /// beside a WAV is its script, for word error rates.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// The shape of a load run.
#[derive(Debug, Clone, Args)]
pub struct LoadPlan {
    /// Concurrent candidates.
    #[arg(long, default_value_t = 8)]
    pub streams: usize,
    /// Answers each candidate gives (one question each).
    #[arg(long, default_value_t = 1)]
    pub answers: usize,
    /// Silence streamed after each question before the answer starts.
    #[arg(long, default_value_t = 1_000)]
    pub think_ms: u64,
    /// Silence streamed after the answer before `end_answer`.
    #[arg(long, default_value_t = 0)]
    pub tail_ms: u64,
    /// Candidates start this far apart (unset: spread over one second per candidate, capped at
    /// the shortest recording, so answers do not all end at the same moment).
    #[arg(long)]
    pub stagger_ms: Option<u64>,
    /// Every k-th answer drops its connection half-way and resumes (0: never).
    #[arg(long, default_value_t = 0)]
    pub drop_every: usize,
    /// Audio per WebSocket frame, in ms.
    #[arg(long, default_value_t = 100)]
    pub chunk_ms: u64,
    /// The run stops after this long whatever is left (candidates still going count as failed).
    #[arg(long, default_value_t = 900)]
    pub max_seconds: u64,
}

impl Default for LoadPlan {
    fn default() -> Self {
        Self {
            streams: 8,
            answers: 1,
            think_ms: 1_000,
            tail_ms: 0,
            stagger_ms: None,
            drop_every: 0,
            chunk_ms: 100,
            max_seconds: 900,
        }
    }
}

/// A recording a candidate speaks.
#[derive(Debug, Clone)]
pub struct Clip {
    pub name: String,
    pub samples: Arc<Vec<i16>>,
    pub script: Option<String>,
}

impl Clip {
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let audio = read_wav_mono_16k(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self {
            name: path.file_name().unwrap_or_default().to_string_lossy().into_owned(),
            samples: Arc::new(to_i16(&audio)),
            script: std::fs::read_to_string(path.with_extension("txt")).ok(),
        })
    }
}

/// What happened to one answer.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerOutcome {
    pub clip: String,
    pub latency_ms: f64,
    /// `segment` messages that are not in the answer, or answer segments never sent.
    pub lost_segments: usize,
    /// `busy` errors while answering: a stretch the server could not transcribe.
    pub busy_errors: usize,
    pub dropped_and_resumed: bool,
    pub word_error_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct LoadReport {
    pub streams: usize,
    /// Candidates the server turned away (`busy` / 1013, or 429 before the upgrade).
    pub refused: usize,
    /// Candidates that failed for any other reason (with the first few reasons).
    pub failed: usize,
    pub failures: Vec<String>,
    pub answers: Vec<AnswerOutcome>,
    pub wall_seconds: f64,
}

impl LoadReport {
    pub fn latencies(&self) -> Vec<f64> {
        let mut l: Vec<f64> = self.answers.iter().map(|a| a.latency_ms).collect();
        l.sort_by(f64::total_cmp);
        l
    }

    pub fn percentile(&self, p: f64) -> Option<f64> {
        percentile(&self.latencies(), p)
    }

    pub fn lost_segments(&self) -> usize {
        self.answers.iter().map(|a| a.lost_segments + a.busy_errors).sum()
    }

    pub fn mean_wer(&self) -> Option<f64> {
        let w: Vec<f64> = self.answers.iter().filter_map(|a| a.word_error_rate).collect();
        (!w.is_empty()).then(|| w.iter().sum::<f64>() / w.len() as f64)
    }

    /// The report as one Markdown table row (the columns of [`LoadReport::HEADER`]).
    pub fn row(&self) -> String {
        let p = |q| self.percentile(q).map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            self.streams,
            self.refused,
            self.failed,
            self.answers.len(),
            p(0.5),
            p(0.9),
            p(0.99),
            p(1.0),
            self.lost_segments(),
            self.mean_wer().map(|w| format!("{w:.3}")).unwrap_or_else(|| "-".into()),
            self.wall_seconds
        )
    }

    pub const HEADER: &'static str =
        "| candidates | refused | failed | answers | p50 ms | p90 ms | p99 ms | max ms | lost segments | mean WER | wall s |";

    pub fn print(&self) {
        println!("{}", Self::HEADER);
        println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        println!("{}", self.row());
        for failure in &self.failures {
            println!("failure: {failure}");
        }
    }
}

/// Nearest-rank percentile of sorted values (`p` in 0..=1).
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Segments the client saw as `segment` messages against those in the final answer: each one
/// missing on either side is lost (a segment is final, so it must reach both). After a dropped
/// connection, segments finished while the client was away are in the answer but were never
/// streamed, by the contract; then only streamed segments missing from the answer count.
pub fn count_lost(streamed: &[(String, u64)], answer: &[(String, u64)], connection_dropped: bool) -> usize {
    let missing_from_answer = streamed.iter().filter(|s| !answer.contains(s)).count();
    let never_streamed = answer.iter().filter(|s| !streamed.contains(s)).count();
    missing_from_answer + if connection_dropped { 0 } else { never_streamed }
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let clips = args.files.iter().map(|f| Clip::load(f)).collect::<anyhow::Result<Vec<_>>>()?;
    let report = run_load(&args.url, &args.plan, &clips).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print();
    }
    Ok(())
}

/// Runs the plan against the server at `http_base` and gathers the report.
pub async fn run_load(http_base: &str, plan: &LoadPlan, clips: &[Clip]) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(!clips.is_empty(), "give at least one recording");
    anyhow::ensure!(plan.streams > 0 && plan.answers > 0, "streams and answers must be at least 1");
    let ws_base = http_base.replacen("http", "ws", 1);
    let shortest_ms = clips.iter().map(|c| c.samples.len() as u64 * 1000 / RATE as u64).min().unwrap_or(0);
    let stagger = plan.stagger_ms.unwrap_or_else(|| 1_000.min(shortest_ms / plan.streams as u64));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(plan.max_seconds);
    let mut tasks = Vec::new();
    for n in 0..plan.streams {
        let clip = clips[n % clips.len()].clone();
        let (http, ws, plan) = (http_base.to_string(), ws_base.clone(), plan.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(stagger * n as u64)).await;
            let run = candidate(&http, &ws, &plan, n, &clip);
            match tokio::time::timeout_at(deadline.into(), run).await {
                Ok(outcome) => outcome,
                Err(_) => Err(CandidateError::Failed("the run's time ran out".into())),
            }
        }));
    }
    let mut report = LoadReport { streams: plan.streams, ..Default::default() };
    for task in tasks {
        match task.await.context("a candidate panicked")? {
            Ok(answers) => report.answers.extend(answers),
            Err(CandidateError::Refused) => report.refused += 1,
            Err(CandidateError::Failed(why)) => {
                report.failed += 1;
                if report.failures.len() < 5 {
                    report.failures.push(why);
                }
            }
        }
    }
    report.wall_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

#[derive(Debug)]
enum CandidateError {
    Refused,
    Failed(String),
}

impl From<anyhow::Error> for CandidateError {
    fn from(e: anyhow::Error) -> Self {
        Self::Failed(format!("{e:#}"))
    }
}

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;
type Source = SplitStream<WebSocketStream<MaybeTlsStream<TcpStream>>>;

/// One candidate's whole session.
async fn candidate(
    http: &str,
    ws: &str,
    plan: &LoadPlan,
    n: usize,
    clip: &Clip,
) -> Result<Vec<AnswerOutcome>, CandidateError> {
    let questions: Vec<Value> = (0..plan.answers)
        .map(|i| json!({"text": format!("Load question {i}: tell me about an incident."), "competencies": ["incident-communication"]}))
        .collect();
    let session = create_session(http, &json!({ "questions": questions })).await.map_err(refusal_or_failure)?;
    let mut conn = Conn::open(ws, &session).await?;
    conn.expect_question().await?;
    let mut outcomes = Vec::new();
    for answer in 0..plan.answers {
        let drop_now = plan.drop_every > 0 && (n * plan.answers + answer + 1).is_multiple_of(plan.drop_every);
        let outcome = conn.answer(ws, &session, plan, clip, drop_now).await?;
        outcomes.push(outcome);
        if answer + 1 < plan.answers {
            conn.send(json!({"type": "next"})).await?;
            conn.expect_question().await?;
        }
    }
    conn.send(json!({"type": "finish"})).await?;
    conn.until("complete", Duration::from_secs(30)).await?;
    Ok(outcomes)
}

fn refusal_or_failure(e: anyhow::Error) -> CandidateError {
    let text = format!("{e:#}");
    if text.contains("429") || text.contains("busy") || text.contains("503") {
        CandidateError::Refused
    } else {
        CandidateError::Failed(text)
    }
}

/// One WebSocket connection, with what it has heard.
struct Conn {
    sink: Sink,
    source: Source,
    /// `(text, start_ms)` of every `segment` message of the current answer.
    segments: Vec<(String, u64)>,
    busy_errors: usize,
    stored_ms: u64,
}

impl Conn {
    async fn open(ws: &str, session: &CreatedSession) -> Result<Self, CandidateError> {
        let url = format!("{ws}/v1/sessions/{}/stream?token={}", session.id, session.token);
        let (stream, _) = match tokio_tungstenite::connect_async(url).await {
            Ok(ok) => ok,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) if response.status() == 429 => {
                return Err(CandidateError::Refused)
            }
            Err(e) => return Err(CandidateError::Failed(format!("connect: {e}"))),
        };
        let (mut sink, source) = stream.split();
        let start = json!({"type": "start", "audio": {"encoding": "pcm_s16le", "sample_rate": RATE, "channels": 1}});
        sink.send(Message::Text(start.to_string().into())).await.map_err(|e| CandidateError::Failed(e.to_string()))?;
        Ok(Self { sink, source, segments: Vec::new(), busy_errors: 0, stored_ms: 0 })
    }

    async fn send(&mut self, value: Value) -> anyhow::Result<()> {
        self.sink.send(Message::Text(value.to_string().into())).await?;
        Ok(())
    }

    /// The question (after `start` or `next`); a `busy` error here means the server refused us.
    async fn expect_question(&mut self) -> Result<(), CandidateError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.next_message(deadline).await? {
                Some(m) if m["type"] == "question" => return Ok(()),
                Some(m) if m["type"] == "error" && m["code"] == "busy" => return Err(CandidateError::Refused),
                Some(m) if m["type"] == "error" => return Err(CandidateError::Failed(format!("refused: {m}"))),
                Some(_) => continue,
                None => return Err(CandidateError::Failed("closed before the question".into())),
            }
        }
    }

    /// Reads one message, noting segments, `stored` and `busy` errors; `None` when closed.
    async fn next_message(&mut self, deadline: Instant) -> anyhow::Result<Option<Value>> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(frame) = tokio::time::timeout(left, self.source.next()).await.context("timed out")? else {
                return Ok(None);
            };
            let text = match frame? {
                Message::Text(text) => text,
                Message::Close(_) => return Ok(None),
                _ => continue,
            };
            let message: Value = serde_json::from_str(&text)?;
            match message["type"].as_str() {
                Some("segment") => self.segments.push(segment_key(&message)),
                Some("stored") => self.stored_ms = message["audio_ms"].as_u64().unwrap_or(0),
                Some("error") if message["code"] == "busy" => self.busy_errors += 1,
                _ => {}
            }
            return Ok(Some(message));
        }
    }

    async fn until(&mut self, kind: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_message(deadline).await? {
                Some(m) if m["type"] == kind => return Ok(m),
                Some(m) if m["type"] == "error" && m["fatal"] == true => bail!("fatal error waiting for {kind}: {m}"),
                Some(_) => continue,
                None => bail!("closed while waiting for {kind}"),
            }
        }
    }

    /// Streams one answer in real time (reading all the while) and times `end_answer`→`answer`.
    async fn answer(
        &mut self,
        ws: &str,
        session: &CreatedSession,
        plan: &LoadPlan,
        clip: &Clip,
        drop_half_way: bool,
    ) -> Result<AnswerOutcome, CandidateError> {
        let silence = |ms: u64| vec![0i16; (ms as usize) * RATE / 1000];
        let mut audio = silence(plan.think_ms);
        audio.extend_from_slice(&clip.samples);
        audio.extend(silence(plan.tail_ms));
        self.segments.clear();
        self.busy_errors = 0;
        self.stored_ms = 0;
        let chunk = (plan.chunk_ms as usize * RATE / 1000).max(1);
        let mut sent = 0usize;
        let mut catch_up_to = 0usize;
        if drop_half_way {
            sent = self.stream(&audio[..audio.len() / 2], 0, 0, chunk).await?;
            // Let a `stored` or two arrive, then vanish without a closing handshake.
            let _ = self.until("stored", Duration::from_secs(5)).await;
            let heard = std::mem::take(&mut self.segments);
            let busy = self.busy_errors;
            self.reconnect(ws, session).await?;
            self.segments = heard;
            self.busy_errors += busy;
            // Resume from what the server holds, as the browser does: what it lacks goes at
            // once, the rest in real time.
            catch_up_to = sent;
            sent = (self.stored_ms as usize * RATE / 1000).min(sent);
        }
        self.stream(&audio, sent, catch_up_to, chunk).await?;
        self.send(json!({"type": "end_answer"})).await?;
        let ended = Instant::now();
        let answer = self.until("answer", Duration::from_secs(120)).await?;
        let latency_ms = ended.elapsed().as_secs_f64() * 1000.0;
        let in_answer: Vec<(String, u64)> =
            answer["segments"].as_array().map(|s| s.iter().map(segment_key).collect()).unwrap_or_default();
        let transcript = answer["transcript"].as_str().unwrap_or_default();
        Ok(AnswerOutcome {
            clip: clip.name.clone(),
            latency_ms,
            lost_segments: count_lost(&self.segments, &in_answer, drop_half_way),
            busy_errors: self.busy_errors,
            dropped_and_resumed: drop_half_way,
            word_error_rate: clip.script.as_deref().map(|s| word_error_rate(s, transcript)),
        })
    }

    /// Sends `audio[from..]`: what lies before `catch_up_to` at once, the rest paced in real
    /// time, reading whatever arrives meanwhile. Returns the position reached.
    async fn stream(
        &mut self,
        audio: &[i16],
        from: usize,
        catch_up_to: usize,
        chunk: usize,
    ) -> Result<usize, CandidateError> {
        let started = tokio::time::Instant::now();
        let paced_from = catch_up_to.max(from);
        let mut position = from;
        let mut due = started;
        while position < audio.len() {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {
                    let end = (position + chunk).min(audio.len());
                    let bytes: Vec<u8> = audio[position..end].iter().flat_map(|s| s.to_le_bytes()).collect();
                    self.sink.send(Message::Binary(bytes.into())).await.map_err(|e| CandidateError::Failed(format!("send: {e}")))?;
                    position = end;
                    let paced = position.saturating_sub(paced_from) as u64;
                    due = started + Duration::from_micros(paced * 1_000_000 / RATE as u64);
                }
                message = self.next_message(Instant::now() + Duration::from_secs(3600)) => {
                    match message? {
                        Some(m) if m["type"] == "error" && m["fatal"] == true => {
                            return Err(CandidateError::Failed(format!("fatal error while streaming: {m}")))
                        }
                        Some(_) => {}
                        None => return Err(CandidateError::Failed("closed while streaming".into())),
                    }
                }
            }
        }
        Ok(position)
    }

    /// A new connection to the same session: `start`, then the question again and `stored`.
    /// The old stream's lease may take a moment to be released: `stream_in_use` is retried.
    async fn reconnect(&mut self, ws: &str, session: &CreatedSession) -> Result<(), CandidateError> {
        let _ = self.sink.close().await;
        for _ in 0..50 {
            let mut fresh = Conn::open(ws, session).await?;
            match fresh.until("stored", Duration::from_secs(10)).await {
                Ok(stored) => {
                    self.sink = fresh.sink;
                    self.source = fresh.source;
                    self.stored_ms = stored["audio_ms"].as_u64().unwrap_or(0);
                    return Ok(());
                }
                Err(e) if format!("{e:#}").contains("stream_in_use") => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => return Err(CandidateError::Failed(format!("resume: {e:#}"))),
            }
        }
        Err(CandidateError::Failed("the session stayed in use after the drop".into()))
    }
}

fn segment_key(segment: &Value) -> (String, u64) {
    (segment["text"].as_str().unwrap_or_default().to_string(), segment["start_ms"].as_u64().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(percentile(&v, 0.5), Some(20.0));
        assert_eq!(percentile(&v, 0.9), Some(40.0));
        assert_eq!(percentile(&v, 1.0), Some(40.0));
        assert_eq!(percentile(&v, 0.0), Some(10.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn a_segment_missing_on_either_side_is_lost() {
        let a = ("we paged".to_string(), 100);
        let b = ("the on-call".to_string(), 900);
        let c = ("engineer".to_string(), 1500);
        assert_eq!(count_lost(&[a.clone(), b.clone()], &[a.clone(), b.clone()], false), 0);
        assert_eq!(count_lost(std::slice::from_ref(&a), &[a.clone(), b.clone()], false), 1);
        assert_eq!(count_lost(&[a.clone(), c.clone()], &[a.clone(), b.clone()], false), 2);
        // Finished while the client was away: in the answer, never streamed, not lost.
        assert_eq!(count_lost(std::slice::from_ref(&a), &[a.clone(), b.clone()], true), 0);
        assert_eq!(count_lost(&[a.clone(), c.clone()], &[a.clone(), b.clone()], true), 1);
    }
}
