//! Verifying (and, for Stonepot's own tokens, issuing) JWTs.
//!
//! 1. The issuer is read from the unverified payload only to pick a validator; nothing
//!    else is believed before the signature verifies.
//! 2. Stonepot's own tokens (`iss` = [`OWN_ISSUER`]) are HS256 with `JWT_SECRET` and
//!    nothing else. The provider's tokens (`iss` = `JWT_ISSUER`) are RS256 or ES256 with
//!    the key their `kid` names, and the header's algorithm must be that key's.
//! 3. `exp` is required, `exp`/`nbf` are checked with [`LEEWAY_SECS`] of clock skew, the
//!    audience must match, and for the provider the authorized party (`azp`) must be on
//!    the allowlist when one is configured.
//! 4. The role comes from the `role` claim and the tenant from `tenant`; a token without
//!    a known role is refused rather than guessed.

use super::jwks::Jwks;
use super::{AuthError, Identity, Role};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use stonepot_domain::TenantId;

/// The `iss` and `aud` of Stonepot's own tokens.
pub const OWN_ISSUER: &str = "stonepot";
/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// An identity provider whose tokens are accepted.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// The `aud` its tokens must carry (any of these).
    pub audiences: Vec<String>,
    /// The `azp` values accepted; empty accepts tokens without checking `azp`.
    pub authorized_parties: Vec<String>,
}

/// Verifies tokens from Stonepot and, when configured, one identity provider.
pub struct Verifier {
    secret: Vec<u8>,
    provider: Option<(Provider, Arc<Jwks>)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    iss: String,
}

#[derive(Serialize)]
struct OwnClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    role: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'a str>,
    iat: i64,
    nbf: i64,
    exp: i64,
}

impl Verifier {
    pub fn new(secret: &[u8], provider: Option<(Provider, Arc<Jwks>)>) -> Verifier {
        Verifier {
            secret: secret.to_vec(),
            provider,
        }
    }

    /// Issues a Stonepot token for `identity`, valid for `ttl_secs` from `now` (Unix
    /// seconds).
    pub fn issue(&self, identity: &Identity, now: i64, ttl_secs: i64) -> Result<String, AuthError> {
        let claims = OwnClaims {
            iss: OWN_ISSUER,
            aud: OWN_ISSUER,
            sub: &identity.subject,
            role: identity.role.as_str(),
            tenant: identity.tenant.as_ref().map(TenantId::as_str),
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl_secs),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .map_err(|e| AuthError::BadClaims(e.to_string()))
    }

    /// Verifies `token` and returns who it names.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        let issuer = unverified_issuer(token)?;
        if issuer == OWN_ISSUER {
            if header.alg != Algorithm::HS256 {
                return Err(not_allowed(header.alg, &issuer));
            }
            let mut v = validation(Algorithm::HS256, OWN_ISSUER);
            v.set_audience(&[OWN_ISSUER]);
            let claims = decode(token, &DecodingKey::from_secret(&self.secret), &v)?;
            return identity(claims);
        }
        let Some((p, jwks)) = self.provider.as_ref().filter(|(p, _)| p.issuer == issuer) else {
            return Err(AuthError::UnknownIssuer(issuer));
        };
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(not_allowed(header.alg, &issuer));
        }
        let kid = header.kid.as_deref().ok_or(AuthError::MissingKeyId)?;
        let key = jwks.key(kid).await?;
        if key.algorithm != header.alg {
            return Err(not_allowed(header.alg, &issuer));
        }
        let mut v = validation(key.algorithm, &p.issuer);
        v.set_audience(&p.audiences);
        let claims = decode(token, &key.key, &v)?;
        if !p.authorized_parties.is_empty() {
            let azp = claims.azp.clone().unwrap_or_default();
            if !p.authorized_parties.contains(&azp) {
                return Err(AuthError::UnauthorizedParty(azp));
            }
        }
        identity(claims)
    }
}

fn not_allowed(alg: Algorithm, issuer: &str) -> AuthError {
    AuthError::AlgorithmNotAllowed {
        alg: format!("{alg:?}"),
        issuer: issuer.to_string(),
    }
}

fn validation(alg: Algorithm, issuer: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.algorithms = vec![alg];
    v.leeway = LEEWAY_SECS;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    v.set_issuer(&[issuer]);
    v
}

fn decode(token: &str, key: &DecodingKey, v: &Validation) -> Result<Claims, AuthError> {
    jsonwebtoken::decode::<Claims>(token, key, v)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm => AuthError::AlgorithmNotAllowed {
                alg: "the token's".into(),
                issuer: String::new(),
            },
            ErrorKind::MissingRequiredClaim(c) => {
                AuthError::BadClaims(format!("the '{c}' claim is required"))
            }
            _ => AuthError::Malformed(e.to_string()),
        })
}

/// The `iss` claim, read without verifying anything (only to pick the validator).
fn unverified_issuer(token: &str) -> Result<String, AuthError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| AuthError::Malformed("expected three dot-separated parts".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| AuthError::Malformed(format!("payload: {e}")))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| AuthError::Malformed(format!("payload: {e}")))?;
    v.get("iss")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| AuthError::BadClaims("the 'iss' claim is required".into()))
}

fn identity(c: Claims) -> Result<Identity, AuthError> {
    let role = c.role.as_deref().and_then(Role::parse).ok_or_else(|| {
        AuthError::BadClaims("'role' must be one of guest, staff, operator, admin".into())
    })?;
    let tenant = match c.tenant.as_deref() {
        None => None,
        Some(t) => {
            Some(TenantId::new(t).map_err(|e| AuthError::BadClaims(format!("tenant: {e}")))?)
        }
    };
    if role != Role::Admin && tenant.is_none() {
        return Err(AuthError::BadClaims(format!(
            "a {} token must name its tenant",
            role.as_str()
        )));
    }
    Ok(Identity {
        subject: c.sub,
        role,
        tenant,
        issuer: c.iss,
    })
}
