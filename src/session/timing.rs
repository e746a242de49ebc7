//! Answer timing on the audio clock, from the stretches of speech that produced text.

use super::SpokenStretch;
use crate::protocol::Timing;

/// `audio_ms` is the answer's whole length (question to end of answer); stretches are in order.
pub fn compute_timing(
    stretches: &[SpokenStretch],
    audio_ms: u64,
    time_limit_ms: Option<u64>,
    over_limit: bool,
) -> Timing {
    let (Some(first), Some(last)) = (stretches.first(), stretches.last()) else {
        // Nothing was said: the whole answer was thinking time.
        return Timing { think_ms: audio_ms, time_limit_ms, over_limit, ..Default::default() };
    };
    let gaps_between = stretches.windows(2).map(|w| w[1].start_ms.saturating_sub(w[0].end_ms));
    let gaps_inside = stretches.iter().map(|s| s.longest_gap_ms);
    Timing {
        think_ms: first.start_ms,
        answer_ms: last.end_ms.saturating_sub(first.start_ms),
        speaking_ms: stretches.iter().map(|s| s.voiced_ms).sum(),
        longest_pause_ms: gaps_between.chain(gaps_inside).max().unwrap_or(0),
        time_limit_ms,
        over_limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stretch(start_ms: u64, end_ms: u64, voiced_ms: u64, longest_gap_ms: u64) -> SpokenStretch {
        SpokenStretch { start_ms, end_ms, voiced_ms, longest_gap_ms }
    }

    #[test]
    fn timing_from_stretches() {
        let t = compute_timing(
            &[stretch(2100, 5000, 2500, 300), stretch(6800, 9000, 2000, 100)],
            10_000,
            Some(60_000),
            false,
        );
        assert_eq!(t.think_ms, 2100);
        assert_eq!(t.answer_ms, 6900);
        assert_eq!(t.speaking_ms, 4500);
        assert_eq!(t.longest_pause_ms, 1800);
        assert_eq!(t.time_limit_ms, Some(60_000));
    }

    #[test]
    fn silence_is_all_thinking() {
        let t = compute_timing(&[], 4000, None, true);
        assert_eq!((t.think_ms, t.answer_ms, t.speaking_ms, t.longest_pause_ms), (4000, 0, 0, 0));
        assert!(t.over_limit);
    }
}
