//! From transcript segments to words the matchers can read: lower-cased, fillers dropped,
//! speech-recognition slips corrected, each word stemmed and traced back to its segment.

use std::collections::BTreeMap;
use std::ops::Range;

use super::lexicon::{CLAUSE_STARTS, FILLERS};
use crate::protocol::Segment;

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Lower-cased word as spoken (after slip correction).
    pub surface: String,
    /// Crude suffix-stripped form, so "reproduced" and "reproducing" meet "reproduce".
    pub stem: String,
    /// Which segment the word came from and its character range in that segment's text.
    pub segment: usize,
    pub chars: Range<usize>,
    /// First word of a sentence or clause: negation is not carried past it.
    pub clause_start: bool,
}

/// Splits all segments into one word stream. Segment boundaries are not clause boundaries:
/// Whisper cuts segments mid-sentence.
pub fn tokenize(segments: &[Segment]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut clause_break = true;
    for (segment, seg) in segments.iter().enumerate() {
        let chars: Vec<char> = seg.text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let (c, start) = (chars[i], i);
            let (word, end) = if c.is_alphanumeric() {
                let end = word_end(&chars, i);
                let word: String = chars[i..end].iter().collect::<String>().to_lowercase().replace('’', "'");
                (word, end)
            } else if let Some(name) = symbol_word(c) {
                (name.to_string(), i + 1)
            } else {
                clause_break |= ".,;:?!()\"—–…".contains(c);
                i += 1;
                continue;
            };
            i = end;
            if FILLERS.contains(&word.as_str()) {
                continue;
            }
            let clause_start = clause_break || CLAUSE_STARTS.contains(&word.as_str());
            clause_break = false;
            tokens.push(Token { stem: stem(&word), surface: word, segment, chars: start..end, clause_start });
        }
    }
    tokens
}

/// A word runs over letters and digits, an apostrophe inside a word ("didn't"), and a point
/// or comma inside a number ("1.5", "2,000").
fn word_end(chars: &[char], start: usize) -> usize {
    let mut j = start + 1;
    while j < chars.len() {
        let inner = j + 1 < chars.len();
        let joins = chars[j].is_alphanumeric()
            || (matches!(chars[j], '\'' | '’') && inner && chars[j + 1].is_alphabetic())
            || (matches!(chars[j], '.' | ',')
                && inner
                && chars[j - 1].is_ascii_digit()
                && chars[j + 1].is_ascii_digit());
        if !joins {
            break;
        }
        j += 1;
    }
    j
}

/// Symbols spoken as words, so "40%" reads "40 percent" like Whisper's other spelling.
fn symbol_word(c: char) -> Option<&'static str> {
    match c {
        '%' => Some("percent"),
        '$' => Some("dollar"),
        '£' => Some("pound"),
        '€' => Some("euro"),
        '&' => Some("and"),
        _ => None,
    }
}

/// A deliberately small suffix stripper: phrase and transcript words go through the same
/// function, so it only has to be consistent, not linguistically right.
pub fn stem(word: &str) -> String {
    let word = word.trim_end_matches("'s").trim_end_matches('\'');
    if word.len() <= 3 || !word.is_ascii() {
        return word.to_string();
    }
    const SUFFIXES: &[(&str, &str)] = &[
        ("ations", "at"),
        ("ation", "at"),
        ("ions", ""),
        ("ion", ""),
        ("ings", ""),
        ("ing", ""),
        ("ies", "i"),
        ("ied", "i"),
        ("ed", ""),
        ("es", ""),
        ("s", ""),
        ("e", ""),
    ];
    let mut stemmed = word.to_string();
    for (suffix, replacement) in SUFFIXES {
        let Some(base) = word.strip_suffix(suffix) else {
            continue;
        };
        // "process", "status": a final s after s or u is part of the word.
        let keeps_s = *suffix == "s" && (base.ends_with('s') || base.ends_with('u'));
        if base.len() + replacement.len() >= 3 && !keeps_s {
            stemmed = format!("{base}{replacement}");
            if matches!(*suffix, "ing" | "ed") {
                undouble(&mut stemmed);
            }
            break;
        }
    }
    if stemmed.len() > 3 && stemmed.ends_with('y') {
        stemmed.replace_range(stemmed.len() - 1.., "i");
    }
    stemmed
}

/// "logging" → "logg" → "log"; l, s and z stay doubled as in "rolled" → "roll", and so do
/// three-letter stems as in "added" → "add".
fn undouble(stem: &mut String) {
    let bytes = stem.as_bytes();
    let n = bytes.len();
    if n >= 4 && bytes[n - 1] == bytes[n - 2] && !b"aeiouylsz".contains(&bytes[n - 1]) {
        stem.pop();
    }
}

/// Rewrites what speech recognition heard into the term that was said, longest variant
/// first ("oh wasp" → "owasp", "item potent" → "idempotent").
pub struct SlipFixer {
    rewrites: Vec<(Vec<String>, Vec<String>)>,
}

impl SlipFixer {
    pub fn new(heard_as: &BTreeMap<String, Vec<String>>) -> Self {
        let words = |s: &str| {
            s.split(|c: char| c.is_whitespace() || c == '-')
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        };
        let mut rewrites: Vec<_> = heard_as
            .iter()
            .flat_map(|(term, variants)| {
                variants.iter().map(move |v| (words(v).iter().map(|w| stem(w)).collect::<Vec<_>>(), words(term)))
            })
            .filter(|(variant, _)| !variant.is_empty())
            .collect();
        rewrites.sort_by_key(|(variant, _)| std::cmp::Reverse(variant.len()));
        Self { rewrites }
    }

    pub fn apply(&self, tokens: Vec<Token>) -> Vec<Token> {
        let mut out = Vec::with_capacity(tokens.len());
        let mut i = 0;
        while i < tokens.len() {
            let found = self.rewrites.iter().find(|(variant, _)| {
                tokens.len() - i >= variant.len() && variant.iter().zip(&tokens[i..]).all(|(v, t)| *v == t.stem)
            });
            let Some((variant, term)) = found else {
                out.push(tokens[i].clone());
                i += 1;
                continue;
            };
            let (first, last) = (&tokens[i], &tokens[i + variant.len() - 1]);
            // The corrected words cover the misheard ones; evidence keeps the misheard text.
            let chars =
                if first.segment == last.segment { first.chars.start..last.chars.end } else { first.chars.clone() };
            for (k, word) in term.iter().enumerate() {
                out.push(Token {
                    surface: word.clone(),
                    stem: stem(word),
                    segment: first.segment,
                    chars: chars.clone(),
                    clause_start: first.clause_start && k == 0,
                });
            }
            i += variant.len();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(&[Segment { text: text.into(), start_ms: 0, end_ms: 1 }]).into_iter().map(|t| t.surface).collect()
    }

    #[test]
    fn stems_meet_across_inflections() {
        for group in [
            &["reproduce", "reproduced", "reproducing", "reproduces"][..],
            &["log", "logs", "logging", "logged"],
            &["retry", "retries", "retried"],
            &["validate", "validated", "validation"],
            &["add", "added", "adding"],
            &["deploy", "deployed", "deploys", "deploying"],
        ] {
            let stems: Vec<_> = group.iter().map(|w| stem(w)).collect();
            assert!(stems.iter().all(|s| *s == stems[0]), "{group:?} → {stems:?}");
        }
        assert_eq!(stem("process"), stem("processes"));
    }

    #[test]
    fn tokenises_speech() {
        assert_eq!(words("Um, we didn't— uh, 2,000 users, 40%!"), ["we", "didn't", "2,000", "users", "40", "percent"]);
        let tokens = tokenize(&[Segment { text: "no. but then".into(), start_ms: 0, end_ms: 1 }]);
        assert!(tokens.iter().all(|t| t.clause_start));
    }

    #[test]
    fn fixes_slips_longest_first() {
        let heard_as = BTreeMap::from([("owasp".to_string(), vec!["oh wasp".to_string(), "oasp".to_string()])]);
        let fixer = SlipFixer::new(&heard_as);
        let tokens = fixer.apply(tokenize(&[Segment { text: "the Oh-Wasp list".into(), start_ms: 0, end_ms: 1 }]));
        let surfaces: Vec<_> = tokens.iter().map(|t| t.surface.as_str()).collect();
        assert_eq!(surfaces, ["the", "owasp", "list"]);
        assert_eq!(tokens[1].chars, 4..11);
    }
}
