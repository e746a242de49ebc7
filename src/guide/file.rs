//! The guide file as written, with the byte spans needed to point at a bad line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::model::QuestionKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuideFile {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub heard_as: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub synonyms: BTreeMap<String, Vec<String>>,
    pub competencies: Vec<CompetencyFile>,
    pub questions: Spanned<Vec<QuestionFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionFile {
    pub id: Spanned<String>,
    pub kind: QuestionKind,
    pub text: String,
    pub competencies: Vec<Spanned<String>>,
    pub time_limit_ms: u64,
    pub order: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompetencyFile {
    pub id: Spanned<String>,
    pub label: String,
    pub description: String,
    pub items: Vec<ItemFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemFile {
    pub id: Spanned<String>,
    pub label: String,
    pub hint: String,
    #[serde(default)]
    pub phrases: Vec<Spanned<String>>,
    #[serde(default)]
    pub patterns: Vec<Spanned<String>>,
}
