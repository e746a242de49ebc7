//! Replays every file of the fuzz corpora (`fuzz/corpus/<target>/`) through the same checks the
//! fuzzers run (`fuzz/src/checks.rs`), on stable and against the real crate: what the fuzzers
//! once found stays fixed without a nightly toolchain in CI.

#[path = "../fuzz/src/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{target}: only {} corpus files", files.len());
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} fails its check", file.display());
    }
    eprintln!("{target}: {} inputs replayed", files.len());
}

#[test]
fn client_message_corpus() {
    replay("client_message", checks::client_message);
}

#[test]
fn audio_frame_corpus() {
    replay("audio_frame", checks::audio_frame);
}

#[test]
fn guide_loader_corpus() {
    replay("guide_loader", checks::guide_loader);
}

/// The seeds stand for what they claim: each kind of bad client text gets its own code.
#[test]
fn seeds_cover_every_decode_error_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/client_message");
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        if let Err(e) = viva::protocol::decode_client_message(&text) {
            seen.insert(e.code());
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), {
        let mut codes = checks::DECODE_CODES.to_vec();
        codes.sort();
        codes
    });
}
