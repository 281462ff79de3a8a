//! Orders: what a confirmed quote becomes, and the state machine that moves it from
//! the counter to the kitchen to the guest.
//!
//! ```text
//! confirmed ──▶ paid ──▶ in_kitchen ──▶ ready ──▶ completed
//!     │  └───────────────────▲ (pay at counter: the kitchen starts before payment)
//!     ▼
//! cancelled  (while nothing is captured)      refunded  (once everything is refunded)
//! ```
//!
//! Every status change is a row of [`TRANSITIONS`]: who may make it ([`ActorKind`])
//! and the [`Guard`] it must pass. Payments and partial refunds that leave the status
//! where it is (a pay-at-counter order settled while in the kitchen, a refund of part
//! of the total) are money events with their own checks, documented on
//! [`Order::pay`] and [`Order::refund`].
//!
//! Checking and applying are separate: [`Order::transition`], [`Order::pay`] and
//! [`Order::refund`] take `&self` and return the [`AuditEntry`] they would record, so
//! the store can write it in the same transaction as a compare-and-set on the status
//! (`… WHERE status = entry.from AND version = entry.seq`, since a money event may
//! keep the status); [`Order::apply`] re-checks an entry and applies it. An entry
//! checked against an older state is refused as stale, which is what makes duplicate
//! webhooks and double taps harmless.

use super::ids::{OrderId, QuoteId};
use super::quote::{Quote, QuoteLine, line_json, money_json};
use super::time::UnixMs;
use crate::SessionId;
use crate::money::Currency;
use ActorKind as A;
use OrderStatus as S;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Confirmed,
    Paid,
    InKitchen,
    Ready,
    Completed,
    Cancelled,
    Refunded,
}

impl OrderStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::Confirmed,
        OrderStatus::Paid,
        OrderStatus::InKitchen,
        OrderStatus::Ready,
        OrderStatus::Completed,
        OrderStatus::Cancelled,
        OrderStatus::Refunded,
    ];

    /// The snake_case name, as serialized and as the `order_status` component takes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Paid => "paid",
            OrderStatus::InKitchen => "in_kitchen",
            OrderStatus::Ready => "ready",
            OrderStatus::Completed => "completed",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Cancelled and refunded orders never change again.
    pub fn is_terminal(&self) -> bool {
        matches!(self, OrderStatus::Cancelled | OrderStatus::Refunded)
    }

    /// Still being worked on (neither completed, cancelled nor refunded); the daily
    /// close lists these as open.
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            OrderStatus::Confirmed
                | OrderStatus::Paid
                | OrderStatus::InKitchen
                | OrderStatus::Ready
        )
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the guest gets the food.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    DineIn,
    Pickup,
    Delivery,
}

impl OrderType {
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderType::DineIn => "dine_in",
            OrderType::Pickup => "pickup",
            OrderType::Delivery => "delivery",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [OrderType::DineIn, OrderType::Pickup, OrderType::Delivery]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// How the order is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// At the counter or table (the default; needs nothing configured). The kitchen
    /// may start before payment, and staff record the payment.
    Counter,
    /// Stripe Checkout: only a verified payment event pays the order, and the kitchen
    /// starts once it is paid.
    Stripe,
}

/// Who moved an order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Actor {
    /// The guest, from the display (a tap) or the storefront.
    Guest { session_id: String },
    /// The conversation agent, through a tool call. It may confirm and cancel, never
    /// pay or refund.
    Agent {
        session_id: String,
        #[serde(default)]
        tool_call_id: Option<String>,
    },
    /// A staff member (kitchen page, counter, admin).
    Staff { user_id: String },
    /// A verified payment-provider event (a Stripe webhook) or its success redirect.
    Payment { provider: String, reference: String },
    /// A scheduled or automatic job (firing a kitchen ticket, expiring a checkout).
    System { reason: String },
}

impl Actor {
    pub fn kind(&self) -> ActorKind {
        match self {
            Actor::Guest { .. } => ActorKind::Guest,
            Actor::Agent { .. } => ActorKind::Agent,
            Actor::Staff { .. } => ActorKind::Staff,
            Actor::Payment { .. } => ActorKind::Payment,
            Actor::System { .. } => ActorKind::System,
        }
    }
}

/// The kind of an [`Actor`], which is what the transition table grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Guest,
    Agent,
    Staff,
    Payment,
    System,
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActorKind::Guest => "the guest",
            ActorKind::Agent => "the agent",
            ActorKind::Staff => "staff",
            ActorKind::Payment => "a payment event",
            ActorKind::System => "the system",
        })
    }
}

/// The condition a row of [`TRANSITIONS`] adds to "who".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    /// Nothing more.
    Always,
    /// Not paid yet; the amount equals the order total; a Stripe order is paid only
    /// by a payment event.
    Payment,
    /// Only pay-at-counter orders start in the kitchen before they are paid.
    PayAtCounter,
    /// Nothing is captured (a paid order is refunded instead of cancelled).
    Unpaid,
    /// The order is paid.
    Paid,
    /// The order is paid and the refund covers everything not yet refunded.
    FullRefund,
}

/// One allowed status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub from: OrderStatus,
    pub to: OrderStatus,
    pub actors: &'static [ActorKind],
    pub guard: Guard,
}

const fn row(
    from: OrderStatus,
    to: OrderStatus,
    actors: &'static [ActorKind],
    guard: Guard,
) -> Transition {
    Transition {
        from,
        to,
        actors,
        guard,
    }
}

const ANYONE_BUT_PAYMENT: &[ActorKind] = &[A::Guest, A::Agent, A::Staff, A::System];
const STAFF_OR_SYSTEM: &[ActorKind] = &[A::Staff, A::System];
const STAFF: &[ActorKind] = &[A::Staff];
const MONEY: &[ActorKind] = &[A::Staff, A::Payment];

/// Every status change an order may make; anything else is refused.
pub const TRANSITIONS: &[Transition] = &[
    row(S::Confirmed, S::Paid, MONEY, Guard::Payment),
    row(
        S::Confirmed,
        S::InKitchen,
        STAFF_OR_SYSTEM,
        Guard::PayAtCounter,
    ),
    row(
        S::Confirmed,
        S::Cancelled,
        ANYONE_BUT_PAYMENT,
        Guard::Unpaid,
    ),
    row(S::Paid, S::InKitchen, STAFF_OR_SYSTEM, Guard::Always),
    row(S::Paid, S::Refunded, MONEY, Guard::FullRefund),
    row(S::InKitchen, S::Ready, STAFF, Guard::Always),
    row(S::InKitchen, S::Cancelled, STAFF, Guard::Unpaid),
    row(S::InKitchen, S::Refunded, MONEY, Guard::FullRefund),
    row(S::Ready, S::Completed, STAFF, Guard::Paid),
    row(S::Ready, S::Cancelled, STAFF, Guard::Unpaid),
    row(S::Ready, S::Refunded, MONEY, Guard::FullRefund),
    row(S::Completed, S::Refunded, MONEY, Guard::FullRefund),
];

/// The row for `from → to`, if the move exists at all.
pub fn transition_row(from: OrderStatus, to: OrderStatus) -> Option<&'static Transition> {
    TRANSITIONS.iter().find(|t| t.from == from && t.to == to)
}

/// What an audit entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditAction {
    /// The order was created from a confirmed quote.
    Created,
    /// A status change with no money.
    Moved,
    /// A payment was captured (minor units).
    Payment { amount: i64 },
    /// Money was refunded (minor units).
    Refund { amount: i64 },
}

/// One line of an order's audit trail: who did what, when, from which status to which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// 0 for creation, then one more per entry.
    pub seq: u32,
    pub at: UnixMs,
    pub actor: Actor,
    /// `None` only for creation.
    pub from: Option<OrderStatus>,
    /// Equal to `from` for a payment or partial refund that leaves the status.
    pub to: OrderStatus,
    pub action: AuditAction,
}

/// Which conversation turn and tool call put a line in the cart.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineOrigin {
    /// `None` when the line came from the storefront or the display rather than a turn.
    pub turn: Option<u32>,
    pub tool_call_id: Option<String>,
}

/// Where an order came from: the conversation, the turn and tool call (or tap) that
/// confirmed it, and each cart line's origin keyed by line id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderOrigin {
    pub conversation_id: SessionId,
    /// The turn of the confirmation (`None` for a tap on the display).
    pub turn: Option<u32>,
    /// The `confirm_order` tool call, when the confirmation came through one.
    pub tool_call_id: Option<String>,
    /// The guest (tap), the agent (`confirm_order`) or staff.
    pub confirmed_by: Actor,
    /// Every quoted line's origin, keyed by cart line id.
    pub lines: BTreeMap<String, LineOrigin>,
}

/// One line of an order: the quoted line and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    #[serde(flatten)]
    pub priced: QuoteLine,
    pub origin: LineOrigin,
}

/// An order: the quote it was placed from, frozen, plus its status, money and trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: OrderId,
    pub quote_id: QuoteId,
    pub quote_hash: String,
    pub menu_version: String,
    pub order_type: OrderType,
    pub payment_method: PaymentMethod,
    pub status: OrderStatus,
    pub currency: Currency,
    pub tax_inclusive: bool,
    pub lines: Vec<OrderLine>,
    pub subtotal: i64,
    pub tax: i64,
    pub service_charge: i64,
    pub tip: i64,
    /// What the guest owes; a payment must equal it.
    pub total: i64,
    pub conversation_id: SessionId,
    pub confirmed_turn: Option<u32>,
    pub confirmed_tool_call_id: Option<String>,
    pub created_at: UnixMs,
    /// Captured so far: 0, or `total` once paid.
    pub captured: i64,
    /// Refunded so far, never more than `captured`.
    pub refunded: i64,
    pub paid_at: Option<UnixMs>,
    pub audit: Vec<AuditEntry>,
    /// Problems staff must look at (a payment that did not match the total), oldest
    /// first. Not part of the audit trail: a flag changes no status or money. Orders
    /// stored before flags existed load with none.
    #[serde(default)]
    pub flags: Vec<super::payment::OrderFlag>,
}

/// Why an order could not be created from a quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum OrderError {
    #[error("the quote no longer matches its hash")]
    QuoteTampered,
    #[error("the quote expired at {expires_at}")]
    QuoteExpired { expires_at: UnixMs },
    #[error("{actor} cannot confirm an order")]
    ConfirmerNotAllowed { actor: ActorKind },
    #[error("line {line_id} has no recorded origin (turn and tool call)")]
    MissingLineOrigin { line_id: String },
}

impl OrderError {
    /// The stable code, as serialized.
    pub fn code(&self) -> &'static str {
        match self {
            OrderError::QuoteTampered => "quote_tampered",
            OrderError::QuoteExpired { .. } => "quote_expired",
            OrderError::ConfirmerNotAllowed { .. } => "confirmer_not_allowed",
            OrderError::MissingLineOrigin { .. } => "missing_line_origin",
        }
    }
}

/// Why a move, payment or refund was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum TransitionError {
    #[error("an order that is {from} cannot become {to}")]
    Illegal { from: OrderStatus, to: OrderStatus },
    #[error("the order is {status}; nothing more can happen to it")]
    Closed { status: OrderStatus },
    #[error("{actor} may not {action}")]
    NotAllowed { actor: ActorKind, action: String },
    #[error("the order is paid online and goes to the kitchen once it is paid")]
    AwaitingPayment,
    #[error("the order is paid: refund it rather than cancel it")]
    RefundInstead,
    #[error("the order has not been paid")]
    NotPaid,
    #[error("the order is already paid")]
    AlreadyPaid,
    #[error("the payment of {got} minor units does not equal the order total of {expected}")]
    AmountMismatch { expected: i64, got: i64 },
    #[error("the amount must be more than zero, not {amount}")]
    BadAmount { amount: i64 },
    #[error("at most {refundable} minor units can be refunded, not {requested}")]
    RefundTooLarge { refundable: i64, requested: i64 },
    #[error("the order changed since this entry was checked (expected entry {expected_seq})")]
    Stale { expected_seq: u32 },
    #[error("the order's amounts are out of range")]
    Overflow,
}

impl TransitionError {
    /// The stable code, as serialized.
    pub fn code(&self) -> &'static str {
        match self {
            TransitionError::Illegal { .. } => "illegal",
            TransitionError::Closed { .. } => "closed",
            TransitionError::NotAllowed { .. } => "not_allowed",
            TransitionError::AwaitingPayment => "awaiting_payment",
            TransitionError::RefundInstead => "refund_instead",
            TransitionError::NotPaid => "not_paid",
            TransitionError::AlreadyPaid => "already_paid",
            TransitionError::AmountMismatch { .. } => "amount_mismatch",
            TransitionError::BadAmount { .. } => "bad_amount",
            TransitionError::RefundTooLarge { .. } => "refund_too_large",
            TransitionError::Stale { .. } => "stale",
            TransitionError::Overflow => "overflow",
        }
    }
}

impl Order {
    /// Places an order from a confirmed quote.
    ///
    /// The caller has already checked the confirmation with
    /// [`Quote::is_valid_for`]; this re-checks what it can see on its own (the
    /// quote's hash and expiry at `at`), requires every line's origin in
    /// `origin.lines`, and records the creation as audit entry 0.
    pub fn from_quote(
        id: OrderId,
        quote: &Quote,
        order_type: OrderType,
        payment_method: PaymentMethod,
        origin: OrderOrigin,
        at: UnixMs,
    ) -> Result<Order, OrderError> {
        if !quote.verify_hash() {
            return Err(OrderError::QuoteTampered);
        }
        if at >= quote.expires_at {
            return Err(OrderError::QuoteExpired {
                expires_at: quote.expires_at,
            });
        }
        let who = origin.confirmed_by.kind();
        if !matches!(who, A::Guest | A::Agent | A::Staff) {
            return Err(OrderError::ConfirmerNotAllowed { actor: who });
        }
        let lines =
            quote
                .lines
                .iter()
                .map(|l| {
                    let o = origin.lines.get(&l.line_id).ok_or_else(|| {
                        OrderError::MissingLineOrigin {
                            line_id: l.line_id.clone(),
                        }
                    })?;
                    Ok(OrderLine {
                        priced: l.clone(),
                        origin: o.clone(),
                    })
                })
                .collect::<Result<Vec<_>, OrderError>>()?;
        Ok(Order {
            id,
            quote_id: quote.id.clone(),
            quote_hash: quote.hash.clone(),
            menu_version: quote.menu_version.clone(),
            order_type,
            payment_method,
            status: OrderStatus::Confirmed,
            currency: quote.currency,
            tax_inclusive: quote.policy.tax_inclusive,
            lines,
            subtotal: quote.subtotal,
            tax: quote.tax,
            service_charge: quote.service_charge,
            tip: quote.tip,
            total: quote.total,
            conversation_id: origin.conversation_id,
            confirmed_turn: origin.turn,
            confirmed_tool_call_id: origin.tool_call_id,
            created_at: at,
            captured: 0,
            refunded: 0,
            paid_at: None,
            audit: vec![AuditEntry {
                seq: 0,
                at,
                actor: origin.confirmed_by,
                from: None,
                to: OrderStatus::Confirmed,
                action: AuditAction::Created,
            }],
            flags: Vec::new(),
        })
    }

    /// Whether the payment has been captured.
    pub fn is_paid(&self) -> bool {
        self.paid_at.is_some()
    }

    /// What can still be refunded.
    pub fn refundable(&self) -> i64 {
        self.captured.saturating_sub(self.refunded)
    }

    /// Checks a move to `to` by `actor` at `at` and returns the entry it would record.
    ///
    /// A move to `paid` is a payment of exactly the total ([`Order::pay`]); a move to
    /// `refunded` is a refund of everything refundable ([`Order::refund`]), so an
    /// unpaid order is refused as not paid.
    pub fn transition(
        &self,
        to: OrderStatus,
        actor: &Actor,
        at: UnixMs,
    ) -> Result<AuditEntry, TransitionError> {
        match to {
            OrderStatus::Paid if self.status == OrderStatus::Confirmed => {
                self.pay(self.total, actor, at)
            }
            OrderStatus::Refunded if !self.status.is_terminal() => {
                self.refund(self.refundable(), actor, at)
            }
            _ => self.checked_move(to, actor, at, AuditAction::Moved),
        }
    }

    /// Checks a payment of `amount` and returns the entry it would record.
    ///
    /// Refused when the order is already paid (a second capture), closed, or
    /// completed; when `amount` is not the total; on a Stripe order unless `actor` is
    /// a payment event; on a pay-at-counter order unless it is staff or a payment
    /// event. A confirmed order becomes `paid`; a pay-at-counter order already in the
    /// kitchen or ready keeps its status.
    pub fn pay(
        &self,
        amount: i64,
        actor: &Actor,
        at: UnixMs,
    ) -> Result<AuditEntry, TransitionError> {
        let action = AuditAction::Payment { amount };
        match self.status {
            OrderStatus::Confirmed => self.checked_move(OrderStatus::Paid, actor, at, action),
            OrderStatus::InKitchen | OrderStatus::Ready => {
                self.check_payment(amount, actor)?;
                Ok(self.entry(self.status, actor, at, action))
            }
            OrderStatus::Paid | OrderStatus::Completed => Err(TransitionError::AlreadyPaid),
            OrderStatus::Cancelled | OrderStatus::Refunded => Err(TransitionError::Closed {
                status: self.status,
            }),
        }
    }

    /// Checks a refund of `amount` (full or partial) and returns the entry it would
    /// record.
    ///
    /// Only staff or a payment event may refund, only a paid order, and never more
    /// than was captured minus what was already refunded. A refund that brings the
    /// refunded total to the captured amount moves the order to `refunded` (a row of
    /// [`TRANSITIONS`]); a partial one keeps the status.
    pub fn refund(
        &self,
        amount: i64,
        actor: &Actor,
        at: UnixMs,
    ) -> Result<AuditEntry, TransitionError> {
        if self.status.is_terminal() {
            return Err(TransitionError::Closed {
                status: self.status,
            });
        }
        self.check_refund(amount, actor)?;
        let action = AuditAction::Refund { amount };
        if amount == self.refundable() {
            return self.checked_move(OrderStatus::Refunded, actor, at, action);
        }
        Ok(self.entry(self.status, actor, at, action))
    }

    /// Re-checks `entry` against the order as it is now and applies it: the status,
    /// captured and refunded amounts, and the trail. An entry checked against an
    /// earlier state (another entry got in first) is refused as stale and changes
    /// nothing.
    pub fn apply(&mut self, entry: AuditEntry) -> Result<(), TransitionError> {
        let expected_seq = self.next_seq()?;
        if entry.seq != expected_seq || entry.from != Some(self.status) {
            return Err(TransitionError::Stale { expected_seq });
        }
        let rechecked = match entry.action {
            AuditAction::Created => return Err(TransitionError::Stale { expected_seq }),
            AuditAction::Moved => self.transition(entry.to, &entry.actor, entry.at)?,
            AuditAction::Payment { amount } => self.pay(amount, &entry.actor, entry.at)?,
            AuditAction::Refund { amount } => self.refund(amount, &entry.actor, entry.at)?,
        };
        if rechecked != entry {
            return Err(TransitionError::Stale { expected_seq });
        }
        match entry.action {
            AuditAction::Payment { amount } => {
                self.captured = amount;
                self.paid_at = Some(entry.at);
            }
            AuditAction::Refund { amount } => {
                self.refunded = self
                    .refunded
                    .checked_add(amount)
                    .ok_or(TransitionError::Overflow)?;
            }
            AuditAction::Created | AuditAction::Moved => {}
        }
        self.status = entry.to;
        self.audit.push(entry);
        Ok(())
    }

    /// [`Order::transition`] then [`Order::apply`].
    pub fn advance(
        &mut self,
        to: OrderStatus,
        actor: &Actor,
        at: UnixMs,
    ) -> Result<&AuditEntry, TransitionError> {
        let entry = self.transition(to, actor, at)?;
        self.apply(entry)?;
        self.audit.last().ok_or(TransitionError::Overflow)
    }

    /// The `order_status` display component's data.
    pub fn status_display(&self) -> Value {
        json!({ "orderId": self.id.as_str(), "status": self.status.as_str() })
    }

    /// The `order_summary` display component's data (service charge folded into
    /// `tip`, as on the quote).
    pub fn summary_display(&self) -> Value {
        let money = |minor: i64| money_json(minor, self.currency);
        let lines: Vec<Value> = self
            .lines
            .iter()
            .map(|l| line_json(&l.priced, self.currency))
            .collect();
        json!({
            "orderId": self.id.as_str(),
            "lines": lines,
            "subtotal": money(self.subtotal),
            "tax": money(self.tax),
            "tip": money(self.tip.saturating_add(self.service_charge)),
            "taxInclusive": self.tax_inclusive,
            "total": money(self.total),
            "status": self.status.as_str(),
        })
    }

    fn next_seq(&self) -> Result<u32, TransitionError> {
        u32::try_from(self.audit.len()).map_err(|_| TransitionError::Overflow)
    }

    fn entry(&self, to: OrderStatus, actor: &Actor, at: UnixMs, action: AuditAction) -> AuditEntry {
        AuditEntry {
            seq: u32::try_from(self.audit.len()).unwrap_or(u32::MAX),
            at,
            actor: actor.clone(),
            from: Some(self.status),
            to,
            action,
        }
    }

    /// A status change through the table: the row must exist, the actor be granted
    /// and the guard hold.
    fn checked_move(
        &self,
        to: OrderStatus,
        actor: &Actor,
        at: UnixMs,
        action: AuditAction,
    ) -> Result<AuditEntry, TransitionError> {
        if self.status.is_terminal() {
            return Err(TransitionError::Closed {
                status: self.status,
            });
        }
        self.next_seq()?;
        let Some(row) = transition_row(self.status, to) else {
            // Cancelling a paid, unfinished order is a refund, and saying so is more
            // use than "cannot become cancelled".
            if to == OrderStatus::Cancelled && self.is_paid() && self.status.is_open() {
                return Err(TransitionError::RefundInstead);
            }
            return Err(TransitionError::Illegal {
                from: self.status,
                to,
            });
        };
        if !row.actors.contains(&actor.kind()) {
            return Err(TransitionError::NotAllowed {
                actor: actor.kind(),
                action: format!("move an order from {} to {}", self.status, to),
            });
        }
        match (row.guard, &action) {
            (Guard::Always, _) => {}
            (Guard::Payment, AuditAction::Payment { amount }) => {
                self.check_payment(*amount, actor)?;
            }
            (Guard::FullRefund, AuditAction::Refund { amount }) => {
                self.check_refund(*amount, actor)?;
                if *amount != self.refundable() {
                    return Err(TransitionError::Illegal {
                        from: self.status,
                        to,
                    });
                }
            }
            (Guard::PayAtCounter, _) if self.payment_method != PaymentMethod::Counter => {
                return Err(TransitionError::AwaitingPayment);
            }
            (Guard::Unpaid, _) if self.is_paid() => return Err(TransitionError::RefundInstead),
            (Guard::Paid, _) if !self.is_paid() => return Err(TransitionError::NotPaid),
            (Guard::PayAtCounter | Guard::Unpaid | Guard::Paid, _) => {}
            // A payment or refund row reached without its amount (not something
            // `transition`, `pay` or `refund` produce): refuse rather than guess.
            (Guard::Payment | Guard::FullRefund, _) => {
                return Err(TransitionError::Illegal {
                    from: self.status,
                    to,
                });
            }
        }
        Ok(self.entry(to, actor, at, action))
    }

    fn check_payment(&self, amount: i64, actor: &Actor) -> Result<(), TransitionError> {
        if self.is_paid() {
            return Err(TransitionError::AlreadyPaid);
        }
        let allowed: &[ActorKind] = match self.payment_method {
            PaymentMethod::Stripe => &[A::Payment],
            PaymentMethod::Counter => MONEY,
        };
        if !allowed.contains(&actor.kind()) {
            return Err(TransitionError::NotAllowed {
                actor: actor.kind(),
                action: "take a payment".into(),
            });
        }
        if amount != self.total {
            return Err(TransitionError::AmountMismatch {
                expected: self.total,
                got: amount,
            });
        }
        Ok(())
    }

    fn check_refund(&self, amount: i64, actor: &Actor) -> Result<(), TransitionError> {
        if !MONEY.contains(&actor.kind()) {
            return Err(TransitionError::NotAllowed {
                actor: actor.kind(),
                action: "refund".into(),
            });
        }
        if !self.is_paid() {
            return Err(TransitionError::NotPaid);
        }
        if amount <= 0 {
            return Err(TransitionError::BadAmount { amount });
        }
        let refundable = self.refundable();
        if amount > refundable {
            return Err(TransitionError::RefundTooLarge {
                refundable,
                requested: amount,
            });
        }
        Ok(())
    }
}
