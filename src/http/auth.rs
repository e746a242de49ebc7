//! Session ids and bearer tokens. A token is 128 random bits shown once at creation; only its
//! SHA-256 is stored (a fast hash is enough for a random secret of that size), and it is
//! compared in constant time.

use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::store::{SessionRow, Store};

fn random_string(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

pub fn new_session_id() -> String {
    random_string(12)
}

pub fn new_token() -> String {
    random_string(16)
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether an id could be one of ours; anything else is refused before touching the database.
pub fn plausible_id(id: &str) -> bool {
    (8..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// Loads a session if `token` opens it. Unknown id and wrong token give the same 404.
pub async fn authorize(store: &dyn Store, id: &str, token: Option<&str>) -> Result<SessionRow, ApiError> {
    let token = token.filter(|t| !t.is_empty()).ok_or(ApiError::Unauthorized)?;
    if !plausible_id(id) {
        return Err(ApiError::NotFound("session"));
    }
    let session = store.session(id).await?.ok_or(ApiError::NotFound("session"))?;
    let presented = hash_token(token);
    if bool::from(presented.ct_eq(&session.token_hash)) {
        Ok(session)
    } else {
        Err(ApiError::NotFound("session"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hash_stably() {
        let a = new_token();
        assert_eq!(a.len(), 22);
        assert_ne!(a, new_token());
        assert_eq!(hash_token(&a), hash_token(&a));
        assert!(plausible_id(&new_session_id()));
        assert!(!plausible_id("../../etc/passwd"));
    }
}
