//! The command line: a corrupt model is refused before whisper.cpp sees it, and `viva review`
//! reports on a recording as a live answer would.

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

#[test]
fn review_reports_on_a_recording() {
    // tiny.en mishears espeak's "declared an incident" ("declared unincident" with 8-bit
    // weights, "declare that incident" with f16); this test is about the command, not that phrase.
    let (speech, rate) = speak("We declared a major incident and posted updates to support every thirty minutes.");
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("answer.wav");
    let spec =
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut writer = hound::WavWriter::create(&wav, spec).unwrap();
    for s in concat(&[&silence(1_000, rate), &speech]) {
        writer.write_sample(s).unwrap();
    }
    writer.finalize().unwrap();
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
