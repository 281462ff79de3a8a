//! Checkout sessions, payment events (one count per event id, one payment per order,
//! flags for money that does not match) and refunds (never more than captured), run
//! once on SQLite and once on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::Fixture;
use std::collections::BTreeMap;
use std::sync::Arc;
use stonepot_domain::commerce::{
    Actor, AuditAction, DEFAULT_QUOTE_TTL, FlagProblem, LineOrigin, Order, OrderId, OrderOrigin,
    OrderStatus, OrderType, PaymentEvidence, PaymentMethod, PricingPolicy, Quote, Tip,
    TransitionError, UnixMs,
};
use stonepot_domain::{Cart, Currency, SessionId, demo};
use stonepot_store::{
    Backend, CheckoutSessionRecord, NewRefund, PaymentAction, PaymentEventInput, PaymentOutcome,
    PaymentRecorded, SessionUpdate, StoreError,
};

impl Fixture {
    /// Places an order of tenant A (a distinct quote per `n`).
    async fn order(&self, n: i64, method: PaymentMethod) -> Order {
        let q = quote(n);
        let o = order_from(&q, &format!("ord-{n}"), method);
        self.store.create_order(&self.a, &o).await.unwrap();
        o
    }
}

both_backends!(
    checkout_sessions_round_trip,
    an_event_counts_once_and_an_order_is_paid_once,
    racing_events_and_redirects_pay_once,
    a_wrong_amount_or_currency_is_flagged_never_paid,
    a_flag_survives_a_transition_built_before_it,
    events_for_unknown_or_foreign_orders_write_nothing,
    refunds_never_exceed_what_was_captured,
    racing_refunds_never_exceed_what_was_captured,
);

const NOW: UnixMs = UnixMs(1_790_000_000_000);

/// One Margherita with a tip of `n` cents, so every `n` is another quote.
fn quote(n: i64) -> Quote {
    let menu = demo::restaurant_menu();
    let mut cart = Cart::new();
    cart.add(&menu, "margherita", 1, &[]).unwrap();
    Quote::build(
        &cart,
        &menu,
        &PricingPolicy::default(),
        Currency::USD,
        Tip::Amount { minor: n },
        NOW,
        DEFAULT_QUOTE_TTL,
        "menu-1",
    )
    .unwrap()
}

fn order_from(q: &Quote, id: &str, method: PaymentMethod) -> Order {
    let origin = OrderOrigin {
        conversation_id: SessionId::new("conv-1").unwrap(),
        turn: None,
        tool_call_id: None,
        confirmed_by: Actor::Guest {
            session_id: "conv-1".into(),
        },
        lines: q
            .lines
            .iter()
            .map(|l| (l.line_id.clone(), LineOrigin::default()))
            .collect::<BTreeMap<_, _>>(),
    };
    Order::from_quote(
        OrderId::new(id).unwrap(),
        q,
        OrderType::Pickup,
        method,
        origin,
        UnixMs(q.created_at.0 + 1_000),
    )
    .unwrap()
}

fn stripe(reference: &str) -> Actor {
    Actor::Payment {
        provider: "stripe".into(),
        reference: reference.into(),
    }
}

fn staff() -> Actor {
    Actor::Staff {
        user_id: "maria".into(),
    }
}

fn evidence(session: &str, amount: i64, currency: &str) -> PaymentEvidence {
    PaymentEvidence {
        provider: "stripe".into(),
        reference: session.into(),
        amount,
        currency: currency.into(),
    }
}

fn completed<'a>(event_id: &'a str, session: &'a str, amount: i64) -> PaymentEventInput<'a> {
    PaymentEventInput {
        provider: "stripe",
        event_id,
        kind: "checkout.session.completed",
        amount: Some(amount),
        currency: Some("usd"),
        session: Some(SessionUpdate {
            session_id: session,
            status: "complete",
            payment_intent: Some("pi_1"),
        }),
    }
}

fn session_record(order: &Order, id: &str, attempt: i64) -> CheckoutSessionRecord {
    CheckoutSessionRecord {
        provider: "stripe".into(),
        session_id: id.into(),
        tenant_id: demo::restaurant_tenant().id.to_string(),
        order_id: order.id.to_string(),
        attempt,
        amount: order.total,
        currency: "usd".into(),
        url: format!("https://checkout.example/{id}"),
        status: "open".into(),
        payment_intent: None,
        expires_at: NOW.0 + 1_800_000,
        created_at: NOW.0,
    }
}

fn payments_in(o: &Order) -> usize {
    o.audit
        .iter()
        .filter(|e| matches!(e.action, AuditAction::Payment { .. }))
        .count()
}

async fn checkout_sessions_round_trip(b: Backend) {
    let f = Fixture::new(b, "payments").await;
    let s = &f.store;
    let o = f.order(1, PaymentMethod::Stripe).await;
    let first = session_record(&o, "cs_1", 0);
    assert!(s.save_checkout_session(&first).await.unwrap());
    assert!(
        !s.save_checkout_session(&first).await.unwrap(),
        "the same session twice is kept once"
    );
    let clash = session_record(&o, "cs_other", 0);
    assert!(matches!(
        s.save_checkout_session(&clash).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.checkout_session("stripe", "cs_1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(s.checkout_session("stripe", "cs_nope").await.unwrap(), None);
    assert!(
        s.set_checkout_status("stripe", "cs_1", "expired", None)
            .await
            .unwrap()
    );
    let second = session_record(&o, "cs_2", 1);
    assert!(s.save_checkout_session(&second).await.unwrap());
    let all = s.checkout_sessions_for_order(&f.a, &o.id).await.unwrap();
    assert_eq!(
        all.iter()
            .map(|x| (x.session_id.as_str(), x.status.as_str()))
            .collect::<Vec<_>>(),
        vec![("cs_1", "expired"), ("cs_2", "open")]
    );
    assert!(
        s.checkout_sessions_for_order(&f.b, &o.id)
            .await
            .unwrap()
            .is_empty(),
        "another tenant sees none"
    );
    f.done().await;
}

async fn an_event_counts_once_and_an_order_is_paid_once(b: Backend) {
    let f = Fixture::new(b, "payments").await;
    let s = &f.store;
    let o = f.order(1, PaymentMethod::Stripe).await;
    s.save_checkout_session(&session_record(&o, "cs_1", 0))
        .await
        .unwrap();
    let ev = evidence("cs_1", o.total, "usd");
    let actor = stripe("cs_1");
    let settle = PaymentAction::Settle {
        evidence: &ev,
        actor: &actor,
        at: NOW,
    };
    let r = s
        .record_payment(&f.a, &o.id, &completed("evt_1", "cs_1", o.total), &settle)
        .await
        .unwrap();
    let PaymentRecorded::Recorded { outcome, order } = r else {
        panic!("the first delivery is recorded");
    };
    assert_eq!(outcome, PaymentOutcome::Paid);
    assert_eq!((order.status, order.captured), (OrderStatus::Paid, o.total));
    // The same event again: nothing at all.
    assert_eq!(
        s.record_payment(&f.a, &o.id, &completed("evt_1", "cs_1", o.total), &settle)
            .await
            .unwrap(),
        PaymentRecorded::Duplicate
    );
    // Another event for the same payment: recorded, changes nothing.
    let r = s
        .record_payment(&f.a, &o.id, &completed("evt_2", "cs_1", o.total), &settle)
        .await
        .unwrap();
    assert!(matches!(
        r,
        PaymentRecorded::Recorded {
            outcome: PaymentOutcome::AlreadyPaid,
            ..
        }
    ));
    let stored = s.order(&f.a, &o.id).await.unwrap().unwrap();
    assert_eq!(payments_in(&stored), 1);
    let events = s.order_events(&f.a, &o.id).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e.action, AuditAction::Payment { .. }))
            .count(),
        1
    );
    let recorded = s.payment_events(&f.a, &o.id).await.unwrap();
    let outcomes: BTreeMap<_, _> = recorded
        .iter()
        .map(|e| (e.event_id.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        BTreeMap::from([("evt_1", "paid"), ("evt_2", "already_paid")])
    );
    let cs = s.checkout_session("stripe", "cs_1").await.unwrap().unwrap();
    assert_eq!(
        (cs.status.as_str(), cs.payment_intent.as_deref()),
        ("complete", Some("pi_1"))
    );
    // A note (an expired session) is recorded without touching the order.
    let note = PaymentEventInput {
        provider: "stripe",
        event_id: "evt_3",
        kind: "checkout.session.expired",
        amount: None,
        currency: None,
        session: None,
    };
    let r = s
        .record_payment(
            &f.a,
            &o.id,
            &note,
            &PaymentAction::Record { outcome: "expired" },
        )
        .await
        .unwrap();
    assert!(matches!(
        r,
        PaymentRecorded::Recorded {
            outcome: PaymentOutcome::Noted("expired"),
            ..
        }
    ));
    assert_eq!(s.order(&f.a, &o.id).await.unwrap().unwrap(), stored);
    f.done().await;
}

async fn racing_events_and_redirects_pay_once(b: Backend) {
    let f = Fixture::new(b, "payments").await;
    let s = Arc::new(f.store.clone());
    let o = f.order(1, PaymentMethod::Stripe).await;
    s.save_checkout_session(&session_record(&o, "cs_1", 0))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    // 8 distinct event ids (webhooks and redirects), each delivered 3 times, at once.
    for n in 0..24 {
        let s = s.clone();
        let (tenant, id, total) = (f.a.clone(), o.id.clone(), o.total);
        tasks.push(tokio::spawn(async move {
            let event_id = if n % 8 == 0 {
                "redirect:cs_1".to_string()
            } else {
                format!("evt_{}", n % 8)
            };
            let ev = evidence("cs_1", total, "usd");
            let actor = stripe("cs_1");
            s.record_payment(
                &tenant,
                &id,
                &completed(&event_id, "cs_1", total),
                &PaymentAction::Settle {
                    evidence: &ev,
                    actor: &actor,
                    at: NOW,
                },
            )
            .await
            .unwrap()
        }));
    }
    let mut paid = 0;
    let mut duplicates = 0;
    for t in tasks {
        match t.await.unwrap() {
            PaymentRecorded::Duplicate => duplicates += 1,
            PaymentRecorded::Recorded {
                outcome: PaymentOutcome::Paid,
                ..
            } => paid += 1,
            PaymentRecorded::Recorded {
                outcome: PaymentOutcome::AlreadyPaid,
                ..
            } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(paid, 1, "exactly one payment");
    assert_eq!(
        duplicates, 16,
        "two of every three deliveries are duplicates"
    );
    let stored = f.store.order(&f.a, &o.id).await.unwrap().unwrap();
    assert_eq!(payments_in(&stored), 1);
    assert_eq!(f.store.payment_events(&f.a, &o.id).await.unwrap().len(), 8);
    f.done().await;
}

async fn a_wrong_amount_or_currency_is_flagged_never_paid(b: Backend) {
    let f = Fixture::new(b, "payments").await;
    let s = &f.store;
    let o = f.order(1, PaymentMethod::Stripe).await;
    let actor = stripe("cs_1");
    let short = evidence("cs_1", o.total - 1, "usd");
    for event in ["evt_1", "evt_2", "redirect:cs_1"] {
        let r = s
            .record_payment(
                &f.a,
                &o.id,
                &completed(event, "cs_1", o.total - 1),
                &PaymentAction::Settle {
                    evidence: &short,
                    actor: &actor,
                    at: NOW,
                },
            )
            .await
            .unwrap();
        let PaymentRecorded::Recorded {
            outcome: PaymentOutcome::Flagged(flag),
            order,
        } = r
        else {
            panic!("a short payment is flagged: {r:?}");
        };
        assert_eq!(
            flag.problem,
            FlagProblem::AmountMismatch {
                expected: o.total,
                received: o.total - 1
            }
        );
        assert!(!order.is_paid());
    }
    let euros = evidence("cs_1", o.total, "eur");
    s.record_payment(
        &f.a,
        &o.id,
        &completed("evt_eur", "cs_1", o.total),
        &PaymentAction::Settle {
            evidence: &euros,
            actor: &actor,
            at: NOW,
        },
    )
    .await
    .unwrap();
    let stored = s.order(&f.a, &o.id).await.unwrap().unwrap();
    assert_eq!(stored.status, OrderStatus::Confirmed);
    assert_eq!(payments_in(&stored), 0);
    assert_eq!(
        stored
            .flags
            .iter()
            .map(|f| match &f.problem {
                FlagProblem::AmountMismatch { .. } => "amount",
                FlagProblem::CurrencyMismatch { .. } => "currency",
                FlagProblem::PaidWhileClosed { .. } => "closed",
            })
            .collect::<Vec<_>>(),
        vec!["amount", "currency"],
        "each problem once however many events report it"
    );
    f.done().await;
}

async fn a_flag_survives_a_transition_built_before_it(b: Backend) {
    let f = Fixture::new(b, "payments").await;
    let s = &f.store;
    let o = f.order(1, PaymentMethod::Stripe).await;
    // A guest's cancel, checked against the order before the flag.
    let cancel = o
        .transition(
            OrderStatus::Cancelled,
            &Actor::Guest {
                session_id: "conv-1".into(),
            },
            NOW,
        )
        .unwrap();
    let short = evidence("cs_1", o.total + 5, "usd");
    let actor = stripe("cs_1");
    s.record_payment(
        &f.a,
        &o.id,
        &completed("evt_1", "cs_1", o.total + 5),
        &PaymentAction::Settle {
            evidence: &short,
            actor: &actor,
            at: NOW,
        },
    )
    .await
    .unwrap();
    let after = s.apply_order_event(&f.a, &o.id, &cancel).await.unwrap();
    assert_eq!(after.status, OrderStatus::Cancelled);
    assert_eq!(after.flags.len(), 1, "the cancel kept the flag");
    assert_eq!(s.order(&f.a, &o.id).await.unwrap().unwrap(), after);
    // Money for the cancelled order is flagged for a refund.
    let full = evidence("cs_1", o.total, "usd");
    let r = s
        .record_payment(
            &f.a,
            &o.id,
            &completed("evt_2", "cs_1", o.total),
            &PaymentAction::Settle {
                evidence: &full,
                actor: &actor,
                at: NOW,
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        r,
        PaymentRecorded::Recorded {
            outcome: PaymentOutcome::Flagged(_),
            ..
        }
    ));
    f.done().await;
}

async fn events_for_unknown_or_foreign_orders_write_nothing(b: Backend) {
    let f = Fixture::new(b, "payments").await;
    let s = &f.store;
    let o = f.order(1, PaymentMethod::Stripe).await;
    let ev = evidence("cs_1", o.total, "usd");
    let actor = stripe("cs_1");
    let settle = PaymentAction::Settle {
        evidence: &ev,
        actor: &actor,
        at: NOW,
    };
    let nope = OrderId::new("ord-nope").unwrap();
    assert!(matches!(
        s.record_payment(&f.a, &nope, &completed("evt_1", "cs_1", o.total), &settle)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.record_payment(&f.b, &o.id, &completed("evt_1", "cs_1", o.total), &settle)
            .await,
        Err(StoreError::NotFound(_))
    ));
    // Nothing was kept of either: the same event id still pays the real order.
    let r = s
        .record_payment(&f.a, &o.id, &completed("evt_1", "cs_1", o.total), &settle)
        .await
        .unwrap();
    assert!(matches!(
        r,
        PaymentRecorded::Recorded {
            outcome: PaymentOutcome::Paid,
            ..
        }
    ));
    f.done().await;
}

/// A pay-at-counter order of tenant A, paid by staff.
async fn paid_counter_order(f: &Fixture, n: i64) -> Order {
    let o = f.order(n, PaymentMethod::Counter).await;
    let entry = o.pay(o.total, &staff(), NOW).unwrap();
    f.store
        .apply_order_event(&f.a, &o.id, &entry)
        .await
        .unwrap()
}

async fn refunds_never_exceed_what_was_captured(b: Backend) {
    let f = Fixture::new(b, "payments").await;
    let s = &f.store;
    let o = paid_counter_order(&f, 1).await;
    let total = o.total;
    let actor = staff();
    let refund = |id: &'static str, amount: i64| NewRefund {
        id,
        amount,
        provider: "counter",
        reason: Some("cold pizza"),
        actor: &actor,
    };
    // Unpaid orders cannot be refunded.
    let unpaid = f.order(2, PaymentMethod::Counter).await;
    assert_eq!(
        s.reserve_refund(&f.a, &unpaid.id, &refund("r0", 100))
            .await
            .unwrap()
            .unwrap_err(),
        TransitionError::NotPaid
    );
    s.reserve_refund(&f.a, &o.id, &refund("r1", 300))
        .await
        .unwrap()
        .unwrap();
    // r1 is still pending: it holds 300.
    assert_eq!(
        s.reserve_refund(&f.a, &o.id, &refund("r2", total - 299))
            .await
            .unwrap()
            .unwrap_err(),
        TransitionError::RefundTooLarge {
            refundable: total - 300,
            requested: total - 299
        }
    );
    assert!(matches!(
        s.reserve_refund(&f.a, &o.id, &refund("r1", 1)).await,
        Err(StoreError::Conflict(_))
    ));
    let after = s
        .complete_refund(&f.a, &o.id, "r1", None, &actor)
        .await
        .unwrap();
    assert_eq!((after.refunded, after.status), (300, OrderStatus::Paid));
    // Completing it again changes nothing.
    assert_eq!(
        s.complete_refund(&f.a, &o.id, "r1", None, &actor)
            .await
            .unwrap(),
        after
    );
    // A refused refund releases what it held.
    s.reserve_refund(&f.a, &o.id, &refund("r3", total - 300))
        .await
        .unwrap()
        .unwrap();
    assert!(s.fail_refund(&f.a, "r3").await.unwrap());
    assert!(!s.fail_refund(&f.a, "r3").await.unwrap());
    s.reserve_refund(&f.a, &o.id, &refund("r4", total - 300))
        .await
        .unwrap()
        .unwrap();
    let done = s
        .complete_refund(&f.a, &o.id, "r4", Some("re_4"), &actor)
        .await
        .unwrap();
    assert_eq!((done.refunded, done.status), (total, OrderStatus::Refunded));
    assert!(
        s.reserve_refund(&f.a, &o.id, &refund("r5", 1))
            .await
            .unwrap()
            .is_err()
    );
    let list = s.refunds(&f.a, &o.id).await.unwrap();
    assert_eq!(
        list.iter()
            .map(|r| (r.id.as_str(), r.status.as_str()))
            .collect::<Vec<_>>(),
        vec![("r1", "succeeded"), ("r3", "failed"), ("r4", "succeeded")]
    );
    assert_eq!(list[2].provider_ref.as_deref(), Some("re_4"));
    f.done().await;
}

async fn racing_refunds_never_exceed_what_was_captured(b: Backend) {
    let f = Fixture::new(b, "payments").await;
    let o = paid_counter_order(&f, 1).await;
    let quarter = o.total / 4;
    let mut tasks = Vec::new();
    for n in 0..12 {
        let s = f.store.clone();
        let (tenant, id) = (f.a.clone(), o.id.clone());
        tasks.push(tokio::spawn(async move {
            let actor = staff();
            let rid = format!("r{n}");
            let reserved = s
                .reserve_refund(
                    &tenant,
                    &id,
                    &NewRefund {
                        id: &rid,
                        amount: quarter,
                        provider: "counter",
                        reason: None,
                        actor: &actor,
                    },
                )
                .await
                .unwrap();
            if reserved.is_ok() {
                s.complete_refund(&tenant, &id, &rid, None, &actor)
                    .await
                    .unwrap();
            }
            reserved.is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += i64::from(t.await.unwrap());
    }
    assert_eq!(ok, 4, "four quarters fit, no more");
    let stored = f.store.order(&f.a, &o.id).await.unwrap().unwrap();
    assert_eq!(stored.refunded, 4 * quarter);
    assert!(stored.refunded <= stored.captured);
    f.done().await;
}
