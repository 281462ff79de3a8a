//! Settling an order from a payment provider's evidence, and the flags an order carries
//! when that evidence does not add up.
//!
//! A provider (Stripe Checkout) tells us, through a signed webhook or the success
//! redirect, that a payment of some amount in some currency was captured for an order.
//! [`Order::settle`] decides what that means, purely: pay the order (an audit entry to
//! apply with a compare-and-set), nothing (already paid: a duplicate), or a
//! [`OrderFlag`] for staff when the money does not match the quote — an order is
//! never paid at an amount or currency other than its own, and money captured on an
//! order that was cancelled meanwhile is flagged for a refund rather than ignored.

use super::order::{Actor, AuditEntry, Order, OrderStatus, TransitionError};
use super::time::UnixMs;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a provider says it captured for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEvidence {
    /// `stripe`.
    pub provider: String,
    /// The provider's object that carried the payment (a Checkout Session id): the
    /// same for the redirect and every webhook about it, so their flags coincide.
    pub reference: String,
    /// Minor units, as the provider counts them.
    pub amount: i64,
    /// ISO code, any case (Stripe sends lower case).
    pub currency: String,
}

/// Something about an order staff must look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFlag {
    pub at: UnixMs,
    pub provider: String,
    pub reference: String,
    #[serde(flatten)]
    pub problem: FlagProblem,
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum FlagProblem {
    /// The provider captured another amount than the order's total; the order stays
    /// unpaid.
    AmountMismatch { expected: i64, received: i64 },
    /// The provider captured money in another currency; the order stays unpaid.
    CurrencyMismatch { expected: String, received: String },
    /// Money arrived for an order that was already closed (cancelled while the guest
    /// was paying): it must be refunded by hand.
    PaidWhileClosed { status: OrderStatus, amount: i64 },
}

impl fmt::Display for FlagProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagProblem::AmountMismatch { expected, received } => write!(
                f,
                "the payment was {received} minor units, the order total is {expected}"
            ),
            FlagProblem::CurrencyMismatch { expected, received } => write!(
                f,
                "the payment was in {received}, the order is in {expected}"
            ),
            FlagProblem::PaidWhileClosed { status, amount } => write!(
                f,
                "{amount} minor units were captured after the order was {status}; refund them"
            ),
        }
    }
}

/// What a payment means for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Pay the order: apply this entry (compare-and-set on the order's version).
    Pay(AuditEntry),
    /// The order is already paid: nothing to do (a duplicate event, or the redirect
    /// and the webhook both arriving).
    AlreadyPaid,
    /// Do not pay; record this flag.
    Flag(OrderFlag),
    /// The payment cannot apply for another reason (an actor that may not pay).
    Refused(TransitionError),
}

impl Order {
    /// Decides what `evidence` of a captured payment does to this order, at `at`, as
    /// `actor` (a [`Actor::Payment`]).
    ///
    /// The money is checked first, whatever the status: another currency or amount is
    /// flagged and never pays. Then an already-paid order is [`Settlement::AlreadyPaid`],
    /// a cancelled one is flagged for a refund, and anything else is a payment of
    /// exactly the total through [`Order::pay`].
    pub fn settle(&self, evidence: &PaymentEvidence, actor: &Actor, at: UnixMs) -> Settlement {
        let flag = |problem| {
            Settlement::Flag(OrderFlag {
                at,
                provider: evidence.provider.clone(),
                reference: evidence.reference.clone(),
                problem,
            })
        };
        if !evidence.currency.eq_ignore_ascii_case(self.currency.code()) {
            return flag(FlagProblem::CurrencyMismatch {
                expected: self.currency.code().to_string(),
                received: evidence.currency.to_ascii_uppercase(),
            });
        }
        if evidence.amount != self.total {
            return flag(FlagProblem::AmountMismatch {
                expected: self.total,
                received: evidence.amount,
            });
        }
        if self.is_paid() {
            return Settlement::AlreadyPaid;
        }
        if self.status.is_terminal() {
            return flag(FlagProblem::PaidWhileClosed {
                status: self.status,
                amount: evidence.amount,
            });
        }
        match self.pay(evidence.amount, actor, at) {
            Ok(entry) => Settlement::Pay(entry),
            Err(TransitionError::AlreadyPaid) => Settlement::AlreadyPaid,
            Err(e) => Settlement::Refused(e),
        }
    }

    /// Records `flag` unless the same problem from the same provider object is already
    /// there (the redirect and every webhook about one session flag it once). True
    /// when it was added.
    pub fn add_flag(&mut self, flag: OrderFlag) -> bool {
        let known = self.flags.iter().any(|f| {
            f.provider == flag.provider
                && f.reference == flag.reference
                && f.problem == flag.problem
        });
        if !known {
            self.flags.push(flag);
        }
        !known
    }
}
