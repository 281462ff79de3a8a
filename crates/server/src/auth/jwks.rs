//! The identity provider's signing keys, fetched from its JWKS document and cached.
//!
//! - A known `kid` is answered from the cache; keys older than [`JwksPolicy::max_age`]
//!   are refreshed on the next lookup.
//! - An unknown `kid` (the provider rotated) triggers a refresh, at most once per
//!   [`JwksPolicy::min_refresh`] however many tokens ask, so a flood of made-up key ids
//!   cannot turn into a flood of requests to the provider.
//! - When the provider cannot be reached, the last keys keep working for
//!   [`JwksPolicy::serve_stale`]; past that, lookups fail with
//!   [`AuthError::KeysUnavailable`].
//! - Only RSA keys (RS256) and P-256 keys (ES256) are taken; symmetric keys in a JWKS
//!   are ignored, so a provider's published key can never become an HMAC secret.

use super::AuthError;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

/// How the cache refreshes.
#[derive(Debug, Clone, Copy)]
pub struct JwksPolicy {
    /// At most one refresh per this long (for unknown key ids).
    pub min_refresh: Duration,
    /// Keys this old are refreshed on the next lookup.
    pub max_age: Duration,
    /// How long the last keys are served while the provider is unreachable.
    pub serve_stale: Duration,
    /// Time-out of one fetch.
    pub timeout: Duration,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        JwksPolicy {
            min_refresh: Duration::from_secs(10),
            max_age: Duration::from_secs(3600),
            serve_stale: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(5),
        }
    }
}

/// One usable key.
#[derive(Clone)]
pub struct Key {
    pub key: DecodingKey,
    pub algorithm: Algorithm,
}

#[derive(Default)]
struct Cached {
    keys: HashMap<String, Key>,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
    /// When a fetch was last tried (successful or not).
    tried: Option<Instant>,
    last_error: Option<String>,
}

/// The cache of one provider's keys.
pub struct Jwks {
    url: String,
    client: reqwest::Client,
    policy: JwksPolicy,
    cached: RwLock<Cached>,
    /// One refresh at a time; the others wait and then read its result.
    refreshing: Mutex<()>,
    /// How many fetches were made (for tests and `/metrics`).
    pub fetches: std::sync::atomic::AtomicU64,
}

impl Jwks {
    pub fn new(url: &str, policy: JwksPolicy) -> Jwks {
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .build()
            .unwrap_or_default();
        Jwks {
            url: url.to_string(),
            client,
            policy,
            cached: RwLock::new(Cached::default()),
            refreshing: Mutex::new(()),
            fetches: Default::default(),
        }
    }

    /// The key `kid` names, refreshing as the policy allows.
    pub async fn key(&self, kid: &str) -> Result<Key, AuthError> {
        if let Some(k) = self.fresh(kid).await {
            return Ok(k);
        }
        let _one = self.refreshing.lock().await;
        // Another caller may have refreshed while this one waited.
        if let Some(k) = self.fresh(kid).await {
            return Ok(k);
        }
        let may_fetch = {
            let c = self.cached.read().await;
            c.tried
                .is_none_or(|t| t.elapsed() >= self.policy.min_refresh)
        };
        if may_fetch {
            self.fetches
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let got = self.fetch().await;
            let mut c = self.cached.write().await;
            c.tried = Some(Instant::now());
            match got {
                Ok(keys) => {
                    c.keys = keys;
                    c.fetched = Some(Instant::now());
                    c.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(url = %self.url, error = %e, "JWKS refresh failed; keeping the last keys");
                    c.last_error = Some(e);
                }
            }
        }
        let c = self.cached.read().await;
        let usable = c
            .fetched
            .is_some_and(|f| f.elapsed() < self.policy.serve_stale);
        match (c.keys.get(kid), usable) {
            (Some(k), true) => Ok(k.clone()),
            (_, false) => Err(AuthError::KeysUnavailable(
                c.last_error
                    .clone()
                    .unwrap_or_else(|| "no keys fetched yet".into()),
            )),
            (None, true) => Err(AuthError::UnknownKey(kid.to_string())),
        }
    }

    /// The cached key if it is there and the keys are not due for a refresh.
    async fn fresh(&self, kid: &str) -> Option<Key> {
        let c = self.cached.read().await;
        let young = c.fetched.is_some_and(|f| f.elapsed() < self.policy.max_age);
        if young {
            c.keys.get(kid).cloned()
        } else {
            None
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Key>, String> {
        let res = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| format!("GET {}: {e}", self.url))?;
        if !res.status().is_success() {
            return Err(format!("GET {}: HTTP {}", self.url, res.status()));
        }
        let set: JwkSet = res
            .json()
            .await
            .map_err(|e| format!("GET {}: not a JWKS document: {e}", self.url))?;
        Ok(usable_keys(&set))
    }
}

/// The RS256 and ES256 keys of a set, by key id; anything else is left out.
pub fn usable_keys(set: &JwkSet) -> HashMap<String, Key> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let algorithm = algorithm_of(jwk)?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, Key { key, algorithm }))
        })
        .collect()
}

fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(by_type),
        Some(KeyAlgorithm::RS256) if by_type == Algorithm::RS256 => Some(by_type),
        Some(KeyAlgorithm::ES256) if by_type == Algorithm::ES256 => Some(by_type),
        Some(_) => None,
    }
}
