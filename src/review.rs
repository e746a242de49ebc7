//! Offline review: a recording goes through the same pipeline as a live answer (voice
//! detection, stretch-by-stretch transcription, timing, checklist) and comes out as the same
//! `Answer` the WebSocket would have sent.

use crate::protocol::{Answer, Question, Segment};
use crate::scoring::Checklists;
use crate::session::{LiveAnswer, LiveEvent};
use crate::transcribe::{Engine, EngineError, JobKind};

/// Transcribes the stretches `events` closed, one after another, into `live`; returns the new
/// segments with their sequence numbers (for storing).
pub async fn transcribe_closed(
    engine: &Engine,
    live: &mut LiveAnswer,
    events: Vec<LiveEvent>,
) -> Result<Vec<(usize, Segment)>, EngineError> {
    let mut added = Vec::new();
    for event in events {
        if let LiveEvent::Transcribe(mut job) = event {
            let pieces = engine.transcribe(std::mem::take(&mut job.audio), JobKind::Final).await?;
            added.extend(live.add_transcription(&job, pieces));
        }
    }
    Ok(added)
}

/// Reviews 16 kHz mono audio as the answer to `question` (asked at the start of the audio).
pub async fn review_recording(
    engine: &Engine,
    checklists: &Checklists,
    guide: Option<&str>,
    question: &Question,
    audio: &[f32],
) -> Result<Answer, EngineError> {
    // A recording is judged against the question's limit, and never cut shorter than itself otherwise.
    let length_ms = audio.len() as u64 / 16 + 1;
    let mut live = LiveAnswer::new(
        question.index,
        0,
        question.time_limit_ms,
        length_ms.max(question.time_limit_ms.unwrap_or(0)),
        0,
    );
    let mut events = live.push(audio);
    events.extend(live.finish());
    transcribe_closed(engine, &mut live, events).await?;
    let mut answer = live.build_answer(false);
    answer.checklist = checklists.score(guide, &question.competencies, &answer.segments);
    Ok(answer)
}
