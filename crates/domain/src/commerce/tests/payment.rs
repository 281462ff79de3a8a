//! Settling orders from payment evidence: exact amounts pay once, anything else is a
//! flag.

use super::order::{at, guest, order, staff, stripe};
use super::*;

fn evidence(amount: i64, currency: &str) -> PaymentEvidence {
    PaymentEvidence {
        provider: "stripe".into(),
        reference: "cs_test_1".into(),
        amount,
        currency: currency.into(),
    }
}

#[test]
fn settling_pays_exactly_the_total_once() {
    let mut o = order(PaymentMethod::Stripe);
    let Settlement::Pay(entry) = o.settle(&evidence(o.total, "usd"), &stripe(), at(5)) else {
        panic!("a matching payment pays");
    };
    o.apply(entry).unwrap();
    assert_eq!((o.status, o.captured), (OrderStatus::Paid, o.total));
    assert_eq!(
        o.settle(&evidence(o.total, "USD"), &stripe(), at(6)),
        Settlement::AlreadyPaid
    );
    // Staff cannot settle a Stripe order.
    let fresh = order(PaymentMethod::Stripe);
    assert!(matches!(
        fresh.settle(&evidence(fresh.total, "usd"), &staff(), at(5)),
        Settlement::Refused(TransitionError::NotAllowed { .. })
    ));
}

#[test]
fn a_wrong_amount_or_currency_flags_and_never_pays() {
    let mut o = order(PaymentMethod::Stripe);
    let Settlement::Flag(flag) = o.settle(&evidence(o.total - 1, "usd"), &stripe(), at(5)) else {
        panic!("a short payment is flagged");
    };
    assert_eq!(
        flag.problem,
        FlagProblem::AmountMismatch {
            expected: o.total,
            received: o.total - 1
        }
    );
    assert!(o.add_flag(flag.clone()));
    assert!(!o.add_flag(flag), "the same problem is flagged once");
    let Settlement::Flag(flag) = o.settle(&evidence(o.total, "eur"), &stripe(), at(6)) else {
        panic!("another currency is flagged");
    };
    assert_eq!(
        flag.problem,
        FlagProblem::CurrencyMismatch {
            expected: "USD".into(),
            received: "EUR".into()
        }
    );
    assert!(!o.is_paid());
    // The flag survives a round trip, and an order stored before flags loads.
    let mut v = serde_json::to_value(&o).unwrap();
    assert_eq!(v["flags"][0]["kind"], "amount_mismatch");
    assert_eq!(v["flags"][0]["received"], o.total - 1);
    let back: Order = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(back, o);
    v.as_object_mut().unwrap().remove("flags");
    let old: Order = serde_json::from_value(v).unwrap();
    assert!(old.flags.is_empty());
}

#[test]
fn money_for_a_cancelled_order_is_flagged_for_a_refund() {
    let mut o = order(PaymentMethod::Stripe);
    o.advance(OrderStatus::Cancelled, &guest(), at(2)).unwrap();
    let Settlement::Flag(flag) = o.settle(&evidence(o.total, "usd"), &stripe(), at(5)) else {
        panic!("a payment on a cancelled order is flagged");
    };
    assert!(matches!(
        flag.problem,
        FlagProblem::PaidWhileClosed {
            status: OrderStatus::Cancelled,
            ..
        }
    ));
    assert!(flag.problem.to_string().contains("refund"));
}
