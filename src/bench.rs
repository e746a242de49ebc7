//! `viva bench FILE.wav…`: for the same files in one run, the time of one plain whisper call per
//! file (the floor: full 30 s window, no streaming), viva's end-to-end time over a real
//! WebSocket with the audio sent as fast as possible, and the latency from `end_answer` to
//! `answer` when the audio is sent in real time. Ratios are against the plain call.

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
use crate::transcribe::{load_whisper, plain_transcribe, Engine, WhisperFactory};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[arg(long, env = "VIVA_MODEL", default_value = "models/ggml-tiny.en.bin")]
    pub model: PathBuf,
    #[command(flatten)]
    pub engine: EngineSettings,
    #[arg(long, env = "VIVA_GUIDES", default_value = "guides")]
    pub guides: PathBuf,
    /// Skip the real-time pass (it takes as long as the audio).
    #[arg(long)]
    pub no_realtime: bool,
    /// Chunk size the client sends, in ms of audio.
    #[arg(long, default_value_t = 100)]
    pub chunk_ms: u64,
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
    /// The script the WAV was spoken from (`FILE.txt` beside it), for word error rates.
    reference: Option<String>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.files.is_empty(), "give at least one WAV file");
    crate::models::validate_ggml(&args.model).with_context(|| format!("Refusing model {}", args.model.display()))?;
    let context = {
        let model = args.model.clone();
        tokio::task::spawn_blocking(move || load_whisper(&model)).await??
    };
    let clips: Vec<(String, Vec<f32>)> = args
        .files
        .iter()
        .map(|f| Ok((f.file_name().unwrap_or_default().to_string_lossy().into_owned(), read_wav_mono_16k(f)?)))
        .collect::<anyhow::Result<_>>()?;

    // 1. The floor: one plain whisper call per file with whisper.cpp's defaults.
    let plain = {
        let context = context.clone();
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
    let state = AppState::new(store, engine, Limits::default(), checklists);
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
        let latency_ms = if args.no_realtime {
            None
        } else {
            Some(stream_once(&http, &ws, &samples, args.chunk_ms, true).await?.1 * 1000.0)
        };
        rows.push(Row {
            name: name.clone(),
            audio_s: audio.len() as f64 / 16_000.0,
            plain_s,
            viva_s,
            latency_ms,
            plain_text,
            viva_text,
            reference: None,
        });
    }
    for (row, file) in rows.iter_mut().zip(&args.files) {
        row.reference = std::fs::read_to_string(file.with_extension("txt")).ok();
    }
    let _ = stop.send(());
    server.await??;
    print_table(&rows);
    Ok(())
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
    // Faster than real time it is a recording upload, which the audio rate limit does not slow.
    if realtime {
        client.start_s16(16_000).await?;
    } else {
        client.start_upload_s16(16_000).await?;
    }
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

fn print_table(rows: &[Row]) {
    let wer = |r: &Row, text: &str| {
        r.reference.as_deref().map(|reference| format!("{:.3}", word_error_rate(reference, text)))
    };
    println!("| file | audio s | plain whisper s | viva end-to-end s | viva / plain | end_answer→answer ms (real time) | WER plain | WER viva |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        let latency = r.latency_ms.map(|l| format!("{l:.0}")).unwrap_or_else(|| "-".into());
        let (wer_plain, wer_viva) =
            (wer(r, &r.plain_text).unwrap_or("-".into()), wer(r, &r.viva_text).unwrap_or("-".into()));
        println!(
            "| {} | {:.1} | {:.3} | {:.3} | {:.2} | {} | {} | {} |",
            r.name,
            r.audio_s,
            r.plain_s,
            r.viva_s,
            r.viva_s / r.plain_s,
            latency,
            wer_plain,
            wer_viva
        );
    }
    let plain: f64 = rows.iter().map(|r| r.plain_s).sum();
    let viva: f64 = rows.iter().map(|r| r.viva_s).sum();
    let audio: f64 = rows.iter().map(|r| r.audio_s).sum();
    println!("| **total** | {audio:.1} | {plain:.3} | {viva:.3} | {:.2} | | | |", viva / plain);
    let mut latencies: Vec<f64> = rows.iter().filter_map(|r| r.latency_ms).collect();
    if !latencies.is_empty() {
        latencies.sort_by(f64::total_cmp);
        println!(
            "\nend_answer→answer in real time: median {:.0} ms, max {:.0} ms",
            latencies[latencies.len() / 2],
            latencies[latencies.len() - 1]
        );
    }
    println!("\ntranscripts (plain | viva):");
    for r in rows {
        println!("- {}\n  plain: {}\n  viva:  {}", r.name, r.plain_text, r.viva_text);
    }
}

fn normalised_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric() || *c == '\'').collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate: word-level edit distance over the reference length, after lower-casing and
/// dropping punctuation ("thirty" against "30" still counts as an error, for every engine alike).
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (normalised_words(reference), normalised_words(hypothesis));
    if r.is_empty() {
        return if h.is_empty() { 0.0 } else { 1.0 };
    }
    let mut previous: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut current = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let substitution = previous[j] + usize::from(rw != hw);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[h.len()] as f64 / r.len() as f64
}

#[cfg(test)]
mod tests {
    use super::word_error_rate;

    #[test]
    fn word_error_rate_counts_edits_per_reference_word() {
        assert_eq!(word_error_rate("We rolled back the deploy.", "we rolled back the deploy"), 0.0);
        assert_eq!(word_error_rate("a b c d", "a x c"), 0.5);
        assert_eq!(word_error_rate("", ""), 0.0);
    }
}
