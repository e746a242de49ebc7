//! The HTTP layer: routes, shared state, the WebSocket stream and error mapping. Each resource
//! module exposes its own `router()`; handlers stay thin and call into `session` and `store`.
//!
//! The edge against one abusive client: [`origin`] (which pages may open a stream) and
//! [`rate_limit`] (token buckets per address for REST requests and session creations, open
//! streams per address); the stream's own limits (audio rate, idle, slow readers, framing
//! errors) live in `stream`. Every limit is a setting in [`crate::config::Limits`].

mod auth;
mod error;
mod guides;
mod health;
mod origin;
mod range;
pub mod rate_limit;
mod sessions;
mod stream;
mod web;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

/// A random id for one holder of a session's stream lease.
pub fn new_lease_owner() -> String {
    auth::new_token()
}

use crate::config::Limits;
use crate::scoring::Checklists;
use crate::store::Store;
use crate::transcribe::Engine;
use rate_limit::{ConnectionCounter, KeyedLimiter};

/// What every handler may reach. Cheap to clone: everything is behind an `Arc` or a handle.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub engine: Engine,
    pub limits: Arc<Limits>,
    /// The guides and their compiled checklists.
    pub checklists: Arc<Checklists>,
    /// One permit per live WebSocket stream: the server's capacity, refused with 1013 past it.
    pub stream_permits: Arc<Semaphore>,
    /// Cancelled at shutdown: open streams finalise their answers and close.
    pub shutdown: CancellationToken,
    /// Tracks stream tasks so shutdown can wait for their answers to be stored.
    pub streams: TaskTracker,
    /// SHA-256 of the operator's admin token; `None` disables the admin API.
    pub admin_token_hash: Option<Vec<u8>>,
    /// The browser client's files.
    pub web_dir: std::path::PathBuf,
    /// REST requests per client address.
    pub request_limiter: Arc<KeyedLimiter>,
    /// Session creations per client address.
    pub session_limiter: Arc<KeyedLimiter>,
    /// Open streams per client address.
    pub connections: ConnectionCounter,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, engine: Engine, limits: Limits, checklists: Arc<Checklists>) -> Self {
        Self {
            store,
            engine,
            checklists,
            stream_permits: Arc::new(Semaphore::new(limits.max_streams)),
            request_limiter: Arc::new(KeyedLimiter::new(limits.rate_limit_burst as f64, limits.rate_limit_per_second)),
            session_limiter: Arc::new(KeyedLimiter::new(
                limits.max_sessions_per_address_per_hour as f64,
                limits.max_sessions_per_address_per_hour as f64 / 3600.0,
            )),
            connections: ConnectionCounter::default(),
            limits: Arc::new(limits),
            shutdown: CancellationToken::new(),
            streams: TaskTracker::new(),
            admin_token_hash: None,
            web_dir: std::path::PathBuf::from("web"),
        }
    }

    pub fn with_web_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.web_dir = dir.into();
        self
    }

    /// Enables the admin API for bearers of `token` (an empty token leaves it disabled).
    pub fn with_admin_token(mut self, token: Option<&str>) -> Self {
        self.admin_token_hash = token.filter(|t| !t.is_empty()).map(auth::hash_token);
        self
    }
}

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(health::router())
        .merge(guides::router())
        .merge(sessions::router())
        .merge(stream::router())
        .merge(web::router(&state.web_dir))
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limit_request_rate))
        // Spans name the method and path only: the query string of a stream upgrade holds the
        // session token, which must never reach a log.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
        }))
        .with_state(state);
    web::with_security_headers(routes)
}

/// The client's address, when the server was started with connect info (as [`serve`] does).
pub(crate) fn client_ip(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip())
}

/// The REST rate per client address (`VIVA_RATE_LIMIT_*`): 429 `rate_limited` with
/// `Retry-After` past it. Only the API (`/v1/…`) counts; the browser client's files and the
/// health probes do not.
async fn limit_request_rate(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if request.uri().path().starts_with("/v1/") {
        if let Some(ip) = client_ip(request.extensions()) {
            if let Err(wait) = state.request_limiter.check(ip, std::time::Instant::now()) {
                tracing::warn!(%ip, "request refused: rate limited");
                return ApiError::TooMany {
                    code: "rate_limited",
                    message: "too many requests from this address; retry after the time in Retry-After",
                    retry_after_secs: rate_limit::retry_after_secs(wait),
                }
                .into_response();
            }
        }
    }
    next.run(request).await
}

/// Serves until `shutdown` resolves, then finalises open streams and returns. Tests pass a
/// listener bound to port 0.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cancel = state.shutdown.clone();
    let streams = state.streams.clone();
    let maintenance = tokio::spawn(crate::recovery::run_maintenance(state.clone()));
    let app = router(state);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: finalising open answers");
        cancel.cancel();
    };
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(signal)
        .await?;
    streams.close();
    streams.wait().await;
    let _ = maintenance.await;
    Ok(())
}
