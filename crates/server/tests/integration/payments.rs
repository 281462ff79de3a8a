//! Stripe Checkout end to end against the fake Stripe: pay through a signed webhook,
//! duplicates and replays, bad signatures and timestamps, amount and currency
//! mismatches (flagged, not paid), the success redirect racing the webhook, refunds,
//! Stripe failing, and the official `stripe` Python package cross-checking signatures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::fake_stripe;

use common::{TestServer, client, error_code, get, post_json, start};
use fake_stripe::{FakeStripe, WEBHOOK_SECRET, deliver, signature, stripe_order};
use serde_json::{Value, json};
use stonepot_domain::TenantId;
use stonepot_domain::commerce::{AuditAction, Order, OrderId};

const KEY: &str = "sp_payments_test";

async fn server(fake: &FakeStripe) -> TestServer {
    let env = fake.env();
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.push(("STONEPOT_DEMO_KEY", KEY));
    start(&pairs).await
}

fn tenant() -> TenantId {
    TenantId::new("demo-restaurant").unwrap()
}

async fn stored(s: &TestServer, id: &str) -> Order {
    let id = OrderId::new(id.to_string()).unwrap();
    s.running
        .app
        .store
        .order(&tenant(), &id)
        .await
        .unwrap()
        .unwrap()
}

fn payments(o: &Order) -> usize {
    o.audit
        .iter()
        .filter(|e| matches!(e.action, AuditAction::Payment { .. }))
        .count()
}

async fn ticket(s: &TestServer, id: &str) -> bool {
    let id = OrderId::new(id.to_string()).unwrap();
    s.running
        .app
        .store
        .ticket(&tenant(), &id)
        .await
        .unwrap()
        .is_some()
}

async fn tickets_fired(s: &TestServer) -> f64 {
    let text = get(s.url("/metrics"), None).await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("stonepot_kitchen_tickets_fired_total "))
        .unwrap()
        .parse()
        .unwrap()
}

async fn order(s: &TestServer) -> Value {
    stripe_order(&client(), &s.base, KEY, "one margherita pizza", "stripe")
        .await
        .unwrap_or_else(|r| panic!("confirm failed: {}", r.status()))
}

fn id_of(o: &Value) -> String {
    o["id"].as_str().unwrap().to_string()
}

fn session_of(o: &Value) -> String {
    o["checkout"]["sessionId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn pay_end_to_end_through_a_signed_webhook() {
    let fake = FakeStripe::start().await;
    let s = server(&fake).await;
    let o = order(&s).await;
    let (oid, sid) = (id_of(&o), session_of(&o));
    assert_eq!(o["status"], "confirmed");
    assert_eq!(o["paymentMethod"], "stripe");
    assert_eq!(o["checkout"]["amount"], o["total"], "{o}");
    assert_eq!(o["checkout"]["currency"], "usd");
    assert!(
        o["checkout"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://checkout.stripe.test/")
    );
    // Stripe saw one create, with a Bearer key and an Idempotency-Key.
    assert_eq!(fake.creates().len(), 1);
    assert!(fake.creates()[0].as_deref().unwrap().contains(&oid));
    let at_stripe = fake.state.sessions.lock().unwrap()[&sid].clone();
    assert_eq!(at_stripe["client_reference_id"], oid.as_str());
    assert_eq!(at_stripe["metadata"]["order_id"], oid.as_str());
    assert_eq!(at_stripe["metadata"]["tenant_id"], "demo-restaurant");
    // The display shows the link and the QR code.
    let conv = o["conversationId"].as_str().unwrap();
    let state = get(s.url(&format!("/conversation/{conv}/state")), Some(KEY))
        .await
        .text()
        .await
        .unwrap();
    assert!(state.contains("checkout.stripe.test"), "{state}");
    assert!(state.contains(&format!("/checkout/{sid}/qr")), "{state}");
    let qr = get(s.url(&format!("/checkout/{sid}/qr")), None).await;
    assert_eq!(qr.status(), 200);
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(qr.text().await.unwrap().contains("<svg"));
    assert_eq!(
        get(s.url("/checkout/cs_test_nope/qr"), None).await.status(),
        404
    );
    // Not paid, not cooking yet.
    assert!(!ticket(&s, &oid).await);

    let session = fake.complete(&sid, None, None);
    let body = fake.event("checkout.session.completed", &session);
    let res = deliver(&client(), &s.base, &body, Some(&signature(&body, 0))).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["outcome"], "paid", "{v}");
    let listed: Value = get(s.url("/api/tenants/demo-restaurant/orders"), Some(KEY))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["orders"][0]["id"], oid.as_str());
    assert_eq!(listed["orders"][0]["status"], "paid");
    assert!(ticket(&s, &oid).await);
    assert_eq!(tickets_fired(&s).await, 1.0);

    // The same event again (a retry), and replayed with a fresh signature: 200, no change.
    for offset in [0, 0, -10, 5] {
        let res = deliver(&client(), &s.base, &body, Some(&signature(&body, offset))).await;
        assert_eq!(res.status(), 200);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["outcome"], "duplicate", "{v}");
    }
    // The success redirect after the webhook: the page says paid, nothing changes.
    let page = get(s.url(&format!("/checkout/success?session_id={sid}")), None).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Paid"));
    let o2 = stored(&s, &oid).await;
    assert_eq!(payments(&o2), 1);
    assert_eq!(o2.captured, o2.total);
    assert_eq!(tickets_fired(&s).await, 1.0);
    let events = s
        .running
        .app
        .store
        .payment_events(&tenant(), &o2.id)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| e.outcome.as_str())
            .collect::<Vec<_>>(),
        vec!["paid", "already_paid"]
    );
    // Other event types are acknowledged and ignored.
    let other = fake.event(
        "payment_intent.succeeded",
        &json!({"id": "pi_x", "object": "payment_intent"}),
    );
    let res = deliver(&client(), &s.base, &other, Some(&signature(&other, 0))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["ignored"],
        "payment_intent.succeeded"
    );
    let status: Value = get(s.url("/api/status"), None).await.json().await.unwrap();
    assert_eq!(
        status["payments"],
        json!({"stripe": true, "stripeWebhooks": true})
    );
    assert!(!status.to_string().contains("sk_test"));
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn unsigned_malformed_and_expired_webhooks_are_refused_and_write_nothing() {
    let fake = FakeStripe::start().await;
    let s = server(&fake).await;
    let o = order(&s).await;
    let (oid, sid) = (id_of(&o), session_of(&o));
    let session = fake.complete(&sid, None, None);
    let body = fake.event("checkout.session.completed", &session);
    let c = client();
    let wrong = stonepot_domain::commerce::stripe_signature::header(
        b"whsec_someone_else",
        jiff::Timestamp::now().as_second(),
        body.as_bytes(),
    );
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "missing_signature"),
        (Some("nonsense".into()), "malformed_signature"),
        (Some("t=1,v1=abc".into()), "malformed_signature"),
        (Some(wrong), "signature_mismatch"),
        (Some(signature(&body, -301)), "signature_expired"),
        (Some(signature(&body, 301)), "signature_expired"),
    ];
    for (sig, code) in cases {
        let res = deliver(&c, &s.base, &body, sig.as_deref()).await;
        let (got, message) = error_code(res, 400).await;
        assert_eq!(got, code, "{message}");
    }
    // A body changed after signing.
    let sig = signature(&body, 0);
    let tampered = body.replace("\"paid\"", "\"paix\"");
    let (got, _) = error_code(deliver(&c, &s.base, &tampered, Some(&sig)).await, 400).await;
    assert_eq!(got, "signature_mismatch");
    // Signed but malformed events name the problem.
    let mut overflow: Value = serde_json::from_str(&body).unwrap();
    overflow["id"] = json!("evt_overflow");
    let overflow = overflow.to_string().replace(
        &format!("\"amount_total\":{}", o["total"]),
        "\"amount_total\":99999999999999999999999",
    );
    assert!(overflow.contains("99999999999999999999999"));
    for (bad, named) in [
        ("not json".to_string(), "not JSON"),
        (json!({"object": "event", "type": "checkout.session.completed"}).to_string(), "id"),
        (json!({"id": "evt_x", "object": "event", "type": "checkout.session.completed", "data": {}}).to_string(), "data.object"),
        (overflow, "amount_total"),
    ] {
        let res = deliver(&c, &s.base, &bad, Some(&signature(&bad, 0))).await;
        let (code, message) = error_code(res, 400).await;
        assert_eq!(code, "malformed_event");
        assert!(message.contains(named), "{message}");
    }
    // Nothing was written: the order is unpaid and no event is recorded.
    let o2 = stored(&s, &oid).await;
    assert!(!o2.is_paid());
    assert!(
        s.running
            .app
            .store
            .payment_events(&tenant(), &o2.id)
            .await
            .unwrap()
            .is_empty()
    );
    // An Idempotency-Key does not make the webhook replay an old answer.
    let sig = signature(&body, 0);
    let res = client()
        .post(s.url("/webhooks/stripe"))
        .header("stripe-signature", &sig)
        .header("idempotency-key", "k1")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["outcome"], "paid");
    assert!(stored(&s, &oid).await.is_paid());
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_wrong_amount_or_currency_is_flagged_and_never_paid() {
    let fake = FakeStripe::start().await;
    let s = server(&fake).await;
    for (amount_delta, currency, kind) in [
        (1, None, "amount_mismatch"),
        (0, Some("eur"), "currency_mismatch"),
    ] {
        let o = order(&s).await;
        let (oid, sid) = (id_of(&o), session_of(&o));
        let total = o["total"].as_i64().unwrap();
        let session = fake.complete(&sid, Some(total + amount_delta), currency);
        let body = fake.event("checkout.session.completed", &session);
        for _ in 0..3 {
            let res = deliver(&client(), &s.base, &body, Some(&signature(&body, 0))).await;
            assert_eq!(res.status(), 200);
        }
        let page = get(s.url(&format!("/checkout/success?session_id={sid}")), None).await;
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("staff"));
        let o2 = stored(&s, &oid).await;
        assert!(!o2.is_paid(), "{kind}: not paid");
        assert_eq!(o2.flags.len(), 1, "{kind}: flagged once");
        let flag = serde_json::to_value(&o2.flags[0]).unwrap();
        assert_eq!(flag["kind"], kind);
        assert!(!ticket(&s, &oid).await);
        let listed: Value = get(s.url("/api/tenants/demo-restaurant/orders"), Some(KEY))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed["orders"][0]["flags"][0]["kind"], kind);
    }
    assert_eq!(tickets_fired(&s).await, 0.0);
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn the_success_redirect_racing_the_webhook_pays_once() {
    let fake = FakeStripe::start().await;
    let s = server(&fake).await;
    let o = order(&s).await;
    let (oid, sid) = (id_of(&o), session_of(&o));
    let session = fake.complete(&sid, None, None);
    let completed = fake.event("checkout.session.completed", &session);
    let async_ok = fake.event("checkout.session.async_payment_succeeded", &session);
    let mut tasks = Vec::new();
    for n in 0..24 {
        let base = s.base.clone();
        let (completed, async_ok, sid) = (completed.clone(), async_ok.clone(), sid.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            match n % 3 {
                0 => c
                    .get(format!("{base}/checkout/success?session_id={sid}"))
                    .send()
                    .await
                    .unwrap()
                    .status(),
                1 => deliver(&c, &base, &completed, Some(&signature(&completed, 0)))
                    .await
                    .status(),
                _ => deliver(&c, &base, &async_ok, Some(&signature(&async_ok, 0)))
                    .await
                    .status(),
            }
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let o2 = stored(&s, &oid).await;
    assert_eq!(payments(&o2), 1, "exactly one payment");
    assert_eq!(o2.status.as_str(), "paid");
    assert_eq!(tickets_fired(&s).await, 1.0);
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn refunds_partial_full_and_never_more_than_captured() {
    let fake = FakeStripe::start().await;
    let s = server(&fake).await;
    let o = order(&s).await;
    let (oid, sid) = (id_of(&o), session_of(&o));
    let total = o["total"].as_i64().unwrap();
    let url = s.url(&format!(
        "/api/tenants/demo-restaurant/orders/{oid}/refunds"
    ));
    // Not paid yet.
    let (code, _) = error_code(
        post_json(&url, Some(KEY), &json!({"amount": 100})).await,
        409,
    )
    .await;
    assert_eq!(code, "not_paid");
    let session = fake.complete(&sid, None, None);
    let body = fake.event("checkout.session.completed", &session);
    deliver(&client(), &s.base, &body, Some(&signature(&body, 0))).await;

    let res = post_json(&url, Some(KEY), &json!({"amount": 100, "reason": "cold"})).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["refund"]["status"], "succeeded");
    assert_eq!(v["refund"]["provider"], "stripe");
    assert!(
        v["refund"]["providerRef"]
            .as_str()
            .unwrap()
            .starts_with("re_")
    );
    assert_eq!(
        (
            v["order"]["refunded"].as_i64(),
            v["order"]["status"].as_str()
        ),
        (Some(100), Some("paid"))
    );
    {
        let refunds = fake.state.refunds.lock().unwrap();
        assert_eq!(refunds.len(), 1);
        assert_eq!(refunds[0]["payment_intent"], format!("pi_for_{sid}"));
        assert_eq!(refunds[0]["amount"], 100);
    }
    // Over what is left: 422 naming the limit, nothing asked of Stripe.
    let res = post_json(&url, Some(KEY), &json!({"amount": total})).await;
    let (code, message) = error_code(res, 422).await;
    assert_eq!(code, "refund_too_large");
    assert!(message.contains(&(total - 100).to_string()), "{message}");
    assert_eq!(fake.state.refunds.lock().unwrap().len(), 1);
    for (bad, status) in [
        (json!({"amount": 0}), 422),
        (json!({"amount": -5}), 422),
        (json!({"amount": 1e30}), 422),
        (json!({"amount": "100"}), 422),
    ] {
        let res = post_json(&url, Some(KEY), &bad).await;
        assert_eq!(res.status(), status, "{bad}");
    }
    // The rest: the order is refunded.
    let res = post_json(&url, Some(KEY), &json!({"amount": total - 100})).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["order"]["status"], "refunded");
    let (code, _) = error_code(post_json(&url, Some(KEY), &json!({"amount": 1})).await, 409).await;
    assert_eq!(code, "closed");
    let listed: Value = get(&url, Some(KEY)).await.json().await.unwrap();
    assert_eq!(listed["refunds"].as_array().unwrap().len(), 2);
    assert_eq!(get(&url, None).await.status(), 401);

    // A pay-at-counter order refunds locally.
    let c = stripe_order(&client(), &s.base, KEY, "one tiramisu", "counter")
        .await
        .unwrap();
    let cid = id_of(&c);
    assert!(c.get("checkout").is_none());
    let res = post_json(
        s.url(&format!("/api/tenants/demo-restaurant/orders/{cid}/status")),
        Some(KEY),
        &json!({"to": "paid"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = post_json(
        s.url(&format!(
            "/api/tenants/demo-restaurant/orders/{cid}/refunds"
        )),
        Some(KEY),
        &json!({"amount": 50}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["refund"]["provider"], "counter");
    assert_eq!(
        fake.state.refunds.lock().unwrap().len(),
        2,
        "only the Stripe ones"
    );
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn stripe_failing_leaves_the_order_unpaid_and_a_retry_reuses_one_session() {
    let fake = FakeStripe::start().await;
    let s = server(&fake).await;
    fake.state
        .fail_creates
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let res = stripe_order(&client(), &s.base, KEY, "one margherita pizza", "stripe")
        .await
        .unwrap_err();
    let (code, _) = error_code(res, 503).await;
    assert_eq!(code, "payment_provider_unavailable");
    let listed: Value = get(s.url("/api/tenants/demo-restaurant/orders"), Some(KEY))
        .await
        .json()
        .await
        .unwrap();
    let o = listed["orders"][0].clone();
    assert_eq!(
        (o["status"].as_str(), o["paymentMethod"].as_str()),
        (Some("confirmed"), Some("stripe"))
    );
    // Confirming the same quote again retries with the same idempotency key.
    let conv = o["conversationId"].as_str().unwrap();
    let hash = o["quoteHash"].as_str().unwrap();
    let confirm_url = s.url(&format!("/api/conversations/{conv}/confirm"));
    let confirm_body = json!({"quoteHash": hash, "paymentMethod": "stripe"});
    let confirm = |_: ()| post_json(&confirm_url, Some(KEY), &confirm_body);
    let a: Value = confirm(()).await.json().await.unwrap();
    let b: Value = confirm(()).await.json().await.unwrap();
    assert_eq!(a["id"], o["id"]);
    assert_eq!(
        a["checkout"]["sessionId"], b["checkout"]["sessionId"],
        "the open session is reused"
    );
    let creates = fake.creates();
    assert_eq!(
        creates.len(),
        2,
        "one failed, one made; the reuse asked nothing"
    );
    assert_eq!(
        creates[0], creates[1],
        "the retry used the same Idempotency-Key"
    );
    // Stripe expires it: the webhook records that, and the next confirm opens a new one.
    let sid = a["checkout"]["sessionId"].as_str().unwrap();
    let expired = fake.expire(sid);
    let body = fake.event("checkout.session.expired", &expired);
    let v: Value = deliver(&client(), &s.base, &body, Some(&signature(&body, 0)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["outcome"], "expired", "{v}");
    let c: Value = confirm(()).await.json().await.unwrap();
    assert_ne!(c["checkout"]["sessionId"], a["checkout"]["sessionId"]);
    let creates = fake.creates();
    assert_ne!(creates[2], creates[1], "a new attempt, a new key");
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn without_stripe_configured_pay_at_counter_is_all_there_is() {
    let s = start(&[("STONEPOT_DEMO_KEY", KEY)]).await;
    let res = stripe_order(&client(), &s.base, KEY, "one margherita pizza", "stripe")
        .await
        .unwrap_err();
    assert_eq!(error_code(res, 422).await.0, "stripe_not_configured");
    let res = stripe_order(&client(), &s.base, KEY, "one margherita pizza", "bitcoin")
        .await
        .unwrap_err();
    let (_, message) = error_code(res, 422).await;
    assert!(message.starts_with("paymentMethod"), "{message}");
    let res = deliver(&client(), &s.base, "{}", Some("t=1,v1=00")).await;
    assert_eq!(error_code(res, 503).await.0, "webhooks_not_configured");
    let status: Value = get(s.url("/api/status"), None).await.json().await.unwrap();
    assert_eq!(status["payments"]["stripe"], false);
    s.running.stop().await.unwrap();
}

/// The official `stripe` package: (a) its header is accepted by our server, and (b) it
/// verifies a header our `sign` made (`stripe.Webhook.construct_event`).
#[tokio::test]
async fn the_official_stripe_python_package_agrees_on_signatures() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import stripe"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("CI").is_err(),
            "the stripe Python package is missing on CI (scripts/install-test-deps.sh installs it)"
        );
        eprintln!("skipped: the stripe Python package is not installed (pip install stripe)");
        return;
    }
    let fake = FakeStripe::start().await;
    let s = server(&fake).await;
    let o = order(&s).await;
    let (oid, sid) = (id_of(&o), session_of(&o));
    let session = fake.complete(&sid, None, None);
    let body = fake.event("checkout.session.completed", &session);
    let ours = signature(&body, 0);
    let (b, o2, base) = (body.clone(), ours.clone(), s.base.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/python/stripe_signature.py"
            ))
            .env("STONEPOT_URL", base)
            .env("WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("EVENT_BODY", b)
            .env("OUR_SIGNATURE", o2)
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok  stripe python signatures"), "{text}");
    // Python's header paid the order through our webhook.
    assert!(stored(&s, &oid).await.is_paid(), "{text}");
    s.running.stop().await.unwrap();
}
