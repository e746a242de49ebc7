//! `/v1/sessions`: create, review, audio, export and delete.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::{authorize, bearer_token, hash_token, new_session_id, new_token};
use super::error::{ApiError, JsonBody};
use super::AppState;
use crate::audio::encode_wav;
use crate::protocol::Question;
use crate::store::{load_review, NewSession, Note};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions", post(create_session))
        .route("/v1/sessions/{id}", get(get_session).delete(delete_session))
        .route("/v1/sessions/{id}/answers/{index}/audio", get(get_audio))
        .route("/v1/sessions/{id}/export.md", get(export_markdown))
        .route("/v1/sessions/{id}/rescore", post(rescore))
        .route("/v1/sessions/{id}/notes", post(add_note))
        .route("/v1/admin/sessions", get(admin_list_sessions))
        // Everything here is one session's private data (its token, its answers, its audio),
        // errors included: no cache, shared or private, may keep a copy.
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        ))
}

#[derive(Debug, Deserialize)]
struct CreateSession {
    guide: Option<String>,
    count: Option<usize>,
    question_ids: Option<Vec<String>>,
    questions: Option<Vec<NewQuestion>>,
}

#[derive(Debug, Deserialize)]
struct NewQuestion {
    id: Option<String>,
    text: String,
    #[serde(default)]
    competencies: Vec<String>,
    time_limit_ms: Option<u64>,
}

const MIN_TIME_LIMIT_MS: u64 = 5_000;
const MAX_COMPETENCIES: usize = 16;

fn valid_slug(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn custom_questions(state: &AppState, questions: Vec<NewQuestion>) -> Result<Vec<Question>, ApiError> {
    let limits = &state.limits;
    if questions.is_empty() {
        return Err(ApiError::bad_request("invalid_questions", "questions: give at least one question"));
    }
    if questions.len() > limits.max_questions {
        return Err(ApiError::bad_request(
            "too_many_questions",
            format!("questions: at most {} per session", limits.max_questions),
        ));
    }
    questions
        .into_iter()
        .enumerate()
        .map(|(index, q)| {
            let field = |name: &str| format!("questions[{index}].{name}");
            let text = q.text.trim().to_string();
            if text.is_empty() || text.chars().count() > limits.max_question_chars {
                return Err(ApiError::bad_request(
                    "invalid_question",
                    format!("{}: must have 1 to {} characters", field("text"), limits.max_question_chars),
                ));
            }
            let id = q.id.unwrap_or_else(|| format!("custom-{}", index + 1));
            if !valid_slug(&id) {
                return Err(ApiError::bad_request(
                    "invalid_question",
                    format!("{}: letters, digits, - _ . only", field("id")),
                ));
            }
            if q.competencies.len() > MAX_COMPETENCIES || !q.competencies.iter().all(|c| valid_slug(c)) {
                return Err(ApiError::bad_request(
                    "invalid_question",
                    format!("{}: up to {MAX_COMPETENCIES} ids of letters, digits, - _ .", field("competencies")),
                ));
            }
            if let Some(unknown) = q.competencies.iter().find(|c| !state.checklists.knows_competency(c)) {
                return Err(ApiError::bad_request(
                    "unknown_competency",
                    format!(
                        "{}: no guide defines the competency {unknown:?} (see GET /v1/guides/{{id}})",
                        field("competencies")
                    ),
                ));
            }
            if let Some(limit) = q.time_limit_ms {
                if !(MIN_TIME_LIMIT_MS..=limits.max_answer_ms).contains(&limit) {
                    return Err(ApiError::bad_request(
                        "invalid_question",
                        format!(
                            "{}: between {MIN_TIME_LIMIT_MS} and {} ms",
                            field("time_limit_ms"),
                            limits.max_answer_ms
                        ),
                    ));
                }
            }
            Ok(Question { index, id, text, competencies: q.competencies, time_limit_ms: q.time_limit_ms })
        })
        .collect()
}

/// Questions from a guide: the first `count` in the guide's order, or the ones named.
fn guide_questions(
    state: &AppState,
    guide_id: &str,
    count: Option<usize>,
    ids: Option<Vec<String>>,
) -> Result<Vec<Question>, ApiError> {
    let guide = state.checklists.guide(guide_id).ok_or(ApiError::NotFound("guide"))?;
    let max = state.limits.max_questions;
    let chosen: Vec<&crate::guide::Question> = match (count, ids) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("invalid_body", "count, question_ids: give one of them, not both"))
        }
        (Some(count), None) => {
            if !(1..=max).contains(&count) {
                return Err(ApiError::bad_request("invalid_count", format!("count: between 1 and {max}")));
            }
            guide.questions_for(count).iter().collect()
        }
        (None, Some(ids)) => {
            if ids.is_empty() || ids.len() > max {
                return Err(ApiError::bad_request("invalid_question_ids", format!("question_ids: 1 to {max} ids")));
            }
            guide.questions_by_ids(&ids).map_err(|unknown| {
                ApiError::bad_request(
                    "unknown_question",
                    format!("question_ids: the guide has no question {:?}", unknown.0),
                )
            })?
        }
        (None, None) => guide.questions.iter().take(max).collect(),
    };
    Ok(chosen
        .into_iter()
        .enumerate()
        .map(|(index, q)| Question {
            index,
            id: q.id.clone(),
            text: q.text.clone(),
            competencies: q.competencies.clone(),
            time_limit_ms: Some(q.time_limit_ms),
        })
        .collect())
}

async fn create_session(
    State(state): State<AppState>,
    connect_info: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    JsonBody(body): JsonBody<CreateSession>,
) -> Result<Response, ApiError> {
    let (questions, guide) = match (body.questions, body.guide) {
        (Some(questions), None) => (custom_questions(&state, questions)?, None),
        (None, Some(guide)) => (guide_questions(&state, &guide, body.count, body.question_ids)?, Some(guide)),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "give either \"questions\" or \"guide\" (with \"count\" or \"question_ids\")",
            ))
        }
    };
    // Sessions per address per hour (`VIVA_MAX_SESSIONS_PER_ADDRESS_PER_HOUR`): each one holds
    // database rows and can hold a stream, so one address may not create them without end.
    if let Some(axum::Extension(axum::extract::ConnectInfo(address))) = connect_info {
        if let Err(wait) = state.session_limiter.check(address.ip(), std::time::Instant::now()) {
            tracing::warn!(ip = %address.ip(), "session refused: too many from this address");
            return Err(ApiError::TooMany {
                code: "too_many_sessions",
                message: "too many sessions created from this address; retry after the time in Retry-After",
                retry_after_secs: super::rate_limit::retry_after_secs(wait),
            });
        }
    }
    let id = new_session_id();
    let token = new_token();
    let session = NewSession {
        id: id.clone(),
        token_hash: hash_token(&token),
        created_at: now_rfc3339(),
        created_at_ms: crate::recovery::now_ms(),
        guide,
        questions,
    };
    state.store.create_session(&session).await?;
    tracing::info!(session = %id, questions = session.questions.len(), "session created");
    let body = json!({ "id": id, "token": token, "questions": session.questions });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).expect("UTC times format")
}

fn no_store(response: impl IntoResponse) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], response).into_response()
}

async fn get_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = authorize(state.store.as_ref(), &id, bearer_token(&headers)).await?;
    Ok(no_store(Json(load_review(state.store.as_ref(), session).await?)))
}

async fn get_audio(
    State(state): State<AppState>,
    Path((id, index)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(state.store.as_ref(), &id, bearer_token(&headers)).await?;
    let index: usize = index.parse().map_err(|_| ApiError::bad_request("invalid_index", "index: a whole number"))?;
    let samples = state.store.answer_audio(&id, index).await?.ok_or(ApiError::NotFound("answer"))?;
    Ok(no_store(super::range::ranged(&headers, "audio/wav", encode_wav(&samples))))
}

async fn delete_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authorize(state.store.as_ref(), &id, bearer_token(&headers)).await?;
    state.store.delete_session(&id).await?;
    tracing::info!(session = %id, "session deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn export_markdown(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = authorize(state.store.as_ref(), &id, bearer_token(&headers)).await?;
    let markdown = load_review(state.store.as_ref(), session).await?.markdown();
    Ok(no_store(([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], markdown)))
}

/// Scores the stored answers again with the guides as they are now (after a guide changed).
async fn rescore(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = authorize(state.store.as_ref(), &id, bearer_token(&headers)).await?;
    let mut rescored = 0;
    for row in state.store.answers(&id).await? {
        let Some(mut answer) = row.answer else { continue };
        let Some(question) = session.questions.get(answer.index) else { continue };
        answer.checklist = state.checklists.score(session.guide.as_deref(), &question.competencies, &answer.segments);
        state.store.finish_answer(&id, answer.index, row.status, Some(&answer)).await?;
        rescored += 1;
    }
    tracing::info!(session = %id, answers = rescored, "session rescored");
    Ok(no_store(Json(load_review(state.store.as_ref(), session).await?)))
}

#[derive(Debug, Deserialize)]
struct NewNote {
    index: usize,
    at_ms: u64,
    text: String,
}

const MAX_NOTE_CHARS: usize = 4_000;

/// A reviewer's note on an answer at a time; shown in the review and the export.
async fn add_note(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewNote>,
) -> Result<Response, ApiError> {
    let session = authorize(state.store.as_ref(), &id, bearer_token(&headers)).await?;
    if body.index >= session.questions.len() {
        return Err(ApiError::bad_request(
            "invalid_note",
            format!("index: the session has {} questions", session.questions.len()),
        ));
    }
    if body.at_ms > state.limits.max_answer_ms {
        return Err(ApiError::bad_request("invalid_note", format!("at_ms: at most {}", state.limits.max_answer_ms)));
    }
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::bad_request("invalid_note", format!("text: 1 to {MAX_NOTE_CHARS} characters")));
    }
    let note = Note {
        id: new_session_id(),
        index: body.index,
        at_ms: body.at_ms,
        text: text.to_string(),
        created_at: now_rfc3339(),
    };
    state.store.add_note(&id, &note).await?;
    Ok((StatusCode::CREATED, no_store(Json(note))).into_response())
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

/// The operator's list of sessions, behind the admin token from the settings (404 when no
/// admin token is configured: the endpoint does not exist then).
async fn admin_list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<ListQuery>,
) -> Result<Response, ApiError> {
    let expected = state.admin_token_hash.as_ref().ok_or(ApiError::NotFound("endpoint"))?;
    let presented = bearer_token(&headers).ok_or(ApiError::Unauthorized)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(hash_token(presented).as_slice(), expected.as_slice())) {
        return Err(ApiError::Unauthorized);
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    Ok(no_store(Json(state.store.list_sessions(limit).await?)))
}
