//! One item's detection data compiled to two regexes: phrases over stemmed words, patterns
//! over the lower-cased words. Both run on the answer's words joined by single spaces.

use std::collections::BTreeMap;
use std::ops::Range;

use regex::{Regex, RegexBuilder};

use super::negation::is_negated;
use super::text::{stem, Token};
use crate::guide::{expand_placeholders, phrase_class, Detection};

/// How many words a `...` in a phrase may skip: "kept ... in the loop" reaches
/// "kept our head of engineering in the loop".
const GAP_WORDS: usize = 4;

/// The answer's words joined by spaces, with where each word starts.
pub struct Joined {
    pub text: String,
    starts: Vec<usize>,
}

impl Joined {
    pub fn new<'a>(words: impl Iterator<Item = &'a str>) -> Self {
        let (mut text, mut starts) = (String::new(), Vec::new());
        for word in words {
            if !text.is_empty() {
                text.push(' ');
            }
            starts.push(text.len());
            text.push_str(word);
        }
        Self { text, starts }
    }

    /// Tokens overlapping a byte range of `text`.
    fn tokens(&self, bytes: Range<usize>) -> Range<usize> {
        let first = self.starts.partition_point(|&s| s <= bytes.start) - 1;
        let last = self.starts.partition_point(|&s| s < bytes.end.max(bytes.start + 1)) - 1;
        first..last + 1
    }
}

pub struct Matcher {
    phrases: Option<Regex>,
    patterns: Option<Regex>,
}

impl Matcher {
    /// Fails only on data the guide loader would have rejected; the message says why.
    pub fn new(detection: &Detection, synonyms: &BTreeMap<String, Vec<String>>) -> Result<Self, String> {
        let unknown = |class: String| format!("unknown synonym class `{{{class}}}`");
        let phrases = detection
            .phrases
            .iter()
            .map(|p| phrase_regex(p, synonyms).map_err(unknown))
            .collect::<Result<Vec<_>, _>>()?;
        let patterns = detection
            .patterns
            .iter()
            .map(|p| {
                expand_placeholders(p, |name| synonyms.get(name).map(|words| alternation(words, regex::escape)))
                    .map_err(unknown)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let compile = |parts: &[String]| union(parts).map_err(|e| e.to_string());
        Ok(Self { phrases: compile(&phrases)?, patterns: compile(&patterns)? })
    }

    /// The earliest match that no negation denies, as a token range.
    pub fn find(&self, tokens: &[Token], stems: &Joined, surface: &Joined) -> Option<Range<usize>> {
        let earliest = |regex: &Option<Regex>, joined: &Joined| {
            regex
                .as_ref()?
                .find_iter(&joined.text)
                .map(|m| joined.tokens(m.range()))
                .find(|span| !is_negated(tokens, span.clone()))
        };
        match (earliest(&self.phrases, stems), earliest(&self.patterns, surface)) {
            (Some(a), Some(b)) => Some(if b.start < a.start { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

fn union(parts: &[String]) -> Result<Option<Regex>, regex::Error> {
    if parts.is_empty() {
        return Ok(None);
    }
    let joined = parts.iter().map(|p| format!("(?:{p})")).collect::<Vec<_>>().join("|");
    RegexBuilder::new(&format!(r"\b(?:{joined})\b")).case_insensitive(true).build().map(Some)
}

/// "kept ... {stakeholder} in the loop" → stemmed words, classes as alternations of their
/// stemmed entries, `...` as a bounded gap, `word*` as a prefix.
fn phrase_regex(phrase: &str, synonyms: &BTreeMap<String, Vec<String>>) -> Result<String, String> {
    let mut out = String::new();
    for word in phrase.split_whitespace() {
        let piece = if word == "..." {
            out.push_str(&format!("(?: \\S+){{0,{GAP_WORDS}}}"));
            continue;
        } else if let Some(class) = phrase_class(word) {
            alternation(synonyms.get(class).ok_or_else(|| class.to_string())?, stem_words)
        } else if let Some(prefix) = word.strip_suffix('*') {
            // Tokens are stemmed ("declared" → "declar"), so the prefix must be too, or
            // "declare*" would match no form of "declare" at all.
            format!(r"{}\S*", regex::escape(&stem(&prefix.to_lowercase())))
        } else {
            stem_words(word)
        };
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&piece);
    }
    Ok(out)
}

fn stem_words(words: &str) -> String {
    words
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|w| !w.is_empty())
        .map(|w| regex::escape(&stem(&w.to_lowercase())))
        .collect::<Vec<_>>()
        .join(" ")
}

fn alternation(words: &[String], render: fn(&str) -> String) -> String {
    let mut alternatives: Vec<String> = words.iter().map(|w| render(w)).collect();
    // Longest first, so "heads up" wins over "head" where both fit.
    alternatives.sort_by_key(|a| std::cmp::Reverse(a.len()));
    format!("(?:{})", alternatives.join("|"))
}
