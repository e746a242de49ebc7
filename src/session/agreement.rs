//! Local agreement between successive partial transcriptions of the stretch still open: the
//! leading segments two of them agree on are taken as settled (the policy of whisper_streaming,
//! applied to whole whisper segments rather than words).
//!
//! Why: when the candidate ends the answer, the open stretch (up to 12 s or more) has to be
//! transcribed while they wait. With a settled prefix, only the audio after it is, from the
//! boundary whisper itself put there, which is how whisper.cpp moves from one window to the
//! next on long audio.

use crate::transcribe::TextPiece;

/// A partial transcription of the open stretch: its clip and whisper's pieces (ms in the clip).
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    pub clip_start_sample: u64,
    pub clip_ms: u64,
    pub pieces: Vec<TextPiece>,
}

/// The settled pieces, and where in the clip (ms) the rest starts.
#[derive(Debug, Clone, PartialEq)]
pub struct AgreedPrefix {
    pub pieces: Vec<TextPiece>,
    pub cut_ms: u64,
}

/// A segment counts as settled only if it ended this long before the earlier clip did: a word
/// cut off by a clip's end reads differently once more audio follows it.
const SETTLED_BEFORE_END_MS: u64 = 1_000;
/// The two hypotheses must place the boundary after a segment this close (whisper's timestamps
/// come in 20 ms steps and move a little as the clip grows).
const BOUNDARY_TOLERANCE_MS: u64 = 200;
/// A prefix shorter than this saves too little to be worth the seam.
const MIN_CUT_MS: u64 = 2_000;

/// The leading pieces both hypotheses give with the same words and the same end, never the later
/// one's last piece (still being spoken), each ending well before the earlier clip's end; cut
/// after the last of them that ends where `quiet` says the audio is silent. whisper often ends a
/// segment mid-phrase ("a circuit breaker around the | database client"): a cut there splits
/// words between two clips, and on the bench recordings it cost more accuracy than it saved time.
pub fn agreed_prefix(earlier: &Hypothesis, later: &Hypothesis, quiet: impl Fn(u64) -> bool) -> Option<AgreedPrefix> {
    if earlier.clip_start_sample != later.clip_start_sample || later.clip_ms <= earlier.clip_ms {
        return None;
    }
    let settled_by = earlier.clip_ms.saturating_sub(SETTLED_BEFORE_END_MS);
    let agreed = earlier
        .pieces
        .iter()
        .zip(&later.pieces[..later.pieces.len().saturating_sub(1)])
        .take_while(|(a, b)| {
            same_words(&a.text, &b.text)
                && a.end_ms.abs_diff(b.end_ms) <= BOUNDARY_TOLERANCE_MS
                && b.end_ms <= settled_by
        })
        .count();
    let settled = (1..=agreed).rev().find(|&n| quiet(later.pieces[n - 1].end_ms))?;
    let pieces = later.pieces[..settled].to_vec();
    let cut_ms = pieces.last()?.end_ms;
    (cut_ms >= MIN_CUT_MS).then_some(AgreedPrefix { pieces, cut_ms })
}

fn same_words(a: &str, b: &str) -> bool {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
    };
    words(a) == words(b)
}

/// The pieces for the whole clip: the prefix as agreed, then the rest's pieces moved to the
/// clip's clock.
pub fn join(prefix: AgreedPrefix, rest: Vec<TextPiece>) -> Vec<TextPiece> {
    let cut = prefix.cut_ms;
    let mut pieces = prefix.pieces;
    pieces.extend(rest.into_iter().map(|p| p.shifted(cut)));
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(text: &str, start_ms: u64, end_ms: u64) -> TextPiece {
        TextPiece { text: text.into(), start_ms, end_ms }
    }

    fn hypothesis(clip_ms: u64, pieces: &[(&str, u64, u64)]) -> Hypothesis {
        Hypothesis {
            clip_start_sample: 3_200,
            clip_ms,
            pieces: pieces.iter().map(|&(t, s, e)| piece(t, s, e)).collect(),
        }
    }

    #[test]
    fn the_leading_segments_both_agree_on_are_settled() {
        let earlier = hypothesis(9_000, &[("We paged the on-call.", 0, 3_000), ("Then we rolled", 3_000, 9_000)]);
        let later = hypothesis(
            10_000,
            &[
                ("We paged the on call", 0, 3_040),
                ("Then we rolled back the deploy.", 3_040, 7_000),
                ("And", 7_000, 10_000),
            ],
        );
        let prefix = agreed_prefix(&earlier, &later, |_| true).expect("a prefix");
        assert_eq!(prefix.pieces, vec![piece("We paged the on call", 0, 3_040)]);
        assert_eq!(prefix.cut_ms, 3_040);
        // Never cut where the audio is not a pause.
        assert_eq!(agreed_prefix(&earlier, &later, |ms| ms != 3_040), None);
    }

    #[test]
    fn nothing_is_settled_without_agreement_or_time_to_settle() {
        let earlier = hypothesis(9_000, &[("We paged the on-call.", 0, 3_000), ("Then", 3_000, 9_000)]);
        // Different words.
        let later = hypothesis(10_000, &[("We patched the on-call.", 0, 3_000), ("Then", 3_000, 10_000)]);
        assert_eq!(agreed_prefix(&earlier, &later, |_| true), None);
        // The boundary moved.
        let later = hypothesis(10_000, &[("We paged the on-call.", 0, 3_600), ("Then", 3_600, 10_000)]);
        assert_eq!(agreed_prefix(&earlier, &later, |_| true), None);
        // The later one's last piece is still being spoken.
        let later = hypothesis(10_000, &[("We paged the on-call.", 0, 3_000)]);
        assert_eq!(agreed_prefix(&earlier, &later, |_| true), None);
        // Too close to the end of the earlier clip.
        let earlier = hypothesis(3_500, &[("We paged the on-call.", 0, 3_000)]);
        let later = hypothesis(4_500, &[("We paged the on-call.", 0, 3_000), ("Then", 3_000, 4_500)]);
        assert_eq!(agreed_prefix(&earlier, &later, |_| true), None);
        // Too short to be worth it.
        let earlier = hypothesis(9_000, &[("Yes.", 0, 1_000), ("Then", 1_000, 9_000)]);
        let later = hypothesis(10_000, &[("Yes.", 0, 1_000), ("Then we", 1_000, 10_000)]);
        assert_eq!(agreed_prefix(&earlier, &later, |_| true), None);
        // Another clip (another stretch), or not later.
        let mut other = hypothesis(10_000, &[("We paged the on-call.", 0, 3_000), ("Then", 3_000, 10_000)]);
        other.clip_start_sample = 0;
        let earlier = hypothesis(9_000, &[("We paged the on-call.", 0, 3_000), ("Then", 3_000, 9_000)]);
        assert_eq!(agreed_prefix(&earlier, &other, |_| true), None);
        assert_eq!(agreed_prefix(&earlier, &earlier, |_| true), None);
    }

    #[test]
    fn the_rest_is_placed_after_the_cut() {
        let prefix = AgreedPrefix { pieces: vec![piece("One.", 0, 2_500)], cut_ms: 2_500 };
        let joined = join(prefix, vec![piece("Two.", 0, 1_200), piece("Three.", 1_200, 2_000)]);
        assert_eq!(joined, vec![piece("One.", 0, 2_500), piece("Two.", 2_500, 3_700), piece("Three.", 3_700, 4_500)]);
    }
}
