//! The HTTP layer: routes, shared state, the WebSocket stream and error mapping. Each resource
//! module exposes its own `router()`; handlers stay thin and call into `session` and `store`.

mod auth;
mod error;
mod guides;
mod health;
mod range;
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
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, engine: Engine, limits: Limits, checklists: Arc<Checklists>) -> Self {
        Self {
            store,
            engine,
            checklists,
            stream_permits: Arc::new(Semaphore::new(limits.max_streams)),
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
        // Spans name the method and path only: the query string of a stream upgrade holds the
        // session token, which must never reach a log.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
        }))
        .with_state(state);
    web::with_security_headers(routes)
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
