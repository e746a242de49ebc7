//! What each fuzz target checks, beyond "does not panic". Shared word for word by the fuzzers
//! (`fuzz/fuzz_targets/*`) and the corpus replay on stable (`tests/fuzz_corpora.rs`), which is
//! why it only names viva's API as `viva::…`.

use std::path::Path;

use viva::audio::{decode_frame, StreamResampler, SAMPLE_RATE};
use viva::guide::{parse_guide, GuideError};
use viva::protocol::{
    decode_client_message, AudioSpec, ClientMessage, Encoding, Segment, ServerMessage, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE,
};
use viva::scoring::Scorer;

/// The stable error codes of client text frames (PROTOCOL.md, "Bad input").
pub const DECODE_CODES: &[&str] =
    &["malformed_json", "missing_type", "unknown_type", "unsupported_audio", "bad_message"];

/// One client text frame. WebSocket text frames are UTF-8 (the socket layer refuses others),
/// so other bytes are not a decoder input.
pub fn client_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match decode_client_message(text) {
        Ok(ClientMessage::Start { audio, .. }) => {
            assert!((MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&audio.sample_rate), "{audio:?}");
            assert!((1..=2).contains(&audio.channels), "{audio:?}");
            // What the server builds from an accepted format must not panic either.
            StreamResampler::new(audio.sample_rate);
        }
        Ok(_) => {}
        Err(error) => {
            assert!(DECODE_CODES.contains(&error.code()), "unstable code {:?}", error.code());
            // The message echoes at most a short piece of the input, and serialises.
            let message = error.to_string();
            assert!(message.chars().count() <= 200, "error message of {} chars", message.chars().count());
            let reply = ServerMessage::error(error.code(), message, false).to_json();
            assert!(serde_json::from_str::<serde_json::Value>(&reply).is_ok());
        }
    }
}

/// The format a fuzz input asks for, from its first 3 bytes: bit 0 of byte 0 the encoding,
/// bit 1 the channels; bytes 1–2 the rate (top bit set: a common rate, else any allowed rate).
pub fn audio_spec(header: [u8; 3]) -> AudioSpec {
    const COMMON: [u32; 8] = [8_000, 11_025, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000];
    let encoding = if header[0] & 1 == 0 { Encoding::PcmS16le } else { Encoding::PcmF32le };
    let channels = 1 + u16::from(header[0] >> 1 & 1);
    let selector = u16::from_le_bytes([header[1], header[2]]);
    let sample_rate = if selector & 0x8000 != 0 {
        COMMON[usize::from(selector & 7)]
    } else {
        MIN_SAMPLE_RATE + u32::from(selector) % (MAX_SAMPLE_RATE - MIN_SAMPLE_RATE + 1)
    };
    AudioSpec { encoding, sample_rate, channels }
}

/// One binary audio frame in the format of [`audio_spec`], then the stream's conversion to
/// 16 kHz: byte 3 says where to cut the decoded audio into two pushes, the rest is the frame.
pub fn audio_frame(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let spec = audio_spec([data[0], data[1], data[2]]);
    let frame = &data[4..];
    let frame_bytes = spec.encoding.bytes_per_sample() * usize::from(spec.channels);
    let samples = match decode_frame(&spec, frame) {
        Ok(samples) => samples,
        Err(_) => {
            assert_ne!(frame.len() % frame_bytes, 0, "a whole frame was refused");
            return;
        }
    };
    assert_eq!(samples.len(), frame.len() / frame_bytes);
    assert!(samples.iter().all(|s| s.is_finite() && (-1.0..=1.0).contains(s)), "decoded sample out of range");

    let cut = samples.len() * usize::from(data[3]) / 255;
    let mut resampler = StreamResampler::new(spec.sample_rate);
    let mut out = resampler.push(&samples[..cut]);
    out.extend(resampler.push(&samples[cut..]));
    out.extend(resampler.flush());
    // The answer's length is kept exactly, so times and stored audio match what was sent.
    let expected = expected_16k_len(samples.len() as u64, spec.sample_rate);
    assert_eq!(out.len() as u64, expected, "{spec:?}: {} samples in", samples.len());
    assert!(out.iter().all(|s| s.is_finite() && (-1.0..=1.0).contains(s)), "resampled sample out of range");
    if spec.sample_rate == SAMPLE_RATE {
        assert_eq!(out, samples, "16 kHz must pass through unchanged");
    }
}

/// Samples at 16 kHz for `input` samples at `rate`, rounded to nearest.
pub fn expected_16k_len(input: u64, rate: u32) -> u64 {
    (input * u64::from(SAMPLE_RATE) + u64::from(rate) / 2) / u64::from(rate)
}

/// Guide text as an operator might write it: parsed and validated; a guide that passes must
/// compile into a scorer (the loader promises the scorer never meets bad data) and score.
pub fn guide_loader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("fuzz.toml");
    let guide = match parse_guide(text, path) {
        Ok(guide) => guide,
        Err(error) => {
            let line = match &error {
                GuideError::Syntax { line, .. } | GuideError::Invalid { line, .. } => *line,
                GuideError::Read { .. } => panic!("parsing text cannot fail to read"),
            };
            assert!((1..=text.lines().count() + 1).contains(&line), "line {line} outside the text");
            assert!(error.to_string().starts_with("fuzz.toml:"), "error does not name the file: {error}");
            return;
        }
    };
    assert!(!guide.questions.is_empty());
    assert!(guide.questions.windows(2).all(|w| w[0].order <= w[1].order), "questions not sorted by order");
    for question in &guide.questions {
        for competency in &question.competencies {
            assert!(guide.competency(competency).is_some(), "dangling competency {competency}");
        }
    }
    let scorer = Scorer::new(&guide).unwrap_or_else(|e| panic!("a validated guide did not compile: {e}"));
    let answer = [Segment {
        text: "We declared an incident, um, and posted updates every 30 minutes to support.".into(),
        start_ms: 0,
        end_ms: 4_000,
    }];
    let ids: Vec<String> = guide.competencies.iter().map(|c| c.id.clone()).collect();
    let items = scorer.score_answer(&ids, &answer);
    assert_eq!(items.len(), guide.competencies.iter().map(|c| c.items.len()).sum::<usize>());
}
