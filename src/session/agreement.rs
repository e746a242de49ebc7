//! Local agreement between successive partial transcriptions of the stretch still open: the
//! leading words two of them agree on are taken as settled (the policy of whisper_streaming),
//! up to a pause between words.
//!
//! Why: when the candidate ends the answer, the open stretch (up to 12 s or more) has to be
//! transcribed while they wait. With a settled prefix, only the audio after it is.
//!
//! Once a prefix is settled, later partials are compared on their words after it only, and the
//! prefix grows as two of them agree further: a word the model wavers on early in the stretch no
//! longer keeps later words from settling. whisper_streaming goes further and has the partials
//! read only the audio after the cut, with the settled text as context; with whisper.cpp that did
//! not work: its token timestamps come out bunched at the clip's ends after such a prompt, so no
//! pause could be found, and without the context the rest read worse (word error rate 0.239
//! against 0.212 on the agreement measurement, `tests/agreement.rs`).

use crate::transcribe::TextPiece;

/// A partial transcription of the open stretch: its clip and whisper's pieces (ms in the clip).
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    pub clip_start_sample: u64,
    pub clip_ms: u64,
    /// The settled cut (ms in the clip) this hypothesis is compared from: its pieces are the
    /// words after it (0: nothing settled, all the words).
    pub from_ms: u64,
    pub pieces: Vec<TextPiece>,
}

/// The settled pieces (a sentence each), and where in the clip (ms) the rest starts.
#[derive(Debug, Clone, PartialEq)]
pub struct AgreedPrefix {
    pub pieces: Vec<TextPiece>,
    pub cut_ms: u64,
}

/// A word counts as settled only if it ended this long before the earlier clip did: a word
/// cut off by a clip's end reads differently once more audio follows it.
const SETTLED_BEFORE_END_MS: u64 = 1_000;
/// The two hypotheses must place the end of each piece this close (whisper's timestamps come in
/// 10–20 ms steps and move a little as the clip grows).
const BOUNDARY_TOLERANCE_MS: u64 = 200;
/// A prefix (or the part a prefix grows by) shorter than this saves too little to be worth the
/// seam.
const MIN_CUT_MS: u64 = 2_000;

/// The leading pieces (words, for whisper's partials) both hypotheses give with the same words and
/// the same end, never the later one's last piece (still being spoken), each ending well before
/// the earlier clip's end; cut after the last of them that ends where `quiet` says the audio is
/// silent. A cut must fall in a pause: whisper's segments often end mid-phrase ("a circuit
/// breaker around the | database client"), and a cut there split words between two clips and
/// cost more accuracy than it saved time. Word times are estimates, so the pause is looked for
/// a little either side of the word's end. Both must have been read from the same point
/// (`from_ms`); the prefix returned holds their agreed words only, from there.
pub fn agreed_prefix(earlier: &Hypothesis, later: &Hypothesis, quiet: impl Fn(u64) -> bool) -> Option<AgreedPrefix> {
    if earlier.clip_start_sample != later.clip_start_sample
        || earlier.from_ms != later.from_ms
        || later.clip_ms <= earlier.clip_ms
    {
        return None;
    }
    let from = later.from_ms;
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
    let (settled, cut_ms) = (1..=agreed).rev().filter(|&n| ends_clause(&later.pieces[n - 1].text)).find_map(|n| {
        let end = later.pieces[n - 1].end_ms;
        let after_previous = if n > 1 { later.pieces[n - 2].end_ms } else { from };
        let before_next = later.pieces.get(n).map_or(end, |next| next.start_ms.max(end));
        let search_from = end.saturating_sub(PAUSE_SEARCH_MS).max(after_previous + PAUSE_STEP_MS);
        middle_of_longest_pause(search_from, before_next + PAUSE_SEARCH_MS, &quiet).map(|at| (n, at))
    })?;
    if cut_ms < from + MIN_CUT_MS {
        return None;
    }
    let mut words = later.pieces[..settled].to_vec();
    let last = words.last_mut()?;
    last.end_ms = last.end_ms.min(cut_ms);
    Some(AgreedPrefix { pieces: sentences(words), cut_ms })
}

/// Whether a piece ends a sentence or clause. Only there is a cut made: whisper's word times are
/// least sure at the start of a phrase (a sentence's first word was timed inside the pause
/// before it, so the cut put its audio after the cut and the word came out twice), and a
/// silence inside a phrase may be a stop consonant's closure.
fn ends_clause(text: &str) -> bool {
    text.trim_end().ends_with(['.', ',', '?', '!', ';', ':'])
}

/// How far before a word's estimated end, and after the next word's estimated start, a pause
/// is looked for.
const PAUSE_SEARCH_MS: u64 = 80;
/// The step of that search: whisper's times come in 10–20 ms steps.
const PAUSE_STEP_MS: u64 = 20;

/// The middle of the longest run of quiet points (every `PAUSE_STEP_MS`) from `from` to `to`.
/// The middle of the pause, not its first quiet point: word times are estimates, DTW's as much as
/// 150 ms early or late, and the middle leaves the most room either side for the soft ends of
/// the words around it. The longest run, because a stop consonant's closure can be quiet too,
/// but only briefly.
fn middle_of_longest_pause(from: u64, to: u64, quiet: impl Fn(u64) -> bool) -> Option<u64> {
    let mut best: Option<(u64, u64)> = None;
    let mut run: Option<u64> = None;
    // One step past `to` counts as not quiet, so a run still open there is closed too.
    for at in (from..=to + PAUSE_STEP_MS).step_by(PAUSE_STEP_MS as usize) {
        match (at <= to && quiet(at), run) {
            (true, None) => run = Some(at),
            (false, Some(start)) => {
                let end = at - PAUSE_STEP_MS;
                if best.is_none_or(|(s, e)| end - start > e - s) {
                    best = Some((start, end));
                }
                run = None;
            }
            _ => {}
        }
    }
    best.map(|(start, end)| start + (end - start) / 2)
}

/// Joins pieces into sentences: a piece that does not end one runs on into the next.
fn sentences(pieces: Vec<TextPiece>) -> Vec<TextPiece> {
    let mut out: Vec<TextPiece> = Vec::new();
    let mut open = false;
    for piece in pieces {
        match out.last_mut() {
            Some(sentence) if open => {
                sentence.text.push(' ');
                sentence.text.push_str(&piece.text);
                sentence.end_ms = piece.end_ms;
            }
            _ => out.push(piece.clone()),
        }
        open = !piece.text.trim_end().ends_with(['.', '?', '!']);
    }
    out
}

fn same_words(a: &str, b: &str) -> bool {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
    };
    words(a) == words(b)
}

/// A partial's words after a settled cut (`settled.cut_ms`): those after its own reading of the
/// settled prefix's last word, found by its words and its end near the cut. Word times are
/// estimates, and a short word right after a pause ("I", "a", "and") was often timed as ending
/// within 150 ms of the cut: a filter on times alone dropped it from the extension ("declared an
/// incident" for "I declared an incident"). When the partial reads that last word differently,
/// only words ending clearly past the cut (`after_cut_ms`) count.
pub fn words_after(pieces: &[TextPiece], settled: &AgreedPrefix, after_cut_ms: u64) -> Vec<TextPiece> {
    let cut = settled.cut_ms;
    let last_word = settled.pieces.last().and_then(|p| p.text.split_whitespace().last()).unwrap_or_default();
    let near_cut = |p: &TextPiece| p.end_ms.abs_diff(cut) <= LAST_WORD_TOLERANCE_MS;
    match pieces.iter().rposition(|p| near_cut(p) && same_words(&p.text, last_word)) {
        Some(i) => pieces[i + 1..].to_vec(),
        None => pieces.iter().filter(|p| p.end_ms > cut + after_cut_ms).cloned().collect(),
    }
}

/// How far from the cut a partial's reading of the settled last word may end (the cut itself may
/// lie up to the pause search past the settled estimate, and estimates move between partials).
const LAST_WORD_TOLERANCE_MS: u64 = 300;

/// A settled prefix grown by what partials read after it then agreed on (`more`, whose pieces
/// start at `settled.cut_ms`).
pub fn extend(settled: AgreedPrefix, more: AgreedPrefix) -> AgreedPrefix {
    let mut pieces = settled.pieces;
    pieces.extend(more.pieces);
    AgreedPrefix { pieces, cut_ms: more.cut_ms }
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
            from_ms: 0,
            pieces: pieces.iter().map(|&(t, s, e)| piece(t, s, e)).collect(),
        }
    }

    #[test]
    fn the_leading_segments_both_agree_on_are_settled() {
        let earlier = hypothesis(9_000, &[("We paged the on-call.", 0, 3_000), ("Then we rolled", 3_000, 9_000)]);
        let later = hypothesis(
            10_000,
            &[
                ("We paged the on call.", 0, 3_040),
                ("Then we rolled back the deploy.", 3_040, 7_000),
                ("And", 7_000, 10_000),
            ],
        );
        let prefix = agreed_prefix(&earlier, &later, |_| true).expect("a prefix");
        assert_eq!(prefix.pieces, vec![piece("We paged the on call.", 0, 3_040)]);
        assert_eq!(prefix.cut_ms, 3_040);
        // Never cut where the audio is not a pause.
        assert_eq!(agreed_prefix(&earlier, &later, |ms| !(2_900..3_200).contains(&ms)), None);
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
    fn words_are_settled_up_to_a_pause_and_joined_into_sentences() {
        let words = |clip_ms: u64, n: usize| {
            let all = [
                ("We", 0, 300),
                ("paged", 300, 800),
                ("on-call.", 800, 1_500),
                ("Then", 1_900, 2_200),
                ("we", 2_200, 2_400),
                ("rolled", 2_400, 2_900),
                ("back,", 2_900, 3_400),
                ("and", 3_700, 3_900),
                ("it", 3_900, 4_100),
                ("held.", 4_100, 4_600),
            ];
            hypothesis(clip_ms, &all[..n])
        };
        let earlier = words(5_000, 9);
        let later = words(6_000, 10);
        // Pauses after "on-call." (1.5–1.9 s) and "back," (3.46–3.7 s, the estimate of where
        // "back," ends being 60 ms early); the cut is in the middle of the pause.
        let quiet = |ms: u64| (1_500..1_900).contains(&ms) || (3_460..3_700).contains(&ms);
        let prefix = agreed_prefix(&earlier, &later, quiet).expect("a prefix");
        assert_eq!(prefix.cut_ms, 3_570);
        // A brief quiet inside the word (a stop's closure) is not taken for the pause.
        let closure = |ms: u64| (3_320..3_360).contains(&ms) || quiet(ms);
        assert_eq!(agreed_prefix(&earlier, &later, closure).map(|p| p.cut_ms), Some(3_570));
        assert_eq!(
            prefix.pieces,
            vec![piece("We paged on-call.", 0, 1_500), piece("Then we rolled back,", 1_900, 3_400)]
        );
        // Words that end less than a second before the earlier clip's end are not settled yet.
        let earlier = words(4_000, 8);
        let later = words(5_000, 9);
        assert_eq!(agreed_prefix(&earlier, &later, quiet), None, "a cut at 1.5 s is too short");
        // A pause after a word that ends no clause ("Then") is not cut either.
        assert_eq!(agreed_prefix(&words(5_000, 9), &words(6_000, 10), |ms| (2_150..2_250).contains(&ms)), None);
        // No pause between a clause's end and the next word (only inside a later one): no cut.
        assert_eq!(agreed_prefix(&words(5_000, 9), &words(6_000, 10), |ms| ms == 3_900), None);
    }

    #[test]
    fn partials_read_after_a_settled_cut_settle_more_from_there() {
        let after = |clip_ms: u64, from_ms: u64, pieces: &[(&str, u64, u64)]| Hypothesis {
            from_ms,
            ..hypothesis(clip_ms, pieces)
        };
        let settled = AgreedPrefix { pieces: vec![piece("We paged on-call.", 0, 3_000)], cut_ms: 3_100 };
        let earlier = after(
            8_000,
            3_100,
            &[
                ("Then", 3_200, 3_500),
                ("we", 3_500, 3_700),
                ("rolled", 3_700, 4_200),
                ("back.", 4_200, 5_400),
                ("It", 6_000, 8_000),
            ],
        );
        let later = after(
            9_000,
            3_100,
            &[
                ("Then", 3_200, 3_500),
                ("we", 3_500, 3_700),
                ("rolled", 3_700, 4_200),
                ("back.", 4_200, 5_380),
                ("It", 6_000, 6_300),
                ("held", 6_300, 9_000),
            ],
        );
        let quiet = |ms: u64| (5_400..6_000).contains(&ms);
        let more = agreed_prefix(&earlier, &later, quiet).expect("more settled");
        assert_eq!(more, AgreedPrefix { pieces: vec![piece("Then we rolled back.", 3_200, 5_380)], cut_ms: 5_690 });
        let grown = extend(settled, more);
        assert_eq!(grown.cut_ms, 5_690);
        assert_eq!(
            grown.pieces,
            vec![piece("We paged on-call.", 0, 3_000), piece("Then we rolled back.", 3_200, 5_380)]
        );
        // Read from different cuts: not comparable.
        let moved =
            after(9_000, 0, &later.pieces.iter().map(|p| (p.text.as_str(), p.start_ms, p.end_ms)).collect::<Vec<_>>());
        assert_eq!(agreed_prefix(&earlier, &moved, quiet), None);
        // Growing by less than the least worth a seam: no.
        let close = |ms: u64| (4_300..4_400).contains(&ms);
        let earlier = after(8_000, 3_100, &[("Then", 3_200, 3_500), ("go.", 3_500, 4_300), ("It", 6_000, 8_000)]);
        let later = after(
            9_000,
            3_100,
            &[("Then", 3_200, 3_500), ("go.", 3_500, 4_300), ("It", 6_000, 9_000), ("held", 8_000, 9_000)],
        );
        assert_eq!(agreed_prefix(&earlier, &later, close), None);
    }

    #[test]
    fn the_words_after_a_cut_start_after_the_settled_last_word() {
        let settled = AgreedPrefix { pieces: vec![piece("We paged the on-call engineer.", 0, 3_000)], cut_ms: 3_060 };
        // "I" was timed as ending 40 ms past the cut: it is still the first word after it.
        let partial = [
            piece("on-call", 2_000, 2_500),
            piece("engineer.", 2_500, 3_010),
            piece("I", 3_050, 3_100),
            piece("rolled", 3_100, 3_500),
            piece("back.", 3_500, 3_900),
        ];
        let after = words_after(&partial, &settled, 150);
        assert_eq!(after.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(), ["I", "rolled", "back."]);
        // Read differently ("engineers"): only words ending well past the cut.
        let mut wavering = partial.to_vec();
        wavering[1].text = "engineers.".into();
        let after = words_after(&wavering, &settled, 150);
        assert_eq!(after.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(), ["rolled", "back."]);
        // The same word far from the cut (said again later) is not the settled one.
        let repeated =
            [piece("engineer.", 2_500, 3_010), piece("Then", 3_100, 3_400), piece("engineer.", 3_400, 4_000)];
        let after = words_after(&repeated, &settled, 150);
        assert_eq!(after.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(), ["Then", "engineer."]);
    }

    #[test]
    fn the_rest_is_placed_after_the_cut() {
        let prefix = AgreedPrefix { pieces: vec![piece("One.", 0, 2_500)], cut_ms: 2_500 };
        let joined = join(prefix, vec![piece("Two.", 0, 1_200), piece("Three.", 1_200, 2_000)]);
        assert_eq!(joined, vec![piece("One.", 0, 2_500), piece("Two.", 2_500, 3_700), piece("Three.", 3_700, 4_500)]);
    }
}
