//! The daily close: one business day's sales, money and loose ends, computed from the
//! orders and their audit trails, rendered as canonical JSON and CSV.
//!
//! - [`day`]: the business day ([`CloseSettings::window`]) and the close schedule.
//! - [`CloseReport::compute`]: the figures, from a [`CloseInput`].
//! - [`render`]: byte-for-byte deterministic JSON and CSV, and the SHA-256 that names a
//!   report.
//!
//! Which day a figure lands in:
//!
//! - **Sales** (orders, guests, gross sales, tax, service charges, tips, total, average
//!   ticket, cancellations, orders still open) count the orders *placed* in the window
//!   (`created_at`), each as it stood at the window's end: an order cancelled by then is
//!   a cancellation, not a sale; one still being worked on is open.
//! - **Money** (payments and refunds per payment method, and the refunds and net of the
//!   sales section) counts Payment and Refund audit entries by *their own* time, so a
//!   refund given the next morning lands in the next day, whichever day the order was
//!   placed.
//! - **Reconciliation** checks every order placed in the window that was paid by the
//!   window's end: its Payment entries must sum to its total, and, for Stripe orders
//!   when verified provider events are supplied ([`CloseInput::provider_payments`]), so
//!   must those.
//!
//! Only facts recorded before the window's end count, so re-running a day that has
//! ended gives the same bytes; a day closed while still running, or data recorded
//! later with an earlier time, gives a different report, which the store keeps as an
//! amendment beside the original.
//!
//! Money is integer minor units of the tenant's currency. Refunds are stated as the
//! money returned (a partial refund cannot be split into food, tax and tip), so
//! `net = total − refunds` is on the same tax-and-tips-included basis as `total`.

pub mod day;
pub mod render;

pub use day::{CloseSettings, DEFAULT_CRON, DEFAULT_DAY_END, DEFAULT_TIME_ZONE, DayError, Window};

use super::order::{AuditAction, OrderStatus, PaymentMethod};
use super::time::UnixMs;
use crate::money::Currency;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The version of the report's layout; a change to what it contains or how it is
/// rendered gets a new one.
pub const REPORT_FORMAT: &str = "stonepot.close.v1";

/// What the close needs of an order: its money fields as priced, who it came from and
/// how it is paid. Deserializes from a stored order's JSON (other fields are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseOrder {
    pub id: String,
    pub conversation_id: String,
    pub payment_method: PaymentMethod,
    pub currency: Currency,
    pub tax_inclusive: bool,
    pub subtotal: i64,
    pub tax: i64,
    pub service_charge: i64,
    pub tip: i64,
    pub total: i64,
    pub created_at: UnixMs,
}

impl CloseOrder {
    /// Item sales without tax.
    fn net_items(&self) -> i64 {
        if self.tax_inclusive {
            self.subtotal.saturating_sub(self.tax)
        } else {
            self.subtotal
        }
    }
}

/// One audit entry of an order, as the close reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseEvent {
    pub order_id: String,
    /// The order's payment method (money entries are totalled per method).
    pub payment_method: PaymentMethod,
    /// The order's currency.
    pub currency: Currency,
    pub seq: u32,
    pub at: UnixMs,
    /// The status after the entry.
    pub to: OrderStatus,
    pub action: AuditAction,
}

/// Everything one close is computed from.
#[derive(Debug, Clone)]
pub struct CloseInput {
    pub tenant: String,
    /// The tenant's currency; orders in another are listed, not added.
    pub currency: Currency,
    pub window: Window,
    /// The orders placed in the window.
    pub orders: Vec<CloseOrder>,
    /// Every audit entry of those orders (any time), and every entry in the window of
    /// other orders. Duplicates (same order and seq) count once.
    pub events: Vec<CloseEvent>,
    /// For Stripe orders: the sum of verified provider payment events per order id, when
    /// the payment integration supplies them; `None` when it does not (the report then
    /// says the provider was not checked).
    pub provider_payments: Option<BTreeMap<String, i64>>,
}

/// Why a report could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseError {
    #[error("the day's {what} does not fit in 64-bit minor units")]
    Overflow { what: &'static str },
}

/// The report of one business day. Field order is the JSON key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseReport {
    pub format: String,
    pub tenant: String,
    /// `YYYY-MM-DD`.
    pub business_date: String,
    pub window: WindowView,
    /// ISO 4217 code; every amount is in its minor units.
    pub currency: String,
    pub sales: Sales,
    pub cancelled: Tally,
    /// Keyed `counter` and `stripe`, both always present.
    pub payment_methods: BTreeMap<String, MethodTotals>,
    pub open: OpenOrders,
    pub reconciliation: Reconciliation,
}

/// The window as the report states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowView {
    /// RFC 3339, UTC.
    pub start: String,
    /// RFC 3339, UTC; exclusive.
    pub end: String,
    pub time_zone: String,
    pub day_end: String,
    /// 1440, or 1380/1500 across a daylight-saving change.
    pub minutes: i64,
}

/// The orders placed in the window and not cancelled by its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sales {
    pub orders: u64,
    /// Distinct conversations among those orders.
    pub guests: u64,
    /// Items at menu prices, without tax.
    pub gross_sales: i64,
    /// Always 0 until discounts exist; kept so the layout does not change then.
    pub discounts: i64,
    pub tax: i64,
    pub service_charges: i64,
    pub tips: i64,
    /// What the guests were charged: the sum of the orders' totals, which is
    /// gross − discounts + tax + service charges + tips.
    pub total: i64,
    /// Money refunded during the window (any order's).
    pub refunds: i64,
    /// `total − refunds`.
    pub net: i64,
    /// `total / orders`, rounded half up to the minor unit; 0 without orders.
    pub average_ticket: i64,
}

/// A count and the orders' totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub orders: u64,
    pub total: i64,
}

/// One payment method's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MethodTotals {
    /// Sales orders paid this way.
    pub orders: u64,
    /// Their totals.
    pub sales: i64,
    /// Payments captured during the window.
    pub payments: i64,
    /// Refunds given during the window.
    pub refunds: i64,
    /// `payments − refunds`: what the drawer or the payout should show.
    pub net: i64,
}

/// Orders placed in the window and still being worked on at its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OpenOrders {
    pub orders: u64,
    pub total: i64,
    /// Oldest first.
    pub ids: Vec<String>,
}

/// Paid orders against their payment entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Reconciliation {
    /// Orders placed in the window and paid by its end.
    pub paid_orders: u64,
    /// Of those, the ones whose entries add up.
    pub matched: u64,
    /// Whether verified provider events were compared for Stripe orders.
    pub provider_checked: bool,
    /// Oldest first.
    pub mismatches: Vec<Mismatch>,
}

/// An order whose money does not add up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    pub order_id: String,
    pub payment_method: PaymentMethod,
    pub currency: String,
    pub total: i64,
    /// Sum of its Payment entries before the window's end.
    pub payments: i64,
    /// Sum of its verified provider events, when checked.
    pub provider: Option<i64>,
    pub problem: String,
}

const METHODS: [(PaymentMethod, &str); 2] = [
    (PaymentMethod::Counter, "counter"),
    (PaymentMethod::Stripe, "stripe"),
];

fn method_key(m: PaymentMethod) -> &'static str {
    match m {
        PaymentMethod::Counter => "counter",
        PaymentMethod::Stripe => "stripe",
    }
}

/// Sums in i128 and converts once, so no order of additions can overflow midway.
fn to_i64(v: i128, what: &'static str) -> Result<i64, CloseError> {
    i64::try_from(v).map_err(|_| CloseError::Overflow { what })
}

/// Half-up integer division of non-negative `num` by positive `den`; 0 when `den` is 0.
/// Negative numerators (impossible for totals) round half away from zero.
pub fn div_half_up(num: i128, den: i128) -> i128 {
    if den == 0 {
        return 0;
    }
    let q = (num.abs() * 2 + den) / (den * 2);
    if num < 0 { -q } else { q }
}

/// An order's state at the window's end, from its entries.
#[derive(Default)]
struct AsOfEnd {
    status: Option<OrderStatus>,
    last_seq: Option<u32>,
    payments: i128,
}

impl CloseReport {
    /// Computes the report. Pure: the same input gives the same report.
    pub fn compute(input: &CloseInput) -> Result<CloseReport, CloseError> {
        let (start, end) = (input.window.start_ms(), input.window.end_ms());
        let in_window = |at: UnixMs| at.0 >= start && at.0 < end;
        let own = |c: Currency| c == input.currency;

        // Each entry once; oldest first within an order.
        let mut seen: BTreeSet<(&str, u32)> = BTreeSet::new();
        let mut state: HashMap<&str, AsOfEnd> = HashMap::with_capacity(input.orders.len());
        let mut payments: BTreeMap<&str, i128> = BTreeMap::new();
        let mut refunds: BTreeMap<&str, i128> = BTreeMap::new();
        let mut events: Vec<&CloseEvent> = input.events.iter().collect();
        events.sort_by(|a, b| (a.order_id.as_str(), a.seq).cmp(&(b.order_id.as_str(), b.seq)));
        for e in events {
            if !seen.insert((e.order_id.as_str(), e.seq)) {
                continue;
            }
            if e.at.0 < end {
                let s = state.entry(e.order_id.as_str()).or_default();
                if s.last_seq.is_none_or(|l| e.seq > l) {
                    s.last_seq = Some(e.seq);
                    s.status = Some(e.to);
                }
                if let AuditAction::Payment { amount } = e.action {
                    s.payments += i128::from(amount);
                }
            }
            if in_window(e.at) && own(e.currency) {
                let key = method_key(e.payment_method);
                match e.action {
                    AuditAction::Payment { amount } => {
                        *payments.entry(key).or_default() += i128::from(amount)
                    }
                    AuditAction::Refund { amount } => {
                        *refunds.entry(key).or_default() += i128::from(amount)
                    }
                    AuditAction::Created | AuditAction::Moved => {}
                }
            }
        }

        let mut orders: Vec<&CloseOrder> = input
            .orders
            .iter()
            .filter(|o| in_window(o.created_at))
            .collect();
        orders.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        orders.dedup_by(|a, b| a.id == b.id);

        let mut sum = SalesSums::default();
        let mut guests: BTreeSet<&str> = BTreeSet::new();
        let mut per_method: BTreeMap<&str, (u64, i128)> = BTreeMap::new();
        let mut cancelled = (0u64, 0i128);
        let mut open = (0u64, 0i128, Vec::new());
        let mut rec = Reconciliation {
            provider_checked: input.provider_payments.is_some(),
            ..Reconciliation::default()
        };
        for o in orders {
            let s = state.get(o.id.as_str());
            // An order with no entry before the end still exists: it was placed.
            let status = s.and_then(|s| s.status).unwrap_or(OrderStatus::Confirmed);
            let paid = s.map_or(0, |s| s.payments);
            if !own(o.currency) {
                rec.mismatches.push(Mismatch {
                    order_id: o.id.clone(),
                    payment_method: o.payment_method,
                    currency: o.currency.code().to_string(),
                    total: o.total,
                    payments: to_i64(paid, "payments")?,
                    provider: None,
                    problem: format!(
                        "priced in {}, not the tenant's {}; left out of every figure",
                        o.currency, input.currency
                    ),
                });
                continue;
            }
            if status == OrderStatus::Cancelled {
                cancelled.0 += 1;
                cancelled.1 += i128::from(o.total);
                continue;
            }
            sum.add(o);
            guests.insert(o.conversation_id.as_str());
            let m = per_method.entry(method_key(o.payment_method)).or_default();
            m.0 += 1;
            m.1 += i128::from(o.total);
            if status.is_open() {
                open.0 += 1;
                open.1 += i128::from(o.total);
                open.2.push(o.id.clone());
            }
            let paid_status = matches!(
                status,
                OrderStatus::Paid | OrderStatus::Completed | OrderStatus::Refunded
            );
            if paid != 0 || paid_status {
                rec.paid_orders += 1;
                let provider = match (o.payment_method, &input.provider_payments) {
                    (PaymentMethod::Stripe, Some(p)) => Some(p.get(&o.id).copied().unwrap_or(0)),
                    _ => None,
                };
                let problem = if paid != i128::from(o.total) {
                    Some(format!(
                        "payment entries sum to {}, the order total is {}",
                        input.currency.format_minor(to_i64(paid, "payments")?),
                        input.currency.format_minor(o.total)
                    ))
                } else {
                    match provider {
                        Some(p) if i128::from(p) != paid => Some(format!(
                            "verified provider events sum to {}, the payment entries to {}",
                            input.currency.format_minor(p),
                            input.currency.format_minor(to_i64(paid, "payments")?)
                        )),
                        _ => None,
                    }
                };
                match problem {
                    None => rec.matched += 1,
                    Some(problem) => rec.mismatches.push(Mismatch {
                        order_id: o.id.clone(),
                        payment_method: o.payment_method,
                        currency: o.currency.code().to_string(),
                        total: o.total,
                        payments: to_i64(paid, "payments")?,
                        provider,
                        problem,
                    }),
                }
            }
        }

        let total_refunds: i128 = refunds.values().sum();
        let mut payment_methods = BTreeMap::new();
        for (_, key) in METHODS {
            let (n, sales) = per_method.get(key).copied().unwrap_or_default();
            let p = payments.get(key).copied().unwrap_or_default();
            let r = refunds.get(key).copied().unwrap_or_default();
            payment_methods.insert(
                key.to_string(),
                MethodTotals {
                    orders: n,
                    sales: to_i64(sales, "sales")?,
                    payments: to_i64(p, "payments")?,
                    refunds: to_i64(r, "refunds")?,
                    net: to_i64(p - r, "net")?,
                },
            );
        }
        let total = sum.total;
        Ok(CloseReport {
            format: REPORT_FORMAT.into(),
            tenant: input.tenant.clone(),
            business_date: input.window.date.to_string(),
            window: WindowView {
                start: UnixMs(start).to_rfc3339(),
                end: UnixMs(end).to_rfc3339(),
                time_zone: input.window.time_zone.clone(),
                day_end: input.window.day_end.clone(),
                minutes: input.window.minutes(),
            },
            currency: input.currency.code().to_string(),
            sales: Sales {
                orders: sum.orders,
                guests: u64::try_from(guests.len()).unwrap_or(u64::MAX),
                gross_sales: to_i64(sum.gross, "gross sales")?,
                discounts: 0,
                tax: to_i64(sum.tax, "tax")?,
                service_charges: to_i64(sum.service, "service charges")?,
                tips: to_i64(sum.tips, "tips")?,
                total: to_i64(total, "total")?,
                refunds: to_i64(total_refunds, "refunds")?,
                net: to_i64(total - total_refunds, "net")?,
                average_ticket: to_i64(
                    div_half_up(total, i128::from(sum.orders)),
                    "average ticket",
                )?,
            },
            cancelled: Tally {
                orders: cancelled.0,
                total: to_i64(cancelled.1, "cancelled total")?,
            },
            payment_methods,
            open: OpenOrders {
                orders: open.0,
                total: to_i64(open.1, "open total")?,
                ids: open.2,
            },
            reconciliation: rec,
        })
    }

    /// One line for a chat message or a terminal.
    pub fn summary(&self) -> String {
        let currency = Currency::from_code(&self.currency).ok();
        let money = |minor: i64| match currency {
            Some(c) => format!("{} {}", c.code(), c.format_minor(minor)),
            None => format!("{minor} minor units"),
        };
        let s = &self.sales;
        let rec = &self.reconciliation;
        let reconciled = if rec.mismatches.is_empty() {
            format!("all {} paid orders reconcile", rec.paid_orders)
        } else {
            format!(
                "{} of {} paid orders do NOT reconcile ({})",
                rec.mismatches.len(),
                rec.paid_orders,
                rec.mismatches
                    .iter()
                    .take(5)
                    .map(|m| m.order_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        format!(
            "Daily close {} {}: {} orders, {} guests, total {}, refunds {}, net {}, tax {}, tips {}, average ticket {}; {} cancelled, {} still open; {}.",
            self.tenant,
            self.business_date,
            s.orders,
            s.guests,
            money(s.total),
            money(s.refunds),
            money(s.net),
            money(s.tax),
            money(s.tips),
            money(s.average_ticket),
            self.cancelled.orders,
            self.open.orders,
            reconciled
        )
    }
}

#[derive(Default)]
struct SalesSums {
    orders: u64,
    gross: i128,
    tax: i128,
    service: i128,
    tips: i128,
    total: i128,
}

impl SalesSums {
    fn add(&mut self, o: &CloseOrder) {
        self.orders += 1;
        self.gross += i128::from(o.net_items());
        self.tax += i128::from(o.tax);
        self.service += i128::from(o.service_charge);
        self.tips += i128::from(o.tip);
        self.total += i128::from(o.total);
    }
}

#[cfg(test)]
mod tests;
