//! Behaviour of the whole scorer on short spoken answers, with the shipped guide.

use std::path::Path;
use std::sync::LazyLock;

use super::Scorer;
use crate::guide::load_guide_file;
use crate::protocol::{ChecklistItem, Segment};

static SCORER: LazyLock<Scorer> = LazyLock::new(|| {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("guides/backend-developer.toml");
    Scorer::new(&load_guide_file(&path).unwrap()).unwrap()
});

fn score(competency: &str, text: &str) -> Vec<ChecklistItem> {
    let segments = [Segment { text: text.into(), start_ms: 0, end_ms: 10_000 }];
    SCORER.score_answer(&[competency.to_string()], &segments)
}

/// The item's evidence text when covered, `None` when missing.
fn evidence(text: &str, id: &str) -> Option<String> {
    let competency = id.split('.').next().unwrap();
    let items = score(competency, text);
    let item = items.iter().find(|i| i.id == id).unwrap_or_else(|| panic!("no item {id}"));
    assert_eq!(item.status == "covered", item.evidence.is_some());
    assert_eq!(item.hint.is_some(), item.evidence.is_none());
    item.evidence.as_ref().map(|e| e.text.clone())
}

fn covered(text: &str, id: &str) -> bool {
    evidence(text, id).is_some()
}

#[test]
fn paraphrases_and_inflections() {
    let text = "I kept support in the loop every half hour";
    assert!(covered(text, "incident-communication.status-updates"));
    assert!(covered(text, "incident-communication.stakeholders"));
    assert!(covered("we reproduced it on staging", "debugging-method.reproduce"));
    assert!(covered("i finally made it happen reliably", "debugging-method.reproduce"));
    assert!(covered("we were logging everything", "debugging-method.evidence"));
}

#[test]
fn negation_and_absence_cover_nothing() {
    assert!(!covered("we never told anyone outside the team", "incident-communication.stakeholders"));
    assert!(!covered("nobody had validated the input", "security-defaults.input-validation"));
    assert!(!covered("I didn't write a test", "debugging-method.prevent"));
    assert!(!covered("there was no postmortem", "incident-communication.postmortem"));
    assert!(!covered("it ran without any alerting", "reliability.observability"));
    assert!(!covered("the alerts were never set up", "reliability.observability"));
}

#[test]
fn negation_stays_in_its_clause() {
    assert!(covered("we had no alerts, so we added alerting", "reliability.observability"));
    assert!(covered("there were no dashboards but we added alerts", "reliability.observability"));
    // "not only" is an idiom, not a denial.
    assert!(covered("not only did we retry with backoff", "reliability.timeouts-retries"));
}

#[test]
fn earliest_non_negated_match_is_the_evidence() {
    let text = "we didn't have a postmortem at first. later we ran a blameless review";
    assert_eq!(evidence(text, "incident-communication.postmortem").as_deref(), Some("blameless"));
}

#[test]
fn speech_recognition_slips() {
    for heard in ["the OASP top ten", "the oh wasp list", "the O-WASP guidance"] {
        assert!(covered(heard, "security-defaults.owasp"), "{heard}");
    }
    assert!(covered("the handler is item potent", "reliability.timeouts-retries"));
    for heard in ["we did a post mortem", "we did a post-mortem", "the post-mortems helped"] {
        assert!(covered(heard, "incident-communication.postmortem"), "{heard}");
    }
    // Evidence keeps what was actually transcribed.
    assert_eq!(evidence("we did a post-mortem", "incident-communication.postmortem").as_deref(), Some("post-mortem"));
}

#[test]
fn numbers_as_digits_or_words() {
    for text in [
        "latency dropped by 40 percent",
        "latency dropped by 40%",
        "we were back within three hours",
        "it took half an hour",
        "we saved about two thousand dollars a month",
        "errors went from 120 a day to zero",
    ] {
        assert!(covered(text, "star.quantified"), "{text}");
    }
    assert!(!covered("it worked out well and everyone was happy", "star.quantified"));
}

#[test]
fn star_structure() {
    let text = "Last year our checkout kept timing out. I was on call, so it was my responsibility. \
                I added an index and in the end latency dropped by 80 percent.";
    let items = score("star", text);
    assert!(items.iter().all(|i| i.status == "covered"), "{items:#?}");
}

#[test]
fn every_item_of_listed_competencies_in_guide_order() {
    let segments = [Segment { text: "hello".into(), start_ms: 0, end_ms: 500 }];
    let listed = ["star".to_string(), "reliability".to_string(), "unknown".to_string()];
    let items = SCORER.score_answer(&listed, &segments);
    let ids: Vec<_> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids[0], "reliability.failure-modes");
    assert_eq!(ids.len(), 10);
    assert!(items.iter().all(|i| i.status == "missing" && i.hint.is_some()));
}

#[test]
fn evidence_times_are_interpolated_within_the_segment() {
    // 40 characters over 4000 ms: "postmortem" starts at character 13 and ends at 23.
    let segments = [Segment { text: "and we held a postmortem the next morning".into(), start_ms: 1000, end_ms: 5100 }];
    let items = SCORER.score_answer(&["incident-communication".to_string()], &segments);
    let found = items.iter().find(|i| i.id == "incident-communication.postmortem").unwrap();
    let evidence = found.evidence.as_ref().unwrap();
    assert_eq!((evidence.text.as_str(), evidence.start_ms, evidence.end_ms), ("postmortem", 2400, 3400));
}

#[test]
fn missing_items_serialise_with_null_evidence_and_a_hint() {
    let item = &score("simplicity", "no idea")[0];
    let json = serde_json::to_value(item).unwrap();
    assert_eq!(json["status"], "missing");
    assert!(json["evidence"].is_null());
    assert!(json["hint"].is_string());
}

#[test]
fn prefix_phrases_match_every_inflection() {
    // "declare* ... incident": the prefix is stemmed like the words it is matched against.
    for text in ["We declare that incident.", "I declared a major incident.", "we are declaring an incident now"] {
        assert!(covered(text, "incident-communication.declare"), "{text}");
    }
}
