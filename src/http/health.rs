//! Liveness and readiness. The model is loaded before the server listens, so readiness is
//! the database answering and the engine having its workers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = state.store.ping().await.is_ok();
    let model = state.engine.workers() > 0;
    let status = if database && model { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if status == StatusCode::OK { "ready" } else { "not_ready" },
        "database": database,
        "model": model,
        "queued_jobs": state.engine.queued(),
        "busy_workers": state.engine.busy_workers(),
        "free_streams": state.stream_permits.available_permits(),
    });
    (status, Json(body))
}
