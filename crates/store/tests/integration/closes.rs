//! The daily close's storage: settings with defaults, the facts of a business day read
//! by their window, and append-only revisions (re-run → the same bytes; change → an
//! amendment beside the original). Run once on SQLite and once on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::Fixture;
use std::collections::BTreeMap;
use stonepot_domain::commerce::close::render::render;
use stonepot_domain::commerce::close::{CloseInput, CloseReport, CloseSettings};
use stonepot_domain::commerce::{
    Actor, AuditAction, DEFAULT_QUOTE_TTL, LineOrigin, Order, OrderId, OrderOrigin, OrderType,
    PaymentMethod, PricingPolicy, Quote, Tip, UnixMs,
};
use stonepot_domain::{Cart, Currency, SessionId, TenantId, demo};
use stonepot_store::{Backend, CloseSaved, NewClose};

both_backends!(
    settings_default_set_and_listed,
    facts_are_the_days_orders_and_the_days_money,
    revisions_are_append_only,
);

const HOUR: i64 = 3_600_000;

fn window() -> stonepot_domain::commerce::close::Window {
    CloseSettings::default()
        .window(jiff::civil::date(2026, 11, 23))
        .unwrap()
}

/// An order of 2 × Margherita at 8.88 % tax added (25.98 + 2.31 = 28.29), placed at `at`.
fn order_at(id: &str, conv: &str, at: i64) -> Order {
    let menu = demo::restaurant_menu();
    let mut cart = Cart::new();
    cart.add(&menu, "margherita", 2, &[]).unwrap();
    let policy = PricingPolicy {
        tax_rate_bps: 888,
        ..PricingPolicy::default()
    };
    let q = Quote::build(
        &cart,
        &menu,
        &policy,
        Currency::USD,
        Tip::None,
        UnixMs(at - 1_000),
        DEFAULT_QUOTE_TTL,
        "menu-1",
    )
    .unwrap();
    let origin = OrderOrigin {
        conversation_id: SessionId::new(conv).unwrap(),
        turn: None,
        tool_call_id: None,
        confirmed_by: Actor::Guest {
            session_id: conv.into(),
        },
        lines: q
            .lines
            .iter()
            .map(|l| (l.line_id.clone(), LineOrigin::default()))
            .collect::<BTreeMap<_, _>>(),
    };
    Order::from_quote(
        OrderId::new(id).unwrap(),
        &q,
        OrderType::DineIn,
        PaymentMethod::Counter,
        origin,
        UnixMs(at),
    )
    .unwrap()
}

fn staff() -> Actor {
    Actor::Staff {
        user_id: "till".into(),
    }
}

async fn settings_default_set_and_listed(b: Backend) {
    let f = Fixture::new(b, "closes").await;
    let s = &f.store;
    assert_eq!(s.close_settings(&f.a).await.unwrap(), None);
    let ny = CloseSettings::new("04:00", "America/New_York", "0 5 4 * * *").unwrap();
    s.set_close_settings(&f.a, &ny).await.unwrap();
    assert_eq!(s.close_settings(&f.a).await.unwrap(), Some(ny.clone()));
    let listed = s.close_schedules().await.unwrap();
    assert_eq!(listed.len(), 2);
    let by_id: BTreeMap<String, CloseSettings> = listed
        .into_iter()
        .map(|(t, r)| (t.to_string(), r.unwrap()))
        .collect();
    assert_eq!(by_id[f.a.as_str()], ny);
    assert_eq!(by_id[f.b.as_str()], CloseSettings::default());
    assert!(s.tenant_created_at(&f.a).await.unwrap().is_some());
    assert_eq!(
        s.tenant_created_at(&TenantId::new("nobody").unwrap())
            .await
            .unwrap(),
        None
    );
    f.done().await;
}

async fn facts_are_the_days_orders_and_the_days_money(b: Backend) {
    let f = Fixture::new(b, "closes").await;
    let s = &f.store;
    let w = window();
    let (start, end) = (w.start_ms(), w.end_ms());
    let today = order_at("today", "conv-1", start + HOUR);
    let yesterday = order_at("yesterday", "conv-0", start - 2 * HOUR);
    let tomorrow = order_at("tomorrow", "conv-2", end + HOUR);
    let other = order_at("other-tenant", "conv-9", start + HOUR);
    for o in [&today, &yesterday, &tomorrow] {
        assert!(s.create_order(&f.a, o).await.unwrap().is_new());
    }
    s.create_order(&f.b, &other).await.unwrap();
    // Today's order is paid today; yesterday's was paid yesterday and part-refunded today.
    let e = today
        .pay(today.total, &staff(), UnixMs(start + 2 * HOUR))
        .unwrap();
    s.apply_order_event(&f.a, &today.id, &e).await.unwrap();
    let e = yesterday
        .pay(yesterday.total, &staff(), UnixMs(start - HOUR))
        .unwrap();
    let paid = s.apply_order_event(&f.a, &yesterday.id, &e).await.unwrap();
    let e = paid
        .refund(300, &staff(), UnixMs(start + 3 * HOUR))
        .unwrap();
    s.apply_order_event(&f.a, &yesterday.id, &e).await.unwrap();

    let (orders, events) = s.close_facts(&f.a, &w).await.unwrap();
    let ids: Vec<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, vec!["today"]);
    assert_eq!(orders[0].total, 2829);
    assert_eq!(orders[0].conversation_id, "conv-1");
    let mut seen: Vec<(String, u32)> = events.iter().map(|e| (e.order_id.clone(), e.seq)).collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("today".into(), 0),
            ("today".into(), 1),
            ("yesterday".into(), 2)
        ],
        "today's whole trail, and only the refund of yesterday's order"
    );
    assert!(
        events
            .iter()
            .any(|e| e.action == AuditAction::Refund { amount: 300 })
    );

    let report = CloseReport::compute(&CloseInput {
        tenant: f.a.to_string(),
        currency: Currency::USD,
        window: w.clone(),
        orders,
        events,
        provider_payments: None,
    })
    .unwrap();
    assert_eq!(report.sales.orders, 1);
    assert_eq!(report.sales.gross_sales, 2598);
    assert_eq!(report.sales.tax, 231);
    assert_eq!(report.sales.refunds, 300);
    assert_eq!(report.sales.net, 2829 - 300);
    assert_eq!(report.payment_methods["counter"].payments, 2829);
    assert_eq!(report.reconciliation.matched, 1);
    f.done().await;
}

async fn revisions_are_append_only(b: Backend) {
    let f = Fixture::new(b, "closes").await;
    let s = &f.store;
    let w = window();
    let new = |report: &'static str, sha: &'static str| NewClose {
        business_date: "2026-11-23",
        report,
        csv: "section,metric\r\n",
        sha256: sha,
        window_start: w.start_ms(),
        window_end: w.end_ms(),
    };
    assert_eq!(
        s.close_record(&f.a, "2026-11-23", None).await.unwrap(),
        None
    );
    let first = s
        .save_close(&f.a, &new("{\"v\":1}\n", "aaa"))
        .await
        .unwrap();
    let CloseSaved::Created(r0) = first else {
        panic!("the first close is created: {first:?}")
    };
    assert_eq!(r0.revision, 0);
    // The same bytes again: the stored revision, untouched.
    let again = s
        .save_close(&f.a, &new("{\"v\":1}\n", "aaa"))
        .await
        .unwrap();
    assert_eq!(again, CloseSaved::Unchanged(r0.clone()));
    // Different bytes: an amendment; revision 0 stays as it was.
    let CloseSaved::Created(r1) = s
        .save_close(&f.a, &new("{\"v\":2}\n", "bbb"))
        .await
        .unwrap()
    else {
        panic!("a change is an amendment")
    };
    assert_eq!(r1.revision, 1);
    assert_eq!(
        s.close_record(&f.a, "2026-11-23", Some(0)).await.unwrap(),
        Some(r0.clone())
    );
    assert_eq!(
        s.close_record(&f.a, "2026-11-23", None).await.unwrap(),
        Some(r1.clone())
    );
    assert_eq!(
        s.close_record(&f.a, "2026-11-23", Some(7)).await.unwrap(),
        None
    );
    // Going back to the first figures is a change too (against the latest).
    let CloseSaved::Created(r2) = s
        .save_close(&f.a, &new("{\"v\":1}\n", "aaa"))
        .await
        .unwrap()
    else {
        panic!("back to the first figures is a new revision")
    };
    assert_eq!(r2.revision, 2);
    // Racing runs with the same new bytes store one revision between them.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (s, t) = (s.clone(), f.a.clone());
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            s.save_close(
                &t,
                &NewClose {
                    business_date: "2026-11-23",
                    report: "{\"v\":3}\n",
                    csv: "x\r\n",
                    sha256: "ccc",
                    window_start: w.start_ms(),
                    window_end: w.end_ms(),
                },
            )
            .await
            .unwrap()
        }));
    }
    let mut created = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), CloseSaved::Created(_)) {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    let revs: Vec<(u32, String)> = s
        .close_revisions(&f.a, "2026-11-23")
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.revision, r.sha256))
        .collect();
    assert_eq!(
        revs,
        vec![
            (0, "aaa".into()),
            (1, "bbb".into()),
            (2, "aaa".into()),
            (3, "ccc".into())
        ]
    );
    // Tenants are isolated.
    assert!(
        s.close_revisions(&f.b, "2026-11-23")
            .await
            .unwrap()
            .is_empty()
    );
    // A real report round-trips byte for byte.
    let report = CloseReport::compute(&CloseInput {
        tenant: f.b.to_string(),
        currency: Currency::USD,
        window: w.clone(),
        orders: vec![],
        events: vec![],
        provider_payments: None,
    })
    .unwrap();
    let r = render(&report).unwrap();
    let json = String::from_utf8(r.json.clone()).unwrap();
    let csv = String::from_utf8(r.csv.clone()).unwrap();
    let saved = s
        .save_close(
            &f.b,
            &NewClose {
                business_date: "2026-11-23",
                report: &json,
                csv: &csv,
                sha256: &r.sha256,
                window_start: w.start_ms(),
                window_end: w.end_ms(),
            },
        )
        .await
        .unwrap();
    let got = s
        .close_record(&f.b, "2026-11-23", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.report.as_bytes(), &r.json[..]);
    assert_eq!(got.csv.as_bytes(), &r.csv[..]);
    assert_eq!(saved.record(), &got);
    f.done().await;
}
