//! Which page may open a stream. Browsers send cookies-free WebSocket upgrades from any page
//! to any server (no CORS for WebSockets), so a page on another site could drive a stream with
//! a token it obtained; the `Origin` header, which browsers always set and pages cannot forge,
//! tells the server whose page it is. Pure.

/// Whether an upgrade with this `Origin` may go on.
///
/// - No `Origin`: allowed. Browsers always send one, so its absence means a non-browser client
///   (a CLI, a test, another server), which is not the threat this check is about.
/// - The origin the server is reached at: allowed. Its host and port must equal the `Host`
///   header; the scheme may be `http` or `https`, because behind a TLS-terminating proxy the
///   server cannot tell which one the browser used (a page at `http://` on the very same host
///   and port is the same server).
/// - One of `allowed` (`VIVA_ALLOWED_ORIGINS`): allowed, compared exactly (case-insensitive,
///   trailing `/` ignored).
/// - Anything else, `null` included: refused.
pub fn origin_allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin.map(normalise) else { return true };
    if allowed.iter().any(|a| normalise(a) == origin) {
        return true;
    }
    let Some(host) = host.map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()) else {
        return false;
    };
    let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(|authority| authority == host)
}

fn normalise(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_origin_is_a_non_browser_client_and_is_allowed() {
        assert!(origin_allowed(None, Some("localhost:8080"), &[]));
        assert!(origin_allowed(None, None, &[]));
    }

    #[test]
    fn the_served_origin_is_allowed_in_either_scheme() {
        assert!(origin_allowed(Some("http://localhost:8080"), Some("localhost:8080"), &[]));
        assert!(origin_allowed(Some("https://Viva.Example.com"), Some("viva.example.com"), &[]));
        assert!(origin_allowed(Some("http://127.0.0.1:8080/"), Some("127.0.0.1:8080"), &[]));
    }

    #[test]
    fn other_sites_ports_and_schemes_are_refused() {
        assert!(!origin_allowed(Some("https://evil.example"), Some("localhost:8080"), &[]));
        assert!(!origin_allowed(Some("http://localhost:9999"), Some("localhost:8080"), &[]));
        assert!(!origin_allowed(Some("http://localhost"), Some("localhost:8080"), &[]));
        assert!(!origin_allowed(Some("http://localhost:8080.evil.example"), Some("localhost:8080"), &[]));
        assert!(!origin_allowed(Some("null"), Some("localhost:8080"), &[]));
        assert!(!origin_allowed(Some("file://localhost:8080"), Some("localhost:8080"), &[]));
        assert!(!origin_allowed(Some("http://localhost:8080"), None, &[]));
    }

    #[test]
    fn the_allow_list_admits_exactly_its_origins() {
        let allowed = vec!["https://app.example.com".to_string(), "http://localhost:3000/".to_string()];
        assert!(origin_allowed(Some("https://app.example.com"), Some("api.example.com"), &allowed));
        assert!(origin_allowed(Some("http://LOCALHOST:3000"), Some("api.example.com"), &allowed));
        assert!(!origin_allowed(Some("http://app.example.com"), Some("api.example.com"), &allowed));
        assert!(!origin_allowed(Some("https://app.example.com.evil"), Some("api.example.com"), &allowed));
    }
}
