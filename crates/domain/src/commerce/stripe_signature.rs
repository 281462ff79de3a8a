//! Stripe webhook signatures: parsing the `Stripe-Signature` header and checking it
//! against the raw request body.
//!
//! Stripe signs `"{t}.{body}"` with HMAC-SHA256 under the endpoint's webhook secret
//! (the whole `whsec_…` string, as bytes) and sends `t=<unix seconds>,v1=<hex>`. While a
//! secret is being rolled there may be several `v1` entries, one per secret, and the
//! operator may configure several secrets on our side too: any pair that matches is
//! enough. Other schemes (`v0`, test-mode leftovers) are ignored, never trusted.
//!
//! The signature is checked on the bytes as received, before anything parses them, and
//! compared in constant time so a forger learns nothing from response timing. A
//! timestamp more than [`TOLERANCE_SECS`] away from now in *either* direction is
//! refused: old ones are replays, and ones from the future would otherwise stay
//! replayable for longer than the window promises.
//!
//! Pure: the caller passes the current time.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far (seconds) a signed timestamp may be from now, either way.
pub const TOLERANCE_SECS: u64 = 300;

/// The longest header we look at; a real one is well under 1 KiB even with several
/// signatures.
const HEADER_MAX: usize = 4096;

/// Why a `Stripe-Signature` header was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SignatureError {
    #[error("Stripe-Signature is malformed: {problem}")]
    Malformed { problem: String },
    #[error("Stripe-Signature has no t= timestamp")]
    NoTimestamp,
    #[error("Stripe-Signature has no v1= signature")]
    NoSignature,
    #[error("no v1 signature matches the body under any configured webhook secret")]
    Mismatch,
    #[error(
        "the signature timestamp {timestamp} is {off_by} s away from now ({now}); at most {tolerance} s is accepted"
    )]
    OutOfTolerance {
        timestamp: i64,
        now: i64,
        off_by: u64,
        tolerance: u64,
    },
    #[error("no webhook secret is configured")]
    NoSecret,
}

impl SignatureError {
    /// The stable code, as serialized.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Malformed { .. } => "malformed_signature",
            SignatureError::NoTimestamp => "signature_without_timestamp",
            SignatureError::NoSignature => "signature_without_v1",
            SignatureError::Mismatch => "signature_mismatch",
            SignatureError::OutOfTolerance { .. } => "signature_expired",
            SignatureError::NoSecret => "webhook_secret_missing",
        }
    }
}

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// Unix seconds, as signed.
    pub timestamp: i64,
    /// Every `v1` signature (32 bytes each), in header order.
    pub v1: Vec<[u8; 32]>,
}

fn malformed(problem: impl Into<String>) -> SignatureError {
    SignatureError::Malformed {
        problem: problem.into(),
    }
}

impl SignatureHeader {
    /// Parses `t=…,v1=…[,v1=…][,v0=…]`. Unknown schemes are skipped; a missing or
    /// repeated timestamp, an item without `=`, or a `v1` that is not 64 hex digits is
    /// refused, naming the problem.
    pub fn parse(header: &str) -> Result<SignatureHeader, SignatureError> {
        if header.len() > HEADER_MAX {
            return Err(malformed(format!("longer than {HEADER_MAX} bytes")));
        }
        let mut timestamp = None;
        let mut v1 = Vec::new();
        for item in header.split(',') {
            let item = item.trim();
            let Some((key, value)) = item.split_once('=') else {
                return Err(malformed(format!("item '{}' has no '='", clip(item))));
            };
            match key {
                "t" => {
                    if timestamp.is_some() {
                        return Err(malformed("t= appears more than once"));
                    }
                    let t = value
                        .parse::<i64>()
                        .ok()
                        .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| {
                            malformed(format!(
                                "t='{}' is not a whole number of seconds",
                                clip(value)
                            ))
                        })?;
                    timestamp = Some(t);
                }
                "v1" => {
                    let mut sig = [0u8; 32];
                    hex::decode_to_slice(value, &mut sig).map_err(|_| {
                        malformed(format!("v1='{}' is not 64 hex digits", clip(value)))
                    })?;
                    v1.push(sig);
                }
                "" => return Err(malformed(format!("item '{}' has no name", clip(item)))),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::NoTimestamp)?;
        if v1.is_empty() {
            return Err(SignatureError::NoSignature);
        }
        Ok(SignatureHeader { timestamp, v1 })
    }
}

/// At most 40 characters of untrusted input, for error messages.
fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// HMAC-SHA256 of `"{t}.{payload}"` under `secret`.
fn mac(secret: &[u8], t: i64, payload: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; this cannot fail.
    let mut m = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return [0u8; 32],
    };
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(payload);
    m.finalize().into_bytes().into()
}

/// The hex `v1` signature Stripe would send for `payload` at `t` (for tests and the
/// fake Stripe server).
pub fn sign(secret: &[u8], t: i64, payload: &[u8]) -> String {
    hex::encode(mac(secret, t, payload))
}

/// A whole `Stripe-Signature` header value, `t=…,v1=…`.
pub fn header(secret: &[u8], t: i64, payload: &[u8]) -> String {
    format!("t={t},v1={}", sign(secret, t, payload))
}

/// Checks `header` against the raw `payload` under any of `secrets`, at `now` (unix
/// seconds). Returns the signed timestamp.
///
/// Every (secret, signature) pair is compared in constant time and all of them are
/// compared, so the time taken does not depend on which one (if any) matched. The
/// timestamp is checked after the signature: an unsigned request learns only that it
/// is unsigned.
pub fn verify<S: AsRef<[u8]>>(
    header: &str,
    payload: &[u8],
    secrets: &[S],
    now: i64,
) -> Result<i64, SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let parsed = SignatureHeader::parse(header)?;
    let mut matched = subtle::Choice::from(0u8);
    for secret in secrets {
        let expected = mac(secret.as_ref(), parsed.timestamp, payload);
        for sig in &parsed.v1 {
            matched |= expected[..].ct_eq(&sig[..]);
        }
    }
    if !bool::from(matched) {
        return Err(SignatureError::Mismatch);
    }
    let off_by = now.abs_diff(parsed.timestamp);
    if off_by > TOLERANCE_SECS {
        return Err(SignatureError::OutOfTolerance {
            timestamp: parsed.timestamp,
            now,
            off_by,
            tolerance: TOLERANCE_SECS,
        });
    }
    Ok(parsed.timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;
    const NOW: i64 = 1_700_000_000;

    #[test]
    fn a_known_vector() {
        // Computed independently with Python's hmac module over b'1700000000.{"a":1}'.
        assert_eq!(
            sign(b"k", 1_700_000_000, br#"{"a":1}"#),
            "1b6ad1bc9bf48c52ce01939866d5877c6cc4e87ddad27e16673cb8c4964394a3"
        );
    }

    #[test]
    fn accepts_its_own_signature() {
        let h = header(SECRET, NOW, BODY);
        assert_eq!(verify(&h, BODY, &[SECRET], NOW), Ok(NOW));
    }

    #[test]
    fn any_v1_under_any_secret_may_match_and_other_schemes_are_ignored() {
        let good = sign(SECRET, NOW, BODY);
        let other = sign(b"whsec_old", NOW, BODY);
        let h = format!("t={NOW},v0={good},v1={other},v1={good}");
        assert_eq!(verify(&h, BODY, &[SECRET], NOW), Ok(NOW));
        let h = format!("t={NOW},v1={other}");
        assert_eq!(
            verify(&h, BODY, &[&b"whsec_new"[..], &b"whsec_old"[..]], NOW),
            Ok(NOW)
        );
        // A v0 alone is never trusted, even when it is a valid HMAC.
        let h = format!("t={NOW},v0={good}");
        assert_eq!(
            verify(&h, BODY, &[SECRET], NOW),
            Err(SignatureError::NoSignature)
        );
    }

    #[test]
    fn the_tolerance_holds_both_ways() {
        for (t, ok) in [
            (NOW - 300, true),
            (NOW + 300, true),
            (NOW - 301, false),
            (NOW + 301, false),
        ] {
            let h = header(SECRET, t, BODY);
            let r = verify(&h, BODY, &[SECRET], NOW);
            assert_eq!(r.is_ok(), ok, "t = now {:+}: {r:?}", t - NOW);
            if !ok {
                assert_eq!(r.unwrap_err().code(), "signature_expired");
            }
        }
    }

    #[test]
    fn malformed_headers_name_the_problem() {
        let sig = sign(SECRET, NOW, BODY);
        let cases: &[(&str, &str)] = &[
            ("", "malformed_signature"),
            ("garbage", "malformed_signature"),
            (&format!("v1={sig}"), "signature_without_timestamp"),
            (&format!("t={NOW}"), "signature_without_v1"),
            (&format!("t=abc,v1={sig}"), "malformed_signature"),
            (&format!("t=-5,v1={sig}"), "malformed_signature"),
            (&format!("t={NOW},t={NOW},v1={sig}"), "malformed_signature"),
            (&format!("t={NOW},v1=zz"), "malformed_signature"),
            (&format!("t={NOW},v1={}", &sig[..62]), "malformed_signature"),
            (
                &format!("t=99999999999999999999,v1={sig}"),
                "malformed_signature",
            ),
        ];
        for (h, code) in cases {
            let e = verify(h, BODY, &[SECRET], NOW).unwrap_err();
            assert_eq!(e.code(), *code, "{h}: {e}");
        }
        let long = format!("t={NOW},v1={sig},{}", "x=y,".repeat(2000));
        assert_eq!(
            verify(&long, BODY, &[SECRET], NOW).unwrap_err().code(),
            "malformed_signature"
        );
        let none: &[&[u8]] = &[];
        assert_eq!(
            verify(&header(SECRET, NOW, BODY), BODY, none, NOW),
            Err(SignatureError::NoSecret)
        );
    }

    #[test]
    fn another_secret_or_body_fails() {
        let h = header(SECRET, NOW, BODY);
        assert_eq!(
            verify(&h, BODY, &[b"whsec_other"], NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&h, b"{}", &[SECRET], NOW),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is part of what is signed.
        let sig = sign(SECRET, NOW, BODY);
        let h = format!("t={},v1={sig}", NOW + 1);
        assert_eq!(
            verify(&h, BODY, &[SECRET], NOW),
            Err(SignatureError::Mismatch)
        );
    }

    proptest! {
        #[test]
        fn any_single_byte_change_of_the_payload_fails(
            body in proptest::collection::vec(any::<u8>(), 1..512),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let h = header(SECRET, NOW, &body);
            prop_assert_eq!(verify(&h, &body, &[SECRET], NOW), Ok(NOW));
            let mut changed = body.clone();
            let i = at.index(changed.len());
            changed[i] ^= flip;
            prop_assert_eq!(verify(&h, &changed, &[SECRET], NOW), Err(SignatureError::Mismatch));
        }

        #[test]
        fn any_single_byte_change_of_the_signature_fails(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            at in 0usize..32,
            flip in 1u8..=255,
        ) {
            let mut sig = [0u8; 32];
            hex::decode_to_slice(sign(SECRET, NOW, &body), &mut sig).unwrap();
            sig[at] ^= flip;
            let h = format!("t={NOW},v1={}", hex::encode(sig));
            prop_assert_eq!(verify(&h, &body, &[SECRET], NOW), Err(SignatureError::Mismatch));
        }
    }
}
