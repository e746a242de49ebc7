//! The browser client: `web/` served as static files, and the security headers every
//! response carries (a strict Content-Security-Policy: no inline scripts, nothing external).

use std::path::Path;

use axum::http::{header, HeaderName, HeaderValue};
use axum::Router;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use super::AppState;

/// Only this origin's files: no CDN, no inline code, no framing; the microphone for this
/// origin only. `connect-src 'self'` covers the same-origin WebSocket.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     media-src 'self' blob:; connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// `/` is the interview room, `/sessions/{id}` the review page (its token travels in the URL
/// fragment, which browsers never send to the server), everything else a file of `web/`.
pub fn router(web_dir: &Path) -> Router<AppState> {
    Router::new()
        .route_service("/sessions/{id}", ServeFile::new(web_dir.join("review.html")))
        .fallback_service(ServeDir::new(web_dir).append_index_html_on_directories(true))
}

/// Adds the security headers to every response, API and files alike.
pub fn with_security_headers(router: Router) -> Router {
    let headers: [(HeaderName, &'static str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (HeaderName::from_static("permissions-policy"), "microphone=(self), camera=(), geolocation=()"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    headers.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)))
    })
}
