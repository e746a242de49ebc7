//! Words, pace and fillers from a transcript.

use std::collections::BTreeMap;

use crate::protocol::SpeechFigures;

/// Filler words counted on their own. Whisper drops many of them, so counts are lower bounds.
const SINGLE_WORD_FILLERS: &[(&str, &str)] = &[
    ("um", "um"),
    ("umm", "um"),
    ("uh", "uh"),
    ("uhh", "uh"),
    ("uhm", "um"),
    ("er", "er"),
    ("erm", "erm"),
    ("ah", "ah"),
    ("hmm", "hmm"),
    ("mm", "hmm"),
];

/// Fillers of two words ("you know", "I mean") count only when set off by commas or standing
/// at a sentence edge, so "I mean it" or "do you know" are not counted.
const PHRASE_FILLERS: &[&str] = &["you know", "i mean", "sort of", "kind of"];

fn normalise(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'').to_lowercase()
}

pub fn count_words(text: &str) -> usize {
    text.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).count()
}

fn count_fillers(text: &str) -> BTreeMap<String, usize> {
    let mut fillers = BTreeMap::new();
    let raw: Vec<&str> = text.split_whitespace().collect();
    for word in &raw {
        let w = normalise(word);
        if let Some((_, kind)) = SINGLE_WORD_FILLERS.iter().find(|(f, _)| *f == w) {
            *fillers.entry(kind.to_string()).or_insert(0) += 1;
        }
    }
    // "like" is a filler only when set off by commas: "it was, like, slow".
    for (i, word) in raw.iter().enumerate() {
        if normalise(word) == "like" && word.ends_with(',') && i > 0 && raw[i - 1].ends_with(',') {
            *fillers.entry("like".to_string()).or_insert(0) += 1;
        }
    }
    for phrase in PHRASE_FILLERS {
        let n = phrase.split(' ').count();
        for (i, window) in raw.windows(n).enumerate() {
            let words: Vec<String> = window.iter().map(|w| normalise(w)).collect();
            if words.join(" ") != *phrase {
                continue;
            }
            let starts_clause = i == 0 || raw[i - 1].ends_with([',', '.', '?', '!']);
            let ends_clause = window[n - 1].ends_with([',', '.', '?', '!']);
            if starts_clause && ends_clause {
                *fillers.entry(phrase.to_string()).or_insert(0) += 1;
            }
        }
    }
    fillers
}

/// `answer_ms` is the time from first to last speech; pace is measured over it.
pub fn speech_figures(transcript: &str, answer_ms: u64) -> SpeechFigures {
    let words = count_words(transcript);
    let fillers = count_fillers(transcript);
    let filler_count = fillers.values().sum();
    let minutes = answer_ms as f64 / 60_000.0;
    let per_minute = |n: f64| if minutes > 0.0 { (n / minutes * 10.0).round() / 10.0 } else { 0.0 };
    SpeechFigures {
        words,
        wpm: per_minute(words as f64),
        filler_count,
        fillers,
        fillers_per_minute: per_minute(filler_count as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words_and_pace() {
        let f = speech_figures("We rolled back the deploy, then fixed it.", 6_000);
        assert_eq!(f.words, 8);
        assert_eq!(f.wpm, 80.0);
        assert_eq!(f.filler_count, 0);
    }

    #[test]
    fn counts_fillers_by_kind_but_not_ordinary_words() {
        let f = speech_figures(
            "Um, so, uh, it was, like, slow. Umm I like it. You know, I mean it. Well, you know.",
            60_000,
        );
        assert_eq!(f.fillers.get("um"), Some(&2));
        assert_eq!(f.fillers.get("uh"), Some(&1));
        assert_eq!(f.fillers.get("like"), Some(&1));
        assert_eq!(f.fillers.get("you know"), Some(&2));
        assert_eq!(f.fillers.get("i mean"), None);
        assert_eq!(f.filler_count, 6);
        assert_eq!(f.fillers_per_minute, 6.0);
    }

    #[test]
    fn no_speech_has_no_pace() {
        let f = speech_figures("", 0);
        assert_eq!((f.words, f.wpm), (0, 0.0));
    }
}
