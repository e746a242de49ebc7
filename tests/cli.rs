//! The command line: a corrupt model is refused before whisper.cpp sees it, `viva review`
//! reports on a recording as a live answer would, and `viva bench` interleaves its legs.

mod common;

use std::process::Command;

use common::*;

#[test]
fn serve_refuses_a_truncated_or_corrupt_model_with_a_clear_message() {
    let model = std::fs::read(model_path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("ggml-cut.bin");
    std::fs::write(&truncated, &model[..model.len() / 3]).unwrap();
    let garbage = dir.path().join("ggml-garbage.bin");
    std::fs::write(&garbage, b"this is not a whisper model at all").unwrap();
    for (path, words) in [(&truncated, "truncated"), (&garbage, "ggml")] {
        let out = Command::new(env!("CARGO_BIN_EXE_viva"))
            .args(["serve", "--bind", "127.0.0.1:0", "--database"])
            .arg(format!("sqlite://{}", dir.path().join("x.db").display()))
            .arg("--model")
            .arg(path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("Refusing model") && stderr.to_lowercase().contains(words), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Speaks `text` after `lead_ms` of silence into `answer.wav` in `dir`.
fn spoken_wav(dir: &std::path::Path, text: &str, lead_ms: u64) -> std::path::PathBuf {
    let (speech, rate) = speak(text);
    let path = dir.join("answer.wav");
    let samples = concat(&[&silence(lead_ms, rate), &speech]);
    let spec =
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut writer = hound::WavWriter::create(&path, spec).unwrap();
    for s in samples {
        writer.write_sample(s).unwrap();
    }
    writer.finalize().unwrap();
    path
}

#[test]
fn bench_runs_each_leg_once_a_round_and_reports_the_medians() {
    let dir = tempfile::tempdir().unwrap();
    let wav = spoken_wav(dir.path(), "I would read the logs first, then the metrics.", 500);
    // A stand-in for the peer command: it logs each call and reports a fixed time per file.
    let peer = dir.path().join("peer");
    let script = r#"echo "$@" >> "$PEER_LOG"
for f in "${@:2}"; do echo "{\"file\": \"$f\", \"seconds\": 0.5, \"text\": \"read the logs\"}"; done
"#;
    std::fs::write(&peer, script).unwrap();
    let log = dir.path().join("peer.log");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_viva"))
        .args(["bench", "--no-realtime", "--rounds", "3", "--peer"])
        .arg(&peer)
        .arg("--peer-model")
        .arg(dir.path())
        .arg("--model")
        .arg(model_path())
        .arg("--guides")
        .arg(root.join("guides"))
        .arg(&wav)
        .env("PEER_LOG", &log)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // The peer ran once a round, on the one file.
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls.lines().count(), 3, "{calls}");
    assert!(calls.lines().all(|l| l.ends_with("answer.wav")), "{calls}");
    assert!(stdout.contains("median of 3 interleaved round(s)"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| answer.wav |"))
        .unwrap_or_else(|| panic!("no row for the file: {stdout}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[4], "0.500", "the peer's median time: {row}");
    let viva: f64 = cells[5].parse().unwrap();
    assert!(viva > 0.0, "{row}");
    assert_eq!(cells[7], format!("{:.2}", viva / 0.5), "viva / peer from the medians: {row}");
    let by_round = stdout
        .lines()
        .find(|l| l.starts_with("each round's totals: viva / peer"))
        .unwrap_or_else(|| panic!("no per-round ratios: {stdout}"));
    assert_eq!(by_round.split(',').count(), 3, "{by_round}");
}

#[test]
fn review_reports_on_a_recording() {
    // tiny.en mishears espeak's "declared an incident" ("declared unincident" with 8-bit
    // weights, "declare that incident" with f16); this test is about the command, not that phrase.
    let dir = tempfile::tempdir().unwrap();
    let wav = spoken_wav(
        dir.path(),
        "We declared a major incident and posted updates to support every thirty minutes.",
        1_000,
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_viva"))
        .arg("review")
        .arg(&wav)
        .args(["--question-id", "incident-story", "--json", "--model"])
        .arg(model_path())
        .arg("--guides")
        .arg(root.join("guides"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["type"], "answer");
    let think = answer["timing"]["think_ms"].as_i64().unwrap();
    assert!((think - 1_000).abs() <= 300, "think_ms {think}");
    let covered: Vec<&str> = answer["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "covered")
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(covered.contains(&"incident-communication.declare"), "{covered:?}: {}", answer["transcript"]);
    assert!(covered.contains(&"incident-communication.status-updates"), "{covered:?}");
}
