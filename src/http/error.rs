//! One error type for the REST API. Each variant documents its status and carries a stable
//! `code`; internals (SQL, paths) are logged here and never sent to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::store::{Failure, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body or a parameter is malformed; names the field.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no bearer token was sent.
    #[error("this request needs the session's token as `Authorization: Bearer <token>`")]
    Unauthorized,
    /// 403: refused whoever asks in this way (e.g. a stream opened from another site's page).
    #[error("{message}")]
    Forbidden { code: &'static str, message: &'static str },
    /// 404: unknown id, or a token that does not open it (the two look the same on purpose).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// 413: the request body is over `VIVA_MAX_BODY_BYTES`.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// 429: a per-address limit; `Retry-After` says in how many seconds to try again.
    #[error("{message}")]
    TooMany { code: &'static str, message: &'static str, retry_after_secs: u64 },
    /// 503: the database cannot be reached.
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    /// 500: anything else; details go to the log only.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code, message: message.into() }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::TooMany { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code),
            ApiError::NotFound("session") => (StatusCode::NOT_FOUND, "session_not_found"),
            ApiError::NotFound("answer") => (StatusCode::NOT_FOUND, "answer_not_found"),
            ApiError::NotFound("guide") => (StatusCode::NOT_FOUND, "guide_not_found"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "store failure");
        // Unreachable passes when the database is back (sqlx's pool reconnects on its own), so
        // clients get 503 and may retry.
        match error.failure() {
            Failure::Unavailable => ApiError::Unavailable,
            Failure::Full | Failure::Other => ApiError::Internal,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut response = (status, Json(json!({ "code": code, "message": self.to_string() }))).into_response();
        if let ApiError::TooMany { retry_after_secs, .. } = self {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}

/// A JSON body extractor whose rejections use the API's error shape and name the problem.
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::PayloadTooLarge),
            Err(rejection) => {
                use axum::extract::rejection::JsonRejection::*;
                let code = match &rejection {
                    JsonDataError(_) => "invalid_body",
                    JsonSyntaxError(_) => "malformed_json",
                    MissingJsonContentType(_) => "unsupported_media_type",
                    _ => "bad_body",
                };
                Err(ApiError::bad_request(code, rejection.body_text()))
            }
        }
    }
}
