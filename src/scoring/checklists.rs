//! Every loaded guide with its compiled [`Scorer`]: what the server scores answers with.

use std::path::Path;

use super::{Scorer, ScorerError};
use crate::guide::{load_guides_dir, Guide, GuideError};
use crate::protocol::{ChecklistItem, Segment};

#[derive(Debug, thiserror::Error)]
pub enum ChecklistsError {
    #[error(transparent)]
    Guide(#[from] GuideError),
    #[error("guide {guide}: {source}")]
    Scorer { guide: String, source: ScorerError },
    #[error("two guides have the id {0:?}")]
    DuplicateGuide(String),
}

pub struct Checklists {
    entries: Vec<(Guide, Scorer)>,
}

impl Checklists {
    /// Loads and validates every guide in `dir`; any error stops start-up, naming file and line.
    pub fn load(dir: &Path) -> Result<Self, ChecklistsError> {
        let guides = load_guides_dir(dir)?;
        let mut entries: Vec<(Guide, Scorer)> = Vec::with_capacity(guides.len());
        for guide in guides {
            if entries.iter().any(|(g, _)| g.id == guide.id) {
                return Err(ChecklistsError::DuplicateGuide(guide.id));
            }
            let scorer =
                Scorer::new(&guide).map_err(|source| ChecklistsError::Scorer { guide: guide.id.clone(), source })?;
            entries.push((guide, scorer));
        }
        Ok(Self { entries })
    }

    pub fn guides(&self) -> impl Iterator<Item = &Guide> {
        self.entries.iter().map(|(guide, _)| guide)
    }

    pub fn guide(&self, id: &str) -> Option<&Guide> {
        self.guides().find(|g| g.id == id)
    }

    /// Whether some guide defines this competency (custom questions may name any of them).
    pub fn knows_competency(&self, id: &str) -> bool {
        self.guides().any(|g| g.competency(id).is_some())
    }

    /// Scores an answer against the checklist of each competency, taking each competency from
    /// the session's guide when it has one, else from the first guide that defines it.
    pub fn score(&self, guide_id: Option<&str>, competencies: &[String], segments: &[Segment]) -> Vec<ChecklistItem> {
        let preferred = self.entries.iter().filter(|(g, _)| Some(g.id.as_str()) == guide_id);
        let others = self.entries.iter().filter(|(g, _)| Some(g.id.as_str()) != guide_id);
        let mut remaining: Vec<String> = competencies.to_vec();
        let mut items = Vec::new();
        for (guide, scorer) in preferred.chain(others) {
            let (here, elsewhere): (Vec<String>, Vec<String>) =
                remaining.into_iter().partition(|c| guide.competency(c).is_some());
            if !here.is_empty() {
                items.extend(scorer.score_answer(&here, segments));
            }
            remaining = elsewhere;
        }
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checklists() -> Checklists {
        Checklists::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("guides")).unwrap()
    }

    #[test]
    fn the_shipped_guides_load_and_score() {
        let c = checklists();
        let guide = c.guide("backend-developer").unwrap();
        assert!(guide.questions.len() >= 24);
        assert!(c.knows_competency("incident-communication") && !c.knows_competency("juggling"));
        let segments = [Segment {
            text: "I paged the on-call and posted updates to support every thirty minutes.".into(),
            start_ms: 1000,
            end_ms: 5000,
        }];
        let items = c.score(None, &["incident-communication".to_string()], &segments);
        assert_eq!(items.len(), guide.competency("incident-communication").unwrap().items.len());
        let status = |id: &str| items.iter().find(|i| i.id == id).unwrap().status.clone();
        assert_eq!(status("incident-communication.status-updates"), "covered");
        assert_eq!(status("incident-communication.postmortem"), "missing");
    }
}
