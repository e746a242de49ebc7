//! The review as Markdown: questions, timed transcript, timing, pace and checklist.

use std::fmt::Write;

use crate::protocol::{Answer, Question};
use crate::store::Note;

/// `m:ss.s` for a time on the answer's clock.
fn clock(ms: u64) -> String {
    format!("{}:{:04.1}", ms / 60_000, (ms % 60_000) as f64 / 1000.0)
}

fn write_notes(out: &mut String, notes: &[Note], index: usize) {
    let pinned: Vec<&Note> = notes.iter().filter(|n| n.index == index).collect();
    if !pinned.is_empty() {
        let _ = writeln!(out, "\nReviewer notes:\n");
        for note in pinned {
            let _ = writeln!(out, "- at {}: {}", clock(note.at_ms), note.text);
        }
    }
}

pub fn export_markdown(created_at: &str, questions: &[Question], answers: &[Answer], notes: &[Note]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Interview review\n\nRecorded {created_at}.\n");
    for question in questions {
        let _ = writeln!(out, "## {}. {}\n", question.index + 1, question.text.trim());
        let Some(answer) = answers.iter().find(|a| a.index == question.index) else {
            let _ = writeln!(out, "_Not answered._");
            write_notes(&mut out, notes, question.index);
            out.push('\n');
            continue;
        };
        let t = &answer.timing;
        let s = &answer.speech;
        let _ = writeln!(
            out,
            "- Think time: {:.1} s; answer: {:.1} s; speaking: {:.1} s; longest pause: {:.1} s{}",
            t.think_ms as f64 / 1000.0,
            t.answer_ms as f64 / 1000.0,
            t.speaking_ms as f64 / 1000.0,
            t.longest_pause_ms as f64 / 1000.0,
            if t.over_limit { " (over the time limit)" } else { "" }
        );
        let fillers: Vec<String> = s.fillers.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
        let _ = writeln!(
            out,
            "- {} words at {:.0} words per minute; fillers: {}\n",
            s.words,
            s.wpm,
            if fillers.is_empty() { "none heard".to_string() } else { fillers.join(", ") }
        );
        if answer.segments.is_empty() {
            let _ = writeln!(out, "_No speech was recognised._\n");
        }
        for segment in &answer.segments {
            let _ = writeln!(out, "> **{}–{}** {}", clock(segment.start_ms), clock(segment.end_ms), segment.text);
        }
        if !answer.checklist.is_empty() {
            let _ = writeln!(out, "\n| item | status | evidence or hint |\n| --- | --- | --- |");
            for item in &answer.checklist {
                let detail = match (&item.evidence, &item.hint) {
                    (Some(e), _) => format!("“{}” at {}", e.text, clock(e.start_ms)),
                    (None, Some(hint)) => hint.clone(),
                    (None, None) => String::new(),
                };
                let _ = writeln!(out, "| {} | {} | {} |", item.label, item.status, detail.replace('|', "\\|"));
            }
        }
        write_notes(&mut out, notes, question.index);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Segment, SpeechFigures, Timing};

    #[test]
    fn export_lists_questions_transcript_and_timing() {
        let q = |index, text: &str| Question {
            index,
            id: format!("q{index}"),
            text: text.into(),
            competencies: vec![],
            time_limit_ms: None,
        };
        let answer = Answer {
            index: 0,
            transcript: "We paged the on-call.".into(),
            segments: vec![Segment { text: "We paged the on-call.".into(), start_ms: 2100, end_ms: 65_400 }],
            timing: Timing { think_ms: 2100, answer_ms: 3300, ..Default::default() },
            speech: SpeechFigures { words: 4, wpm: 72.7, ..Default::default() },
            checklist: vec![],
            interrupted: false,
            audio_ms: 6000,
        };
        let note = Note {
            id: "n".into(),
            index: 0,
            at_ms: 3_000,
            text: "Say who you told.".into(),
            created_at: String::new(),
        };
        let md = export_markdown(
            "2026-01-01T00:00:00Z",
            &[q(0, "Tell me about an outage."), q(1, "Why us?")],
            &[answer],
            &[note],
        );
        assert!(md.contains("- at 0:03.0: Say who you told."));
        assert!(md.contains("## 1. Tell me about an outage."));
        assert!(md.contains("> **0:02.1–1:05.4** We paged the on-call."));
        assert!(md.contains("Think time: 2.1 s"));
        assert!(md.contains("## 2. Why us?\n\n_Not answered._\n"));
    }
}
