//! Why a guide was rejected, always with the file and line to fix.

use std::path::PathBuf;

/// A guide file that cannot be used. Display reads `path:line: problem`, the shape editors
/// and terminals turn into a link.
#[derive(Debug, thiserror::Error)]
pub enum GuideError {
    #[error("{}: cannot read guide: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// Not valid TOML, or a field missing or of the wrong type.
    #[error("{}:{line}: {message}", path.display())]
    Syntax { path: PathBuf, line: usize, message: String },
    /// Well-formed, but inconsistent.
    #[error("{}:{line}: {problem}", path.display())]
    Invalid { path: PathBuf, line: usize, problem: Problem },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("question `{question}` refers to unknown competency `{competency}`")]
    UnknownCompetency { question: String, competency: String },
    #[error("duplicate {kind} id `{id}`")]
    DuplicateId { kind: &'static str, id: String },
    #[error("item `{item}` must be named `{competency}.<item>`")]
    ItemOutsideCompetency { item: String, competency: String },
    #[error("item `{item}` has a bad pattern: {message}")]
    BadPattern { item: String, message: String },
    #[error("item `{item}` refers to unknown synonym class `{{{class}}}`")]
    UnknownSynonymClass { item: String, class: String },
    #[error("item `{item}` has a phrase that is empty or starts or ends with a `...` gap")]
    BadPhrase { item: String },
    #[error("item `{item}` has neither phrases nor patterns, so it can never be covered")]
    Undetectable { item: String },
    #[error("competency `{competency}` has no items")]
    NoItems { competency: String },
    #[error("the guide has no questions")]
    NoQuestions,
}

/// 1-based line of a byte offset, clamped to the text.
pub fn line_of(text: &str, byte_offset: usize) -> usize {
    let end = byte_offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}
