//! Guide sessions and checklists end to end: spoken answers (espeak-ng) through the WebSocket,
//! real whisper, and the covered and missing items they earn.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(120);

/// Speaks `text` as the answer to a one-question guide session and returns the answer.
async fn spoken_answer(app: &TestApp, question_id: &str, text: &str) -> Value {
    let session = app.create(json!({"guide": "backend-developer", "question_ids": [question_id]})).await;
    let (speech, rate) = speak(text);
    let mut client = app.connect(&session).await;
    client.start_s16(rate).await.unwrap();
    client.recv_until("question", WAIT).await.unwrap();
    client.send_audio(&concat(&[&silence(800, rate), &speech, &silence(800, rate)]), rate, 100, false).await.unwrap();
    client.send_json(json!({"type": "end_answer"})).await.unwrap();
    client.recv_until("answer", WAIT).await.unwrap().pop().unwrap()
}

fn status<'a>(answer: &'a Value, id: &str) -> &'a Value {
    let item = answer["checklist"].as_array().unwrap().iter().find(|i| i["id"] == id);
    &item.unwrap_or_else(|| panic!("{id} not in the checklist: {answer}"))["status"]
}

on_both_stores! {
    async fn a_spoken_incident_story_is_scored_with_evidence(db: Db) {
        let app = spawn_app(&db).await;
        let answer = spoken_answer(
            &app,
            "incident-story",
            "We declared an incident and opened a bridge. I posted updates to the support team every thirty minutes. \
             Afterwards we held a blameless postmortem.",
        )
        .await;
        for covered in [
            "incident-communication.declare",
            "incident-communication.status-updates",
            "incident-communication.stakeholders",
            "incident-communication.postmortem",
        ] {
            assert_eq!(status(&answer, covered), "covered", "{covered}: {}", answer["transcript"]);
        }
        assert_eq!(status(&answer, "incident-communication.roles"), "missing");
        let checklist = answer["checklist"].as_array().unwrap();
        let roles = checklist.iter().find(|i| i["id"] == "incident-communication.roles").unwrap();
        assert!(roles["hint"].as_str().is_some_and(|h| !h.is_empty()) && roles["evidence"].is_null());
        // Evidence carries the covering words and times inside the answer.
        let declare = checklist.iter().find(|i| i["id"] == "incident-communication.declare").unwrap();
        let evidence = &declare["evidence"];
        assert!(lower_words(evidence["text"].as_str().unwrap()).contains("incident") || lower_words(evidence["text"].as_str().unwrap()).contains("bridge"));
        let (start, end) = (evidence["start_ms"].as_u64().unwrap(), evidence["end_ms"].as_u64().unwrap());
        assert!(start >= 500 && end > start && end <= answer["audio_ms"].as_u64().unwrap());
        // Every item of every competency of the question, in guide order.
        let guide: Value = reqwest::get(app.url("/v1/guides/backend-developer")).await.unwrap().json().await.unwrap();
        let question = guide["questions"].as_array().unwrap().iter().find(|q| q["id"] == "incident-story").unwrap();
        let expected: Vec<&Value> = question["competencies"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| guide["competencies"].as_array().unwrap().iter().find(|g| &g["id"] == c).unwrap()["items"].as_array().unwrap())
            .map(|item| &item["id"])
            .collect();
        let got: Vec<&Value> = checklist.iter().map(|i| &i["id"]).collect();
        assert_eq!(got, expected);
    }
}

on_both_stores! {
    async fn negations_cover_nothing(db: Db) {
        let app = spawn_app(&db).await;
        let answer = spoken_answer(
            &app,
            "incident-story",
            "Honestly we never told the customers anything, and there was no postmortem afterwards.",
        )
        .await;
        assert_eq!(status(&answer, "incident-communication.stakeholders"), "missing", "{}", answer["transcript"]);
        assert_eq!(status(&answer, "incident-communication.postmortem"), "missing", "{}", answer["transcript"]);
    }
}

on_both_stores! {
    async fn guides_are_listed_and_sessions_built_from_them(db: Db) {
        let app = spawn_app(&db).await;
        let guides: Value = reqwest::get(app.url("/v1/guides")).await.unwrap().json().await.unwrap();
        assert_eq!(guides[0]["id"], "backend-developer");
        assert!(guides[0]["question_count"].as_u64().unwrap() >= 24);
        assert_eq!(reqwest::get(app.url("/v1/guides/nope")).await.unwrap().status(), 404);

        let five = app.create(json!({"guide": "backend-developer", "count": 5})).await;
        let questions = five.body["questions"].as_array().unwrap();
        assert_eq!(questions.len(), 5);
        assert!(questions.iter().enumerate().all(|(i, q)| q["index"] == i && q["time_limit_ms"].as_u64().is_some()));
        let named = app.create(json!({"guide": "backend-developer", "question_ids": ["secure-api", "incident-story"]})).await;
        assert_eq!(named.body["questions"][0]["id"], "secure-api");
        assert_eq!(named.body["questions"][1]["id"], "incident-story");

        let client = reqwest::Client::new();
        for (body, status, code) in [
            (json!({"guide": "no-such-guide", "count": 2}), 404, "guide_not_found"),
            (json!({"guide": "backend-developer", "count": 0}), 400, "invalid_count"),
            (json!({"guide": "backend-developer", "question_ids": ["nope"]}), 400, "unknown_question"),
            (json!({"questions": [{"text": "Q", "competencies": ["juggling"]}]}), 400, "unknown_competency"),
        ] {
            let r = client.post(app.url("/v1/sessions")).json(&body).send().await.unwrap();
            assert_eq!(r.status(), status, "{body}");
            assert_eq!(r.json::<Value>().await.unwrap()["code"], code, "{body}");
        }
    }
}

on_both_stores! {
    async fn rescore_recomputes_stored_answers(db: Db) {
        let app = spawn_app(&db).await;
        let session = app.create(json!({"questions": [{"text": "How do you keep an API secure?", "competencies": ["security-defaults"]}]})).await;
        let (speech, rate) = speak("We check every request against a strict schema and reject bad input.");
        let mut client = app.connect(&session).await;
        client.start_s16(rate).await.unwrap();
        client.recv_until("question", WAIT).await.unwrap();
        client.send_audio(&concat(&[&silence(500, rate), &speech]), rate, 100, false).await.unwrap();
        client.send_json(json!({"type": "finish"})).await.unwrap();
        let answer = client.recv_until("complete", WAIT).await.unwrap();
        let answer = of_type(&answer, "answer")[0].clone();
        let r = reqwest::Client::new()
            .post(app.url(&format!("/v1/sessions/{}/rescore", session.id)))
            .bearer_auth(&session.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let review: Value = r.json().await.unwrap();
        assert_eq!(review["answers"][0]["checklist"], answer["checklist"]);
        assert_eq!(status(&review["answers"][0], "security-defaults.input-validation"), "covered");
        let r = reqwest::Client::new().post(app.url(&format!("/v1/sessions/{}/rescore", session.id))).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
}

on_both_stores! {
    async fn spoken_fillers_are_counted(db: Db) {
        let app = spawn_app(&db).await;
        let answer = spoken_answer(
            &app,
            "incident-story",
            "Um, so, uh, we rolled back the deploy, um, and then, uh, we paged the on call.",
        )
        .await;
        let fillers = &answer["speech"]["fillers"];
        assert!(fillers["um"].as_u64().unwrap_or(0) >= 1, "{}", answer["transcript"]);
        assert!(fillers["uh"].as_u64().unwrap_or(0) >= 1, "{}", answer["transcript"]);
        assert!(answer["speech"]["filler_count"].as_u64().unwrap() >= 2);
        assert!(answer["speech"]["fillers_per_minute"].as_f64().unwrap() > 0.0);
    }
}
