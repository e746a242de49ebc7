//! Interview guides: questions, competencies and checklist items, loaded from TOML files
//! in `guides/` so that guide content stays data rather than code.

mod error;
mod file;
mod model;
mod placeholder;
mod validate;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use error::{GuideError, Problem};
pub use model::{Competency, Detection, Guide, Item, Question, QuestionKind, Vocabulary};
pub use placeholder::{expand_placeholders, phrase_class};

/// A question id the guide does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown question id `{0}`")]
pub struct UnknownQuestion(pub String);

impl Guide {
    /// The first `count` questions by order; asking for more than exist gives them all.
    pub fn questions_for(&self, count: usize) -> &[Question] {
        &self.questions[..count.min(self.questions.len())]
    }

    /// The named questions, in the order asked for.
    pub fn questions_by_ids(&self, ids: &[String]) -> Result<Vec<&Question>, UnknownQuestion> {
        ids.iter()
            .map(|id| self.questions.iter().find(|q| &q.id == id).ok_or_else(|| UnknownQuestion(id.clone())))
            .collect()
    }

    pub fn competency(&self, id: &str) -> Option<&Competency> {
        self.competencies.iter().find(|c| c.id == id)
    }
}

pub fn load_guide_file(path: &Path) -> Result<Guide, GuideError> {
    let text = std::fs::read_to_string(path).map_err(|source| GuideError::Read { path: path.to_path_buf(), source })?;
    parse_guide(&text, path)
}

/// Every `*.toml` guide in `dir`, sorted by file name so the listing is stable.
pub fn load_guides_dir(dir: &Path) -> Result<Vec<Guide>, GuideError> {
    let read_error = |source| GuideError::Read { path: dir.to_path_buf(), source };
    let mut paths = std::fs::read_dir(dir)
        .map_err(read_error)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    paths.retain(|p| p.extension().is_some_and(|ext| ext == "toml"));
    paths.sort();
    paths.iter().map(|p| load_guide_file(p)).collect()
}

/// Parses guide text; `path` only names the source in errors.
pub fn parse_guide(text: &str, path: &Path) -> Result<Guide, GuideError> {
    let raw: file::GuideFile = toml::from_str(text).map_err(|e| GuideError::Syntax {
        path: path.to_path_buf(),
        line: e.span().map_or(1, |span| error::line_of(text, span.start)),
        message: e.message().trim().to_string(),
    })?;
    validate::validate(raw).map_err(|(offset, problem)| GuideError::Invalid {
        path: path.to_path_buf(),
        line: error::line_of(text, offset),
        problem,
    })
}
