//! The daily close end to end: real orders placed over HTTP through the offline agent,
//! closed by the API, by the `stonepot close` binary and by the scheduler; exact
//! figures, byte-identical re-runs, an amendment beside an untouched original, the CSV,
//! the objects on disk, a fake Slack webhook, and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::routing::post;
use common::{TestServer, bin, confirm, error_code, get, post_json, quote, say, start};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stonepot_domain::commerce::close::CloseSettings;

const KEY: &str = "sp_close_test";
const TENANT: &str = "demo-restaurant";
/// A schedule that does not fire while a test runs (midnight on January 1st).
const NEVER: &str = "0 0 0 1 1 *";

/// A fake Slack incoming webhook: records every JSON body posted to `/hook`.
struct FakeSlack {
    url: String,
    got: Arc<Mutex<Vec<Value>>>,
}

async fn fake_slack() -> FakeSlack {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(body): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    FakeSlack {
        url: format!("http://{addr}/hook"),
        got,
    }
}

impl FakeSlack {
    fn texts(&self) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|v| {
                assert_eq!(v.as_object().unwrap().len(), 1, "Slack gets only text: {v}");
                v["text"].as_str().unwrap().to_string()
            })
            .collect()
    }
}

async fn conversation(s: &TestServer) -> String {
    let v: Value = post_json(
        s.url("/api/restaurant/sessions"),
        Some(KEY),
        &json!({ "tenantId": TENANT }),
    )
    .await
    .json()
    .await
    .unwrap();
    v["sessionId"].as_str().unwrap().to_string()
}

/// Orders what `text` asks for in conversation `conv` and returns the order.
async fn order(s: &TestServer, conv: &str, text: &str) -> Value {
    say(s, KEY, conv, text).await;
    let q: Value = quote(s, KEY, conv).await;
    let res = confirm(s, KEY, conv, &q["hash"]).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn move_to(s: &TestServer, order: &Value, to: &str) {
    let id = order["id"].as_str().unwrap();
    let res = post_json(
        s.url(&format!("/api/tenants/{TENANT}/orders/{id}/status")),
        Some(KEY),
        &json!({ "to": to, "by": "till" }),
    )
    .await;
    assert_eq!(res.status(), 200, "{to}: {}", res.text().await.unwrap());
}

async fn put_settings(s: &TestServer, day_end: &str, cron: &str) -> reqwest::Response {
    common::client()
        .put(s.url(&format!("/api/tenants/{TENANT}/close-settings")))
        .bearer_auth(KEY)
        .json(&json!({ "dayEnd": day_end, "timeZone": "UTC", "cron": cron }))
        .send()
        .await
        .unwrap()
}

async fn close_now(s: &TestServer, date: &str) -> reqwest::Response {
    post_json(
        s.url(&format!("/api/tenants/{TENANT}/closes/{date}")),
        Some(KEY),
        &json!({}),
    )
    .await
}

async fn text(s: &TestServer, path: &str) -> (String, String) {
    let res = get(s.url(path), Some(KEY)).await;
    assert_eq!(res.status(), 200, "{path}");
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    (ct, res.text().await.unwrap())
}

/// Runs `stonepot close` on the test server's data directory.
fn close_binary(s: &TestServer, date: &str) -> std::process::Output {
    bin()
        .args(["close", "--tenant", TENANT, "--date", date])
        .current_dir(s.dir.path())
        .env("DATA_DIR", s.dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("OBJECT_STORE_URL")
        .env_remove("SLACK_WEBHOOK_URL")
        .env_remove("ENVIRONMENT")
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_closed_by_api_and_binary_then_amended() {
    let slack = fake_slack().await;
    let s = start(&[
        ("STONEPOT_DEMO_KEY", KEY),
        ("SLACK_WEBHOOK_URL", &slack.url),
        ("RATE_LIMIT_REQUESTS", "100000"),
    ])
    .await;
    // A business day whose boundaries are hours away from now, so the test never
    // straddles one: it ends (and the next begins) six hours before now, UTC.
    let day_end = (Timestamp::now() - jiff::SignedDuration::from_hours(6))
        .strftime("%H:%M")
        .to_string();
    assert_eq!(put_settings(&s, &day_end, NEVER).await.status(), 200);
    let settings = CloseSettings::new(&day_end, "UTC", NEVER).unwrap();
    let date = settings
        .business_date_at(Timestamp::now())
        .unwrap()
        .to_string();

    // Guest A: two pizzas, cooked, paid and served; then a tiramisu, still open.
    let a = conversation(&s).await;
    let a1 = order(&s, &a, "two margherita pizzas").await;
    assert_eq!(a1["total"], 2829, "25.98 + 8.88 % (2.31): {a1}");
    for to in ["in_kitchen", "ready", "paid", "completed"] {
        move_to(&s, &a1, to).await;
    }
    let a2 = order(&s, &a, "one tiramisu").await;
    assert_eq!(a2["total"], 974, "8.95 + 8.88 % (0.79): {a2}");
    // Guest B: a tiramisu, cancelled.
    let b = conversation(&s).await;
    let b1 = order(&s, &b, "one tiramisu").await;
    move_to(&s, &b1, "cancelled").await;
    // Guest C: two pizzas, paid at the counter, not served yet.
    let c = conversation(&s).await;
    let c1 = order(&s, &c, "two margherita pizzas").await;
    move_to(&s, &c1, "paid").await;

    // Never closed yet: 404.
    let res = get(
        s.url(&format!("/api/tenants/{TENANT}/closes/{date}")),
        Some(KEY),
    )
    .await;
    assert_eq!(error_code(res, 404).await.0, "not_found");

    // Close by the API.
    let res = close_now(&s, &date).await;
    assert_eq!(res.status(), 200);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["outcome"], "created", "{first}");
    assert_eq!(first["revision"], 0);
    let r = &first["report"];
    assert_eq!(r["businessDate"], date.as_str());
    assert_eq!(r["currency"], "USD");
    assert_eq!(
        r["sales"],
        json!({
            "orders": 3, "guests": 2, "grossSales": 2598 + 895 + 2598, "discounts": 0,
            "tax": 231 + 79 + 231, "serviceCharges": 0, "tips": 0, "total": 6632,
            "refunds": 0, "net": 6632, "averageTicket": 2211
        })
    );
    assert_eq!(r["cancelled"], json!({ "orders": 1, "total": 974 }));
    assert_eq!(
        r["paymentMethods"]["counter"],
        json!({ "orders": 3, "sales": 6632, "payments": 5658, "refunds": 0, "net": 5658 })
    );
    assert_eq!(r["paymentMethods"]["stripe"]["orders"], 0);
    assert_eq!(
        r["open"],
        json!({ "orders": 2, "total": 974 + 2829, "ids": [a2["id"], c1["id"]] })
    );
    assert_eq!(r["reconciliation"]["paidOrders"], 2);
    assert_eq!(r["reconciliation"]["matched"], 2);
    assert_eq!(r["reconciliation"]["mismatches"], json!([]));

    // The exact bytes, the CSV, and the copies in object storage.
    let (ct, json_bytes) = text(
        &s,
        &format!("/api/tenants/{TENANT}/closes/{date}?format=json"),
    )
    .await;
    assert_eq!(ct, "application/json");
    let (ct, csv) = text(
        &s,
        &format!("/api/tenants/{TENANT}/closes/{date}?format=csv"),
    )
    .await;
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert!(csv.starts_with("section,metric,key,count,amount_minor,amount,currency\r\n"));
    assert!(
        csv.contains("\r\nsales,total,,,6632,66.32,USD\r\n"),
        "{csv}"
    );
    let dir = s.dir.path().join(format!("objects/closes/{TENANT}/{date}"));
    assert_eq!(
        std::fs::read_to_string(dir.join("r0.json")).unwrap(),
        json_bytes
    );
    assert_eq!(std::fs::read_to_string(dir.join("r0.csv")).unwrap(), csv);
    let envelope: Value = get(
        s.url(&format!("/api/tenants/{TENANT}/closes/{date}")),
        Some(KEY),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(envelope["revision"], 0);
    assert_eq!(envelope["revisions"].as_array().unwrap().len(), 1);
    assert_eq!(&envelope["report"], r);
    assert_eq!(envelope["sha256"], first["sha256"]);

    // Slack got the summary.
    let texts = slack.texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].starts_with(&format!(
            "Daily close {TENANT} {date}: 3 orders, 2 guests, total USD 66.32"
        )),
        "{}",
        texts[0]
    );

    // A re-run changes nothing, byte for byte, and says nothing to Slack.
    let again: Value = close_now(&s, &date).await.json().await.unwrap();
    assert_eq!(again["outcome"], "unchanged");
    assert_eq!(again["revision"], 0);
    assert_eq!(again["sha256"], first["sha256"]);
    let (_, bytes) = text(
        &s,
        &format!("/api/tenants/{TENANT}/closes/{date}?format=json"),
    )
    .await;
    assert_eq!(bytes, json_bytes);

    // The binary agrees: the same day, unchanged.
    let out = close_binary(&s, &date);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["outcome"], "unchanged", "{printed}");
    assert_eq!(printed["sha256"], first["sha256"]);
    assert_eq!(printed["report"]["sales"]["total"], 6632);
    let out = close_binary(&s, "2026-02-30");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--date") && err.contains("2026-02-30"),
        "{err}"
    );
    let out = bin()
        .args(["close", "--tenant", "nobody-here", "--date", &date])
        .env("DATA_DIR", s.dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tenant 'nobody-here'"));

    // A later refund: an amendment, revision 1, beside an untouched revision 0.
    move_to(&s, &a1, "refunded").await;
    let amended: Value = close_now(&s, &date).await.json().await.unwrap();
    assert_eq!(amended["outcome"], "amended", "{amended}");
    assert_eq!(amended["revision"], 1);
    let r1 = &amended["report"];
    assert_eq!(r1["sales"]["refunds"], 2829);
    assert_eq!(r1["sales"]["net"], 6632 - 2829);
    assert_eq!(
        r1["sales"]["orders"], 3,
        "a refunded order is still a sale of the day"
    );
    assert_eq!(r1["paymentMethods"]["counter"]["net"], 5658 - 2829);
    let (_, original) = text(
        &s,
        &format!("/api/tenants/{TENANT}/closes/{date}?format=json&revision=0"),
    )
    .await;
    assert_eq!(original, json_bytes, "revision 0 is never rewritten");
    assert_eq!(
        std::fs::read_to_string(dir.join("r0.json")).unwrap(),
        json_bytes
    );
    let r1_file = std::fs::read_to_string(dir.join("r1.json")).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&r1_file).unwrap(), *r1);
    let envelope: Value = get(
        s.url(&format!("/api/tenants/{TENANT}/closes/{date}")),
        Some(KEY),
    )
    .await
    .json()
    .await
    .unwrap();
    let revs: Vec<i64> = envelope["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(revs, vec![0, 1]);
    let texts = slack.texts();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[1].starts_with("(amendment r1) Daily close"),
        "{}",
        texts[1]
    );

    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn bad_close_requests_are_4xx_naming_the_problem() {
    let s = start(&[
        ("STONEPOT_DEMO_KEY", KEY),
        ("RATE_LIMIT_REQUESTS", "100000"),
    ])
    .await;
    let today = CloseSettings::default()
        .business_date_at(Timestamp::now())
        .unwrap();
    let path = |d: &str| format!("/api/tenants/{TENANT}/closes/{d}");
    for bad in ["2026-13-01", "2026-02-30", "yesterday", "2026-1-05"] {
        let (code, msg) = error_code(close_now(&s, bad).await, 422).await;
        assert_eq!(code, "invalid_body");
        assert!(msg.starts_with("date:"), "{msg}");
    }
    let future = today
        .checked_add(jiff::ToSpan::days(2))
        .unwrap()
        .to_string();
    let (code, msg) = error_code(close_now(&s, &future).await, 422).await;
    assert_eq!(code, "future_date", "{msg}");
    let before = today
        .checked_sub(jiff::ToSpan::days(5))
        .unwrap()
        .to_string();
    let (code, msg) = error_code(close_now(&s, &before).await, 422).await;
    assert_eq!(code, "before_tenant", "{msg}");
    // Nothing was stored by the refusals.
    let res = get(s.url(&path(&future)), Some(KEY)).await;
    error_code(res, 404).await;
    // The day in progress can be closed (and is an empty day here).
    let v: Value = close_now(&s, &today.to_string())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["outcome"], "created");
    assert_eq!(v["dayEnded"], false);
    assert_eq!(v["report"]["sales"]["orders"], 0);
    let res = get(
        s.url(&format!("{}?format=xml", path(&today.to_string()))),
        Some(KEY),
    )
    .await;
    assert!(error_code(res, 422).await.1.contains("format"));
    let res = get(
        s.url(&format!("{}?revision=9", path(&today.to_string()))),
        Some(KEY),
    )
    .await;
    error_code(res, 404).await;
    // Without the key, or with another tenant's path: 401.
    let res = get(s.url(&path(&today.to_string())), None).await;
    error_code(res, 401).await;
    let res = post_json(
        s.url(&format!("/api/tenants/demo-finance/closes/{today}")),
        Some("sp_wrong"),
        &json!({}),
    )
    .await;
    error_code(res, 401).await;

    // Settings: each bad field is named.
    for (day_end, tz, cron, field) in [
        ("25:00", "UTC", NEVER, "dayEnd"),
        ("16:00", "Atlantis/Capital", NEVER, "timeZone"),
        ("16:00", "UTC", "every day at four", "cron"),
        ("16:00", "UTC", "0 61 * * * *", "cron"),
    ] {
        let res = common::client()
            .put(s.url(&format!("/api/tenants/{TENANT}/close-settings")))
            .bearer_auth(KEY)
            .json(&json!({ "dayEnd": day_end, "timeZone": tz, "cron": cron }))
            .send()
            .await
            .unwrap();
        let (_, msg) = error_code(res, 422).await;
        assert!(msg.starts_with(field), "{field}: {msg}");
    }
    let res = common::client()
        .put(s.url(&format!("/api/tenants/{TENANT}/close-settings")))
        .bearer_auth(KEY)
        .json(&json!({ "dayEnd": "16:00", "timeZone": "UTC", "cron": NEVER, "extra": 1 }))
        .send()
        .await
        .unwrap();
    error_code(res, 422).await;
    // Still the defaults.
    let v: Value = get(
        s.url(&format!("/api/tenants/{TENANT}/close-settings")),
        Some(KEY),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["dayEnd"], "16:00");
    assert_eq!(v["timeZone"], "UTC");
    assert_eq!(v["cron"], "0 5 16 * * *");
    assert!(v["nextRun"].as_str().unwrap().ends_with("16:05:00Z"), "{v}");
    s.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_closes_the_day_that_just_ended() {
    let slack = fake_slack().await;
    let s = start(&[
        ("STONEPOT_DEMO_KEY", KEY),
        ("SLACK_WEBHOOK_URL", &slack.url),
        ("RATE_LIMIT_REQUESTS", "100000"),
    ])
    .await;
    let conv = conversation(&s).await;
    let o = order(&s, &conv, "two margherita pizzas").await;
    move_to(&s, &o, "paid").await;
    // End the business day three seconds from now and run the schedule every second.
    let end = Timestamp::now() + jiff::SignedDuration::from_secs(3);
    let end = Timestamp::from_second(end.as_second()).unwrap();
    let day_end = end.strftime("%H:%M:%S").to_string();
    assert_eq!(
        put_settings(&s, &day_end, "* * * * * *").await.status(),
        200
    );
    let settings = CloseSettings::new(&day_end, "UTC", "* * * * * *").unwrap();
    let date = settings.last_ended_date(end).unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let closed: Value = loop {
        let res = get(
            s.url(&format!("/api/tenants/{TENANT}/closes/{date}")),
            Some(KEY),
        )
        .await;
        if res.status() == 200 {
            break res.json().await.unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduler never closed {date}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(closed["revision"], 0);
    assert_eq!(closed["report"]["sales"]["orders"], 1);
    assert_eq!(closed["report"]["sales"]["total"], 2829);
    assert_eq!(
        closed["report"]["window"]["end"],
        end.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    );
    // The schedule keeps firing every second; the day stays one revision (re-runs are
    // unchanged) and Slack hears about it once.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let v: Value = get(
        s.url(&format!("/api/tenants/{TENANT}/closes/{date}")),
        Some(KEY),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["revisions"].as_array().unwrap().len(), 1, "{v}");
    let texts = slack.texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].contains(&format!("{TENANT} {date}: 1 orders")),
        "{}",
        texts[0]
    );
    s.running.stop().await.unwrap();
}
