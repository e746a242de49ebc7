//! Capacity and memory, measured on the real server binary (`viva serve`, started here as a
//! child process on a scratch SQLite database) so its resident memory is its own.
//!
//! Capacity: for each candidate count, [`crate::load`] streams answers in real time and the run
//! "holds" when every candidate is admitted, no segment is lost and `end_answer`→`answer` stays
//! within the targets (median ≤ 300 ms, max ≤ 800 ms). The largest count that holds is the
//! capacity; a last run with the server limited to it and two candidates more checks that the
//! extra ones are refused at once while the admitted keep their latency.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use super::BenchArgs;
use crate::client::{create_session, StreamClient};
use crate::load::{run_load, Clip, LoadPlan, LoadReport};

const TARGET_MEDIAN_MS: f64 = 300.0;
const TARGET_MAX_MS: f64 = 800.0;

/// `viva serve` in a child process, stopped when dropped.
pub struct ChildServer {
    child: Child,
    pub http: String,
    _dir: tempfile::TempDir,
}

impl ChildServer {
    pub async fn start(args: &BenchArgs, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("serve")
            .env("VIVA_BIND", format!("127.0.0.1:{port}"))
            .env("VIVA_DATABASE", format!("sqlite://{}", dir.path().join("bench.db").display()))
            .env("VIVA_MODEL", &args.model)
            .env("VIVA_GUIDES", &args.guides)
            .env("VIVA_WORKERS", args.engine.workers.to_string())
            .env("VIVA_THREADS_PER_WORKER", args.engine.threads_per_worker.to_string())
            .env("VIVA_INITIAL_PROMPT", &args.engine.initial_prompt)
            .env("VIVA_TRIM_AUDIO_CTX", args.engine.trim_audio_ctx.to_string())
            .env("VIVA_FLASH_ATTN", args.engine.flash_attn.to_string())
            .env("VIVA_DTW_WORD_TIMES", args.engine.dtw_word_times.to_string())
            .env("VIVA_DRAFT_TOKENS", args.engine.draft_tokens.to_string())
            .env("VIVA_STRETCH_SOFT_MAX_MS", args.limits.stretch_soft_max_ms.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().context("starting viva serve")?;
        let server = Self { child, http: format!("http://127.0.0.1:{port}"), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::get(format!("{}/readyz", server.http)).await {
                if r.status().is_success() {
                    return Ok(server);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the child server did not become ready")
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.child.id())
    }

    /// File descriptors the server process holds open.
    pub fn open_files(&self) -> anyhow::Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))?.count())
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of a process from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_rss_kib(&status).context("no VmRSS line")
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn holds(report: &LoadReport) -> bool {
    report.refused == 0
        && report.failed == 0
        && report.lost_segments() == 0
        && report.percentile(0.5).is_some_and(|m| m <= TARGET_MEDIAN_MS)
        && report.percentile(1.0).is_some_and(|m| m <= TARGET_MAX_MS)
}

fn clips_for_capacity(args: &BenchArgs) -> anyhow::Result<Vec<Clip>> {
    let clips: Vec<Clip> = args
        .files
        .iter()
        .map(|f| Clip::load(f))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .filter(|c| c.samples.len() as u64 <= args.capacity_clip_max_s * 16_000)
        .collect();
    anyhow::ensure!(!clips.is_empty(), "no file is short enough for the capacity runs");
    Ok(clips)
}

pub async fn run_capacity(args: &BenchArgs) -> anyhow::Result<()> {
    let clips = clips_for_capacity(args)?;
    let most = *args.capacity.iter().max().unwrap_or(&1);
    let wide_open =
        [("VIVA_MAX_STREAMS", (most + 8).to_string()), ("VIVA_MAX_CONNECTIONS_PER_ADDRESS", (most + 8).to_string())];
    println!(
        "\n### Capacity: concurrent candidates streaming in real time ({} recordings of {} s at most, cycled; {} answers per candidate; {} ms of silence before end_answer)\n",
        clips.len(),
        args.capacity_clip_max_s,
        args.capacity_answers,
        args.tail_ms
    );
    println!("{} holds |", LoadReport::HEADER);
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    let answers = args.capacity_answers as usize;
    let mut capacity = 0;
    let mut counts = args.capacity.clone();
    counts.sort_unstable();
    for n in counts {
        let server = ChildServer::start(args, &wide_open).await?;
        let plan = LoadPlan { streams: n, answers, tail_ms: args.tail_ms, ..Default::default() };
        let report = run_load(&server.http, &plan, &clips).await?;
        let ok = holds(&report);
        print_row(&report, if ok { "yes" } else { "no" });
        if ok {
            capacity = n;
        }
    }
    println!("\ncapacity (largest count that holds): {capacity}");
    if capacity > 0 {
        // At capacity, with two candidates more than the server admits.
        let limited = [("VIVA_MAX_STREAMS", capacity.to_string())];
        let server = ChildServer::start(args, &limited).await?;
        let plan = LoadPlan { streams: capacity + 2, answers, tail_ms: args.tail_ms, ..Default::default() };
        let report = run_load(&server.http, &plan, &clips).await?;
        println!("\nwith VIVA_MAX_STREAMS={capacity} and {} candidates:\n", capacity + 2);
        print_row(&report, if report.refused == 2 && holds_admitted(&report) { "yes" } else { "no" });
    }
    Ok(())
}

/// Like [`holds`], for a run where some candidates were meant to be refused.
fn holds_admitted(report: &LoadReport) -> bool {
    let admitted = LoadReport { refused: 0, ..report.clone() };
    holds(&admitted)
}

fn print_row(r: &LoadReport, holds: &str) {
    println!("{} {holds} |", r.row());
    for failure in &r.failures {
        println!("  failure: {failure}");
    }
}

/// Resident memory: per idle stream (a candidate connected, asked a question, silent), and per
/// extra whisper worker (a server with one more worker, otherwise idle).
pub async fn run_memory(args: &BenchArgs) -> anyhow::Result<()> {
    let k = args.idle;
    let open = [
        ("VIVA_MAX_STREAMS", (k + 8).to_string()),
        ("VIVA_MAX_CONNECTIONS_PER_ADDRESS", (k + 8).to_string()),
        // Every idle stream is a session created and an upgrade, all at once from one address.
        ("VIVA_RATE_LIMIT_BURST", (4 * k + 50).to_string()),
        ("VIVA_WORKERS", "1".to_string()),
    ];
    let server = ChildServer::start(args, &open).await?;
    let ws = server.http.replacen("http", "ws", 1);
    // One stream first, so what every stream shares (buffers, the first task) is not counted.
    let mut clients = vec![idle_stream(&server.http, &ws).await?];
    settle().await;
    let before = server.rss_kib()?;
    for _ in 0..k {
        clients.push(idle_stream(&server.http, &ws).await?);
    }
    settle().await;
    let after = server.rss_kib()?;
    drop(clients);
    drop(server);
    let per_stream = (after.saturating_sub(before)) as f64 / k as f64;

    let mut by_workers = Vec::new();
    for workers in [1usize, 2] {
        let env = [("VIVA_WORKERS", workers.to_string()), ("VIVA_THREADS_PER_WORKER", "1".to_string())];
        let server = ChildServer::start(args, &env).await?;
        // One short transcription, so each worker's buffers are allocated as in use.
        let session = create_session(&server.http, &json!({"questions": [{"text": "Warm-up."}]})).await?;
        let ws = server.http.replacen("http", "ws", 1);
        let mut client = StreamClient::connect(&ws, &session).await?;
        client.start_s16(16_000).await?;
        client.recv_until("question", Duration::from_secs(10)).await?;
        let clip = Clip::load(&args.files[0])?;
        client.send_audio(&clip.samples[..clip.samples.len().min(16_000 * 5)], 16_000, 100, false).await?;
        client.send_json(json!({"type": "end_answer"})).await?;
        client.recv_until("answer", Duration::from_secs(60)).await?;
        settle().await;
        by_workers.push(server.rss_kib()?);
    }
    println!("\n### Memory (resident, `VmRSS` of the server process)\n");
    println!("| measure | KiB |");
    println!("| --- | ---: |");
    println!("| server with 1 idle stream (model loaded once) | {before} |");
    println!("| server with {} idle streams | {after} |", k + 1);
    println!("| **per extra idle stream** | **{per_stream:.0}** |");
    println!("| server, 1 worker, after one answer | {} |", by_workers[0]);
    println!("| server, 2 workers, after one answer | {} |", by_workers[1]);
    println!("| **per extra worker state** | **{}** |", by_workers[1] as i64 - by_workers[0] as i64);
    Ok(())
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(1_500)).await;
}

/// A candidate connected and asked a question, sending nothing more.
async fn idle_stream(http: &str, ws: &str) -> anyhow::Result<StreamClient> {
    let session = create_session(http, &json!({"questions": [{"text": "Idle question."}]})).await?;
    let mut client = StreamClient::connect(ws, &session).await?;
    client.start_s16(16_000).await?;
    client.recv_until("question", Duration::from_secs(10)).await?;
    Ok(client)
}

/// Soak: rounds of candidates streaming in real time, every other answer dropping its connection
/// half-way and resuming, for `--soak-minutes`. The server's resident memory and open files are
/// read after a warm-up round (the baseline: allocator arenas and pools filled) and after each
/// round; once the run is over they must come back to the baseline.
pub async fn run_soak(args: &BenchArgs) -> anyhow::Result<()> {
    let clips = clips_for_capacity(args)?;
    let server = ChildServer::start(args, &[]).await?;
    let plan = LoadPlan { streams: 4, answers: 2, drop_every: 2, think_ms: 500, ..Default::default() };
    let started = Instant::now();
    let warm_up = run_load(&server.http, &plan, &clips).await?;
    settle().await;
    let (base_rss, base_files) = (server.rss_kib()?, server.open_files()?);
    println!(
        "\n### Soak: {} min of rounds of 4 candidates × 2 answers, every 2nd answer dropped and resumed\n",
        args.soak_minutes
    );
    println!(
        "| round | answers | dropped and resumed | failed | lost segments | p50 ms | max ms | RSS KiB | open files |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let row = |round: &str, r: &LoadReport, rss: u64, files: usize| {
        let p = |q| r.percentile(q).map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
        println!(
            "| {round} | {} | {} | {} | {} | {} | {} | {rss} | {files} |",
            r.answers.len(),
            r.answers.iter().filter(|a| a.dropped_and_resumed).count(),
            r.failed,
            r.lost_segments(),
            p(0.5),
            p(1.0)
        );
    };
    row("warm-up (baseline)", &warm_up, base_rss, base_files);
    let (mut round, mut answers, mut lost, mut failed) = (0, 0, 0, 0);
    while started.elapsed() < Duration::from_secs(args.soak_minutes * 60) {
        round += 1;
        let report = run_load(&server.http, &plan, &clips).await?;
        answers += report.answers.len();
        lost += report.lost_segments();
        failed += report.failed;
        row(&round.to_string(), &report, server.rss_kib()?, server.open_files()?);
    }
    // Dropped answers resume at once here, so nothing waits for the resume window; give the
    // server a moment to close what the last round left.
    settle().await;
    let (end_rss, end_files) = (server.rss_kib()?, server.open_files()?);
    println!(
        "\nafter {round} rounds ({answers} answers, {failed} failed, {lost} lost segments): RSS {end_rss} KiB ({:+} KiB against the baseline), open files {end_files} ({:+})",
        end_rss as i64 - base_rss as i64,
        end_files as i64 - base_files as i64
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_rss_kib;

    #[test]
    fn reads_vmrss() {
        assert_eq!(parse_rss_kib("Name:\tviva\nVmRSS:\t  123456 kB\nVmSwap: 0 kB\n"), Some(123_456));
        assert_eq!(parse_rss_kib("Name:\tviva\n"), None);
    }
}
