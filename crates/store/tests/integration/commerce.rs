//! Quotes, orders, transitions and idempotency keys, run once on SQLite and once on
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::Fixture;
use std::collections::BTreeMap;
use stonepot_domain::commerce::{
    Actor, DEFAULT_QUOTE_TTL, LineOrigin, Order, OrderId, OrderOrigin, OrderStatus, OrderType,
    PaymentMethod, PricingPolicy, Quote, QuoteId, Tip, UnixMs,
};
use stonepot_domain::{Cart, Currency, SessionId, demo};
use stonepot_store::{Backend, IDEMPOTENCY_TTL_MS, IdempotencyRecord, OrderCreated, StoreError};

both_backends!(
    pricing_policy_defaults_sets_and_bumps,
    quotes_round_trip_and_the_latest_wins,
    orders_round_trip_with_their_creation_event,
    an_order_and_the_cart_it_empties_are_one_write,
    one_order_per_quote_under_a_race,
    transitions_compare_and_set_under_a_race,
    stale_and_foreign_transitions_are_refused,
    tenants_are_isolated,
    idempotency_keys_insert_if_absent_expire_and_purge,
    tickets_fire_once_numbered_per_tenant,
);

const NOW: UnixMs = UnixMs(1_790_000_000_000);
const CONV: &str = "conv-1";

/// 2 × Margherita (No basil) and 1 × Tiramisu at 8.75 % tax added, built at `now`.
fn quote_at(now: UnixMs, tip: Tip) -> Quote {
    let menu = demo::restaurant_menu();
    let mut cart = Cart::new();
    cart.add(&menu, "margherita", 2, &["No basil".into()])
        .unwrap();
    cart.add(&menu, "tiramisu", 1, &[]).unwrap();
    let policy = PricingPolicy {
        tax_rate_bps: 875,
        ..PricingPolicy::default()
    };
    Quote::build(
        &cart,
        &menu,
        &policy,
        Currency::USD,
        tip,
        now,
        DEFAULT_QUOTE_TTL,
        "menu-1",
    )
    .unwrap()
}

fn order_from(q: &Quote, id: &str) -> Order {
    let origin = OrderOrigin {
        conversation_id: SessionId::new(CONV).unwrap(),
        turn: Some(4),
        tool_call_id: Some("call_confirm".into()),
        confirmed_by: Actor::Agent {
            session_id: CONV.into(),
            tool_call_id: Some("call_confirm".into()),
        },
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
            .collect::<BTreeMap<_, _>>(),
    };
    Order::from_quote(
        OrderId::new(id).unwrap(),
        q,
        OrderType::Pickup,
        PaymentMethod::Counter,
        origin,
        UnixMs(q.created_at.0 + 1_000),
    )
    .unwrap()
}

fn staff(n: usize) -> Actor {
    Actor::Staff {
        user_id: format!("staff-{n}"),
    }
}

async fn pricing_policy_defaults_sets_and_bumps(b: Backend) {
    let f = Fixture::new(b, "commerce").await;
    let s = &f.store;
    assert_eq!(
        s.pricing_policy(&f.a).await.unwrap(),
        (PricingPolicy::default(), 0)
    );
    let vat = PricingPolicy {
        tax_rate_bps: 2000,
        tax_inclusive: true,
        service_charge_bps: Some(1250),
        tips_allowed: false,
    };
    s.set_pricing_policy(&f.a, &vat).await.unwrap();
    assert_eq!(s.pricing_policy(&f.a).await.unwrap(), (vat, 0));
    assert_eq!(s.bump_menu_version(&f.a).await.unwrap(), 1);
    assert_eq!(s.bump_menu_version(&f.a).await.unwrap(), 2);
    // Setting the policy keeps the menu version.
    let vat2 = PricingPolicy {
        tax_rate_bps: 1900,
        ..vat
    };
    s.set_pricing_policy(&f.a, &vat2).await.unwrap();
    assert_eq!(s.pricing_policy(&f.a).await.unwrap(), (vat2, 2));
    // A tenant with no row: bumping creates it with the default policy.
    assert_eq!(s.bump_menu_version(&f.b).await.unwrap(), 1);
    assert_eq!(
        s.pricing_policy(&f.b).await.unwrap(),
        (PricingPolicy::default(), 1)
    );
    f.done().await;
}

async fn quotes_round_trip_and_the_latest_wins(b: Backend) {
    let f = Fixture::new(b, "commerce").await;
    let s = &f.store;
    let q1 = quote_at(NOW, Tip::None);
    let q2 = quote_at(UnixMs(NOW.0 + 5_000), Tip::Amount { minor: 200 });
    assert_ne!(q1.id, q2.id);
    assert!(s.save_quote(&f.a, CONV, &q1).await.unwrap());
    assert!(
        !s.save_quote(&f.a, CONV, &q1).await.unwrap(),
        "same quote twice"
    );
    let got = s.quote(&f.a, &q1.id).await.unwrap().unwrap();
    assert_eq!(got.quote, q1);
    assert_eq!(got.conversation_id, CONV);
    assert!(got.quote.verify_hash());
    assert_eq!(s.latest_quote(&f.a, CONV).await.unwrap().unwrap().quote, q1);
    assert!(s.save_quote(&f.a, CONV, &q2).await.unwrap());
    assert_eq!(s.latest_quote(&f.a, CONV).await.unwrap().unwrap().quote, q2);
    assert_eq!(s.latest_quote(&f.a, "conv-2").await.unwrap(), None);
    assert_eq!(
        s.quote(&f.a, &QuoteId::new("q_missing").unwrap())
            .await
            .unwrap(),
        None
    );
    // The same id with another hash is refused, not overwritten.
    let mut forged = q1.clone();
    forged.hash = "0".repeat(64);
    assert!(matches!(
        s.save_quote(&f.a, CONV, &forged).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.quote(&f.a, &q1.id).await.unwrap().unwrap().quote, q1);
    f.done().await;
}

async fn an_order_and_the_cart_it_empties_are_one_write(b: Backend) {
    let f = Fixture::new(b, "commerce").await;
    let s = &f.store;
    let full = r#"{"lines":"the guest's"}"#;
    s.create_conversation(
        CONV,
        &f.a,
        stonepot_domain::Category::Restaurant,
        None,
        "en",
        full,
    )
    .await
    .unwrap();
    let cart = |s: &stonepot_store::Store| {
        let s = s.clone();
        async move { s.conversation(CONV).await.unwrap().unwrap().cart }
    };
    let q = quote_at(NOW, Tip::None);
    s.save_quote(&f.a, CONV, &q).await.unwrap();
    let o = order_from(&q, "ord-1");
    let created = s
        .create_order_with_cart(&f.a, &o, Some("{}"))
        .await
        .unwrap();
    assert!(created.is_new());
    assert_eq!(cart(s).await, "{}");

    // A replay of the same quote finds the order and leaves the cart alone.
    s.set_conversation_cart(&f.a, CONV, full).await.unwrap();
    let again = s
        .create_order_with_cart(&f.a, &order_from(&q, "ord-2"), Some("{}"))
        .await
        .unwrap();
    assert_eq!(again, OrderCreated::Existing(o.clone()));
    assert_eq!(cart(s).await, full);

    // An order for a conversation that is not there is refused whole: no order, no
    // event.
    let q2 = quote_at(UnixMs(NOW.0 + 60_000), Tip::None);
    let mut stray = order_from(&q2, "ord-3");
    stray.conversation_id = SessionId::new("conv-gone").unwrap();
    let refused = s.create_order_with_cart(&f.a, &stray, Some("{}")).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
    assert_eq!(s.order(&f.a, &stray.id).await.unwrap(), None);
    assert!(s.order_events(&f.a, &stray.id).await.unwrap().is_empty());
    assert_eq!(s.order_for_quote(&f.a, &q2.id).await.unwrap(), None);
    f.done().await;
}

async fn orders_round_trip_with_their_creation_event(b: Backend) {
    let f = Fixture::new(b, "commerce").await;
    let s = &f.store;
    let q = quote_at(NOW, Tip::Amount { minor: 150 });
    s.save_quote(&f.a, CONV, &q).await.unwrap();
    let o = order_from(&q, "ord-1");
    let created = s.create_order(&f.a, &o).await.unwrap();
    assert_eq!(created, OrderCreated::New(o.clone()));
    assert_eq!(s.order(&f.a, &o.id).await.unwrap(), Some(o.clone()));
    assert_eq!(
        s.order_for_quote(&f.a, &q.id).await.unwrap(),
        Some(o.clone())
    );
    assert_eq!(s.order_events(&f.a, &o.id).await.unwrap(), o.audit);

    // A second order, then walk the first through the kitchen.
    let q2 = quote_at(UnixMs(NOW.0 + 60_000), Tip::None);
    let o2 = order_from(&q2, "ord-2");
    assert!(s.create_order(&f.a, &o2).await.unwrap().is_new());
    let mut expect = o.clone();
    for (i, to) in [
        OrderStatus::Paid,
        OrderStatus::InKitchen,
        OrderStatus::Ready,
        OrderStatus::Completed,
    ]
    .into_iter()
    .enumerate()
    {
        let current = s.order(&f.a, &o.id).await.unwrap().unwrap();
        let at = UnixMs(NOW.0 + 10_000 * (i64::try_from(i).unwrap() + 1));
        let entry = current.transition(to, &staff(0), at).unwrap();
        let after = s.apply_order_event(&f.a, &o.id, &entry).await.unwrap();
        expect.apply(entry).unwrap();
        assert_eq!(after, expect);
    }
    let stored = s.order(&f.a, &o.id).await.unwrap().unwrap();
    assert_eq!(stored, expect);
    assert_eq!(stored.status, OrderStatus::Completed);
    assert_eq!(stored.captured, o.total);
    assert_eq!(s.order_events(&f.a, &o.id).await.unwrap(), stored.audit);
    assert_eq!(stored.audit.len(), 5);

    let all = s.orders(&f.a, None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        ["ord-2", "ord-1"],
        "newest first"
    );
    assert_eq!(s.orders(&f.a, None, 1).await.unwrap().len(), 1);
    let done = s
        .orders(&f.a, Some(OrderStatus::Completed), 10)
        .await
        .unwrap();
    assert_eq!(done, vec![stored]);
    let open = s
        .orders(&f.a, Some(OrderStatus::Confirmed), 10)
        .await
        .unwrap();
    assert_eq!(open, vec![o2]);
    assert!(
        s.orders(&f.a, Some(OrderStatus::Paid), 10)
            .await
            .unwrap()
            .is_empty()
    );
    f.done().await;
}

async fn one_order_per_quote_under_a_race(b: Backend) {
    let f = Fixture::new(b, "commerce").await;
    let q = quote_at(NOW, Tip::None);
    f.store.save_quote(&f.a, CONV, &q).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, tenant) = (f.store.clone(), f.a.clone());
        // Each confirmation picks its own order id, as concurrent requests would.
        let o = order_from(&q, &format!("ord-race-{i}"));
        tasks.push(tokio::spawn(async move {
            store.create_order(&tenant, &o).await
        }));
    }
    let mut new = Vec::new();
    let mut existing = Vec::new();
    for t in tasks {
        match t.await.unwrap().unwrap() {
            OrderCreated::New(o) => new.push(o),
            OrderCreated::Existing(o) => existing.push(o),
        }
    }
    assert_eq!(new.len(), 1, "exactly one confirmation places the order");
    assert_eq!(existing.len(), 7);
    let winner = &new[0];
    assert!(existing.iter().all(|o| o == winner));
    let all = f.store.orders(&f.a, None, 100).await.unwrap();
    assert_eq!(all, vec![winner.clone()]);
    assert_eq!(
        f.store.order_events(&f.a, &winner.id).await.unwrap().len(),
        1
    );
    // A later retry, even after the order moved on, returns it as it stands.
    let entry = winner
        .transition(OrderStatus::Paid, &staff(0), UnixMs(NOW.0 + 5_000))
        .unwrap();
    let paid = f
        .store
        .apply_order_event(&f.a, &winner.id, &entry)
        .await
        .unwrap();
    let again = f
        .store
        .create_order(&f.a, &order_from(&q, "ord-late"))
        .await
        .unwrap();
    assert_eq!(again, OrderCreated::Existing(paid));
    // An order id already used for another quote is a conflict.
    let other = quote_at(UnixMs(NOW.0 + 1), Tip::Amount { minor: 100 });
    assert!(matches!(
        f.store
            .create_order(&f.a, &order_from(&other, winner.id.as_str()))
            .await,
        Err(StoreError::Conflict(_))
    ));
    f.done().await;
}

async fn transitions_compare_and_set_under_a_race(b: Backend) {
    let f = Fixture::new(b, "commerce").await;
    let q = quote_at(NOW, Tip::None);
    let o = order_from(&q, "ord-cas");
    f.store.create_order(&f.a, &o).await.unwrap();
    // Every attempt is built from the same loaded order (version 0, confirmed).
    let loaded = f.store.order(&f.a, &o.id).await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let entry = loaded
            .transition(OrderStatus::Paid, &staff(i), UnixMs(NOW.0 + 2_000))
            .unwrap();
        let (store, tenant, id) = (f.store.clone(), f.a.clone(), o.id.clone());
        tasks.push(tokio::spawn(async move {
            store
                .apply_order_event(&tenant, &id, &entry)
                .await
                .map(|o| (o, entry))
        }));
    }
    let mut applied = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(x) => applied.push(x),
            Err(StoreError::Conflict(_)) => conflicts += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(applied.len(), 1, "exactly one transition applies");
    assert_eq!(conflicts, 7);
    let (after, entry) = &applied[0];
    let stored = f.store.order(&f.a, &o.id).await.unwrap().unwrap();
    assert_eq!(&stored, after);
    assert_eq!(stored.status, OrderStatus::Paid);
    assert_eq!(stored.captured, o.total);
    assert_eq!(stored.audit.len(), 2);
    assert_eq!(
        stored.audit[1], *entry,
        "the winner's entry is the one kept"
    );
    let events = f.store.order_events(&f.a, &o.id).await.unwrap();
    assert_eq!(events, stored.audit);

    // The losers reload and retry: paid → in_kitchen, raced the same way.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, tenant, id) = (f.store.clone(), f.a.clone(), o.id.clone());
        tasks.push(tokio::spawn(async move {
            let current = store.order(&tenant, &id).await?.unwrap();
            if current.status != OrderStatus::Paid {
                return Ok(false);
            }
            let entry = current
                .transition(OrderStatus::InKitchen, &staff(i), UnixMs(NOW.0 + 3_000))
                .unwrap();
            match store.apply_order_event(&tenant, &id, &entry).await {
                Ok(_) => Ok(true),
                Err(StoreError::Conflict(_)) => Ok(false),
                Err(e) => Err(e),
            }
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap().unwrap());
    }
    assert_eq!(wins, 1);
    let stored = f.store.order(&f.a, &o.id).await.unwrap().unwrap();
    assert_eq!(stored.status, OrderStatus::InKitchen);
    assert_eq!(stored.audit.len(), 3);
    assert_eq!(
        f.store.order_events(&f.a, &o.id).await.unwrap(),
        stored.audit
    );
    f.done().await;
}

async fn stale_and_foreign_transitions_are_refused(b: Backend) {
    let f = Fixture::new(b, "commerce").await;
    let s = &f.store;
    let q = quote_at(NOW, Tip::None);
    let o = order_from(&q, "ord-stale");
    s.create_order(&f.a, &o).await.unwrap();
    let pay = o
        .transition(OrderStatus::Paid, &staff(1), UnixMs(NOW.0 + 2_000))
        .unwrap();
    // Another tenant cannot move it.
    assert!(matches!(
        s.apply_order_event(&f.b, &o.id, &pay).await,
        Err(StoreError::NotFound(_))
    ));
    // Nor can anyone move an order that does not exist.
    assert!(matches!(
        s.apply_order_event(&f.a, &OrderId::new("ord-none").unwrap(), &pay)
            .await,
        Err(StoreError::NotFound(_))
    ));
    // The creation entry is not a transition.
    assert!(matches!(
        s.apply_order_event(&f.a, &o.id, &o.audit[0]).await,
        Err(StoreError::Conflict(_))
    ));
    // An entry that skips ahead, or claims another starting status, is stale.
    let mut ahead = pay.clone();
    ahead.seq = 2;
    assert!(matches!(
        s.apply_order_event(&f.a, &o.id, &ahead).await,
        Err(StoreError::Conflict(_))
    ));
    let mut wrong_from = pay.clone();
    wrong_from.from = Some(OrderStatus::Ready);
    assert!(matches!(
        s.apply_order_event(&f.a, &o.id, &wrong_from).await,
        Err(StoreError::Conflict(_))
    ));
    // An entry the domain refuses (a payment of the wrong amount) changes nothing.
    let mut short = pay.clone();
    short.action = stonepot_domain::commerce::AuditAction::Payment { amount: 1 };
    assert!(matches!(
        s.apply_order_event(&f.a, &o.id, &short).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.order(&f.a, &o.id).await.unwrap(), Some(o.clone()));
    assert_eq!(s.order_events(&f.a, &o.id).await.unwrap().len(), 1);
    // The real one applies once; replaying it is stale.
    s.apply_order_event(&f.a, &o.id, &pay).await.unwrap();
    assert!(matches!(
        s.apply_order_event(&f.a, &o.id, &pay).await,
        Err(StoreError::Conflict(_))
    ));
    let stored = s.order(&f.a, &o.id).await.unwrap().unwrap();
    assert_eq!(stored.audit.len(), 2);
    assert_eq!(s.order_events(&f.a, &o.id).await.unwrap(), stored.audit);
    f.done().await;
}

async fn tenants_are_isolated(b: Backend) {
    let f = Fixture::new(b, "commerce").await;
    let s = &f.store;
    let q = quote_at(NOW, Tip::None);
    s.save_quote(&f.a, CONV, &q).await.unwrap();
    let o = order_from(&q, "ord-a");
    s.create_order(&f.a, &o).await.unwrap();
    assert_eq!(s.quote(&f.b, &q.id).await.unwrap(), None);
    assert_eq!(s.latest_quote(&f.b, CONV).await.unwrap(), None);
    assert_eq!(s.order(&f.b, &o.id).await.unwrap(), None);
    assert_eq!(s.order_for_quote(&f.b, &q.id).await.unwrap(), None);
    assert!(s.orders(&f.b, None, 10).await.unwrap().is_empty());
    assert!(s.order_events(&f.b, &o.id).await.unwrap().is_empty());
    // Ids are per tenant: the other tenant may hold the same quote and order ids
    // without touching the first tenant's.
    assert!(s.save_quote(&f.b, CONV, &q).await.unwrap());
    let ob = order_from(&q, "ord-a");
    assert!(s.create_order(&f.b, &ob).await.unwrap().is_new());
    let pay = ob
        .transition(OrderStatus::Paid, &staff(2), UnixMs(NOW.0 + 2_000))
        .unwrap();
    s.apply_order_event(&f.b, &ob.id, &pay).await.unwrap();
    assert_eq!(
        s.order(&f.a, &o.id).await.unwrap().unwrap().status,
        OrderStatus::Confirmed
    );
    assert_eq!(
        s.order(&f.b, &ob.id).await.unwrap().unwrap().status,
        OrderStatus::Paid
    );
    assert_eq!(s.order_events(&f.a, &o.id).await.unwrap().len(), 1);
    assert_eq!(s.order_events(&f.b, &ob.id).await.unwrap().len(), 2);
    f.done().await;
}

fn record(body_hash: &str, status: u16, created_at: i64) -> IdempotencyRecord {
    IdempotencyRecord {
        method: "POST".into(),
        path: "/api/tenants/demo-restaurant/orders".into(),
        body_hash: body_hash.into(),
        status,
        response: format!("{{\"body\":\"{body_hash}\"}}"),
        created_at,
    }
}

async fn idempotency_keys_insert_if_absent_expire_and_purge(b: Backend) {
    let f = Fixture::new(b, "commerce").await;
    let s = &f.store;
    let now = jiff::Timestamp::now().as_millisecond();
    let first = record("h1", 201, now);
    assert!(s.idempotency_put("t:a", "k1", &first).await.unwrap());
    assert!(
        !s.idempotency_put("t:a", "k1", &record("h2", 200, now))
            .await
            .unwrap(),
        "the first response is kept"
    );
    assert_eq!(
        s.idempotency_get("t:a", "k1").await.unwrap(),
        Some(first.clone())
    );
    // Keys are per scope.
    assert_eq!(s.idempotency_get("t:b", "k1").await.unwrap(), None);
    assert!(
        s.idempotency_put("t:b", "k1", &record("h3", 201, now))
            .await
            .unwrap()
    );
    assert_eq!(s.idempotency_get("t:a", "k9").await.unwrap(), None);

    // Racing puts of one key: exactly one is stored.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = s.clone();
        tasks.push(tokio::spawn(async move {
            store
                .idempotency_put("t:race", "k", &record(&format!("h{i}"), 201, now))
                .await
                .unwrap()
        }));
    }
    let mut inserted = 0;
    for t in tasks {
        inserted += usize::from(t.await.unwrap());
    }
    assert_eq!(inserted, 1);

    // A record past 24 h is not honoured and may be replaced.
    let old = record("old", 201, now - IDEMPOTENCY_TTL_MS - 60_000);
    assert!(s.idempotency_put("t:a", "old", &old).await.unwrap());
    assert_eq!(s.idempotency_get("t:a", "old").await.unwrap(), None);
    let fresh = record("new", 202, now);
    assert!(s.idempotency_put("t:a", "old", &fresh).await.unwrap());
    assert_eq!(s.idempotency_get("t:a", "old").await.unwrap(), Some(fresh));

    // Purge drops what is older than the cutoff and nothing else.
    let two_hours = record("2h", 201, now - 2 * 3_600_000);
    assert!(s.idempotency_put("t:a", "k2", &two_hours).await.unwrap());
    let expired = record("25h", 201, now - IDEMPOTENCY_TTL_MS - 3_600_000);
    assert!(s.idempotency_put("t:a", "k3", &expired).await.unwrap());
    assert_eq!(
        s.idempotency_purge(now - IDEMPOTENCY_TTL_MS).await.unwrap(),
        1
    );
    assert_eq!(
        s.idempotency_get("t:a", "k2").await.unwrap(),
        Some(two_hours)
    );
    assert_eq!(s.idempotency_purge(now - 3_600_000).await.unwrap(), 1);
    assert_eq!(s.idempotency_get("t:a", "k2").await.unwrap(), None);
    assert_eq!(s.idempotency_get("t:a", "k1").await.unwrap(), Some(first));
    assert_eq!(s.idempotency_purge(now - 3_600_000).await.unwrap(), 0);

    // A claim (status 0) holds the key until it is finished or released.
    let claim = record("c", 0, now);
    assert!(claim.is_claim());
    assert!(s.idempotency_put("t:a", "claim", &claim).await.unwrap());
    assert!(!s.idempotency_put("t:a", "claim", &claim).await.unwrap());
    let done = record("c", 201, now);
    assert!(s.idempotency_finish("t:a", "claim", &done).await.unwrap());
    assert!(
        !s.idempotency_finish("t:a", "claim", &done).await.unwrap(),
        "only a claim can be finished"
    );
    s.idempotency_release("t:a", "claim", now).await.unwrap();
    assert_eq!(
        s.idempotency_get("t:a", "claim").await.unwrap(),
        Some(done),
        "a finished record is never released"
    );
    assert!(s.idempotency_put("t:a", "dropped", &claim).await.unwrap());
    s.idempotency_release("t:a", "dropped", now).await.unwrap();
    assert_eq!(s.idempotency_get("t:a", "dropped").await.unwrap(), None);
    f.done().await;
}

async fn tickets_fire_once_numbered_per_tenant(b: Backend) {
    let f = Fixture::new(b, "commerce").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let q = quote_at(UnixMs(NOW.0 + i), Tip::None);
        f.store.save_quote(&f.a, CONV, &q).await.unwrap();
        let o = order_from(&q, &format!("ord-k{i}"));
        f.store.create_order(&f.a, &o).await.unwrap();
        ids.push(o.id);
    }
    // Eight racers per order: each order fires exactly once.
    let mut tasks = Vec::new();
    for id in &ids {
        for _ in 0..8 {
            let (store, tenant, id) = (f.store.clone(), f.a.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                store.fire_ticket(&tenant, &id).await
            }));
        }
    }
    let mut fired = Vec::new();
    for t in tasks {
        if let Some(ticket) = t.await.unwrap().unwrap() {
            fired.push(ticket);
        }
    }
    assert_eq!(fired.len(), 4, "one ticket per order: {fired:?}");
    let mut numbers: Vec<i64> = fired.iter().map(|t| t.number).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3, 4], "numbered without gaps or repeats");
    for id in &ids {
        assert!(f.store.fire_ticket(&f.a, id).await.unwrap().is_none());
        assert!(f.store.ticket(&f.a, id).await.unwrap().is_some());
        // Another tenant sees nothing of it.
        assert!(f.store.ticket(&f.b, id).await.unwrap().is_none());
    }
    let open = f.store.open_tickets(&f.a).await.unwrap();
    assert_eq!(open.len(), 4);
    assert!(open.windows(2).all(|w| w[0].0.number < w[1].0.number));
    // A completed or cancelled order leaves the open list; its ticket stays.
    let o = f.store.order(&f.a, &ids[0]).await.unwrap().unwrap();
    let entry = o
        .transition(OrderStatus::Cancelled, &staff(1), UnixMs(NOW.0 + 9_000))
        .unwrap();
    f.store
        .apply_order_event(&f.a, &ids[0], &entry)
        .await
        .unwrap();
    assert_eq!(f.store.open_tickets(&f.a).await.unwrap().len(), 3);
    assert!(f.store.ticket(&f.a, &ids[0]).await.unwrap().is_some());
    f.done().await;
}
