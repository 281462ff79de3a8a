//! Commerce: pricing a cart into a sealed quote the guest confirms, and the order that
//! confirmation creates.
//!
//! - [`tax`]: a tenant's [`PricingPolicy`] (tax rate, tax-inclusive or not, service
//!   charge, tips) and the integer arithmetic and rounding rule behind it.
//! - [`quote`]: [`Quote::build`] re-prices a cart from the menu and seals it with a
//!   SHA-256 hash and an expiry; [`Quote::is_valid_for`] checks a confirmation;
//!   [`Quote::read_back`] and [`Quote::display_data`] render it.
//! - [`order`]: [`Order::from_quote`], the status machine with its transition table
//!   and guards, payments and refunds, and the audit trail.
//! - [`payment`]: [`Order::settle`] turns a provider's evidence into a payment, a
//!   no-op duplicate or a flag (an amount or currency that does not match).
//! - [`stripe_signature`]: the `Stripe-Signature` header, checked in constant time.
//! - [`close`]: the daily close — the business day, its schedule, and the report of a
//!   day's sales, money and reconciliation, rendered deterministically.
//!
//! All of it is pure: time comes in as [`UnixMs`], ids are chosen by the caller (the
//! quote id is derived from its hash), and nothing here stores, sends or logs.

mod canon;
pub mod close;
pub mod ids;
pub mod order;
pub mod payment;
pub mod quote;
pub mod stripe_signature;
pub mod tax;
pub mod time;

pub use ids::{OrderId, QuoteId};
pub use order::{
    Actor, ActorKind, AuditAction, AuditEntry, Guard, LineOrigin, Order, OrderError, OrderLine,
    OrderOrigin, OrderStatus, OrderType, PaymentMethod, TRANSITIONS, Transition, TransitionError,
    transition_row,
};
pub use payment::{FlagProblem, OrderFlag, PaymentEvidence, Settlement};
pub use quote::{
    DEFAULT_QUOTE_TTL, Quote, QuoteError, QuoteLine, QuoteModifier, StaleQuote, Tip,
    menu_fingerprint, spoken_amount,
};
pub use tax::{LineTax, PricingError, PricingPolicy};
pub use time::UnixMs;

#[cfg(test)]
mod tests;
