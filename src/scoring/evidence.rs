//! The covering words and their times.
//!
//! Segments carry start and end times but no word times, so a span's times are estimated
//! by assuming speech runs at an even pace through the segment: a character at position
//! `c` of an `n`-character segment is placed at `start + (end - start) * c / n`. Good to a
//! word or two, which is what a reviewer needs to find the moment in the audio.

use std::ops::Range;

use super::text::Token;
use crate::protocol::Segment;

/// `span` is a non-empty token range.
pub fn evidence(tokens: &[Token], span: Range<usize>, segments: &[Segment]) -> Segment {
    let words = &tokens[span];
    let (first, last) = (&words[0], &words[words.len() - 1]);
    let mut pieces: Vec<String> = Vec::new();
    let touched = segments.iter().enumerate().take(last.segment + 1).skip(first.segment);
    for (index, segment) in touched {
        let in_segment = words.iter().filter(|t| t.segment == index);
        let start = in_segment.clone().map(|t| t.chars.start).min();
        let end = in_segment.map(|t| t.chars.end).max();
        if let (Some(start), Some(end)) = (start, end) {
            pieces.push(segment.text.chars().skip(start).take(end - start).collect());
        }
    }
    let start_ms = time_at(&segments[first.segment], first.chars.start);
    let end_ms = time_at(&segments[last.segment], last.chars.end).max(start_ms);
    Segment { text: pieces.join(" "), start_ms, end_ms }
}

fn time_at(segment: &Segment, char_index: usize) -> u64 {
    let length = segment.text.chars().count().max(1) as u128;
    let duration = segment.end_ms.saturating_sub(segment.start_ms) as u128;
    segment.start_ms + (duration * char_index.min(length as usize) as u128 / length) as u64
}

#[cfg(test)]
mod tests {
    use super::super::text::tokenize;
    use super::*;

    fn seg(text: &str, start_ms: u64, end_ms: u64) -> Segment {
        Segment { text: text.into(), start_ms, end_ms }
    }

    #[test]
    fn interpolates_within_a_segment() {
        // 20 characters over 2000 ms: 100 ms per character.
        let segments = [seg("abcde fghij klmn opq", 1000, 3000)];
        let tokens = tokenize(&segments);
        let found = evidence(&tokens, 1..3, &segments);
        assert_eq!(found, seg("fghij klmn", 1600, 2600));
    }

    #[test]
    fn spans_two_segments() {
        let segments = [seg("kept support in the", 0, 1900), seg("loop every hour", 2000, 3500)];
        let tokens = tokenize(&segments);
        let found = evidence(&tokens, 1..5, &segments);
        assert_eq!(found.text, "support in the loop");
        assert_eq!((found.start_ms, found.end_ms), (500, 2400));
    }
}
