//! Signed display tokens: `base64url(claims).base64url(HMAC-SHA256(SIGNING_KEY, claims))`.
//! Claims name the session, the tenant and an expiry; a token opens exactly one session's
//! display sockets and page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Session id.
    pub s: String,
    /// Tenant id.
    pub t: String,
    /// Expiry, Unix seconds.
    pub e: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the display token is malformed")]
    Malformed,
    #[error("the display token's signature is wrong")]
    BadSignature,
    #[error("the display token has expired")]
    Expired,
    #[error("the display token is for another session")]
    OtherSession,
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

pub fn sign(key: &[u8], claims: &Claims) -> String {
    let payload = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
    let mut m = mac(key);
    m.update(payload.as_bytes());
    let sig = B64.encode(m.finalize().into_bytes());
    format!("{payload}.{sig}")
}

/// Checks signature (constant time), expiry and that the token names `session`.
pub fn verify(key: &[u8], token: &str, session: &str, now: i64) -> Result<Claims, TokenError> {
    let (payload, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
    let mut m = mac(key);
    m.update(payload.as_bytes());
    m.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
    let claims: Claims =
        serde_json::from_slice(&B64.decode(payload).map_err(|_| TokenError::Malformed)?)
            .map_err(|_| TokenError::Malformed)?;
    if claims.e < now {
        return Err(TokenError::Expired);
    }
    if claims.s != session {
        return Err(TokenError::OtherSession);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let c = Claims {
            s: "s1".into(),
            t: "demo-restaurant".into(),
            e: 1000,
        };
        let tok = sign(b"k", &c);
        assert_eq!(verify(b"k", &tok, "s1", 999), Ok(c));
        assert_eq!(
            verify(b"other", &tok, "s1", 999),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verify(b"k", &tok, "s1", 1001), Err(TokenError::Expired));
        assert_eq!(verify(b"k", &tok, "s2", 999), Err(TokenError::OtherSession));
        assert_eq!(verify(b"k", "garbage", "s1", 0), Err(TokenError::Malformed));
        // Tampering with the claims breaks the signature.
        let (p, s) = tok.split_once('.').unwrap();
        let forged = B64.encode(br#"{"s":"s1","t":"demo-finance","e":1000}"#);
        assert_ne!(forged, p);
        assert_eq!(
            verify(b"k", &format!("{forged}.{s}"), "s1", 0),
            Err(TokenError::BadSignature)
        );
    }
}
