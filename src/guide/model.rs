//! The validated guide as the rest of the server sees it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An interview pack. Built only by the loader, which checks every cross-reference, so
/// code holding a `Guide` may trust its ids.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Guide {
    pub id: String,
    pub title: String,
    /// Sorted by `order` (ties keep file order).
    pub questions: Vec<Question>,
    pub competencies: Vec<Competency>,
    /// Matching data, not part of what clients are shown.
    #[serde(skip)]
    pub vocabulary: Vocabulary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuestionKind {
    Common,
    Behavioural,
    Technical,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Question {
    pub id: String,
    pub kind: QuestionKind,
    pub text: String,
    pub competencies: Vec<String>,
    pub time_limit_ms: u64,
    pub order: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Competency {
    pub id: String,
    pub label: String,
    pub description: String,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// `<competency>.<item>`, part of the public contract.
    pub id: String,
    pub label: String,
    /// What to add when the item is missing.
    pub hint: String,
    #[serde(skip)]
    pub detection: Detection,
}

/// How an item is recognised in a transcript (the guide file's header comment has examples).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Detection {
    /// Word sequences matched on stemmed words: `{class}` is a synonym class, `...` a gap
    /// of a few words, `word*` a prefix.
    pub phrases: Vec<String>,
    /// Regular expressions over the lower-cased words; `{class}` expands to the class.
    pub patterns: Vec<String>,
}

/// Guide-wide word lists shared by all items.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Vocabulary {
    /// Correct term → what speech recognition tends to write instead ("owasp" → "oh wasp").
    /// Rewritten before matching, so phrases only name the correct term.
    pub heard_as: BTreeMap<String, Vec<String>>,
    /// Class name → interchangeable words, referenced as `{name}` in phrases and patterns.
    pub synonyms: BTreeMap<String, Vec<String>>,
}
