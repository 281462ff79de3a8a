//! Themed display pages and the theme/cache admin API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{client, error_code, get_json, start};
use serde_json::{Value, json};

const KEY: &str = "sp_ui_test";

async fn session(s: &common::TestServer, id: &str, tenant: &str) -> Value {
    client()
        .post(s.url(&format!("/conversation/{id}/init")))
        .bearer_auth(KEY)
        .json(&json!({"tenantId": tenant}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_display_page_renders_in_the_tenant_theme_with_an_etag() {
    let s = start(&[("STONEPOT_DEMO_KEY", KEY)]).await;
    let i = session(&s, "ui-page", "demo-restaurant").await;
    let url = i["displayUrl"].as_str().unwrap().to_string();
    let res = client().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let html = res.text().await.unwrap();
    assert!(
        html.contains("--primary: #b3261e"),
        "restaurant theme color"
    );
    assert!(html.contains("Stonepot Trattoria"));
    assert!(html.contains("category-restaurant"));
    assert!(
        html.contains("assets&#x2f;display.") && html.contains(".js\""),
        "hashed script link"
    );
    let res = client()
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    // The finance tenant gets its own theme.
    let f = session(&s, "ui-fin", "demo-finance").await;
    let html = client()
        .get(f["displayUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("category-financial"));
    assert!(!html.contains("#b3261e"));
    // A forged or foreign token is refused.
    let other = url.replace("session=ui-page", "session=ui-fin");
    let res = client().get(&other).send().await.unwrap();
    assert_eq!(error_code(res, 401).await.0, "unauthorized");
    // No token is a missing credential; no session is a malformed request.
    let res = client()
        .get(s.url("/ui/conversation?session=ui-page"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 401).await.0, "unauthorized");
    let res = client()
        .get(s.url("/ui/conversation?token=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 400).await.0, "missing_parameter");
}

#[tokio::test]
async fn theme_admin_needs_its_token_and_changes_the_page() {
    let s = start(&[
        ("STONEPOT_DEMO_KEY", KEY),
        ("THEME_API_TOKEN", "theme-admin-secret"),
        ("CACHE_PURGE_TOKEN", "purge-secret"),
    ])
    .await;
    let c = client();
    let theme_url = s.url("/api/admin/tenants/demo-restaurant/theme");
    let res = c.get(&theme_url).send().await.unwrap();
    assert_eq!(error_code(res, 401).await.0, "unauthorized");
    let res = c.get(&theme_url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "the tenant's operator key opens its theme"
    );
    let res = c
        .get(&theme_url)
        .bearer_auth("sp_other")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 401).await.0, "unauthorized");
    let mut theme: Value = get_json(&theme_url, Some("theme-admin-secret")).await;
    assert_eq!(theme["primary"], "#b3261e");

    let i = session(&s, "ui-theme", "demo-restaurant").await;
    let page = i["displayUrl"].as_str().unwrap().to_string();
    let before = c.get(&page).send().await.unwrap();
    let etag = before.headers()["etag"].to_str().unwrap().to_string();

    // CSS injection is refused with the field named.
    let mut bad = theme.clone();
    bad["primary"] = json!("red; } body { display:none");
    let res = c
        .put(&theme_url)
        .bearer_auth("theme-admin-secret")
        .json(&bad)
        .send()
        .await
        .unwrap();
    let (_, msg) = error_code(res, 422).await;
    assert!(msg.contains("primary"), "{msg}");

    theme["primary"] = json!("#123456");
    let res = c
        .put(&theme_url)
        .bearer_auth("theme-admin-secret")
        .json(&theme)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let after = c
        .get(&page)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200, "the old ETag no longer matches");
    assert!(after.text().await.unwrap().contains("--primary: #123456"));

    // Purge needs its own token or an admin: an operator's key is too weak.
    let res = c
        .post(s.url("/api/admin/cache/purge"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 403).await.0, "forbidden");
    let v: Value = c
        .post(s.url("/api/admin/cache/purge"))
        .bearer_auth("purge-secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["purged"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn purge_without_its_token_needs_an_admin() {
    let s = start(&[("STONEPOT_DEMO_KEY", KEY)]).await;
    let purge = s.url("/api/admin/cache/purge");
    let res = client()
        .post(&purge)
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 401).await.0, "unauthorized");
    let res = client().post(&purge).bearer_auth(KEY).send().await.unwrap();
    let (code, msg) = error_code(res, 403).await;
    assert_eq!(code, "forbidden");
    assert!(msg.contains("admin"), "{msg}");
}

#[tokio::test]
async fn the_landing_page_opens_a_seeded_demo_display() {
    let s = start(&[("STONEPOT_DEMO_KEY", KEY)]).await;
    let html = client()
        .get(s.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("/demo/demo-restaurant") && html.contains("/demo/demo-finance"));
    for tenant in ["demo-restaurant", "demo-finance"] {
        let res = client()
            .get(s.url(&format!("/demo/{tenant}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "followed the redirect to the page");
        assert!(res.url().path().starts_with("/ui/conversation"));
        let session = res
            .url()
            .query_pairs()
            .find(|(k, _)| k == "session")
            .unwrap()
            .1
            .to_string();
        let st: Value = get_json(s.url(&format!("/conversation/{session}/state")), Some(KEY)).await;
        assert!(st["seq"].as_u64().unwrap() >= 2, "seeded: {st}");
    }
    let res = client().get(s.url("/demo/nobody")).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn theme_generation_without_a_model_derives_a_readable_palette() {
    let s = start(&[
        ("STONEPOT_DEMO_KEY", KEY),
        ("THEME_API_TOKEN", "theme-admin-secret"),
    ])
    .await;
    let c = client();
    let url = s.url("/api/admin/tenants/demo-finance/theme/generate");
    let res = c
        .post(&url)
        .json(&json!({"description": "a calm navy advisory desk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 401).await.0, "unauthorized");
    let res = c
        .post(&url)
        .bearer_auth("theme-admin-secret")
        .json(&json!({"description": ""}))
        .send()
        .await
        .unwrap();
    error_code(res, 422).await;
    let preview: Value = c
        .post(&url)
        .bearer_auth("theme-admin-secret")
        .json(&json!({"description": "a calm navy advisory desk"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(preview["source"], "derived");
    assert_eq!(preview["applied"], false);
    assert_eq!(preview["theme"]["layout"], "list");
    let current: Value = get_json(
        s.url("/api/admin/tenants/demo-finance/theme"),
        Some("theme-admin-secret"),
    )
    .await;
    assert_ne!(current, preview["theme"], "a preview changes nothing");
    let applied: Value = c
        .post(&url)
        .bearer_auth("theme-admin-secret")
        .json(&json!({"description": "a calm navy advisory desk", "apply": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let now: Value = get_json(
        s.url("/api/admin/tenants/demo-finance/theme"),
        Some("theme-admin-secret"),
    )
    .await;
    assert_eq!(now, applied["theme"]);
    assert_eq!(
        applied["theme"], preview["theme"],
        "the same description gives the same theme"
    );
}
