//! The server on PostgreSQL: the same surface, and a 503 when the database disappears.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{client, get_json, start};
use serde_json::Value;
use stonepot_store::testing;

#[tokio::test]
async fn health_turns_503_when_the_database_is_dropped() {
    let url = testing::fresh_postgres_url("server_health")
        .await
        .expect("PostgreSQL is required: run scripts/test.sh");
    let s = start(&[("DATABASE_URL", url.as_str())]).await;
    let c = client();
    let v: Value = get_json(s.url("/api/status"), None).await;
    assert_eq!(v["database"], "postgres");
    let res = c.get(s.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let menu: Value = get_json(s.url("/api/tenants/demo-restaurant/menu"), None).await;
    assert!(menu["items"].as_array().unwrap().len() >= 20);

    testing::drop_postgres_database(&url).await.unwrap();
    let res = c.get(s.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["database"], "error");
    assert!(
        v["failing"][0].as_str().unwrap().starts_with("database:"),
        "{v}"
    );
    s.running.stop().await.unwrap();
}
