//! HTTP range requests for answer audio, so a player can seek without fetching everything.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The byte range a `Range: bytes=…` header asks of a body of `len` bytes: `None` when there is
/// no usable single range (the whole body is sent), `Err` when it cannot be satisfied.
pub fn requested_range(headers: &HeaderMap, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = headers.get(header::RANGE)?.to_str().ok()?.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None; // several ranges: answering with the whole body is allowed
    }
    let (start, end) = spec.split_once('-')?;
    let range = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (len.saturating_sub(n), len.checked_sub(1)?)
        }
        (start, "") => (start.parse().ok()?, len.checked_sub(1)?),
        (start, end) => (start.parse().ok()?, end.parse::<u64>().ok()?.min(len.saturating_sub(1))),
    };
    Some(if range.0 <= range.1 && range.0 < len { Ok(range) } else { Err(()) })
}

/// The response for `body`, honouring a single byte range.
pub fn ranged(headers: &HeaderMap, content_type: &'static str, body: Vec<u8>) -> Response {
    let len = body.len() as u64;
    let base = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
    ];
    match requested_range(headers, len) {
        None => (base, body).into_response(),
        Some(Ok((start, end))) => {
            let part = body[start as usize..=end as usize].to_vec();
            let content_range = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")).expect("ascii");
            (StatusCode::PARTIAL_CONTENT, base, [(header::CONTENT_RANGE, content_range)], part).into_response()
        }
        Some(Err(())) => {
            let content_range = HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii");
            (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, content_range)]).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
        requested_range(&headers, len)
    }

    #[test]
    fn parses_the_common_forms() {
        assert_eq!(range("bytes=0-99", 1000), Some(Ok((0, 99))));
        assert_eq!(range("bytes=900-", 1000), Some(Ok((900, 999))));
        assert_eq!(range("bytes=-100", 1000), Some(Ok((900, 999))));
        assert_eq!(range("bytes=500-5000", 1000), Some(Ok((500, 999))));
        assert_eq!(range("bytes=1000-", 1000), Some(Err(())));
        assert_eq!(range("bytes=5-2", 1000), Some(Err(())));
        assert_eq!(range("bytes=0-1,5-6", 1000), None);
        assert_eq!(range("items=0-1", 1000), None);
        assert_eq!(range("bytes=x-1", 1000), None);
    }
}
