//! Object storage on an S3-compatible bucket: moto's server mode (PyPI, installed by
//! scripts/install-test-deps.sh) stands in for AWS, R2 or MinIO on 127.0.0.1. A paid
//! order's receipt lands in the bucket under the configured prefix, byte for byte what
//! the API serves, and a missing bucket is an error, never a silently lost receipt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{confirm, get, post_json, quote, say, start};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "sp_s3_test";

/// A moto S3 server on a free loopback port, killed on drop.
struct Moto {
    child: Child,
    base: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m moto.server (pip install 'moto[server]')");
    let m = Moto {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if reqwest::get(format!("{}/", m.base)).await.is_ok() {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "moto did not start on {}",
            m.base
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn s3_env(m: &Moto, url: &str) -> Vec<(String, String)> {
    [
        ("STONEPOT_DEMO_KEY", KEY),
        ("OBJECT_STORE_URL", url),
        ("AWS_ENDPOINT", m.base.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Places a pay-at-counter order and marks it paid; returns the order id.
async fn paid_order(s: &common::TestServer) -> String {
    let v: Value = post_json(
        s.url("/api/restaurant/sessions"),
        Some(KEY),
        &json!({"tenantId": "demo-restaurant"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = v["sessionId"].as_str().unwrap().to_string();
    say(s, KEY, &id, "two margherita pizzas").await;
    let q = quote(s, KEY, &id).await;
    let res = confirm(s, KEY, &id, &q["hash"]).await;
    assert_eq!(res.status(), 200);
    let order: Value = res.json().await.unwrap();
    let oid = order["id"].as_str().unwrap().to_string();
    let res = post_json(
        s.url(&format!("/api/tenants/demo-restaurant/orders/{oid}/status")),
        Some(KEY),
        &json!({"to": "paid", "by": "counter"}),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    oid
}

#[tokio::test]
async fn receipts_are_written_to_an_s3_bucket() {
    let m = moto().await;
    // Path-style bucket creation; moto accepts it unsigned.
    let res = reqwest::Client::new()
        .put(format!("{}/stonepot-receipts", m.base))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "create bucket: {}", res.status());

    let env = s3_env(&m, "s3://stonepot-receipts/shop-1");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = start(&env).await;
    let oid = paid_order(&s).await;

    let res = get(
        s.url(&format!(
            "/api/tenants/demo-restaurant/orders/{oid}/receipt"
        )),
        Some(KEY),
    )
    .await;
    assert_eq!(res.status(), 200);
    let sha = res.headers()["x-receipt-sha256"]
        .to_str()
        .unwrap()
        .to_string();
    let html = res.text().await.unwrap();
    assert!(html.contains("Margherita Pizza"), "{html}");

    // The object itself, read straight from the bucket (a signed GET of its own),
    // under the prefix.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bucket = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&m.base)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .with_bucket_name("stonepot-receipts")
        .build()
        .unwrap();
    use object_store::ObjectStoreExt;
    let path =
        object_store::path::Path::from(format!("shop-1/receipts/demo-restaurant/{oid}.html"));
    let got = bucket
        .get(&path)
        .await
        .expect("the receipt is in the bucket");
    let stored = String::from_utf8(got.bytes().await.unwrap().to_vec()).unwrap();
    assert_eq!(stored, html);
    use sha2::Digest;
    assert_eq!(sha, hex::encode(sha2::Sha256::digest(stored.as_bytes())));
    // Nothing was written to the local directory instead.
    assert!(!s.dir.path().join("objects/receipts").exists());
}

#[tokio::test]
async fn a_bucket_that_is_away_delays_the_receipt_but_not_the_payment() {
    let m = moto().await;
    let env = s3_env(&m, "s3://late-bucket/x");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = start(&env).await;
    // The bucket does not exist yet: the payment is recorded and acknowledged, the
    // receipt is not stored (and not served as if it were). `paid_order` asserts the
    // move to paid answered 200.
    let oid = paid_order(&s).await;
    let receipt_url = s.url(&format!(
        "/api/tenants/demo-restaurant/orders/{oid}/receipt"
    ));
    assert_eq!(get(receipt_url.clone(), Some(KEY)).await.status(), 404);
    // Once the bucket is there, the order's next move writes the receipt.
    let res = reqwest::Client::new()
        .put(format!("{}/late-bucket", m.base))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "create bucket: {}", res.status());
    let res = post_json(
        s.url(&format!("/api/tenants/demo-restaurant/orders/{oid}/status")),
        Some(KEY),
        &json!({"to": "in_kitchen", "by": "chef"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = get(receipt_url, Some(KEY)).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Margherita Pizza"));
}
