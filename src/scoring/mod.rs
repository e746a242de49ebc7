//! Checklist scoring: which of a question's checklist items a spoken answer covers, with
//! the covering words and their times as evidence.
//!
//! Pure and deterministic. A [`Scorer`] compiles a guide's detection data once; scoring an
//! answer then tokenises its segments ([`text`]), corrects speech-recognition slips, and asks
//! each item's [`matcher`] for its earliest match that [`negation`] does not deny.

mod checklists;
mod evidence;
mod lexicon;
mod matcher;
mod negation;
mod text;

#[cfg(test)]
mod tests;

pub use checklists::{Checklists, ChecklistsError};

use crate::guide::Guide;
use crate::protocol::{ChecklistItem, Segment};
use matcher::{Joined, Matcher};
use text::{tokenize, SlipFixer};

/// Detection data that cannot be compiled. The guide loader rejects such data first, so
/// this only fires for a `Guide` built by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("item `{item}`: {message}")]
pub struct ScorerError {
    pub item: String,
    pub message: String,
}

/// A guide's checklist, compiled for fast repeated scoring. Build one per guide at startup
/// and share it: scoring takes `&self`.
pub struct Scorer {
    slips: SlipFixer,
    competencies: Vec<(String, Vec<CompiledItem>)>,
}

struct CompiledItem {
    id: String,
    competency: String,
    label: String,
    hint: String,
    matcher: Matcher,
}

impl Scorer {
    pub fn new(guide: &Guide) -> Result<Self, ScorerError> {
        let synonyms = &guide.vocabulary.synonyms;
        let competencies = guide
            .competencies
            .iter()
            .map(|competency| {
                let items = competency
                    .items
                    .iter()
                    .map(|item| {
                        let matcher = Matcher::new(&item.detection, synonyms)
                            .map_err(|message| ScorerError { item: item.id.clone(), message })?;
                        Ok(CompiledItem {
                            id: item.id.clone(),
                            competency: competency.id.clone(),
                            label: item.label.clone(),
                            hint: item.hint.clone(),
                            matcher,
                        })
                    })
                    .collect::<Result<Vec<_>, ScorerError>>()?;
                Ok((competency.id.clone(), items))
            })
            .collect::<Result<Vec<_>, ScorerError>>()?;
        Ok(Self { slips: SlipFixer::new(&guide.vocabulary.heard_as), competencies })
    }

    /// Every item of every listed competency, in guide order, covered (with evidence) or
    /// missing (with a hint). Ids the guide does not know are ignored: callers validate
    /// questions when a session is created.
    pub fn score_answer(&self, competency_ids: &[String], segments: &[Segment]) -> Vec<ChecklistItem> {
        let tokens = self.slips.apply(tokenize(segments));
        let stems = Joined::new(tokens.iter().map(|t| t.stem.as_str()));
        let surface = Joined::new(tokens.iter().map(|t| t.surface.as_str()));
        self.competencies
            .iter()
            .filter(|(id, _)| competency_ids.contains(id))
            .flat_map(|(_, items)| items)
            .map(|item| {
                let found = item.matcher.find(&tokens, &stems, &surface);
                let evidence = found.map(|span| evidence::evidence(&tokens, span, segments));
                ChecklistItem {
                    id: item.id.clone(),
                    competency: item.competency.clone(),
                    label: item.label.clone(),
                    status: if evidence.is_some() { "covered" } else { "missing" }.to_string(),
                    hint: evidence.is_none().then(|| item.hint.clone()),
                    evidence,
                }
            })
            .collect()
    }
}
