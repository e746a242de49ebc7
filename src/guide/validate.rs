//! Turns a parsed guide file into a [`Guide`], checking every cross-reference so that
//! scoring and session creation never meet a dangling id.

use std::collections::{BTreeMap, HashSet};

use toml::Spanned;

use super::error::Problem;
use super::file::{CompetencyFile, GuideFile, ItemFile, QuestionFile};
use super::model::{Competency, Detection, Guide, Item, Question, Vocabulary};
use super::placeholder::{expand_placeholders, phrase_class};

/// A problem and the byte offset in the file where it shows.
pub type Rejection = (usize, Problem);

pub fn validate(file: GuideFile) -> Result<Guide, Rejection> {
    let questions_span = file.questions.span();
    let synonyms = file.synonyms;
    let mut competency_ids = HashSet::new();
    let mut item_ids = HashSet::new();
    let competencies = file
        .competencies
        .into_iter()
        .map(|c| competency(c, &synonyms, &mut competency_ids, &mut item_ids))
        .collect::<Result<Vec<_>, _>>()?;

    let raw_questions = file.questions.into_inner();
    if raw_questions.is_empty() {
        return Err((questions_span.start, Problem::NoQuestions));
    }
    let mut question_ids = HashSet::new();
    let mut questions = raw_questions
        .into_iter()
        .map(|q| question(q, &competency_ids, &mut question_ids))
        .collect::<Result<Vec<_>, _>>()?;
    questions.sort_by_key(|q| q.order);

    Ok(Guide {
        id: file.id,
        title: file.title,
        questions,
        competencies,
        vocabulary: Vocabulary { heard_as: file.heard_as, synonyms },
    })
}

fn unique(seen: &mut HashSet<String>, id: &Spanned<String>, kind: &'static str) -> Result<(), Rejection> {
    if seen.insert(id.get_ref().clone()) {
        Ok(())
    } else {
        Err((id.span().start, Problem::DuplicateId { kind, id: id.get_ref().clone() }))
    }
}

fn question(
    raw: QuestionFile,
    competency_ids: &HashSet<String>,
    seen: &mut HashSet<String>,
) -> Result<Question, Rejection> {
    unique(seen, &raw.id, "question")?;
    if let Some(bad) = raw.competencies.iter().find(|c| !competency_ids.contains(c.get_ref())) {
        let problem =
            Problem::UnknownCompetency { question: raw.id.get_ref().clone(), competency: bad.get_ref().clone() };
        return Err((bad.span().start, problem));
    }
    Ok(Question {
        id: raw.id.into_inner(),
        kind: raw.kind,
        text: raw.text,
        competencies: raw.competencies.into_iter().map(Spanned::into_inner).collect(),
        time_limit_ms: raw.time_limit_ms,
        order: raw.order,
    })
}

fn competency(
    raw: CompetencyFile,
    synonyms: &BTreeMap<String, Vec<String>>,
    seen: &mut HashSet<String>,
    item_ids: &mut HashSet<String>,
) -> Result<Competency, Rejection> {
    unique(seen, &raw.id, "competency")?;
    if raw.items.is_empty() {
        let problem = Problem::NoItems { competency: raw.id.get_ref().clone() };
        return Err((raw.id.span().start, problem));
    }
    let prefix = format!("{}.", raw.id.get_ref());
    let items = raw
        .items
        .into_iter()
        .map(|item| {
            unique(item_ids, &item.id, "item")?;
            if !item.id.get_ref().starts_with(&prefix) || item.id.get_ref().len() == prefix.len() {
                let problem = Problem::ItemOutsideCompetency {
                    item: item.id.get_ref().clone(),
                    competency: raw.id.get_ref().clone(),
                };
                return Err((item.id.span().start, problem));
            }
            checked_item(item, synonyms)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Competency { id: raw.id.into_inner(), label: raw.label, description: raw.description, items })
}

fn checked_item(raw: ItemFile, synonyms: &BTreeMap<String, Vec<String>>) -> Result<Item, Rejection> {
    let item_id = raw.id.get_ref().clone();
    if raw.phrases.is_empty() && raw.patterns.is_empty() {
        return Err((raw.id.span().start, Problem::Undetectable { item: item_id }));
    }
    // A class only needs to exist here; its words are escaped when the scorer compiles it.
    let known = |name: &str| synonyms.contains_key(name).then(|| "(?:x)".to_string());
    let unknown_class = |at: usize, class: String| (at, Problem::UnknownSynonymClass { item: item_id.clone(), class });
    for phrase in &raw.phrases {
        let words: Vec<&str> = phrase.get_ref().split_whitespace().collect();
        let gap_at_edge = words.first().is_some_and(|w| *w == "...") || words.last().is_some_and(|w| *w == "...");
        if words.is_empty() || gap_at_edge {
            return Err((phrase.span().start, Problem::BadPhrase { item: item_id.clone() }));
        }
        expand_placeholders(phrase.get_ref(), known).map_err(|c| unknown_class(phrase.span().start, c))?;
        if let Some(class) = words.iter().filter_map(|w| phrase_class(w)).find(|c| !synonyms.contains_key(*c)) {
            return Err(unknown_class(phrase.span().start, class.to_string()));
        }
    }
    for pattern in &raw.patterns {
        let expanded =
            expand_placeholders(pattern.get_ref(), known).map_err(|c| unknown_class(pattern.span().start, c))?;
        if let Err(e) = regex::Regex::new(&expanded) {
            let problem = Problem::BadPattern { item: item_id.clone(), message: e.to_string() };
            return Err((pattern.span().start, problem));
        }
    }
    Ok(Item {
        id: raw.id.into_inner(),
        label: raw.label,
        hint: raw.hint,
        detection: Detection {
            phrases: raw.phrases.into_iter().map(Spanned::into_inner).collect(),
            patterns: raw.patterns.into_iter().map(Spanned::into_inner).collect(),
        },
    })
}
