//! Background upkeep: finalising answers whose stream is gone for good (its server died, or its
//! client never came back within the resume window), and deleting sessions past retention.
//! Every server runs it; the stream lease makes sure one answer is finalised by one of them.

use std::time::Duration;

use crate::http::AppState;
use crate::session::LiveAnswer;
use crate::store::AnswerStatus;

/// How long a stream's lease on its session lasts; a live stream renews it far more often.
pub const LEASE_MS: u64 = 15_000;

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Runs until shutdown, every `maintenance_every_ms`.
pub async fn run_maintenance(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_millis(state.limits.maintenance_every_ms.max(100)));
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match finalise_orphans(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(answers = n, "finalised interrupted answers"),
            Err(error) => tracing::warn!(%error, "could not finalise interrupted answers"),
        }
        if let Some(days) = state.limits.retention_days {
            let cutoff = now_ms().saturating_sub(days * 24 * 3_600_000);
            match state.store.delete_sessions_before(cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, days, "deleted sessions past retention"),
                Err(error) => tracing::warn!(%error, "retention clean-up failed"),
            }
        }
    }
}

/// Finalises every orphaned answer; returns how many.
pub async fn finalise_orphans(state: &AppState) -> anyhow::Result<usize> {
    let mut done = 0;
    for (session_id, index) in state.store.orphaned_answers(now_ms()).await? {
        if finalise_orphan(state, &session_id, index).await? {
            done += 1;
        }
    }
    Ok(done)
}

/// Transcribes what the stream left untranscribed, scores the answer and stores it as
/// interrupted. Holds the session's lease meanwhile, so no stream or other server races it.
async fn finalise_orphan(state: &AppState, session_id: &str, index: usize) -> anyhow::Result<bool> {
    let owner = crate::http::new_lease_owner();
    let now = now_ms();
    if !state.store.take_lease(session_id, &owner, now, now + LEASE_MS).await? {
        return Ok(false);
    }
    let result = finalise_leased(state, session_id, index).await;
    state.store.release_lease(session_id, &owner, 0).await?;
    result
}

async fn finalise_leased(state: &AppState, session_id: &str, index: usize) -> anyhow::Result<bool> {
    let store = &state.store;
    let Some(session) = store.session(session_id).await? else { return Ok(false) };
    let Some(row) =
        store.answers(session_id).await?.into_iter().find(|a| a.index == index && a.status == AnswerStatus::Recording)
    else {
        return Ok(false);
    };
    let Some(question) = session.questions.get(index) else { return Ok(false) };
    let audio = store.answer_audio(session_id, index).await?.unwrap_or_default();
    let mut live = LiveAnswer::for_question(question, row.asked_at_ms, &state.limits);
    let mut events = live.resume(&audio, row.segments);
    events.extend(live.finish());
    for (seq, segment) in crate::review::transcribe_closed(&state.engine, &mut live, events).await? {
        store.add_segment(session_id, index, seq, &segment).await?;
    }
    let mut answer = live.build_answer(true);
    answer.checklist = state.checklists.score(session.guide.as_deref(), &question.competencies, &answer.segments);
    store.finish_answer(session_id, index, AnswerStatus::Interrupted, Some(&answer)).await?;
    tracing::info!(session = %session_id, index, audio_ms = answer.audio_ms, "interrupted answer finalised");
    Ok(true)
}
