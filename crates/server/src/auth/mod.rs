//! Who is calling: JSON Web Tokens from Stonepot itself (HS256 with `JWT_SECRET`) and
//! from an identity provider (RS256 / ES256 keys published at `JWKS_URL`), turned into
//! an [`Identity`] with a [`Role`] and, below admin, the tenant it acts for.
//!
//! The validator is chosen by the token's issuer before anything else is believed, and
//! each validator accepts only its own algorithms, so a token can never pick its own
//! way in (an HS256 token "signed" with a provider's public key, `alg: none`, an RS256
//! token claiming to be ours): see [`jwt`]. Provider keys come from [`jwks`], cached,
//! refreshed on an unknown `kid` at most once per 10 s, and served stale while the
//! provider is unreachable.

pub mod access;
pub mod jwks;
pub mod jwt;
pub mod keys;

use serde::{Deserialize, Serialize};
use stonepot_domain::TenantId;

/// What a caller may do, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// One conversation: its display and its messages.
    Guest,
    /// The kitchen and the orders of their tenant.
    Staff,
    /// Menu, theme, agent and keys of their tenant.
    Operator,
    /// Everything, every tenant.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "guest" => Some(Role::Guest),
            "staff" => Some(Role::Staff),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::Staff => "staff",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The token's subject (a user id at the provider, or ours).
    pub subject: String,
    pub role: Role,
    /// The tenant a guest, staff member or operator acts for (`None` for admins).
    pub tenant: Option<TenantId>,
    /// Who issued the token.
    pub issuer: String,
}

/// The subject prefix of an identity proven by a tenant API key; the rest is the key's id.
pub const KEY_SUBJECT_PREFIX: &str = "key:";

impl Identity {
    /// The id of the API key this caller presented (never the key itself), when it is one.
    pub fn api_key_id(&self) -> Option<&str> {
        if self.issuer == "api-key" {
            self.subject.strip_prefix(KEY_SUBJECT_PREFIX)
        } else {
            None
        }
    }

    /// Whether this caller may act as `role` (or more) on `tenant`.
    pub fn may(&self, role: Role, tenant: &TenantId) -> bool {
        if self.role == Role::Admin {
            return true;
        }
        self.role >= role && self.tenant.as_ref() == Some(tenant)
    }
}

/// Why a token was refused; each becomes a 401 naming the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("tokens from issuer '{0}' are not accepted here")]
    UnknownIssuer(String),
    #[error("algorithm {alg} is not accepted for issuer '{issuer}'")]
    AlgorithmNotAllowed { alg: String, issuer: String },
    #[error("the token names no key id (kid)")]
    MissingKeyId,
    #[error("no key '{0}' at the identity provider")]
    UnknownKey(String),
    #[error("the identity provider's keys are unavailable: {0}")]
    KeysUnavailable(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token's issuer does not match")]
    WrongIssuer,
    #[error("the token was issued to a party that is not allowed (azp '{0}')")]
    UnauthorizedParty(String),
    #[error("the token's claims are unusable: {0}")]
    BadClaims(String),
}

impl AuthError {
    /// The error code in the API's JSON error.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Malformed(_) => "malformed_token",
            AuthError::UnknownIssuer(_) => "unknown_issuer",
            AuthError::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
            AuthError::MissingKeyId => "missing_kid",
            AuthError::UnknownKey(_) => "unknown_key",
            AuthError::KeysUnavailable(_) => "keys_unavailable",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::UnauthorizedParty(_) => "unauthorized_party",
            AuthError::BadClaims(_) => "bad_claims",
        }
    }
}

impl From<AuthError> for crate::error::ApiError {
    fn from(e: AuthError) -> Self {
        let status = match e {
            AuthError::KeysUnavailable(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
            _ => axum::http::StatusCode::UNAUTHORIZED,
        };
        crate::error::ApiError::new(status, e.code(), e.to_string())
    }
}
