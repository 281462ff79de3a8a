//! The business day across daylight-saving changes, the schedule, exact figures for a
//! hand-made day, deterministic rendering, and a property test that the totals
//! reconcile for any day.

use super::render::render;
use super::*;
use crate::commerce::order::{AuditAction, OrderStatus, PaymentMethod};
use jiff::Timestamp;
use jiff::civil::date;
use proptest::prelude::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn settings(day_end: &str, tz: &str, cron: &str) -> CloseSettings {
    CloseSettings::new(day_end, tz, cron).unwrap()
}

#[test]
fn defaults_are_16_00_utc_closed_at_16_05() {
    let d = CloseSettings::default();
    assert_eq!(d.day_end(), "16:00");
    assert_eq!(d.time_zone(), "UTC");
    assert_eq!(d.cron(), DEFAULT_CRON);
    let w = d.window(date(2026, 11, 23)).unwrap();
    assert_eq!(w.start, ts("2026-11-23T16:00:00Z"));
    assert_eq!(w.end, ts("2026-11-24T16:00:00Z"));
    assert_eq!(w.minutes(), 1440);
    assert_eq!(
        d.next_run_after(ts("2026-11-23T16:05:00Z")),
        Some(ts("2026-11-24T16:05:00Z"))
    );
    assert_eq!(
        d.next_run_after(ts("2026-11-23T10:00:00Z")),
        Some(ts("2026-11-23T16:05:00Z"))
    );
}

#[test]
fn bad_settings_name_their_field() {
    for (e, s, tz, cron) in [
        ("dayEnd", "24:00", "UTC", DEFAULT_CRON),
        ("dayEnd", "4pm", "UTC", DEFAULT_CRON),
        ("dayEnd", "7:00", "UTC", DEFAULT_CRON),
        ("timeZone", "16:00", "Mars/Olympus_Mons", DEFAULT_CRON),
        ("timeZone", "16:00", "", DEFAULT_CRON),
        ("cron", "16:00", "UTC", "61 * * * *"),
        ("cron", "16:00", "UTC", "every day"),
        ("cron", "16:00", "UTC", ""),
    ] {
        let err = CloseSettings::new(s, tz, cron).unwrap_err().to_string();
        assert!(err.starts_with(e), "{e}: {err}");
    }
    // Five fields (no seconds) are fine too, and so is a day end with seconds.
    assert!(CloseSettings::new("04:00", "Europe/Berlin", "5 4 * * *").is_ok());
    let s = CloseSettings::new("04:00:30", "UTC", DEFAULT_CRON).unwrap();
    assert_eq!(s.day_end(), "04:00:30");
    assert!(CloseSettings::new("04:00:60", "UTC", DEFAULT_CRON).is_err());
}

#[test]
fn dates_must_be_yyyy_mm_dd() {
    assert_eq!(day::parse_date("2026-11-23").unwrap(), date(2026, 11, 23));
    for bad in [
        "2026-2-03",
        "2026-02-30",
        "20261123",
        "2026-11-23T00:00",
        " 2026-11-23",
        "tomorrow",
    ] {
        assert!(day::parse_date(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_business_day_spans_23_or_25_hours_across_dst() {
    // New York: clocks go forward on 2026-03-08 and back on 2026-11-01, at 02:00.
    let ny = settings("04:00", "America/New_York", "0 5 4 * * *");
    let spring = ny.window(date(2026, 3, 7)).unwrap();
    assert_eq!(spring.start, ts("2026-03-07T09:00:00Z")); // 04:00 EST
    assert_eq!(spring.end, ts("2026-03-08T08:00:00Z")); // 04:00 EDT
    assert_eq!(spring.minutes(), 23 * 60);
    let autumn = ny.window(date(2026, 10, 31)).unwrap();
    assert_eq!(autumn.start, ts("2026-10-31T08:00:00Z"));
    assert_eq!(autumn.end, ts("2026-11-01T09:00:00Z"));
    assert_eq!(autumn.minutes(), 25 * 60);
    assert_eq!(ny.window(date(2026, 11, 1)).unwrap().minutes(), 24 * 60);
    // Consecutive days tile the time line.
    assert_eq!(ny.window(date(2026, 3, 8)).unwrap().start, spring.end);

    // A day end inside the spring-forward gap (02:30 does not exist on 2026-03-08)
    // moves to the same distance past the gap, 03:30 EDT — the same instant as 02:30
    // EST would have been, so that day is 24 hours and the next one 23.
    let gap = settings("02:30", "America/New_York", DEFAULT_CRON);
    let w = gap.window(date(2026, 3, 7)).unwrap();
    assert_eq!(w.end, ts("2026-03-08T07:30:00Z"));
    assert_eq!(w.minutes(), 24 * 60);
    assert_eq!(gap.window(date(2026, 3, 8)).unwrap().minutes(), 23 * 60);
}

#[test]
fn the_business_date_of_an_instant() {
    let d = CloseSettings::default();
    let at = |s| d.business_date_at(ts(s)).unwrap();
    assert_eq!(at("2026-11-23T15:59:59.999Z"), date(2026, 11, 22));
    assert_eq!(at("2026-11-23T16:00:00Z"), date(2026, 11, 23));
    assert_eq!(at("2026-11-24T03:00:00Z"), date(2026, 11, 23));
    assert_eq!(
        d.last_ended_date(ts("2026-11-24T16:05:00Z")).unwrap(),
        date(2026, 11, 23)
    );
    // Across the autumn change in New York, 01:30 happens twice: both belong to the
    // business day that started at 04:00 the day before.
    let ny = settings("04:00", "America/New_York", DEFAULT_CRON);
    assert_eq!(
        ny.business_date_at(ts("2026-11-01T05:30:00Z")).unwrap(),
        date(2026, 10, 31)
    );
    assert_eq!(
        ny.business_date_at(ts("2026-11-01T06:30:00Z")).unwrap(),
        date(2026, 10, 31)
    );
    assert_eq!(
        ny.business_date_at(ts("2026-11-01T09:00:00Z")).unwrap(),
        date(2026, 11, 1)
    );
}

#[test]
fn the_schedule_follows_the_local_clock_across_dst() {
    // 16:05 New York time every day: 21:05Z in winter, 20:05Z in summer — 23 hours
    // apart across the spring change, 25 across the autumn one.
    let ny = settings("16:00", "America/New_York", "0 5 16 * * *");
    let before = ts("2026-03-07T21:05:00Z");
    assert_eq!(ny.next_run_after(before), Some(ts("2026-03-08T20:05:00Z")));
    assert_eq!(
        ny.next_run_after(ts("2026-10-31T20:05:00Z")),
        Some(ts("2026-11-01T21:05:00Z"))
    );
    // A run in the skipped hour fires once, at the end of the gap.
    let gap = settings("02:00", "America/New_York", "0 30 2 * * *");
    assert_eq!(
        gap.next_run_after(ts("2026-03-08T06:00:00Z")),
        Some(ts("2026-03-08T07:00:00Z"))
    );
    // A run in the repeated hour fires once, at its first occurrence.
    let fold = settings("02:00", "America/New_York", "0 30 1 * * *");
    assert_eq!(
        fold.next_run_after(ts("2026-11-01T05:00:00Z")),
        Some(ts("2026-11-01T05:30:00Z"))
    );
    assert_eq!(
        fold.next_run_after(ts("2026-11-01T05:30:00Z")),
        Some(ts("2026-11-02T06:30:00Z"))
    );
}

// ---- figures ------------------------------------------------------------------------

const START: i64 = 1_795_449_600_000; // 2026-11-23T16:00:00Z
const HOUR: i64 = 3_600_000;

fn window() -> Window {
    CloseSettings::default().window(date(2026, 11, 23)).unwrap()
}

fn order(
    id: &str,
    conv: &str,
    method: PaymentMethod,
    subtotal: i64,
    tax: i64,
    tip: i64,
    at: i64,
) -> CloseOrder {
    CloseOrder {
        id: id.into(),
        conversation_id: conv.into(),
        payment_method: method,
        currency: Currency::USD,
        tax_inclusive: false,
        subtotal,
        tax,
        service_charge: 0,
        tip,
        total: subtotal + tax + tip,
        created_at: UnixMs(at),
    }
}

fn ev(o: &CloseOrder, seq: u32, at: i64, to: OrderStatus, action: AuditAction) -> CloseEvent {
    CloseEvent {
        order_id: o.id.clone(),
        payment_method: o.payment_method,
        currency: o.currency,
        seq,
        at: UnixMs(at),
        to,
        action,
    }
}

fn created(o: &CloseOrder) -> CloseEvent {
    ev(
        o,
        0,
        o.created_at.0,
        OrderStatus::Confirmed,
        AuditAction::Created,
    )
}

fn pay(o: &CloseOrder, seq: u32, at: i64) -> CloseEvent {
    ev(
        o,
        seq,
        at,
        OrderStatus::Paid,
        AuditAction::Payment { amount: o.total },
    )
}

/// A day with one of everything.
fn sample() -> CloseInput {
    use OrderStatus as S;
    use PaymentMethod::{Counter, Stripe};
    let a = order("a", "conv-1", Counter, 2598, 230, 0, START + HOUR);
    let b = order("b", "conv-1", Counter, 1000, 89, 200, START + 2 * HOUR);
    let c = order("c", "conv-2", Counter, 500, 44, 0, START + 3 * HOUR); // cancelled
    let d = order("d", "conv-3", Counter, 700, 62, 0, START + 4 * HOUR); // open, unpaid
    let e = order("e", "conv-4", Stripe, 1500, 133, 0, START + 5 * HOUR); // provider disagrees
    let f = order("f", "conv-5", Counter, 900, 80, 0, START + 6 * HOUR); // paid short (corrupt)
    let early = order("early", "conv-0", Counter, 4000, 355, 0, START - 10 * HOUR);
    let late = order("late", "conv-9", Counter, 800, 71, 0, START + 25 * HOUR);
    let mut euro = order("euro", "conv-6", Counter, 100, 0, 0, START + 7 * HOUR);
    euro.currency = Currency::EUR;
    let events = vec![
        created(&a),
        pay(&a, 1, START + HOUR + 60_000),
        ev(&a, 2, START + 2 * HOUR, S::InKitchen, AuditAction::Moved),
        ev(&a, 3, START + 3 * HOUR, S::Ready, AuditAction::Moved),
        ev(
            &a,
            4,
            START + 3 * HOUR + 1,
            S::Completed,
            AuditAction::Moved,
        ),
        ev(
            &a,
            5,
            START + 8 * HOUR,
            S::Completed,
            AuditAction::Refund { amount: 500 },
        ),
        created(&b),
        pay(&b, 1, START + 2 * HOUR + 1),
        // Refunded in full the next day: lands in that day, not this one.
        ev(
            &b,
            2,
            START + 30 * HOUR,
            S::Refunded,
            AuditAction::Refund { amount: b.total },
        ),
        created(&c),
        ev(
            &c,
            1,
            START + 3 * HOUR + 5,
            S::Cancelled,
            AuditAction::Moved,
        ),
        created(&d),
        ev(
            &d,
            1,
            START + 4 * HOUR + 5,
            S::InKitchen,
            AuditAction::Moved,
        ),
        // Paid after the day ended: the day still sees it open and unpaid.
        ev(
            &d,
            2,
            START + 24 * HOUR + 5,
            S::InKitchen,
            AuditAction::Payment { amount: d.total },
        ),
        created(&e),
        pay(&e, 1, START + 5 * HOUR + 1),
        created(&f),
        ev(
            &f,
            1,
            START + 6 * HOUR + 1,
            S::Paid,
            AuditAction::Payment { amount: 100 },
        ),
        // An order of the day before refunded today.
        ev(
            &early,
            3,
            START + 9 * HOUR,
            S::Completed,
            AuditAction::Refund { amount: 1000 },
        ),
        // A duplicate of an entry already listed counts once.
        pay(&a, 1, START + HOUR + 60_000),
        created(&euro),
        pay(&euro, 1, START + 7 * HOUR + 1),
    ];
    let mut provider = BTreeMap::new();
    provider.insert("e".to_string(), 1000);
    CloseInput {
        tenant: "demo-restaurant".into(),
        currency: Currency::USD,
        window: window(),
        orders: vec![a, b, c, d, e, f, late, euro],
        events,
        provider_payments: Some(provider),
    }
}

#[test]
fn a_day_with_one_of_everything_adds_up_exactly() {
    let r = CloseReport::compute(&sample()).unwrap();
    assert_eq!(r.business_date, "2026-11-23");
    assert_eq!(r.window.start, "2026-11-23T16:00:00Z");
    assert_eq!(r.window.end, "2026-11-24T16:00:00Z");
    let s = &r.sales;
    // a, b, d, e, f (c cancelled, late is tomorrow's, euro another currency).
    assert_eq!(s.orders, 5);
    assert_eq!(s.guests, 4, "a and b share a conversation");
    assert_eq!(s.gross_sales, 2598 + 1000 + 700 + 1500 + 900);
    assert_eq!(s.tax, 230 + 89 + 62 + 133 + 80);
    assert_eq!(s.tips, 200);
    assert_eq!(s.discounts, 0);
    assert_eq!(s.total, 2828 + 1289 + 762 + 1633 + 980);
    assert_eq!(
        s.refunds,
        500 + 1000,
        "a's partial refund and the earlier order's"
    );
    assert_eq!(s.net, s.total - 1500);
    assert_eq!(s.average_ticket, 1498, "7492 / 5 = 1498.4 → 1498");
    assert_eq!(
        r.cancelled,
        Tally {
            orders: 1,
            total: 544
        }
    );
    assert_eq!(r.open.ids, vec!["b", "d", "e", "f"]);
    let counter = &r.payment_methods["counter"];
    assert_eq!(
        (counter.orders, counter.sales),
        (4, 2828 + 1289 + 762 + 980)
    );
    assert_eq!(counter.payments, 2828 + 1289 + 100);
    assert_eq!(counter.refunds, 1500);
    assert_eq!(counter.net, 2828 + 1289 + 100 - 1500);
    let stripe = &r.payment_methods["stripe"];
    assert_eq!(
        (stripe.orders, stripe.sales, stripe.payments),
        (1, 1633, 1633)
    );
    let rec = &r.reconciliation;
    assert_eq!(
        rec.paid_orders, 4,
        "a, b, e, f; d was paid after the day ended"
    );
    assert_eq!(rec.matched, 2);
    assert!(rec.provider_checked);
    let ids: Vec<&str> = rec.mismatches.iter().map(|m| m.order_id.as_str()).collect();
    assert_eq!(ids, vec!["e", "f", "euro"]);
    assert_eq!(rec.mismatches[0].provider, Some(1000));
    assert!(
        rec.mismatches[1].problem.contains("1.00"),
        "{:?}",
        rec.mismatches[1]
    );
    assert!(rec.mismatches[2].problem.contains("EUR"));
    let line = r.summary();
    assert!(
        line.contains("5 orders") && line.contains("USD 74.92"),
        "{line}"
    );
    assert!(
        line.contains("3 of 4 paid orders do NOT reconcile") || line.contains("do NOT"),
        "{line}"
    );
}

#[test]
fn without_provider_events_stripe_is_checked_against_its_entries_only() {
    let mut input = sample();
    input.provider_payments = None;
    let r = CloseReport::compute(&input).unwrap();
    assert!(!r.reconciliation.provider_checked);
    assert_eq!(r.reconciliation.matched, 3);
}

#[test]
fn rendering_is_byte_identical_and_canonical() {
    let r = CloseReport::compute(&sample()).unwrap();
    let one = render(&r).unwrap();
    // Shuffled input, same facts: same bytes.
    let mut input = sample();
    input.orders.reverse();
    input.events.reverse();
    let two = render(&CloseReport::compute(&input).unwrap()).unwrap();
    assert_eq!(one, two);
    let text = String::from_utf8(one.json.clone()).unwrap();
    assert!(
        text.starts_with("{\n  \"format\": \"stonepot.close.v1\",\n  \"tenant\""),
        "{text}"
    );
    assert!(text.ends_with("}\n"));
    assert!(text.contains("\"grossSales\": 6698"), "{text}");
    assert_eq!(one.sha256.len(), 64);
    let csv = String::from_utf8(one.csv).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("section,metric,key,count,amount_minor,amount,currency")
    );
    assert!(
        csv.contains("\r\nsales,total,,,7492,74.92,USD\r\n"),
        "{csv}"
    );
    assert!(csv.contains("\r\npayment_method,sales,stripe,1,1633,16.33,USD\r\n"));
    // A problem text with a comma is quoted.
    assert!(
        csv.contains("\"f: payment entries sum to 1.00, the order total is 9.80\""),
        "{csv}"
    );
    // One more refund in the window changes the bytes (an amendment).
    let mut later = sample();
    let a = later.orders[0].clone();
    later.events.push(ev(
        &a,
        6,
        START + 10 * HOUR,
        OrderStatus::Completed,
        AuditAction::Refund { amount: 1 },
    ));
    let three = render(&CloseReport::compute(&later).unwrap()).unwrap();
    assert_ne!(three.sha256, two.sha256);
}

#[test]
fn an_empty_day_is_all_zeros() {
    let input = CloseInput {
        tenant: "t".into(),
        currency: Currency::USD,
        window: window(),
        orders: vec![],
        events: vec![],
        provider_payments: None,
    };
    let r = CloseReport::compute(&input).unwrap();
    assert_eq!(r.sales.orders, 0);
    assert_eq!(r.sales.average_ticket, 0);
    assert_eq!(r.payment_methods.len(), 2);
    assert!(r.summary().contains("all 0 paid orders reconcile"));
}

#[test]
fn average_ticket_rounds_half_up() {
    assert_eq!(div_half_up(5, 2), 3);
    assert_eq!(div_half_up(7, 3), 2);
    assert_eq!(div_half_up(8, 3), 3);
    assert_eq!(div_half_up(0, 0), 0);
    assert_eq!(div_half_up(-5, 2), -3);
}

// ---- property: the totals reconcile for any day --------------------------------------

/// What happens to one generated order.
#[derive(Debug, Clone)]
struct Gen {
    method: bool,
    inclusive: bool,
    subtotal: i64,
    tax: i64,
    service: i64,
    tip: i64,
    created: i64,
    conv: u8,
    /// 0 open, 1 cancelled, 2 paid, 3 paid and completed.
    fate: u8,
    paid_after: i64,
    refunds: Vec<(i64, i64)>,
}

fn gen_order() -> impl Strategy<Value = Gen> {
    (
        any::<bool>(),
        any::<bool>(),
        0i64..1_000_000,
        0i64..100_000,
        0i64..10_000,
        0i64..10_000,
        -30 * HOUR..50 * HOUR,
        0u8..20,
        0u8..4,
        0i64..30 * HOUR,
        prop::collection::vec((1i64..5_000, 0i64..30 * HOUR), 0..3),
    )
        .prop_map(
            |(
                method,
                inclusive,
                subtotal,
                tax,
                service,
                tip,
                created,
                conv,
                fate,
                paid_after,
                refunds,
            )| Gen {
                method,
                inclusive,
                subtotal,
                tax: if inclusive { tax.min(subtotal) } else { tax },
                service,
                tip,
                created,
                conv,
                fate,
                paid_after,
                refunds,
            },
        )
}

fn build(gens: &[Gen]) -> CloseInput {
    let mut orders = Vec::new();
    let mut events = Vec::new();
    for (i, g) in gens.iter().enumerate() {
        let total = g.subtotal + if g.inclusive { 0 } else { g.tax } + g.service + g.tip;
        let o = CloseOrder {
            id: format!("o{i:03}"),
            conversation_id: format!("c{}", g.conv),
            payment_method: if g.method {
                PaymentMethod::Stripe
            } else {
                PaymentMethod::Counter
            },
            currency: Currency::USD,
            tax_inclusive: g.inclusive,
            subtotal: g.subtotal,
            tax: g.tax,
            service_charge: g.service,
            tip: g.tip,
            total,
            created_at: UnixMs(START + g.created),
        };
        events.push(created(&o));
        let mut seq = 1;
        let mut at = START + g.created;
        match g.fate {
            1 => events.push(ev(
                &o,
                1,
                at + 1,
                OrderStatus::Cancelled,
                AuditAction::Moved,
            )),
            2 | 3 => {
                at += 1 + g.paid_after;
                events.push(pay(&o, seq, at));
                seq += 1;
                if g.fate == 3 {
                    at += 1;
                    events.push(ev(&o, seq, at, OrderStatus::Completed, AuditAction::Moved));
                    seq += 1;
                }
                let mut refunded = 0;
                for (amount, gap) in &g.refunds {
                    let amount = (*amount).min(total - refunded);
                    if amount <= 0 {
                        break;
                    }
                    refunded += amount;
                    at += 1 + gap;
                    events.push(ev(
                        &o,
                        seq,
                        at,
                        OrderStatus::Completed,
                        AuditAction::Refund { amount },
                    ));
                    seq += 1;
                }
            }
            _ => {}
        }
        orders.push(o);
    }
    let start = START;
    let end = START + 24 * HOUR;
    let placed: Vec<CloseOrder> = orders
        .into_iter()
        .filter(|o| o.created_at.0 >= start && o.created_at.0 < end)
        .collect();
    let ids: BTreeSet<String> = placed.iter().map(|o| o.id.clone()).collect();
    let events = events
        .into_iter()
        .filter(|e| ids.contains(&e.order_id) || (e.at.0 >= start && e.at.0 < end))
        .collect();
    CloseInput {
        tenant: "t".into(),
        currency: Currency::USD,
        window: window(),
        orders: placed,
        events,
        provider_payments: None,
    }
}

proptest! {
    #[test]
    fn totals_reconcile(gens in prop::collection::vec(gen_order(), 0..40)) {
        let input = build(&gens);
        let r = CloseReport::compute(&input).unwrap();
        let s = &r.sales;
        prop_assert_eq!(s.gross_sales - s.discounts + s.tax + s.service_charges + s.tips, s.total);
        prop_assert_eq!(s.net, s.total - s.refunds);
        let m = &r.payment_methods;
        prop_assert_eq!(m.values().map(|x| x.orders).sum::<u64>(), s.orders);
        prop_assert_eq!(m.values().map(|x| x.sales).sum::<i64>(), s.total);
        prop_assert_eq!(m.values().map(|x| x.refunds).sum::<i64>(), s.refunds);
        for x in m.values() {
            prop_assert_eq!(x.net, x.payments - x.refunds);
        }
        // Every order placed in the window is a sale or a cancellation.
        prop_assert_eq!(s.orders + r.cancelled.orders, input.orders.len() as u64);
        // Payments in the window are the payment entries in the window.
        let (start, end) = (input.window.start_ms(), input.window.end_ms());
        let paid_in_window: i64 = input.events.iter().filter(|e| e.at.0 >= start && e.at.0 < end)
            .filter_map(|e| match e.action { AuditAction::Payment { amount } => Some(amount), _ => None })
            .sum();
        prop_assert_eq!(m.values().map(|x| x.payments).sum::<i64>(), paid_in_window);
        // Generated payments are always exact: everything paid reconciles.
        let rec = &r.reconciliation;
        prop_assert!(rec.mismatches.is_empty(), "{:?}", rec.mismatches);
        prop_assert_eq!(rec.matched, rec.paid_orders);
        prop_assert!(r.open.orders <= s.orders);
        prop_assert!(s.guests <= s.orders);
        if s.orders > 0 {
            let lo = (s.total * 2 - s.orders as i64) / (2 * s.orders as i64);
            prop_assert!(s.average_ticket >= lo && s.average_ticket <= s.total / s.orders as i64 + 1);
        }
        // Rendering is a function of the facts.
        prop_assert_eq!(render(&r).unwrap(), render(&CloseReport::compute(&input).unwrap()).unwrap());
    }
}
