//! The HTTP layer: routes, shared state, the WebSocket stream and error mapping. Each resource
//! module exposes its own `router()`; handlers stay thin and call into `session` and `store`.

mod auth;
mod error;
mod guides;
mod health;
mod sessions;
mod stream;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

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
    /// Sessions with a stream open on this instance (one stream per session).
    pub active_sessions: Arc<Mutex<HashSet<String>>>,
    /// Cancelled at shutdown: open streams finalise their answers and close.
    pub shutdown: CancellationToken,
    /// Tracks stream tasks so shutdown can wait for their answers to be stored.
    pub streams: TaskTracker,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, engine: Engine, limits: Limits, checklists: Arc<Checklists>) -> Self {
        Self {
            store,
            engine,
            checklists,
            stream_permits: Arc::new(Semaphore::new(limits.max_streams)),
            limits: Arc::new(limits),
            active_sessions: Arc::default(),
            shutdown: CancellationToken::new(),
            streams: TaskTracker::new(),
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(guides::router())
        .merge(sessions::router())
        .merge(stream::router())
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        // Spans name the method and path only: the query string of a stream upgrade holds the
        // session token, which must never reach a log.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
        }))
        .with_state(state)
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
    Ok(())
}
