use super::*;
use crate::Category;
use crate::SessionId;
use crate::display::normalize;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn session() -> SessionId {
    SessionId::new("conv-1").unwrap()
}

fn agent() -> Actor {
    Actor::Agent {
        session_id: "conv-1".into(),
        tool_call_id: Some("call_9".into()),
    }
}

pub(super) fn guest() -> Actor {
    Actor::Guest {
        session_id: "conv-1".into(),
    }
}

pub(super) fn staff() -> Actor {
    Actor::Staff {
        user_id: "maria".into(),
    }
}

pub(super) fn stripe() -> Actor {
    Actor::Payment {
        provider: "stripe".into(),
        reference: "evt_1".into(),
    }
}

fn system() -> Actor {
    Actor::System {
        reason: "kitchen ticket".into(),
    }
}

fn origin(q: &Quote) -> OrderOrigin {
    OrderOrigin {
        conversation_id: session(),
        turn: Some(4),
        tool_call_id: Some("call_9".into()),
        confirmed_by: agent(),
        lines: q
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                (
                    l.line_id.clone(),
                    LineOrigin {
                        turn: Some(u32::try_from(i).unwrap() + 1),
                        tool_call_id: Some(format!("call_{i}")),
                    },
                )
            })
            .collect(),
    }
}

pub(super) fn order(method: PaymentMethod) -> Order {
    let q = quote_with(&exclusive(875), Tip::None);
    Order::from_quote(
        OrderId::new("ord-1").unwrap(),
        &q,
        OrderType::Pickup,
        method,
        origin(&q),
        UnixMs(NOW.0 + 1_000),
    )
    .unwrap()
}

pub(super) fn at(s: i64) -> UnixMs {
    UnixMs(NOW.0 + s * 1000)
}

#[test]
fn an_order_freezes_the_quote_and_links_every_line() {
    let q = quote_with(&exclusive(875), Tip::None);
    let o = order(PaymentMethod::Counter);
    assert_eq!(o.status, OrderStatus::Confirmed);
    assert_eq!(o.quote_id, q.id);
    assert_eq!(o.quote_hash, q.hash);
    assert_eq!((o.subtotal, o.tax, o.tip, o.total), (3493, 305, 0, 3798));
    assert_eq!(o.lines.len(), 2);
    assert_eq!(o.lines[0].priced, q.lines[0]);
    assert_eq!(
        o.lines[1].origin,
        LineOrigin {
            turn: Some(2),
            tool_call_id: Some("call_1".into())
        }
    );
    assert_eq!(o.confirmed_turn, Some(4));
    assert_eq!(o.confirmed_tool_call_id.as_deref(), Some("call_9"));
    assert_eq!(o.conversation_id, session());
    assert_eq!(
        o.audit,
        vec![AuditEntry {
            seq: 0,
            at: UnixMs(NOW.0 + 1_000),
            actor: agent(),
            from: None,
            to: OrderStatus::Confirmed,
            action: AuditAction::Created,
        }]
    );
    assert!(!o.is_paid());
}

#[test]
fn an_order_needs_a_sound_unexpired_quote_and_every_line_origin() {
    let q = quote_with(&exclusive(875), Tip::None);
    let place = |q: &Quote, origin: OrderOrigin, at: UnixMs| {
        Order::from_quote(
            OrderId::new("o").unwrap(),
            q,
            OrderType::DineIn,
            PaymentMethod::Counter,
            origin,
            at,
        )
    };
    assert_eq!(
        place(&q, origin(&q), q.expires_at).unwrap_err(),
        OrderError::QuoteExpired {
            expires_at: q.expires_at
        }
    );
    let mut forged = q.clone();
    forged.lines[0].unit_price = 1;
    assert_eq!(
        place(&forged, origin(&q), NOW).unwrap_err(),
        OrderError::QuoteTampered
    );
    let mut partial = origin(&q);
    partial.lines.remove("l2");
    assert_eq!(
        place(&q, partial, NOW).unwrap_err(),
        OrderError::MissingLineOrigin {
            line_id: "l2".into()
        }
    );
    let mut by_payment = origin(&q);
    by_payment.confirmed_by = stripe();
    assert_eq!(
        place(&q, by_payment, NOW).unwrap_err().code(),
        "confirmer_not_allowed"
    );
    let mut tapped = origin(&q);
    tapped.confirmed_by = guest();
    tapped.turn = None;
    tapped.tool_call_id = None;
    assert!(place(&q, tapped, NOW).is_ok());
}

#[test]
fn a_stripe_order_runs_the_whole_line_with_an_audit_trail() {
    let mut o = order(PaymentMethod::Stripe);
    let paid = o.pay(3798, &stripe(), at(10)).unwrap();
    assert_eq!(paid.action, AuditAction::Payment { amount: 3798 });
    o.apply(paid).unwrap();
    assert_eq!(
        (o.status, o.captured, o.paid_at),
        (OrderStatus::Paid, 3798, Some(at(10)))
    );
    o.advance(OrderStatus::InKitchen, &system(), at(11))
        .unwrap();
    o.advance(OrderStatus::Ready, &staff(), at(600)).unwrap();
    o.advance(OrderStatus::Completed, &staff(), at(700))
        .unwrap();
    assert_eq!(o.status, OrderStatus::Completed);
    let trail: Vec<(u32, Option<OrderStatus>, OrderStatus, ActorKind, UnixMs)> = o
        .audit
        .iter()
        .map(|e| (e.seq, e.from, e.to, e.actor.kind(), e.at))
        .collect();
    use OrderStatus::*;
    assert_eq!(
        trail,
        vec![
            (0, None, Confirmed, ActorKind::Agent, UnixMs(NOW.0 + 1_000)),
            (1, Some(Confirmed), Paid, ActorKind::Payment, at(10)),
            (2, Some(Paid), InKitchen, ActorKind::System, at(11)),
            (3, Some(InKitchen), Ready, ActorKind::Staff, at(600)),
            (4, Some(Ready), Completed, ActorKind::Staff, at(700)),
        ]
    );
}

#[test]
fn a_counter_order_starts_in_the_kitchen_and_is_paid_before_completion() {
    let mut o = order(PaymentMethod::Counter);
    o.advance(OrderStatus::InKitchen, &system(), at(1)).unwrap();
    o.advance(OrderStatus::Ready, &staff(), at(2)).unwrap();
    assert_eq!(
        o.transition(OrderStatus::Completed, &staff(), at(3)),
        Err(TransitionError::NotPaid)
    );
    let e = o.pay(3798, &staff(), at(3)).unwrap();
    assert_eq!(
        (e.from, e.to),
        (Some(OrderStatus::Ready), OrderStatus::Ready)
    );
    o.apply(e).unwrap();
    assert!(o.is_paid());
    assert_eq!(
        o.pay(3798, &staff(), at(4)),
        Err(TransitionError::AlreadyPaid)
    );
    o.advance(OrderStatus::Completed, &staff(), at(4)).unwrap();
    assert_eq!(o.status, OrderStatus::Completed);
}

#[test]
fn a_stripe_order_waits_for_payment_before_the_kitchen() {
    let o = order(PaymentMethod::Stripe);
    assert_eq!(
        o.transition(OrderStatus::InKitchen, &system(), at(1)),
        Err(TransitionError::AwaitingPayment)
    );
    // Only a verified payment event pays a Stripe order, and only the quoted total.
    assert_eq!(
        o.pay(3798, &staff(), at(1)).unwrap_err().code(),
        "not_allowed"
    );
    assert_eq!(
        o.pay(3797, &stripe(), at(1)),
        Err(TransitionError::AmountMismatch {
            expected: 3798,
            got: 3797
        })
    );
}

#[test]
fn illegal_moves_are_refused_with_a_clear_error() {
    let mut o = order(PaymentMethod::Stripe);
    assert_eq!(
        o.transition(OrderStatus::Ready, &staff(), at(1)),
        Err(TransitionError::Illegal {
            from: OrderStatus::Confirmed,
            to: OrderStatus::Ready
        })
    );
    assert_eq!(
        o.transition(OrderStatus::Refunded, &staff(), at(1)),
        Err(TransitionError::NotPaid),
        "refund only after paid"
    );
    assert_eq!(
        o.refund(100, &staff(), at(1)),
        Err(TransitionError::NotPaid)
    );
    o.apply(o.pay(3798, &stripe(), at(2)).unwrap()).unwrap();
    let e = o
        .transition(OrderStatus::Confirmed, &staff(), at(3))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "an order that is paid cannot become confirmed"
    );
    assert_eq!(
        o.transition(OrderStatus::Cancelled, &staff(), at(3)),
        Err(TransitionError::RefundInstead)
    );
    for s in [
        OrderStatus::InKitchen,
        OrderStatus::Ready,
        OrderStatus::Completed,
    ] {
        o.advance(s, &staff(), at(4)).unwrap();
    }
    assert_eq!(
        o.transition(OrderStatus::InKitchen, &staff(), at(5)),
        Err(TransitionError::Illegal {
            from: OrderStatus::Completed,
            to: OrderStatus::InKitchen
        })
    );
    assert_eq!(
        o.transition(OrderStatus::Cancelled, &staff(), at(5))
            .unwrap_err()
            .code(),
        "illegal",
        "no cancel after completed"
    );
    assert_eq!(
        o.transition(OrderStatus::Completed, &staff(), at(5))
            .unwrap_err()
            .code(),
        "illegal"
    );
}

#[test]
fn the_agent_and_the_guest_can_cancel_but_never_pay_or_refund() {
    let o = order(PaymentMethod::Counter);
    for who in [agent(), guest()] {
        assert_eq!(o.pay(3798, &who, at(1)).unwrap_err().code(), "not_allowed");
        assert_eq!(
            o.transition(OrderStatus::Paid, &who, at(1))
                .unwrap_err()
                .code(),
            "not_allowed"
        );
        assert_eq!(
            o.transition(OrderStatus::InKitchen, &who, at(1))
                .unwrap_err()
                .code(),
            "not_allowed"
        );
        let e = o.transition(OrderStatus::Cancelled, &who, at(1)).unwrap();
        assert_eq!(e.to, OrderStatus::Cancelled);
    }
    let mut paid = order(PaymentMethod::Counter);
    paid.apply(paid.pay(3798, &staff(), at(1)).unwrap())
        .unwrap();
    for who in [agent(), guest(), system()] {
        let e = paid.refund(100, &who, at(2)).unwrap_err();
        assert_eq!(e.code(), "not_allowed", "{e}");
        assert_eq!(
            paid.transition(OrderStatus::Refunded, &who, at(2))
                .unwrap_err()
                .code(),
            "not_allowed"
        );
    }
    let mut kitchen = order(PaymentMethod::Counter);
    kitchen
        .advance(OrderStatus::InKitchen, &system(), at(1))
        .unwrap();
    assert_eq!(
        kitchen
            .transition(OrderStatus::Cancelled, &agent(), at(2))
            .unwrap_err()
            .to_string(),
        "the agent may not move an order from in_kitchen to cancelled"
    );
    kitchen
        .advance(OrderStatus::Cancelled, &staff(), at(2))
        .unwrap();
    assert_eq!(
        kitchen.transition(OrderStatus::Confirmed, &staff(), at(3)),
        Err(TransitionError::Closed {
            status: OrderStatus::Cancelled
        })
    );
    assert_eq!(
        kitchen.pay(3798, &staff(), at(3)).unwrap_err().code(),
        "closed"
    );
}

#[test]
fn refunds_are_partial_or_full_and_never_more_than_captured() {
    let mut o = order(PaymentMethod::Stripe);
    o.apply(o.pay(3798, &stripe(), at(1)).unwrap()).unwrap();
    o.advance(OrderStatus::InKitchen, &system(), at(2)).unwrap();
    assert_eq!(
        o.refund(0, &staff(), at(3)),
        Err(TransitionError::BadAmount { amount: 0 })
    );
    assert_eq!(
        o.refund(3799, &staff(), at(3)),
        Err(TransitionError::RefundTooLarge {
            refundable: 3798,
            requested: 3799
        })
    );
    let part = o.refund(798, &staff(), at(3)).unwrap();
    assert_eq!(
        (part.from, part.to),
        (Some(OrderStatus::InKitchen), OrderStatus::InKitchen)
    );
    o.apply(part).unwrap();
    assert_eq!((o.refunded, o.refundable()), (798, 3000));
    assert_eq!(
        o.refund(3001, &stripe(), at(4)).unwrap_err().code(),
        "refund_too_large"
    );
    let rest = o
        .transition(OrderStatus::Refunded, &stripe(), at(4))
        .unwrap();
    assert_eq!(rest.action, AuditAction::Refund { amount: 3000 });
    o.apply(rest).unwrap();
    assert_eq!(
        (o.status, o.refunded, o.captured),
        (OrderStatus::Refunded, 3798, 3798)
    );
    assert_eq!(
        o.refund(1, &staff(), at(5)),
        Err(TransitionError::Closed {
            status: OrderStatus::Refunded
        })
    );
}

#[test]
fn entries_checked_against_an_older_state_are_stale() {
    // The webhook and the success redirect both try to pay the same order.
    let mut o = order(PaymentMethod::Stripe);
    let from_webhook = o.pay(3798, &stripe(), at(1)).unwrap();
    let from_redirect = o.pay(3798, &stripe(), at(2)).unwrap();
    o.apply(from_webhook).unwrap();
    let before = o.clone();
    assert_eq!(
        o.apply(from_redirect),
        Err(TransitionError::Stale { expected_seq: 2 })
    );
    assert_eq!(o, before, "a refused entry changes nothing");
    assert_eq!(
        o.audit
            .iter()
            .filter(|e| matches!(e.action, AuditAction::Payment { .. }))
            .count(),
        1
    );

    // An entry altered after it was checked is refused too.
    let mut e = o
        .transition(OrderStatus::InKitchen, &system(), at(3))
        .unwrap();
    e.to = OrderStatus::Completed;
    assert_eq!(o.apply(e).unwrap_err().code(), "illegal");
    let mut e = o.refund(100, &staff(), at(3)).unwrap();
    e.actor = agent();
    assert_eq!(o.apply(e).unwrap_err().code(), "not_allowed");
    let mut e = o.refund(100, &staff(), at(3)).unwrap();
    e.seq += 1;
    assert_eq!(o.apply(e).unwrap_err().code(), "stale");
    let mut e = o.refund(100, &staff(), at(3)).unwrap();
    e.from = Some(OrderStatus::Confirmed);
    assert_eq!(o.apply(e).unwrap_err().code(), "stale");
    let mut e = o
        .transition(OrderStatus::InKitchen, &system(), at(3))
        .unwrap();
    e.action = AuditAction::Created;
    assert_eq!(o.apply(e).unwrap_err().code(), "stale");
    assert_eq!(o, before);
}

#[test]
fn display_components_validate() {
    let mut o = order(PaymentMethod::Counter);
    for (s, who) in [
        (OrderStatus::InKitchen, system()),
        (OrderStatus::Ready, staff()),
    ] {
        let status = normalize(
            Category::Restaurant,
            "order_status",
            &o.status_display(),
            Currency::USD,
        )
        .unwrap();
        assert_eq!(status, o.status_display());
        let summary = o.summary_display();
        assert_eq!(
            normalize(
                Category::Restaurant,
                "order_summary",
                &summary,
                Currency::USD
            )
            .unwrap(),
            summary
        );
        o.advance(s, &who, at(1)).unwrap();
    }
    assert_eq!(o.status_display()["status"], "ready");
    assert_eq!(o.summary_display()["total"]["minor"], 3798);
    for s in OrderStatus::ALL {
        let data = serde_json::json!({"orderId": "o", "status": s.as_str()});
        assert!(normalize(Category::Restaurant, "order_status", &data, Currency::USD).is_ok());
        assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
    }
}

#[test]
fn orders_round_trip_through_json() {
    let mut o = order(PaymentMethod::Stripe);
    o.apply(o.pay(3798, &stripe(), at(1)).unwrap()).unwrap();
    let text = serde_json::to_string(&o).unwrap();
    let back: Order = serde_json::from_str(&text).unwrap();
    assert_eq!(back, o);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "paid");
    assert_eq!(v["orderType"], "pickup");
    assert_eq!(v["paymentMethod"], "stripe");
    assert_eq!(v["lines"][0]["origin"]["toolCallId"], "call_0");
    assert_eq!(v["lines"][0]["lineTotal"], 2598);
    assert_eq!(
        v["audit"][1]["actor"],
        serde_json::json!({"kind": "payment", "provider": "stripe", "reference": "evt_1"})
    );
    assert_eq!(
        v["audit"][1]["action"],
        serde_json::json!({"kind": "payment", "amount": 3798})
    );
    assert_eq!(v["audit"][0]["actor"]["toolCallId"], "call_9");
    assert_eq!(OrderType::parse("dine_in"), Some(OrderType::DineIn));
}

#[test]
fn the_table_is_explicit_and_consistent() {
    let mut seen = BTreeMap::new();
    for t in TRANSITIONS {
        assert!(
            seen.insert((t.from, t.to), t.guard).is_none(),
            "duplicate row"
        );
        assert!(!t.from.is_terminal(), "nothing leaves {}", t.from);
        assert_ne!(t.from, t.to);
        assert!(!t.actors.is_empty());
        if matches!(t.to, OrderStatus::Paid | OrderStatus::Refunded) {
            assert!(
                !t.actors.contains(&ActorKind::Agent) && !t.actors.contains(&ActorKind::Guest),
                "the agent and the guest never pay or refund"
            );
        }
    }
    assert!(!seen.contains_key(&(OrderStatus::Completed, OrderStatus::Cancelled)));
    assert!(!seen.contains_key(&(OrderStatus::Paid, OrderStatus::Confirmed)));
}

#[derive(Debug, Clone)]
enum Attempt {
    Move(OrderStatus),
    Pay(i64),
    Refund(i64),
    /// Apply an entry checked earlier (a duplicate delivery).
    Replay(usize),
}

fn attempts() -> impl Strategy<Value = Vec<(Attempt, usize)>> {
    let status = prop::sample::select(OrderStatus::ALL.to_vec());
    let attempt = prop_oneof![
        4 => status.prop_map(Attempt::Move),
        2 => prop_oneof![Just(3798i64), Just(3797), Just(0), Just(-1), Just(i64::MAX)].prop_map(Attempt::Pay),
        2 => prop_oneof![Just(1i64), Just(100), Just(3698), Just(3798), Just(3799), Just(0), Just(i64::MIN)].prop_map(Attempt::Refund),
        1 => (0usize..40).prop_map(Attempt::Replay),
    ];
    prop::collection::vec((attempt, 0usize..5), 0..40)
}

fn actor(i: usize) -> Actor {
    [guest(), agent(), staff(), stripe(), system()][i % 5].clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_state_machine_never_leaves_its_table(
        counter in any::<bool>(),
        script in attempts(),
    ) {
        let method = if counter { PaymentMethod::Counter } else { PaymentMethod::Stripe };
        let mut o = order(method);
        let mut checked: Vec<AuditEntry> = Vec::new();
        for (n, (attempt, who)) in script.into_iter().enumerate() {
            let who = actor(who);
            let when = at(i64::try_from(n).unwrap() + 1);
            let before = o.clone();
            let replay = matches!(attempt, Attempt::Replay(_));
            let entry = match attempt {
                Attempt::Move(to) => o.transition(to, &who, when),
                Attempt::Pay(amount) => o.pay(amount, &who, when),
                Attempt::Refund(amount) => o.refund(amount, &who, when),
                Attempt::Replay(i) => match checked.get(i) {
                    Some(e) => Ok(e.clone()),
                    None => continue,
                },
            };
            let Ok(entry) = entry else {
                prop_assert_eq!(&o, &before);
                continue;
            };
            checked.push(entry.clone());
            if let Err(e) = o.apply(entry.clone()) {
                prop_assert!(replay, "a freshly checked entry applies: {}", e);
                prop_assert_eq!(&o, &before, "a refused entry changes nothing");
                continue;
            }
            prop_assert!(!replay, "a replayed entry never applies twice");
            let from = before.status;
            prop_assert_eq!(entry.from, Some(from));
            let money = matches!(
                entry.action,
                AuditAction::Payment { .. } | AuditAction::Refund { .. }
            );
            if entry.to == from {
                prop_assert!(money, "only a money event keeps the status");
            } else {
                prop_assert!(
                    transition_row(from, entry.to).is_some(),
                    "{} → {} is not in the table", from, entry.to
                );
            }
            if money {
                let allowed = matches!(who.kind(), ActorKind::Staff | ActorKind::Payment);
                prop_assert!(allowed, "{:?} moved money", who.kind());
            }
            prop_assert_eq!(o.audit.len(), before.audit.len() + 1);
            prop_assert_eq!(o.audit.last().map(|e| e.seq), Some(u32::try_from(before.audit.len()).unwrap()));
        }
        // Invariants of whatever state was reached.
        prop_assert!(o.captured == 0 || o.captured == o.total);
        prop_assert_eq!(o.is_paid(), o.captured == o.total);
        prop_assert!(o.refunded >= 0 && o.refunded <= o.captured);
        prop_assert_eq!(
            o.audit.iter().filter(|e| matches!(e.action, AuditAction::Payment { .. })).count(),
            usize::from(o.is_paid()),
            "never two captures"
        );
        match o.status {
            OrderStatus::Refunded => prop_assert!(o.is_paid() && o.refunded == o.captured),
            OrderStatus::Cancelled => prop_assert!(!o.is_paid()),
            OrderStatus::Completed | OrderStatus::Paid => prop_assert!(o.is_paid()),
            OrderStatus::Confirmed => prop_assert!(!o.is_paid()),
            OrderStatus::InKitchen | OrderStatus::Ready => {
                prop_assert!(o.is_paid() || method == PaymentMethod::Counter);
            }
        }
        for pair in o.audit.windows(2) {
            prop_assert_eq!(pair[1].from, Some(pair[0].to));
            prop_assert!(pair[1].at >= pair[0].at);
        }
    }
}

/// Orders in every reachable status (and both payment states where they differ).
fn specimens() -> Vec<Order> {
    let mut out = Vec::new();
    for method in [PaymentMethod::Counter, PaymentMethod::Stripe] {
        let payer = if method == PaymentMethod::Counter {
            staff()
        } else {
            stripe()
        };
        let fresh = order(method);
        out.push(fresh.clone());
        let mut cancelled = fresh.clone();
        cancelled
            .advance(OrderStatus::Cancelled, &guest(), at(1))
            .unwrap();
        out.push(cancelled);
        let mut o = fresh.clone();
        o.apply(o.pay(3798, &payer, at(1)).unwrap()).unwrap();
        out.push(o.clone());
        for s in [
            OrderStatus::InKitchen,
            OrderStatus::Ready,
            OrderStatus::Completed,
        ] {
            o.advance(s, &staff(), at(2)).unwrap();
            out.push(o.clone());
        }
        o.advance(OrderStatus::Refunded, &staff(), at(3)).unwrap();
        out.push(o);
        if method == PaymentMethod::Counter {
            let mut unpaid = fresh.clone();
            for s in [OrderStatus::InKitchen, OrderStatus::Ready] {
                unpaid.advance(s, &system_or_staff(s), at(2)).unwrap();
                out.push(unpaid.clone());
            }
        }
    }
    out
}

fn system_or_staff(s: OrderStatus) -> Actor {
    if s == OrderStatus::InKitchen {
        system()
    } else {
        staff()
    }
}

#[test]
fn every_move_from_every_state_agrees_with_the_table() {
    let mut used = std::collections::BTreeSet::new();
    for o in specimens() {
        for to in OrderStatus::ALL {
            for who in (0..5).map(actor) {
                match o.transition(to, &who, at(9)) {
                    Ok(e) => {
                        let row = transition_row(o.status, to)
                            .unwrap_or_else(|| panic!("{} → {to} is not a row", o.status));
                        assert!(
                            row.actors.contains(&who.kind()),
                            "{:?}: {} → {to}",
                            who.kind(),
                            o.status
                        );
                        assert_eq!((e.from, e.to), (Some(o.status), to));
                        let mut next = o.clone();
                        next.apply(e).unwrap();
                        used.insert((o.status, to));
                    }
                    Err(e) => {
                        if let Some(row) = transition_row(o.status, to) {
                            // Refused by actor or guard, and the error says which.
                            assert!(
                                matches!(
                                    e.code(),
                                    "not_allowed"
                                        | "awaiting_payment"
                                        | "refund_instead"
                                        | "not_paid"
                                        | "already_paid"
                                ),
                                "{} → {to} by {:?}: {e} ({:?})",
                                o.status,
                                who.kind(),
                                row.guard
                            );
                        } else {
                            let refund = to == OrderStatus::Refunded
                                && matches!(e.code(), "not_paid" | "not_allowed");
                            assert!(
                                refund
                                    || matches!(e.code(), "illegal" | "closed" | "refund_instead"),
                                "{} → {to}: {e}",
                                o.status
                            );
                        }
                    }
                }
            }
        }
    }
    for t in TRANSITIONS {
        assert!(
            used.contains(&(t.from, t.to)),
            "row {} → {} is never usable",
            t.from,
            t.to
        );
    }
}
