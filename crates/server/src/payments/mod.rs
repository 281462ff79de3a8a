//! Payments: Stripe Checkout for orders placed with `paymentMethod: stripe`, signed
//! webhooks, the success redirect, and refunds (through Stripe when the order was paid
//! there, recorded locally for pay-at-counter orders).
//!
//! - [`stripe`]: the HTTP client (form-encoded requests, idempotency keys, timeouts).
//! - [`checkout`]: a Checkout Session for exactly an order's total, shown on the
//!   guest's display as a link and a QR code; reused while it is open.
//! - [`webhook`]: `POST /webhooks/stripe` — the signature checked on the raw body,
//!   then the event read as untyped JSON.
//! - [`fulfil`]: the one function the webhook and the success redirect both call to
//!   settle an order; safe to run any number of times, concurrently.
//! - [`refunds`]: full or partial refunds, never more than captured.
//!
//! Pay at counter needs none of this and stays the default.

pub mod checkout;
pub mod fulfil;
pub mod refunds;
pub mod stripe;
pub mod webhook;

pub use fulfil::{Evidence, Fulfilled, fulfil};

/// The provider name stored with sessions, events and refunds.
pub const STRIPE: &str = "stripe";
