//! The webhook storm: hundreds of Stripe orders, thousands of signed events, each
//! delivered 1–5 times, shuffled, with random delays and bounded concurrency, racing
//! the guests' success redirects; some sessions are completed at a wrong amount.
//! Afterwards: exactly one payment entry, one kitchen ticket and one receipt per
//! correctly paid order, none for the wrong-amount ones (flagged instead), and no order
//! paid at an amount other than its quote's total.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::fake_stripe;

use common::start;
use fake_stripe::{FakeStripe, deliver, signature, tipped_order};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::time::{Duration, Instant};
use stonepot_domain::TenantId;
use stonepot_domain::commerce::{AuditAction, OrderId};

const KEY: &str = "sp_storm_test";
const ORDERS: usize = 320;
const WRONG_AMOUNT: usize = 12;
/// Event types besides the two that pay, which the webhook must acknowledge and
/// ignore (they still count towards the storm).
const NOISE: [&str; 5] = [
    "payment_intent.created",
    "payment_intent.succeeded",
    "charge.succeeded",
    "charge.updated",
    "checkout.session.async_payment_failed",
];

enum Job {
    Webhook(String),
    Redirect(String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_storm_racing_redirects_pays_each_order_exactly_once() {
    let fake = FakeStripe::start().await;
    let env = fake.env();
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.push(("STONEPOT_DEMO_KEY", KEY));
    // The storm places every order with the one demo key, far past its default budget.
    pairs.push(("RATE_LIMIT_KEY_REQUESTS", "1000000"));
    pairs.push(("RATE_LIMIT_TENANT_REQUESTS", "1000000"));
    let s = start(&pairs).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(32)
        .build()
        .unwrap();

    // Place the orders (varied carts and tips, so varied totals, and every total a
    // payment can be checked against is its own).
    let started = Instant::now();
    let carts = [
        "one margherita pizza",
        "two margherita pizzas",
        "one tiramisu",
        "one margherita pizza and one tiramisu",
    ];
    let orders: Vec<Value> = futures::stream::iter(0..ORDERS)
        .map(|n| {
            let (http, base) = (http.clone(), s.base.clone());
            async move {
                let tip = Some(i64::try_from(n).unwrap());
                match tipped_order(&http, &base, KEY, carts[n % carts.len()], "stripe", tip).await {
                    Ok(o) => o,
                    Err(r) => panic!("order {n}: {} {}", r.status(), r.text().await.unwrap()),
                }
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let placing = started.elapsed();

    // The guests pay; a few sessions are captured at a wrong amount.
    let mut rng = StdRng::seed_from_u64(20_260_921);
    let mut jobs = Vec::new();
    let mut unique_events = 0;
    for (n, o) in orders.iter().enumerate() {
        let sid = o["checkout"]["sessionId"].as_str().unwrap().to_string();
        let total = o["total"].as_i64().unwrap();
        let wrong = n < WRONG_AMOUNT;
        let amount = wrong.then(|| if n % 2 == 0 { total + 1 } else { total - 1 });
        let session = fake.complete(&sid, amount, None);
        let mut events = vec![
            fake.event("checkout.session.completed", &session),
            fake.event("checkout.session.async_payment_succeeded", &session),
        ];
        for kind in NOISE {
            events.push(fake.event(
                kind,
                &serde_json::json!({"id": format!("obj_{sid}"), "object": "payment_intent"}),
            ));
        }
        unique_events += events.len();
        for e in events {
            for _ in 0..rng.random_range(1..=5) {
                jobs.push(Job::Webhook(e.clone()));
            }
        }
        for _ in 0..rng.random_range(1..=2) {
            jobs.push(Job::Redirect(sid.clone()));
        }
    }
    jobs.shuffle(&mut rng);
    let deliveries = jobs.len();
    let delays: Vec<u64> = (0..deliveries).map(|_| rng.random_range(0..4)).collect();

    let storm = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(jobs.into_iter().zip(delays))
        .map(|(job, delay)| {
            let (http, base) = (http.clone(), s.base.clone());
            async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                match job {
                    Job::Webhook(body) => deliver(&http, &base, &body, Some(&signature(&body, 0)))
                        .await
                        .status()
                        .as_u16(),
                    Job::Redirect(sid) => http
                        .get(format!("{base}/checkout/success?session_id={sid}"))
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16(),
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let took = storm.elapsed();
    let failed: Vec<&u16> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} deliveries failed: {failed:?}",
        failed.len()
    );

    // Exactly one payment and one ticket per correctly paid order; none for the others.
    let store = &s.running.app.store;
    let tenant = TenantId::new("demo-restaurant").unwrap();
    let mut paid = 0;
    for (n, o) in orders.iter().enumerate() {
        let id = OrderId::new(o["id"].as_str().unwrap().to_string()).unwrap();
        let order = store.order(&tenant, &id).await.unwrap().unwrap();
        let events = store.order_events(&tenant, &id).await.unwrap();
        let payments: Vec<i64> = events
            .iter()
            .filter_map(|e| match e.action {
                AuditAction::Payment { amount } => Some(amount),
                _ => None,
            })
            .collect();
        let ticket = store.ticket(&tenant, &id).await.unwrap();
        let receipt = store.receipt(&tenant, &id).await.unwrap();
        if n < WRONG_AMOUNT {
            assert!(payments.is_empty(), "order {id} was paid at a wrong amount");
            assert!(!order.is_paid());
            assert!(ticket.is_none());
            assert!(receipt.is_none(), "an unpaid order has no receipt");
            assert_eq!(order.flags.len(), 1, "order {id}: one flag");
        } else {
            assert_eq!(
                payments,
                vec![order.total],
                "order {id}: one payment of its total"
            );
            assert_eq!(order.total, o["quote"]["total"].as_i64().unwrap());
            assert_eq!(order.captured, order.total);
            assert!(ticket.is_some(), "order {id} has its ticket");
            let receipt = receipt.expect("a paid order has its receipt");
            let bytes = s
                .running
                .app
                .objects
                .get(&receipt.path)
                .await
                .unwrap()
                .unwrap();
            use sha2::Digest;
            assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), receipt.sha256);
            assert!(order.flags.is_empty());
            paid += 1;
        }
    }
    let m = &s.running.app.metrics;
    let fired = m.tickets_fired.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(fired, paid, "one ticket fired per paid order, no more");
    let receipts = m
        .receipts_written
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        receipts, paid,
        "one receipt written per paid order, no more"
    );
    assert_eq!(
        m.payments_captured
            .load(std::sync::atomic::Ordering::Relaxed),
        paid
    );
    eprintln!(
        "storm: {ORDERS} orders placed in {:.1} s; {unique_events} events + redirects = {deliveries} \
         deliveries in {:.1} s ({:.0}/s); {paid} paid once each, {WRONG_AMOUNT} flagged",
        placing.as_secs_f64(),
        took.as_secs_f64(),
        deliveries as f64 / took.as_secs_f64()
    );
    s.running.stop().await.unwrap();
}
