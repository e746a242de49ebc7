//! Whether a matched phrase is denied by its clause: "we never told anyone outside the
//! team", "there was no postmortem", "alerts were never set up" cover nothing.

use std::ops::Range;

use super::lexicon::{is_negation, AUXILIARIES, NEGATION_IDIOM_ENDS};
use super::text::Token;

/// How far back a negation reaches: "we didn't really have any kind of alerting" is six.
const WORDS_BEFORE: usize = 6;

/// `span` is the matched token range. Negation words inside the match belong to the phrase
/// itself ("no blame", "never happened again") and do not count.
pub fn is_negated(tokens: &[Token], span: Range<usize>) -> bool {
    denied_before(tokens, span.start) || denied_after(tokens, span.end)
}

fn denied_before(tokens: &[Token], start: usize) -> bool {
    if tokens[start].clause_start {
        return false;
    }
    for at in (start.saturating_sub(WORDS_BEFORE)..start).rev() {
        if is_negation(&tokens[at].surface) && !is_idiom(tokens, at) {
            return true;
        }
        if tokens[at].clause_start {
            break;
        }
    }
    false
}

/// "the input was never validated": a denial right after the thing, at most two
/// auxiliaries later, in the same clause.
fn denied_after(tokens: &[Token], end: usize) -> bool {
    let following = tokens[end..].iter().take_while(|t| !t.clause_start);
    for token in following.take(3) {
        if is_negation(&token.surface) {
            return !matches!(token.surface.as_str(), "no" | "without" | "instead" | "rather");
        }
        if !AUXILIARIES.contains(&token.surface.as_str()) {
            return false;
        }
    }
    false
}

fn is_idiom(tokens: &[Token], at: usize) -> bool {
    tokens.get(at + 1).is_some_and(|next| NEGATION_IDIOM_ENDS.contains(&next.surface.as_str()))
}
