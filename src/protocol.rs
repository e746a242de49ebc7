//! The wire messages of `PROTOCOL.md` (v1) and the decoding of client text frames. Pure: no I/O.
//!
//! Decoding is split into stages so that each kind of bad input gets its own stable error code:
//! not JSON at all, JSON without a known `type`, or a known `type` with bad fields.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One question as the client sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub index: usize,
    pub id: String,
    pub text: String,
    pub competencies: Vec<String>,
    pub time_limit_ms: Option<u64>,
}

/// How the client's binary frames are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioSpec {
    pub encoding: Encoding,
    pub sample_rate: u32,
    pub channels: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    PcmS16le,
    PcmF32le,
}

impl Encoding {
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Encoding::PcmS16le => 2,
            Encoding::PcmF32le => 4,
        }
    }
}

/// Messages a client sends as text frames.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// `upload`: the client sends a recording, not a live microphone; it is not held to the
    /// audio rate limit but to a byte cap per answer.
    Start {
        audio: AudioSpec,
        upload: bool,
    },
    EndAnswer,
    Next,
    Skip,
    Finish,
}

/// Why a client text frame was refused; each maps to one stable `code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the message is not valid JSON")]
    MalformedJson,
    #[error("the message has no \"type\" field")]
    MissingType,
    /// Holds the type as quoted by [`echo`].
    #[error("unknown message type {0}")]
    UnknownType(String),
    #[error("unsupported audio format: {0}")]
    UnsupportedAudio(String),
    #[error("bad \"{0}\" message: {1}")]
    BadField(&'static str, String),
}

impl DecodeError {
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::MalformedJson => "malformed_json",
            DecodeError::MissingType => "missing_type",
            DecodeError::UnknownType(_) => "unknown_type",
            DecodeError::UnsupportedAudio(_) => "unsupported_audio",
            DecodeError::BadField(..) => "bad_message",
        }
    }
}

pub const MIN_SAMPLE_RATE: u32 = 8_000;
pub const MAX_SAMPLE_RATE: u32 = 48_000;

/// Decodes one client text frame.
pub fn decode_client_message(text: &str) -> Result<ClientMessage, DecodeError> {
    let value: Value = serde_json::from_str(text).map_err(|_| DecodeError::MalformedJson)?;
    let object = value.as_object().ok_or(DecodeError::MalformedJson)?;
    let kind = object.get("type").and_then(Value::as_str).ok_or(DecodeError::MissingType)?;
    match kind {
        "start" => decode_start(object.get("audio"), object.get("upload")),
        "end_answer" => Ok(ClientMessage::EndAnswer),
        "next" => Ok(ClientMessage::Next),
        "skip" => Ok(ClientMessage::Skip),
        "finish" => Ok(ClientMessage::Finish),
        other => Err(DecodeError::UnknownType(echo(other))),
    }
}

fn decode_start(audio: Option<&Value>, upload: Option<&Value>) -> Result<ClientMessage, DecodeError> {
    let upload = match upload {
        None | Some(Value::Null) => false,
        Some(Value::Bool(upload)) => *upload,
        Some(_) => return Err(DecodeError::BadField("start", "\"upload\" must be true or false".into())),
    };
    let audio = audio
        .and_then(Value::as_object)
        .ok_or_else(|| DecodeError::BadField("start", "\"audio\" must be an object".into()))?;
    let encoding = match audio.get("encoding").and_then(Value::as_str) {
        Some("pcm_s16le") => Encoding::PcmS16le,
        Some("pcm_f32le") => Encoding::PcmF32le,
        Some(other) => {
            return Err(DecodeError::UnsupportedAudio(format!("encoding {} (use pcm_s16le or pcm_f32le)", echo(other))))
        }
        None => return Err(DecodeError::BadField("start", "audio.encoding is required".into())),
    };
    let sample_rate = audio
        .get("sample_rate")
        .and_then(Value::as_u64)
        .ok_or_else(|| DecodeError::BadField("start", "audio.sample_rate must be an integer".into()))?;
    if !(MIN_SAMPLE_RATE as u64..=MAX_SAMPLE_RATE as u64).contains(&sample_rate) {
        return Err(DecodeError::UnsupportedAudio(format!(
            "sample_rate {sample_rate} (allowed {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE})"
        )));
    }
    let channels = audio.get("channels").map(|c| c.as_u64()).unwrap_or(Some(1));
    let channels = match channels {
        Some(c @ 1..=2) => c as u16,
        _ => return Err(DecodeError::UnsupportedAudio("channels must be 1 or 2".into())),
    };
    Ok(ClientMessage::Start { audio: AudioSpec { encoding, sample_rate: sample_rate as u32, channels }, upload })
}

/// Client text quoted for an error message, escaped and at most [`ECHO_CHARS`] long: the
/// cap applies after escaping, since a control character escapes to up to 10 characters
/// (`\u{7f}`), which once let 40 echoed characters grow to 400 (found by fuzzing).
fn echo(text: &str) -> String {
    let quoted = format!("{text:?}");
    if quoted.chars().count() <= ECHO_CHARS {
        return quoted;
    }
    let mut cut: String = quoted.chars().take(ECHO_CHARS - 2).collect();
    cut.push_str("…\"");
    cut
}

const ECHO_CHARS: usize = 48;

/// One final stretch of transcribed speech, times on the audio clock relative to the question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Timing {
    pub think_ms: u64,
    pub answer_ms: u64,
    pub speaking_ms: u64,
    pub longest_pause_ms: u64,
    pub time_limit_ms: Option<u64>,
    pub over_limit: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SpeechFigures {
    pub words: usize,
    pub wpm: f64,
    pub filler_count: usize,
    pub fillers: std::collections::BTreeMap<String, usize>,
    /// Fillers per minute of answer time.
    pub fillers_per_minute: f64,
}

/// One checklist item's result (filled by the checklist scorer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecklistItem {
    pub id: String,
    pub competency: String,
    pub label: String,
    pub status: String,
    pub evidence: Option<Segment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The finished answer, as sent in the `answer` message and returned by the review API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub index: usize,
    pub transcript: String,
    pub segments: Vec<Segment>,
    pub timing: Timing,
    pub speech: SpeechFigures,
    pub checklist: Vec<ChecklistItem>,
    /// Set when the answer was finalised by the server after its stream was cut off.
    #[serde(default)]
    pub interrupted: bool,
    /// Milliseconds of audio stored for this answer.
    pub audio_ms: u64,
}

/// Messages the server sends as text frames.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Question { index: usize, question: Question, asked_at_ms: u64 },
    Partial { index: usize, text: String, start_ms: u64, end_ms: u64 },
    Segment { index: usize, text: String, start_ms: u64, end_ms: u64 },
    TimeWarning { index: usize, remaining_ms: u64 },
    Stored { index: usize, audio_ms: u64 },
    Answer(Answer),
    Complete { session_id: String },
    Error { code: String, message: String, fatal: bool },
}

impl ServerMessage {
    pub fn error(code: &str, message: impl Into<String>, fatal: bool) -> Self {
        ServerMessage::Error { code: code.to_string(), message: message.into(), fatal }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_start_with_defaults_and_limits() {
        let m = decode_client_message(
            r#"{"type":"start","audio":{"encoding":"pcm_s16le","sample_rate":16000,"channels":1}}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            ClientMessage::Start {
                audio: AudioSpec { encoding: Encoding::PcmS16le, sample_rate: 16000, channels: 1 },
                upload: false
            }
        );
        let m = decode_client_message(
            r#"{"type":"start","audio":{"encoding":"pcm_s16le","sample_rate":16000},"upload":true}"#,
        )
        .unwrap();
        assert!(matches!(m, ClientMessage::Start { upload: true, .. }));
        let e = decode_client_message(
            r#"{"type":"start","audio":{"encoding":"pcm_s16le","sample_rate":16000},"upload":"yes"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), "bad_message");
        let e = decode_client_message(r#"{"type":"start","audio":{"encoding":"pcm_s16le","sample_rate":96000}}"#)
            .unwrap_err();
        assert_eq!(e.code(), "unsupported_audio");
        let e =
            decode_client_message(r#"{"type":"start","audio":{"encoding":"opus","sample_rate":16000}}"#).unwrap_err();
        assert_eq!(e.code(), "unsupported_audio");
        let e = decode_client_message(
            r#"{"type":"start","audio":{"encoding":"pcm_f32le","sample_rate":16000,"channels":3}}"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), "unsupported_audio");
        assert_eq!(decode_client_message(r#"{"type":"start"}"#).unwrap_err().code(), "bad_message");
    }

    #[test]
    fn each_kind_of_bad_text_has_its_own_code() {
        assert_eq!(decode_client_message("{nope").unwrap_err().code(), "malformed_json");
        assert_eq!(decode_client_message("[1,2]").unwrap_err().code(), "malformed_json");
        assert_eq!(decode_client_message(r#"{"kind":"x"}"#).unwrap_err().code(), "missing_type");
        assert_eq!(decode_client_message(r#"{"type":"dance"}"#).unwrap_err().code(), "unknown_type");
        assert_eq!(decode_client_message(r#"{"type":"next"}"#).unwrap(), ClientMessage::Next);
    }

    #[test]
    fn echoed_input_is_short_even_when_escaped() {
        let e = decode_client_message(r#"{"type":"dance"}"#).unwrap_err();
        assert_eq!(e.to_string(), r#"unknown message type "dance""#);
        let long = format!(r#"{{"type":"{}"}}"#, r"\u007f".repeat(100));
        let message = decode_client_message(&long).unwrap_err().to_string();
        assert!(message.chars().count() <= 21 + ECHO_CHARS, "{message}");
        assert!(message.ends_with("…\""), "{message}");
    }

    #[test]
    fn server_messages_use_the_contract_spelling() {
        let json = ServerMessage::Stored { index: 2, audio_ms: 1200 }.to_json();
        assert_eq!(json, r#"{"type":"stored","index":2,"audio_ms":1200}"#);
        let json = ServerMessage::error("busy", "try later", true).to_json();
        assert_eq!(json, r#"{"type":"error","code":"busy","message":"try later","fatal":true}"#);
    }
}
