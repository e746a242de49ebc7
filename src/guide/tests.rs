//! Loader tests: each rejection names the file and the line to fix.

use std::path::Path;

use super::*;

const VALID: &str = r#"id = "tiny"
title = "Tiny"

[synonyms]
tell = ["told", "informed"]

[[competencies]]
id = "comms"
label = "Comms"
description = "Keeps people informed."

[[competencies.items]]
id = "comms.updates"
label = "Gave updates"
hint = "Say how often you updated people."
phrases = ["{tell} support"]
patterns = ['every \d+ minutes']

[[questions]]
id = "second"
kind = "technical"
text = "B?"
competencies = ["comms"]
time_limit_ms = 60000
order = 2

[[questions]]
id = "first"
kind = "behavioural"
text = "A?"
competencies = ["comms"]
time_limit_ms = 60000
order = 1
"#;

fn load(text: &str) -> Result<Guide, GuideError> {
    parse_guide(text, Path::new("guides/tiny.toml"))
}

/// Loads `text` and returns the error message, checking it names the file and `line`.
fn rejection(text: &str, line: usize) -> String {
    let message = load(text).expect_err("guide should be rejected").to_string();
    let prefix = format!("guides/tiny.toml:{line}: ");
    assert!(message.starts_with(&prefix), "{message:?} should start with {prefix:?}");
    message
}

#[test]
fn loads_and_orders_questions() {
    let guide = load(VALID).unwrap();
    let ids: Vec<_> = guide.questions.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids, ["first", "second"]);
    assert_eq!(guide.questions_for(1).len(), 1);
    assert_eq!(guide.questions_for(99).len(), 2);
    let picked = guide.questions_by_ids(&["second".into()]).unwrap();
    assert_eq!(picked[0].kind, QuestionKind::Technical);
    assert_eq!(guide.questions_by_ids(&["nope".into()]).unwrap_err(), UnknownQuestion("nope".into()));
}

#[test]
fn unknown_competency() {
    let text = VALID.replacen(r#"competencies = ["comms"]"#, r#"competencies = ["comms", "typo"]"#, 1);
    let message = rejection(&text, 23);
    assert!(message.contains("unknown competency `typo`"), "{message}");
}

#[test]
fn duplicate_question_id() {
    let message = rejection(&VALID.replace(r#"id = "first""#, r#"id = "second""#), 28);
    assert!(message.contains("duplicate question id `second`"), "{message}");
}

#[test]
fn duplicate_item_id() {
    let text = VALID.replacen(
        "[[questions]]",
        "[[competencies.items]]\nid = \"comms.updates\"\nlabel = \"x\"\nhint = \"x\"\nphrases = [\"x\"]\n\n[[questions]]",
        1,
    );
    let message = rejection(&text, 20);
    assert!(message.contains("duplicate item id `comms.updates`"), "{message}");
}

#[test]
fn duplicate_competency_id() {
    let text = VALID.replacen(
        "[[questions]]",
        "[[competencies]]\nid = \"comms\"\nlabel = \"x\"\ndescription = \"x\"\n[[competencies.items]]\nid = \"comms.other\"\nlabel = \"x\"\nhint = \"x\"\nphrases = [\"x\"]\n\n[[questions]]",
        1,
    );
    let message = rejection(&text, 20);
    assert!(message.contains("duplicate competency id `comms`"), "{message}");
}

#[test]
fn item_not_prefixed_by_competency() {
    let message = rejection(&VALID.replace(r#"id = "comms.updates""#, r#"id = "updates""#), 13);
    assert!(message.contains("item `updates` must be named `comms.<item>`"), "{message}");
}

#[test]
fn bad_regex() {
    let message = rejection(&VALID.replace(r"every \d+ minutes", "every (minutes"), 17);
    assert!(message.contains("item `comms.updates` has a bad pattern"), "{message}");
}

#[test]
fn unknown_synonym_class() {
    let message = rejection(&VALID.replace("{tell} support", "{say} support"), 16);
    assert!(message.contains("unknown synonym class `{say}`"), "{message}");
}

/// A phrase word in braces is a class for the scorer whatever its spelling, so the loader
/// must check it too (fuzzing found `{t'll}` passing the loader and failing the scorer).
#[test]
fn unknown_class_of_any_spelling() {
    let message = rejection(&VALID.replace("{tell} support", "{t'll} support"), 16);
    assert!(message.contains("unknown synonym class `{t'll}`"), "{message}");
}

#[test]
fn missing_required_field() {
    // Reported at the header of the table that lacks it.
    let message = rejection(&VALID.replace("time_limit_ms = 60000\norder = 1", "order = 1"), 27);
    assert!(message.contains("missing field `time_limit_ms`"), "{message}");
}

#[test]
fn toml_syntax_error() {
    let message = rejection(&VALID.replace(r#"label = "Comms""#, r#"label = "Comms"#), 9);
    assert!(!message.contains('\n'), "one line: {message}");
}

#[test]
fn empty_question_list() {
    let cut = VALID.find("[[questions]]").unwrap();
    let text = VALID[..cut].replacen("title = \"Tiny\"\n", "title = \"Tiny\"\nquestions = []\n", 1);
    let message = rejection(&text, 3);
    assert!(message.contains("no questions"), "{message}");
}

#[test]
fn unreadable_file_names_path() {
    let err = load_guide_file(Path::new("/nonexistent/guide.toml")).unwrap_err();
    assert!(err.to_string().starts_with("/nonexistent/guide.toml: cannot read guide"));
}

#[test]
fn loads_the_shipped_guides() {
    let guides = load_guides_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("guides").as_path()).unwrap();
    let guide = guides.iter().find(|g| g.id == "backend-developer").unwrap();
    assert!(guide.questions.len() >= 24);
}
