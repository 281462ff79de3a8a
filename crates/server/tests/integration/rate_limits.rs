//! Per API key and per tenant rate limits on one instance (no NATS: each instance's own
//! limiters). tests/scaleout.rs checks the same limits across two instances on NATS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{TestServer, client, error_code, post_json, start};
use serde_json::{Value, json};

const ADMIN: &str = "limits-admin-token";
const ORDERS: &str = "/api/tenants/demo-restaurant/orders";

async fn staff_key(s: &TestServer, tenant: &str) -> String {
    let res = post_json(
        s.url(&format!("/api/admin/tenants/{tenant}/keys")),
        Some(ADMIN),
        &json!({"label": "limits", "role": "staff"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    v["key"].as_str().unwrap().to_string()
}

async fn orders(s: &TestServer, key: &str) -> reqwest::Response {
    client()
        .get(s.url(ORDERS))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

/// A 429 naming `code`, with a `Retry-After` within the window.
async fn limited(res: reqwest::Response, code: &str) -> String {
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    let (got, message) = error_code(res, 429).await;
    assert_eq!(got, code, "{message}");
    message
}

#[tokio::test]
async fn keys_and_tenants_have_their_own_budgets_and_wrong_keys_spend_none() {
    let s = start(&[
        ("RATE_LIMIT_REQUESTS", "1000"),
        ("RATE_LIMIT_KEY_REQUESTS", "3"),
        ("RATE_LIMIT_TENANT_REQUESTS", "5"),
        ("RATE_LIMIT_WINDOW", "1m"),
        ("THEME_API_TOKEN", ADMIN),
    ])
    .await;
    let (k1, k2, k3) = (
        staff_key(&s, "demo-restaurant").await,
        staff_key(&s, "demo-restaurant").await,
        staff_key(&s, "demo-restaurant").await,
    );
    let finance = staff_key(&s, "demo-finance").await;

    // Wrong keys, and another tenant's valid key, are refused and spend nothing.
    for bad in ["sp_not_a_key", &format!("{k1}x"), &finance] {
        for _ in 0..6 {
            assert_eq!(orders(&s, bad).await.status(), 401);
        }
    }

    // A key's own budget: 3, then 429 naming the key's limit.
    for i in 0..3 {
        assert_eq!(orders(&s, &k1).await.status(), 200, "k1 request {i}");
    }
    let m = limited(orders(&s, &k1).await, "key_rate_limited").await;
    assert!(m.contains("API key"), "{m}");
    assert!(!m.contains(&k1), "the message never echoes the key: {m}");

    // The tenant's budget (5) is shared by its keys: k1 spent 3 (its refused request
    // spent nothing of the tenant's), so k2 has 2 left.
    for i in 0..2 {
        assert_eq!(orders(&s, &k2).await.status(), 200, "k2 request {i}");
    }
    let m = limited(orders(&s, &k2).await, "tenant_rate_limited").await;
    assert!(m.contains("demo-restaurant"), "{m}");

    // Other tenants, the admin, and unauthenticated routes are unaffected.
    let res = client()
        .get(s.url("/api/tenants/demo-finance/orders"))
        .bearer_auth(&finance)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = client()
        .get(s.url(ORDERS))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        client()
            .get(s.url("/api/status"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // The OpenAI-compatible API counts the same budgets and answers in its own shape
    // (a fresh key of the tenant: its own budget is untouched, the tenant's is spent).
    let res = client()
        .get(s.url("/v1/models"))
        .bearer_auth(&k3)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "tenant_rate_limited", "{v}");
    s.running.stop().await.unwrap();
}
