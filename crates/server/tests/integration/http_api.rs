//! The HTTP surface against a real server on 127.0.0.1:0 (in-process, SQLite).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{client, error_code, get_json, start};
use serde_json::{Value, json};

#[tokio::test]
async fn health_status_and_stats() {
    let s = start(&[]).await;
    let c = client();
    let res = c.get(s.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let mut v: Value = res.json().await.unwrap();
    // Whether the local speech engines are installed depends on the machine (the
    // voice tests require them); the mode is the default.
    let speech = v.as_object_mut().unwrap().remove("speech").unwrap();
    assert_eq!(speech["mode"], "offline", "{speech}");
    assert!(speech["espeakNg"].is_boolean() && speech["recognizer"].is_boolean());
    assert_eq!(
        v,
        json!({"ok":true,"database":"ok","bus":"ok","storage":"ok",
               "environment":"development","version":env!("CARGO_PKG_VERSION")})
    );
    let v: Value = get_json(s.url("/api/status"), None).await;
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["gitCommit"].as_str().unwrap().len() >= 7);
    for field in ["buildTime", "startTime"] {
        let t = v[field].as_str().unwrap();
        assert!(t.parse::<jiff::Timestamp>().is_ok(), "{field}: {t}");
    }
    assert!(v["uptimeSeconds"].as_f64().unwrap() >= 0.0);
    let v: Value = get_json(s.url("/api/session/stats"), None).await;
    assert_eq!(v["tenants"], 2);
    assert!(v["menuItems"].as_i64().unwrap() >= 20);
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn request_ids_are_echoed_or_minted() {
    let s = start(&[]).await;
    let c = client();
    let res = c
        .get(s.url("/health"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc-123");
    let res = c
        .get(s.url("/health"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let minted = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(minted, "bad id with spaces");
    assert!(uuid::Uuid::parse_str(&minted).is_ok());
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let s = start(&[]).await;
    let c = client();
    for _ in 0..3 {
        c.get(s.url("/api/tenants/demo-restaurant/menu"))
            .send()
            .await
            .unwrap();
    }
    c.get(s.url("/api/tenants/nobody/menu"))
        .send()
        .await
        .unwrap();
    c.get(s.url("/no/such/path")).send().await.unwrap();
    let res = c.get(s.url("/metrics")).send().await.unwrap();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(text.contains(
        r#"stonepot_http_requests_total{route="/api/tenants/{tenant}/menu",method="GET",status="200"} 3"#
    ), "{text}");
    assert!(text.contains(
        r#"stonepot_http_requests_total{route="/api/tenants/{tenant}/menu",method="GET",status="404"} 1"#
    ));
    // Unknown paths share one label value: no cardinality explosion.
    assert!(text.contains(r#"route="unmatched",method="GET",status="404"} 1"#));
    assert!(!text.contains("/no/such/path"));
    assert!(text.contains("stonepot_http_request_duration_seconds_bucket{route=\"/api/tenants/{tenant}/menu\",method=\"GET\",status=\"200\",le=\"+Inf\"} 3"));
    assert!(text.contains("stonepot_http_requests_in_flight 1"));
    let rss = text
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .unwrap();
    assert!(rss.parse::<f64>().unwrap() > 1_000_000.0);
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn cors_allows_exact_origins_only() {
    let s = start(&[(
        "ALLOWED_ORIGINS",
        "https://kiosk.example.com, https://admin.example.com",
    )])
    .await;
    let c = client();
    let res = c
        .get(s.url("/api/status"))
        .header("origin", "https://kiosk.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://kiosk.example.com"
    );
    for other in [
        "https://evil.example.com",
        "https://kiosk.example.com.evil.net",
        "http://kiosk.example.com",
    ] {
        let res = c
            .get(s.url("/api/status"))
            .header("origin", other)
            .send()
            .await
            .unwrap();
        assert!(
            !res.headers().contains_key("access-control-allow-origin"),
            "{other} must not be allowed"
        );
    }
    // Preflight for an allowed origin.
    let res = c
        .request(
            reqwest::Method::OPTIONS,
            s.url("/api/tenants/demo-restaurant/menu"),
        )
        .header("origin", "https://admin.example.com")
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "content-type, authorization",
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://admin.example.com"
    );
    assert!(
        res.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("PUT")
    );
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_and_spares_health() {
    let s = start(&[("RATE_LIMIT_REQUESTS", "5"), ("RATE_LIMIT_WINDOW", "1m")]).await;
    let c = client();
    for i in 0..5 {
        let res = c.get(s.url("/api/status")).send().await.unwrap();
        assert_eq!(res.status(), 200, "request {i} is within the limit");
    }
    let res = c.get(s.url("/api/status")).send().await.unwrap();
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    let (code, _) = error_code(res, 429).await;
    assert_eq!(code, "rate_limited");
    // Health, metrics and assets are exempt.
    for path in ["/health", "/metrics", "/assets/app.css", "/"] {
        for _ in 0..3 {
            let res = c.get(s.url(path)).send().await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
        }
    }
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    // Loopback is the trusted proxy: each forwarded client gets its own budget.
    let s = start(&[
        ("RATE_LIMIT_REQUESTS", "2"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let c = client();
    for client_ip in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..2 {
            let res = c
                .get(s.url("/api/status"))
                .header("x-forwarded-for", client_ip)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
    }
    let res = c
        .get(s.url("/api/status"))
        .header("x-forwarded-for", "203.0.113.1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    s.running.stop().await.unwrap();

    // Without a trusted proxy the header is ignored: one budget for the socket peer.
    let s = start(&[("RATE_LIMIT_REQUESTS", "2")]).await;
    for ip in ["198.51.100.1", "198.51.100.2"] {
        let res = c
            .get(s.url("/api/status"))
            .header("x-forwarded-for", ip)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = c
        .get(s.url("/api/status"))
        .header("x-forwarded-for", "198.51.100.3")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn every_error_has_the_json_shape() {
    let s = start(&[("BODY_LIMIT", "4096")]).await;
    let c = client();
    let menu_url = s.url("/api/tenants/demo-restaurant/menu");
    let key = s.key();

    // 400: malformed JSON names the position.
    let res = c
        .put(&menu_url)
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{\"sections\": [\n  {\"id\": }")
        .send()
        .await
        .unwrap();
    let (code, msg) = error_code(res, 400).await;
    assert_eq!(code, "malformed_json");
    assert!(msg.contains("line 2 column"), "{msg}");

    // 400: a bad id in the path.
    let res = c
        .get(s.url("/api/tenants/Bad%20Id/menu"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 400).await.0, "invalid_id");

    // 401: no key, and a key of no use here.
    let res = c
        .put(&menu_url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 401).await.0, "unauthorized");

    // 404: unknown route and unknown tenant.
    let res = c.get(s.url("/nope")).send().await.unwrap();
    assert_eq!(error_code(res, 404).await.0, "not_found");
    let res = c
        .get(s.url("/api/tenants/nobody/menu"))
        .send()
        .await
        .unwrap();
    let (code, msg) = error_code(res, 404).await;
    assert_eq!(code, "not_found");
    assert!(msg.contains("nobody"));

    // 405 keeps its Allow header.
    let res = c.delete(s.url("/health")).send().await.unwrap();
    assert!(res.headers().contains_key("allow"));
    assert_eq!(error_code(res, 405).await.0, "method_not_allowed");

    // 413: over the body limit, declared and streamed.
    let big = format!(
        "{{\"sections\":[],\"items\":[],\"pad\":\"{}\"}}",
        "x".repeat(8192)
    );
    let res = c
        .put(&menu_url)
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 413).await.0, "payload_too_large");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .into_bytes()
        .chunks(1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let res = c
        .put(&menu_url)
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 413).await.0, "payload_too_large");

    // 415: not JSON.
    let res = c
        .put(&menu_url)
        .bearer_auth(&key)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 415).await.0, "unsupported_media_type");

    // 422: well-formed, wrong shape — names the field.
    let res = c
        .put(&menu_url)
        .bearer_auth(&key)
        .json(&json!({"sections":[{"id":"s","name":"S","position":1}],
                      "items":[{"id":"i","sectionId":"s","name":"I","description":"",
                                "price":"cheap","dietary":[],"allergens":[],"aliases":[],
                                "available":true,"imageUrl":null}]}))
        .send()
        .await
        .unwrap();
    let (code, msg) = error_code(res, 422).await;
    assert_eq!(code, "invalid_body");
    assert!(msg.starts_with("items[0].price"), "{msg}");
    // 422: well-typed but breaking a menu rule.
    let res = c
        .put(&menu_url)
        .bearer_auth(&key)
        .json(&json!({"sections":[{"id":"s","name":"S","position":1}],
                      "items":[{"id":"i","sectionId":"s","name":"I","description":"",
                                "price":100,"dietary":["carnivore"],"allergens":[],"aliases":[],
                                "available":true,"imageUrl":null}]}))
        .send()
        .await
        .unwrap();
    let (_, msg) = error_code(res, 422).await;
    assert!(msg.contains("carnivore"), "{msg}");

    // 503 naming the dependency, without internals: the database goes away under a
    // running server (nothing was done; the client may retry).
    s.running.app.store.close().await;
    let res = c.get(s.url("/api/session/stats")).send().await.unwrap();
    assert!(res.headers().contains_key("retry-after"));
    let (code, msg) = error_code(res, 503).await;
    assert_eq!(code, "unavailable");
    assert!(msg.contains("database"), "{msg}");
    assert!(
        !msg.to_lowercase().contains("sqlite") && !msg.contains("pool"),
        "{msg}"
    );
    // …and health says which part failed.
    let res = c.get(s.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["database"], "error");
    assert_eq!(v["storage"], "ok");
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn menu_replace_round_trips_and_needs_the_right_key() {
    let s = start(&[("STONEPOT_DEMO_KEY", "sp_test_demo")]).await;
    let c = client();
    let url = s.url("/api/tenants/demo-restaurant/menu");
    let mut menu: Value = get_json(&url, None).await;
    let items = menu["items"].as_array().unwrap();
    let pizza = items
        .iter()
        .find(|i| i["name"] == "Margherita Pizza")
        .unwrap();
    assert_eq!(pizza["price"], 1299);
    assert!(pizza["modifierGroups"].as_array().unwrap().iter().any(|g| {
        g["modifiers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "No basil")
    }));
    assert!(items.iter().any(|i| i["available"] == false));
    menu["items"].as_array_mut().unwrap().truncate(2);
    let res = c
        .put(&url)
        .bearer_auth(s.key())
        .json(&menu)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let after: Value = get_json(&url, None).await;
    assert_eq!(after["items"], menu["items"]);
    assert_eq!(after["sections"], menu["sections"]);
    assert_eq!(after["version"], menu["version"].as_u64().unwrap() + 1);
    // A key that is not the tenant's is refused before the body is looked at.
    let res = c
        .put(&url)
        .bearer_auth("sp_not_a_key")
        .json(&menu)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 401).await.0, "unauthorized");
    // /api/me lists the tenants a key opens.
    let v: Value = c
        .get(s.url("/api/me"))
        .header("x-api-key", s.key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["tenants"], json!(["demo-finance", "demo-restaurant"]));
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn assets_are_cached_by_content_hash() {
    let s = start(&[]).await;
    let c = client();
    let html = c
        .get(s.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("demo-restaurant") && html.contains("demo-finance"));
    let start_at = html.find("app.").unwrap();
    let hashed = html[start_at..].split('"').next().unwrap().to_string();
    assert!(hashed.ends_with(".css") && hashed.len() > "app.css".len());
    let res = c
        .get(s.url(&format!("/assets/{hashed}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let res = c.get(s.url("/assets/app.css")).send().await.unwrap();
    assert_eq!(res.headers()["cache-control"], "public, max-age=3600");
    let res = c
        .get(s.url("/assets/app.css"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    let res = c.get(s.url("/assets/missing.js")).send().await.unwrap();
    assert_eq!(error_code(res, 404).await.0, "not_found");
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let s = start(&[]).await;
    let v: Value = get_json(s.url("/openapi.json"), None).await;
    assert_eq!(
        v,
        serde_json::to_value(stonepot_server::app::App::openapi()).unwrap()
    );
    insta::assert_json_snapshot!("openapi", v);
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn starting_without_demo_is_empty_and_demo_seeding_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let env: std::collections::HashMap<String, String> =
        [("DATA_DIR".to_string(), dir.path().display().to_string())].into();
    let flags = stonepot_server::config::Overrides {
        port: Some(0),
        ..Default::default()
    };
    let config = stonepot_server::config::Config::load(None, &env, &flags).unwrap();
    let (app, keys) = stonepot_server::serve::prepare(config.clone())
        .await
        .unwrap();
    assert!(keys.is_empty());
    assert_eq!(app.store.counts().await.unwrap().tenants, 0);
    app.store.close().await;

    let mut demo = config.clone();
    demo.demo = true;
    let (app, first) = stonepot_server::serve::prepare(demo.clone()).await.unwrap();
    let counts = app.store.counts().await.unwrap();
    app.store.close().await;
    let (app, second) = stonepot_server::serve::prepare(demo).await.unwrap();
    assert_eq!(
        app.store.counts().await.unwrap(),
        counts,
        "no duplicate rows"
    );
    // A fresh key each start; the previous one stops working.
    assert_ne!(first[0].1, second[0].1);
    let t = stonepot_domain::TenantId::new("demo-restaurant").unwrap();
    assert!(!app.store.api_key_valid(&t, &first[0].1).await.unwrap());
    assert!(app.store.api_key_valid(&t, &second[0].1).await.unwrap());
    app.store.close().await;
}
