//! JWT verification against a fake identity provider on 127.0.0.1: Stonepot's own HS256
//! tokens, the provider's RS256/ES256 tokens by `kid`, key rotation, refresh limits,
//! stale keys while the provider is down, clock skew, audience, authorized parties and
//! algorithm-confusion attempts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stonepot_domain::TenantId;
use stonepot_server::auth::jwks::{Jwks, JwksPolicy};
use stonepot_server::auth::jwt::{Provider, Verifier};
use stonepot_server::auth::{AuthError, Identity, Role};

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "stonepot-staff";
const SECRET: &[u8] = b"test-jwt-secret-of-enough-length-0123456789";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/idp/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn jwk(name: &str) -> Value {
    serde_json::from_str(&fixture(&format!("{name}.jwk.json"))).unwrap()
}

#[derive(Clone, Default)]
struct Idp {
    keys: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
    hits: Arc<AtomicU64>,
}

async fn jwks(State(idp): State<Idp>) -> Response {
    idp.hits.fetch_add(1, Ordering::SeqCst);
    if idp.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let keys = idp.keys.lock().unwrap().clone();
    axum::Json(json!({ "keys": keys })).into_response()
}

async fn start_idp(keys: &[&str]) -> (Idp, String) {
    let idp = Idp::default();
    *idp.keys.lock().unwrap() = keys.iter().map(|k| jwk(k)).collect();
    let app = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(idp.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (idp, format!("http://{addr}/.well-known/jwks.json"))
}

fn verifier(url: &str, policy: JwksPolicy, parties: &[&str]) -> (Verifier, Arc<Jwks>) {
    let jwks = Arc::new(Jwks::new(url, policy));
    let p = Provider {
        issuer: ISSUER.into(),
        audiences: vec![AUDIENCE.into()],
        authorized_parties: parties.iter().map(|s| s.to_string()).collect(),
    };
    (Verifier::new(SECRET, Some((p, jwks.clone()))), jwks)
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn claims(extra: Value) -> Value {
    let mut c = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "user_1", "role": "staff",
        "tenant": "demo-restaurant", "azp": "https://kitchen.test",
        "iat": now(), "exp": now() + 300,
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn rs256(kid: &str, pem: &str, c: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    let key = EncodingKey::from_rsa_pem(fixture(pem).as_bytes()).unwrap();
    jsonwebtoken::encode(&h, c, &key).unwrap()
}

fn es256(kid: &str, c: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.into());
    let key = EncodingKey::from_ec_pem(fixture("ec1.pem").as_bytes()).unwrap();
    jsonwebtoken::encode(&h, c, &key).unwrap()
}

fn quick() -> JwksPolicy {
    JwksPolicy {
        min_refresh: Duration::from_millis(200),
        ..JwksPolicy::default()
    }
}

#[tokio::test]
async fn own_tokens_round_trip_and_provider_tokens_verify_by_kid() {
    let (_idp, url) = start_idp(&["rsa1", "ec1"]).await;
    let (v, _) = verifier(&url, JwksPolicy::default(), &[]);
    let me = Identity {
        subject: "op-7".into(),
        role: Role::Operator,
        tenant: Some(TenantId::new("demo-restaurant").unwrap()),
        issuer: "stonepot".into(),
    };
    let t = v.issue(&me, now(), 600).unwrap();
    assert_eq!(v.verify(&t).await.unwrap(), me);

    let got = v
        .verify(&rs256("rsa-1", "rsa1.pem", &claims(json!({}))))
        .await
        .unwrap();
    assert_eq!(got.role, Role::Staff);
    assert_eq!(got.tenant.unwrap().as_str(), "demo-restaurant");
    assert_eq!(got.issuer, ISSUER);
    let got = v
        .verify(&es256(
            "ec-1",
            &claims(json!({"role": "admin", "tenant": null})),
        ))
        .await
        .unwrap();
    assert_eq!((got.role, got.tenant), (Role::Admin, None));

    // A tampered payload does not verify.
    let t = rs256("rsa-1", "rsa1.pem", &claims(json!({})));
    let mut parts: Vec<String> = t.split('.').map(String::from).collect();
    let forged = claims(json!({"role": "admin", "tenant": null}));
    parts[1] = base64_url(&serde_json::to_vec(&forged).unwrap());
    assert_eq!(
        v.verify(&parts.join(".")).await,
        Err(AuthError::BadSignature)
    );
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[tokio::test]
async fn rotation_refreshes_on_an_unknown_kid_at_most_once_per_interval() {
    let (idp, url) = start_idp(&["rsa1"]).await;
    let (v, jwks) = verifier(&url, quick(), &[]);
    v.verify(&rs256("rsa-1", "rsa1.pem", &claims(json!({}))))
        .await
        .unwrap();
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1);

    // A flood of made-up key ids costs at most one more fetch.
    let bogus = rs256("no-such-key", "rsa2.pem", &claims(json!({})));
    for _ in 0..50 {
        assert!(matches!(
            v.verify(&bogus).await,
            Err(AuthError::UnknownKey(_))
        ));
    }
    assert!(
        jwks.fetches.load(Ordering::SeqCst) <= 2,
        "{:?}",
        jwks.fetches
    );

    // The provider rotates: the new key is found once the interval has passed.
    idp.keys.lock().unwrap().push(jwk("rsa2"));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let got = v
        .verify(&rs256("rsa-2", "rsa2.pem", &claims(json!({}))))
        .await;
    assert!(got.is_ok(), "{got:?}");
}

#[tokio::test]
async fn stale_keys_are_served_while_the_provider_is_down_then_refused() {
    let (idp, url) = start_idp(&["rsa1"]).await;
    let policy = JwksPolicy {
        min_refresh: Duration::from_millis(50),
        max_age: Duration::from_millis(100),
        serve_stale: Duration::from_millis(600),
        timeout: Duration::from_secs(2),
    };
    let (v, jwks) = verifier(&url, policy, &[]);
    let t = rs256("rsa-1", "rsa1.pem", &claims(json!({})));
    v.verify(&t).await.unwrap();
    idp.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Due for a refresh, the refresh fails, the known key still works.
    assert!(v.verify(&t).await.is_ok());
    assert!(jwks.fetches.load(Ordering::SeqCst) >= 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(matches!(
        v.verify(&t).await,
        Err(AuthError::KeysUnavailable(_))
    ));
    // Back up: service resumes by itself.
    idp.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(v.verify(&t).await.is_ok());
}

#[tokio::test]
async fn time_audience_party_and_claims_are_checked() {
    let (_idp, url) = start_idp(&["rsa1"]).await;
    let (v, _) = verifier(&url, JwksPolicy::default(), &["https://kitchen.test"]);
    let check = |extra: Value| rs256("rsa-1", "rsa1.pem", &claims(extra));
    // Inside the 30 s skew: accepted; beyond it: refused.
    assert!(v.verify(&check(json!({"exp": now() - 10}))).await.is_ok());
    assert_eq!(
        v.verify(&check(json!({"exp": now() - 90}))).await,
        Err(AuthError::Expired)
    );
    assert!(v.verify(&check(json!({"nbf": now() + 10}))).await.is_ok());
    assert_eq!(
        v.verify(&check(json!({"nbf": now() + 120}))).await,
        Err(AuthError::NotYetValid)
    );
    assert_eq!(
        v.verify(&check(json!({"aud": "someone-else"}))).await,
        Err(AuthError::WrongAudience)
    );
    assert!(matches!(
        v.verify(&check(json!({"azp": "https://evil.test"}))).await,
        Err(AuthError::UnauthorizedParty(_))
    ));
    assert!(matches!(
        v.verify(&check(json!({"exp": null}))).await,
        Err(AuthError::BadClaims(_))
    ));
    assert!(matches!(
        v.verify(&check(json!({"role": "chef"}))).await,
        Err(AuthError::BadClaims(_))
    ));
    assert!(matches!(
        v.verify(&check(json!({"tenant": null}))).await,
        Err(AuthError::BadClaims(_))
    ));
    assert!(matches!(
        v.verify(&check(json!({"iss": "https://other-idp.test"})))
            .await,
        Err(AuthError::UnknownIssuer(_))
    ));
}

#[tokio::test]
async fn algorithm_confusion_is_refused() {
    let (_idp, url) = start_idp(&["rsa1", "ec1"]).await;
    let (v, _) = verifier(&url, JwksPolicy::default(), &[]);
    // HS256 "signed" with the provider's public key material, claiming the provider.
    let public = jwk("rsa1")["n"].as_str().unwrap().to_string();
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("rsa-1".into());
    let t = jsonwebtoken::encode(
        &h,
        &claims(json!({})),
        &EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    assert!(matches!(
        v.verify(&t).await,
        Err(AuthError::AlgorithmNotAllowed { .. })
    ));
    // An RS256 token claiming to be Stonepot's own.
    let t = rs256(
        "rsa-1",
        "rsa1.pem",
        &claims(json!({"iss": "stonepot", "aud": "stonepot"})),
    );
    assert!(matches!(
        v.verify(&t).await,
        Err(AuthError::AlgorithmNotAllowed { .. })
    ));
    // ES256 in the header, an RSA key's kid.
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("rsa-1".into());
    let key = EncodingKey::from_ec_pem(fixture("ec1.pem").as_bytes()).unwrap();
    let t = jsonwebtoken::encode(&h, &claims(json!({})), &key).unwrap();
    assert!(matches!(
        v.verify(&t).await,
        Err(AuthError::AlgorithmNotAllowed { .. })
    ));
    // alg "none" and garbage.
    let none = format!(
        "{}.{}.",
        base64_url(br#"{"alg":"none","typ":"JWT"}"#),
        base64_url(&serde_json::to_vec(&claims(json!({}))).unwrap())
    );
    assert!(matches!(
        v.verify(&none).await,
        Err(AuthError::Malformed(_))
    ));
    assert!(matches!(
        v.verify("not.a.jwt").await,
        Err(AuthError::Malformed(_))
    ));
    // No kid at all.
    let t = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims(json!({})),
        &EncodingKey::from_rsa_pem(fixture("rsa1.pem").as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(v.verify(&t).await, Err(AuthError::MissingKeyId));
}

/// The provider's tokens on the running server: `JWKS_URL` and friends wire the verifier
/// into every endpoint's role check, so a provider-signed staff token opens its tenant's
/// orders and kitchen, and nothing of another tenant or above staff.
#[tokio::test]
async fn provider_tokens_open_the_server_by_role_and_tenant() {
    let (_idp, url) = start_idp(&["rsa1"]).await;
    let s = common::start(&[
        ("JWKS_URL", url.as_str()),
        ("JWT_ISSUER", ISSUER),
        ("JWT_AUDIENCE", AUDIENCE),
        ("JWT_AUTHORIZED_PARTIES", "https://kitchen.test"),
    ])
    .await;
    let staff = rs256("rsa-1", "rsa1.pem", &claims(json!({})));
    let orders = s.url("/api/tenants/demo-restaurant/orders");
    let res = common::get(orders.clone(), Some(&staff)).await;
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let res = common::post_json(
        s.url("/api/tenants/demo-restaurant/kitchen"),
        Some(&staff),
        &json!({}),
    )
    .await;
    assert_eq!(res.status(), 200);
    // Above staff: 403; another tenant: 401.
    let res = common::get(s.url("/api/tenants/demo-restaurant/agent"), Some(&staff)).await;
    common::error_code(res, 403).await;
    let res = common::get(s.url("/api/tenants/demo-finance/orders"), Some(&staff)).await;
    common::error_code(res, 401).await;
    // An operator token of the tenant opens the agent profile.
    let op = rs256("rsa-1", "rsa1.pem", &claims(json!({"role": "operator"})));
    let res = common::get(s.url("/api/tenants/demo-restaurant/agent"), Some(&op)).await;
    assert_eq!(res.status(), 200);
    // The provider's checks hold on the server: audience, authorized party, expiry.
    for (bad, code) in [
        (json!({"aud": "someone-else"}), "wrong_audience"),
        (json!({"azp": "https://evil.test"}), "unauthorized_party"),
        (json!({"exp": now() - 3600}), "token_expired"),
    ] {
        let t = rs256("rsa-1", "rsa1.pem", &claims(bad));
        let (got, _) = common::error_code(common::get(orders.clone(), Some(&t)).await, 401).await;
        assert_eq!(got, code);
    }
}
