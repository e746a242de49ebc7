//! `/v1/guides`: the interview packs loaded at start-up.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/guides", get(list_guides)).route("/v1/guides/{guide}", get(get_guide))
}

async fn list_guides(State(state): State<AppState>) -> Json<Vec<Value>> {
    Json(
        state
            .checklists
            .guides()
            .map(|g| json!({ "id": g.id, "title": g.title, "question_count": g.questions.len() }))
            .collect(),
    )
}

/// The guide with its questions, competencies and checklist items (labels and hints; the
/// detection phrases stay on the server).
async fn get_guide(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let guide = state.checklists.guide(&id).ok_or(ApiError::NotFound("guide"))?;
    Ok(Json(serde_json::to_value(guide).map_err(|_| ApiError::Internal)?))
}
