//! Quotes: the price lock a guest confirms before an order exists.
//!
//! [`Quote::build`] prices a cart afresh from the menu (the cart's own prices are
//! never trusted), applies the tenant's [`PricingPolicy`], adds a tip or service
//! charge, sets an expiry and seals all of it with a SHA-256 `hash` over a canonical,
//! versioned encoding ([`QUOTE_HASH_VERSION`]). A confirmation names that hash, and
//! [`Quote::is_valid_for`] refuses it when the hash is stale, the quote expired, or the
//! cart or the menu's prices moved since. The server, not the model, renders the
//! read-back ([`Quote::read_back`]) and the `quote` display component
//! ([`Quote::display_data`]).

use super::canon::Canon;
use super::ids::QuoteId;
use super::tax::{MAX_RATE_BPS, PricingError, PricingPolicy, checked_sum, percent_of};
use super::time::UnixMs;
use crate::cart::{Cart, CartLine, MAX_QUANTITY};
use crate::display::{ID_MAX, LIST_MAX, NAME_MAX, STRINGS_MAX, TEXT_MAX};
use crate::menu::Menu;
use crate::money::Currency;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// How long a quote holds its prices unless the caller says otherwise.
pub const DEFAULT_QUOTE_TTL: Duration = Duration::from_secs(10 * 60);
/// The shortest lifetime a quote may be given.
pub const MIN_QUOTE_TTL: Duration = Duration::from_secs(1);
/// The longest lifetime a quote may be given.
pub const MAX_QUOTE_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The first line of the canonical encoding the hash is taken over. A change to the
/// encoding gets a new version so stored hashes stay meaningful.
pub const QUOTE_HASH_VERSION: &str = "stonepot.quote.v1";

/// A tip the guest asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Tip {
    /// No tip.
    #[default]
    None,
    /// A fixed amount in minor units.
    Amount { minor: i64 },
    /// A share of the subtotal in basis points (1800 = 18 %), rounded like tax.
    Percent { bps: u32 },
}

/// A modifier as priced on the quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuoteModifier {
    pub group_id: String,
    pub id: String,
    pub name: String,
    /// Minor units, from the menu at quote time.
    pub price_delta: i64,
    /// The group's default (what the guest gets by saying nothing); left out of the
    /// read-back. Presentation only: not covered by the hash.
    #[serde(default)]
    pub is_default: bool,
}

/// One priced line of a quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuoteLine {
    /// The cart line it was priced from.
    pub line_id: String,
    pub item_id: String,
    /// The item's name on the menu at quote time.
    pub name: String,
    pub quantity: u32,
    pub modifiers: Vec<QuoteModifier>,
    /// Item price plus modifier deltas, minor units.
    pub unit_price: i64,
    /// `unit_price × quantity`: the menu price of the line (net when tax-exclusive,
    /// gross when tax-inclusive).
    pub line_total: i64,
    /// The line's tax, rounded to the minor unit: added on top when tax-exclusive,
    /// contained in `line_total` when tax-inclusive.
    pub tax: i64,
}

impl QuoteLine {
    /// The line's price without tax under a policy that is (or is not) tax-inclusive.
    pub fn net(&self, tax_inclusive: bool) -> i64 {
        if tax_inclusive {
            self.line_total.saturating_sub(self.tax)
        } else {
            self.line_total
        }
    }
}

/// A priced, sealed, expiring offer for the contents of a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    /// Derived from the hash (see [`QuoteId`]).
    pub id: QuoteId,
    pub currency: Currency,
    /// The menu version the prices came from (opaque to the domain; see
    /// [`menu_fingerprint`]).
    pub menu_version: String,
    /// The policy the quote was priced under.
    pub policy: PricingPolicy,
    pub lines: Vec<QuoteLine>,
    /// Σ line totals.
    pub subtotal: i64,
    /// Σ line taxes (each rounded per line).
    pub tax: i64,
    /// From [`PricingPolicy::service_charge_bps`]; 0 when none.
    pub service_charge: i64,
    pub tip: i64,
    /// subtotal + service charge + tip, plus tax unless tax-inclusive.
    pub total: i64,
    /// When it was built. Not covered by the hash.
    pub created_at: UnixMs,
    /// Confirmations at or after this instant are refused.
    pub expires_at: UnixMs,
    /// Lowercase hex SHA-256 of [`Quote::canonical`].
    pub hash: String,
}

/// Why a quote could not be built. `code` is stable; the message names the line and
/// the problem for a human or a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum QuoteError {
    #[error("the cart is empty")]
    EmptyCart,
    #[error("the cart has {lines} lines; a quote holds at most {max}")]
    TooManyLines { lines: usize, max: usize },
    #[error("the quantity of line {line_id} must be between 1 and {max}, not {quantity}")]
    BadQuantity {
        line_id: String,
        quantity: u32,
        max: u32,
    },
    #[error("there is no menu item '{item_id}' any more")]
    UnknownItem { line_id: String, item_id: String },
    #[error("{name} is not available right now")]
    Unavailable {
        line_id: String,
        item_id: String,
        name: String,
    },
    #[error("{name} no longer offers '{modifier}'")]
    ModifierUnavailable {
        line_id: String,
        item_id: String,
        name: String,
        modifier_id: String,
        modifier: String,
    },
    #[error("{name}: {problem}")]
    ModifierRulesChanged {
        line_id: String,
        item_id: String,
        name: String,
        group: String,
        problem: String,
    },
    #[error("{name} would cost less than nothing ({unit_price} minor units)")]
    NegativePrice {
        line_id: String,
        item_id: String,
        name: String,
        unit_price: i64,
    },
    #[error("tips are not accepted here")]
    TipNotAllowed,
    #[error("the tip must not be negative (got {minor} minor units)")]
    NegativeTip { minor: i64 },
    #[error("a tip percentage must be at most {max} basis points, not {bps}")]
    TipPercentOutOfRange { bps: u32, max: u32 },
    #[error("a quote must live between {min_ms} and {max_ms} ms, not {ttl_ms}")]
    BadTtl {
        ttl_ms: u64,
        min_ms: u64,
        max_ms: u64,
    },
    #[error("the instant {now_ms} ms (or its expiry) is outside 1970–9999")]
    BadTime { now_ms: i64 },
    #[error("the menu version must be 1 to {max} characters")]
    BadMenuVersion { max: usize },
    #[error("{detail}")]
    Pricing { detail: PricingError },
}

impl QuoteError {
    /// The stable code, as serialized.
    pub fn code(&self) -> &'static str {
        match self {
            QuoteError::EmptyCart => "empty_cart",
            QuoteError::TooManyLines { .. } => "too_many_lines",
            QuoteError::BadQuantity { .. } => "bad_quantity",
            QuoteError::UnknownItem { .. } => "unknown_item",
            QuoteError::Unavailable { .. } => "unavailable",
            QuoteError::ModifierUnavailable { .. } => "modifier_unavailable",
            QuoteError::ModifierRulesChanged { .. } => "modifier_rules_changed",
            QuoteError::NegativePrice { .. } => "negative_price",
            QuoteError::TipNotAllowed => "tip_not_allowed",
            QuoteError::NegativeTip { .. } => "negative_tip",
            QuoteError::TipPercentOutOfRange { .. } => "tip_percent_out_of_range",
            QuoteError::BadTtl { .. } => "bad_ttl",
            QuoteError::BadTime { .. } => "bad_time",
            QuoteError::BadMenuVersion { .. } => "bad_menu_version",
            QuoteError::Pricing { .. } => "pricing",
        }
    }
}

impl From<PricingError> for QuoteError {
    fn from(detail: PricingError) -> Self {
        QuoteError::Pricing { detail }
    }
}

/// Why a confirmation against a quote was refused; the caller shows a new quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum StaleQuote {
    #[error("the confirmation names quote hash {got}, not the current one")]
    HashMismatch { current: String, got: String },
    #[error("the stored quote no longer matches its hash")]
    Tampered,
    #[error("the quote expired at {expires_at}")]
    Expired { expires_at: UnixMs },
    #[error("the cart changed since the quote: {problem}")]
    CartChanged { problem: String },
    #[error(
        "{name} now costs {} instead of {}",
        .currency.format_minor(*.current),
        .currency.format_minor(*.quoted)
    )]
    PriceChanged {
        line_id: String,
        name: String,
        currency: Currency,
        quoted: i64,
        current: i64,
    },
    #[error("the menu changed since the quote: {detail}")]
    MenuChanged { detail: Box<QuoteError> },
    #[error("the quote no longer matches the cart and menu: {problem}")]
    Repriced { problem: String },
}

impl StaleQuote {
    /// The stable code, as serialized.
    pub fn code(&self) -> &'static str {
        match self {
            StaleQuote::HashMismatch { .. } => "hash_mismatch",
            StaleQuote::Tampered => "tampered",
            StaleQuote::Expired { .. } => "expired",
            StaleQuote::CartChanged { .. } => "cart_changed",
            StaleQuote::PriceChanged { .. } => "price_changed",
            StaleQuote::MenuChanged { .. } => "menu_changed",
            StaleQuote::Repriced { .. } => "repriced",
        }
    }
}

/// Prices one cart line from the menu.
fn price_line(
    line: &CartLine,
    menu: &Menu,
    policy: &PricingPolicy,
) -> Result<QuoteLine, QuoteError> {
    if !(1..=MAX_QUANTITY).contains(&line.quantity) {
        return Err(QuoteError::BadQuantity {
            line_id: line.line_id.clone(),
            quantity: line.quantity,
            max: MAX_QUANTITY,
        });
    }
    let item = menu
        .item(&line.item_id)
        .ok_or_else(|| QuoteError::UnknownItem {
            line_id: line.line_id.clone(),
            item_id: line.item_id.clone(),
        })?;
    if !item.available {
        return Err(QuoteError::Unavailable {
            line_id: line.line_id.clone(),
            item_id: item.id.clone(),
            name: item.name.clone(),
        });
    }
    let mut modifiers = Vec::with_capacity(line.modifiers.len());
    for chosen in &line.modifiers {
        let found = item
            .modifier_groups
            .iter()
            .find(|g| g.id == chosen.group_id)
            .and_then(|g| g.modifiers.iter().find(|m| m.id == chosen.id));
        let Some(m) = found else {
            return Err(QuoteError::ModifierUnavailable {
                line_id: line.line_id.clone(),
                item_id: item.id.clone(),
                name: item.name.clone(),
                modifier_id: chosen.id.clone(),
                modifier: chosen.name.clone(),
            });
        };
        modifiers.push(QuoteModifier {
            group_id: chosen.group_id.clone(),
            id: m.id.clone(),
            name: m.name.clone(),
            price_delta: m.price_delta,
            is_default: m.default,
        });
    }
    for g in &item.modifier_groups {
        let rules_changed = |problem: String| QuoteError::ModifierRulesChanged {
            line_id: line.line_id.clone(),
            item_id: item.id.clone(),
            name: item.name.clone(),
            group: g.name.clone(),
            problem,
        };
        let in_group: Vec<&QuoteModifier> =
            modifiers.iter().filter(|m| m.group_id == g.id).collect();
        if let Some(dup) = in_group
            .iter()
            .enumerate()
            .find(|(i, m)| in_group.iter().take(*i).any(|o| o.id == m.id))
            .map(|(_, m)| m)
        {
            return Err(rules_changed(format!("'{}' is chosen twice", dup.name)));
        }
        let n = u32::try_from(in_group.len()).unwrap_or(u32::MAX);
        if n < g.min {
            return Err(rules_changed(format!(
                "{} now needs at least {} choice(s)",
                g.name, g.min
            )));
        }
        if n > g.max {
            return Err(rules_changed(format!(
                "{} now allows at most {} choice(s)",
                g.name, g.max
            )));
        }
    }
    let unit_price = modifiers
        .iter()
        .try_fold(item.price, |acc, m| acc.checked_add(m.price_delta))
        .ok_or(PricingError::Overflow { what: "unit price" })?;
    if unit_price < 0 {
        return Err(QuoteError::NegativePrice {
            line_id: line.line_id.clone(),
            item_id: item.id.clone(),
            name: item.name.clone(),
            unit_price,
        });
    }
    let line_total = unit_price
        .checked_mul(i64::from(line.quantity))
        .ok_or(PricingError::Overflow { what: "line total" })?;
    let tax = policy.line_tax(line_total)?.tax;
    Ok(QuoteLine {
        line_id: line.line_id.clone(),
        item_id: item.id.clone(),
        name: item.name.clone(),
        quantity: line.quantity,
        modifiers,
        unit_price,
        line_total,
        tax,
    })
}

fn tip_amount(tip: Tip, policy: &PricingPolicy, subtotal: i64) -> Result<i64, QuoteError> {
    let minor = match tip {
        Tip::None => 0,
        Tip::Amount { minor } if minor < 0 => return Err(QuoteError::NegativeTip { minor }),
        Tip::Amount { minor } => minor,
        Tip::Percent { bps } if bps > MAX_RATE_BPS => {
            return Err(QuoteError::TipPercentOutOfRange {
                bps,
                max: MAX_RATE_BPS,
            });
        }
        Tip::Percent { bps } => percent_of("tip", subtotal, bps)?,
    };
    if minor > 0 && !policy.tips_allowed {
        return Err(QuoteError::TipNotAllowed);
    }
    Ok(minor)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Quote {
    /// Prices `cart` from `menu` under `policy` and seals the result.
    ///
    /// Every line is re-priced from the menu: an item that is gone or 86'd, a modifier
    /// the item no longer offers, or a choice that breaks a group's current min/max is
    /// refused, naming the line. The quote expires `ttl` after `now` (use
    /// [`DEFAULT_QUOTE_TTL`] unless the tenant says otherwise).
    #[expect(
        clippy::too_many_arguments,
        reason = "each input is priced or sealed into the quote; a builder would only rename them"
    )]
    pub fn build(
        cart: &Cart,
        menu: &Menu,
        policy: &PricingPolicy,
        currency: Currency,
        tip: Tip,
        now: UnixMs,
        ttl: Duration,
        menu_version: &str,
    ) -> Result<Quote, QuoteError> {
        policy.validate()?;
        if cart.lines.is_empty() {
            return Err(QuoteError::EmptyCart);
        }
        if cart.lines.len() > LIST_MAX {
            return Err(QuoteError::TooManyLines {
                lines: cart.lines.len(),
                max: LIST_MAX,
            });
        }
        if menu_version.is_empty() || menu_version.chars().count() > ID_MAX {
            return Err(QuoteError::BadMenuVersion { max: ID_MAX });
        }
        if !(MIN_QUOTE_TTL..=MAX_QUOTE_TTL).contains(&ttl) {
            return Err(QuoteError::BadTtl {
                ttl_ms: ms(ttl),
                min_ms: ms(MIN_QUOTE_TTL),
                max_ms: ms(MAX_QUOTE_TTL),
            });
        }
        let expires_at = now
            .in_range()
            .then(|| now.checked_add(ttl))
            .flatten()
            .ok_or(QuoteError::BadTime { now_ms: now.0 })?;
        let lines = cart
            .lines
            .iter()
            .map(|l| price_line(l, menu, policy))
            .collect::<Result<Vec<_>, _>>()?;
        let subtotal = checked_sum("subtotal", lines.iter().map(|l| l.line_total))?;
        let tax = checked_sum("tax", lines.iter().map(|l| l.tax))?;
        let service_charge = policy.service_charge(subtotal)?;
        let tip = tip_amount(tip, policy, subtotal)?;
        let total = checked_sum(
            "total",
            [
                subtotal,
                if policy.tax_inclusive { 0 } else { tax },
                service_charge,
                tip,
            ],
        )?;
        let mut quote = Quote {
            id: QuoteId::for_hash(""),
            currency,
            menu_version: menu_version.to_string(),
            policy: *policy,
            lines,
            subtotal,
            tax,
            service_charge,
            tip,
            total,
            created_at: now,
            expires_at,
            hash: String::new(),
        };
        quote.hash = quote.compute_hash();
        quote.id = QuoteId::for_hash(&quote.hash);
        Ok(quote)
    }

    /// The canonical encoding the hash is taken over: [`QUOTE_HASH_VERSION`], then
    /// currency (code and exponent), menu version, the whole policy, every line (id,
    /// item id, name, quantity, unit price, line total, tax, and each modifier's group,
    /// id, name and price delta), subtotal, tax, service charge, tip, total and expiry.
    /// The id, `created_at` and the modifiers' `is_default` flags are left out: they
    /// change nothing the guest agrees to.
    pub fn canonical(&self) -> Vec<u8> {
        self.canon().into_bytes()
    }

    fn canon(&self) -> Canon {
        let mut c = Canon::new(QUOTE_HASH_VERSION);
        c.str("currency", self.currency.code());
        c.int("exponent", self.currency.exponent());
        c.str("menuVersion", &self.menu_version);
        c.int("taxRateBps", self.policy.tax_rate_bps);
        c.flag("taxInclusive", self.policy.tax_inclusive);
        c.int(
            "serviceChargeBps",
            self.policy.service_charge_bps.map_or(-1, i64::from),
        );
        c.flag("tipsAllowed", self.policy.tips_allowed);
        c.int("lines", u64::try_from(self.lines.len()).unwrap_or(u64::MAX));
        for l in &self.lines {
            c.str("lineId", &l.line_id);
            c.str("itemId", &l.item_id);
            c.str("name", &l.name);
            c.int("quantity", l.quantity);
            c.int("unitPrice", l.unit_price);
            c.int("lineTotal", l.line_total);
            c.int("lineTax", l.tax);
            c.int(
                "modifiers",
                u64::try_from(l.modifiers.len()).unwrap_or(u64::MAX),
            );
            for m in &l.modifiers {
                c.str("groupId", &m.group_id);
                c.str("modifierId", &m.id);
                c.str("modifierName", &m.name);
                c.int("priceDelta", m.price_delta);
            }
        }
        c.int("subtotal", self.subtotal);
        c.int("tax", self.tax);
        c.int("serviceCharge", self.service_charge);
        c.int("tip", self.tip);
        c.int("total", self.total);
        c.int("expiresAt", self.expires_at.0);
        c
    }

    /// The hash of the quote's current fields.
    pub fn compute_hash(&self) -> String {
        self.canon().sha256_hex()
    }

    /// Whether the stored hash still matches the fields (a quote read back from storage
    /// or a client has not been altered).
    pub fn verify_hash(&self) -> bool {
        self.compute_hash() == self.hash
    }

    /// The number of items (Σ quantities).
    pub fn item_count(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity)).sum()
    }

    /// Checks a confirmation that names `hash` against the guest's current cart and
    /// the current menu at `now`.
    ///
    /// Refused, in this order: a hash other than this quote's; a quote whose fields no
    /// longer match its own hash; an expired quote; a cart whose lines, quantities or
    /// modifiers differ from the quote's; a menu on which an item or modifier is gone,
    /// 86'd or now breaks its group's rules; a line whose price moved; and anything
    /// else that would make a fresh quote differ (a renamed item, say). The policy is
    /// the one stored on the quote; a tenant that changes its policy should compare
    /// `quote.policy` with the new one.
    pub fn is_valid_for(
        &self,
        hash: &str,
        cart: &Cart,
        menu: &Menu,
        now: UnixMs,
    ) -> Result<(), StaleQuote> {
        if hash != self.hash {
            return Err(StaleQuote::HashMismatch {
                current: self.hash.clone(),
                got: hash.to_string(),
            });
        }
        if !self.verify_hash() {
            return Err(StaleQuote::Tampered);
        }
        if now >= self.expires_at {
            return Err(StaleQuote::Expired {
                expires_at: self.expires_at,
            });
        }
        if let Some(problem) = self.cart_difference(cart) {
            return Err(StaleQuote::CartChanged { problem });
        }
        for (quoted, line) in self.lines.iter().zip(&cart.lines) {
            let fresh =
                price_line(line, menu, &self.policy).map_err(|e| StaleQuote::MenuChanged {
                    detail: Box::new(e),
                })?;
            if fresh.unit_price != quoted.unit_price {
                return Err(StaleQuote::PriceChanged {
                    line_id: quoted.line_id.clone(),
                    name: quoted.name.clone(),
                    currency: self.currency,
                    quoted: quoted.unit_price,
                    current: fresh.unit_price,
                });
            }
        }
        let ttl = u64::try_from(self.expires_at.0.saturating_sub(self.created_at.0))
            .map(Duration::from_millis)
            .unwrap_or_default();
        let fresh = Quote::build(
            cart,
            menu,
            &self.policy,
            self.currency,
            Tip::Amount { minor: self.tip },
            self.created_at,
            ttl,
            &self.menu_version,
        )
        .map_err(|e| StaleQuote::Repriced {
            problem: e.to_string(),
        })?;
        if fresh.hash != self.hash {
            let problem = self
                .lines
                .iter()
                .zip(&fresh.lines)
                .find(|(a, b)| a != b)
                .map_or_else(
                    || "the totals differ".to_string(),
                    |(a, b)| {
                        if a.name == b.name {
                            format!("the options of {} changed on the menu", a.name)
                        } else {
                            format!("{} is now called {}", a.name, b.name)
                        }
                    },
                );
            return Err(StaleQuote::Repriced { problem });
        }
        Ok(())
    }

    /// What differs between the quoted lines and `cart`'s, if anything.
    fn cart_difference(&self, cart: &Cart) -> Option<String> {
        for q in &self.lines {
            let Some(c) = cart.line(&q.line_id) else {
                return Some(format!("{} was removed", q.name));
            };
            if c.item_id != q.item_id {
                return Some(format!("{} became {}", q.name, c.name));
            }
            if c.quantity != q.quantity {
                return Some(format!(
                    "{} went from {} to {}",
                    q.name, q.quantity, c.quantity
                ));
            }
            let same_modifiers = c.modifiers.len() == q.modifiers.len()
                && c.modifiers
                    .iter()
                    .zip(&q.modifiers)
                    .all(|(a, b)| a.group_id == b.group_id && a.id == b.id);
            if !same_modifiers {
                return Some(format!("the options of {} changed", q.name));
            }
        }
        if let Some(added) = cart
            .lines
            .iter()
            .find(|c| !self.lines.iter().any(|q| q.line_id == c.line_id))
        {
            return Some(format!("{} was added", added.name));
        }
        let same_order = self
            .lines
            .iter()
            .map(|l| &l.line_id)
            .eq(cart.lines.iter().map(|l| &l.line_id));
        (!same_order).then(|| "the lines were reordered".to_string())
    }

    /// The read-back the server speaks and shows before the guest confirms, e.g.
    /// `2 × Margherita Pizza (No basil) $25.98 and 1 × Tiramisu $8.95. Subtotal
    /// $34.93, tax $3.06, total $37.99. Shall I place the order?`
    ///
    /// Default options are left out (as the guest said nothing about them). It never
    /// exceeds the display's [`TEXT_MAX`] characters: past that, the last lines are
    /// summarised as "and N more items".
    pub fn read_back(&self) -> String {
        let amount = |minor: i64| spoken_amount(minor, self.currency);
        let mut parts: Vec<String> = Vec::new();
        let tax_added = !self.policy.tax_inclusive && self.tax > 0;
        if tax_added || self.service_charge > 0 || self.tip > 0 {
            parts.push(format!("Subtotal {}", amount(self.subtotal)));
            if tax_added {
                parts.push(format!("tax {}", amount(self.tax)));
            }
            if self.service_charge > 0 {
                parts.push(format!("service charge {}", amount(self.service_charge)));
            }
            if self.tip > 0 {
                parts.push(format!("tip {}", amount(self.tip)));
            }
            parts.push(format!("total {}", amount(self.total)));
        } else {
            parts.push(format!("Total {}", amount(self.total)));
        }
        let mut summary = parts.join(", ");
        if self.policy.tax_inclusive && self.tax > 0 {
            summary.push_str(&format!(" (including {} tax)", amount(self.tax)));
        }
        let tail = format!(". {summary}. Shall I place the order?");

        let texts: Vec<String> = self
            .lines
            .iter()
            .map(|l| {
                let mods: Vec<&str> = l
                    .modifiers
                    .iter()
                    .filter(|m| !m.is_default)
                    .map(|m| m.name.as_str())
                    .collect();
                let mods = if mods.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", clip(&mods.join(", "), 120))
                };
                format!(
                    "{} × {}{} {}",
                    l.quantity,
                    clip(&l.name, 80),
                    mods,
                    amount(l.line_total)
                )
            })
            .collect();
        // Reserve room for "and 9999 more items" so the result always fits.
        let budget = TEXT_MAX.saturating_sub(tail.chars().count() + 32);
        let mut shown = Vec::new();
        let mut used = 0usize;
        for t in &texts {
            let len = t.chars().count() + 5;
            if used + len > budget {
                break;
            }
            used += len;
            shown.push(t.as_str());
        }
        let rest: u64 = self
            .lines
            .iter()
            .skip(shown.len())
            .map(|l| u64::from(l.quantity))
            .sum();
        let more = (rest > 0).then(|| format!("{rest} more items"));
        let mut all: Vec<&str> = shown;
        if let Some(m) = more.as_deref() {
            all.push(m);
        }
        format!("{}{tail}", and_list(&all))
    }

    /// The `quote` display component's data (see
    /// [`ComponentKind::Quote`](crate::display::ComponentKind::Quote)): money as
    /// `{"minor": N, "currency": "CODE"}`, the service charge folded into `tip` (the
    /// component has one slot for both), `expiresAt` in RFC 3339 and the read-back.
    /// Names are clipped to the component's limits.
    pub fn display_data(&self) -> Value {
        let money = |minor: i64| money_json(minor, self.currency);
        let lines: Vec<Value> = self
            .lines
            .iter()
            .map(|l| line_json(l, self.currency))
            .collect();
        json!({
            "quoteId": self.id.as_str(),
            "lines": lines,
            "subtotal": money(self.subtotal),
            "tax": money(self.tax),
            "tip": money(self.tip.saturating_add(self.service_charge)),
            "taxInclusive": self.policy.tax_inclusive,
            "total": money(self.total),
            "expiresAt": self.expires_at.to_rfc3339(),
            "hash": self.hash,
            "readBack": self.read_back(),
        })
    }
}

/// Money as display components take it.
pub(super) fn money_json(minor: i64, currency: Currency) -> Value {
    json!({ "minor": minor, "currency": currency.code() })
}

/// One order line as the `cart`, `quote` and `order_summary` components take it,
/// clipped to their limits.
pub(super) fn line_json(l: &QuoteLine, currency: Currency) -> Value {
    let mut line = json!({
        "name": clip(l.name.trim(), NAME_MAX),
        "quantity": l.quantity,
        "unitPrice": money_json(l.unit_price, currency),
        "lineTotal": money_json(l.line_total, currency),
        "modifiers": l.modifiers
            .iter()
            .map(|m| clip(m.name.trim(), NAME_MAX))
            .filter(|m| !m.is_empty())
            .take(STRINGS_MAX)
            .collect::<Vec<_>>(),
    });
    let item_id = l.item_id.trim();
    if !item_id.is_empty()
        && item_id.chars().count() <= ID_MAX
        && let Some(o) = line.as_object_mut()
    {
        o.insert("itemId".into(), Value::from(item_id));
    }
    line
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[&str]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// At most `max` characters, ending in `…` when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// An amount as a guest would hear it: `$1,234.50`, `€9.50`, `£3.00`, `1,200 JPY`.
pub fn spoken_amount(minor: i64, currency: Currency) -> String {
    let plain = currency.format_minor(minor);
    let (sign, digits) = match plain.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", plain.as_str()),
    };
    let (int_part, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::with_capacity(int_part.len() + int_part.len() / 3);
    for (i, ch) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    if let Some(f) = frac {
        grouped.push('.');
        grouped.push_str(f);
    }
    match currency.code() {
        "USD" | "CAD" | "AUD" | "NZD" | "SGD" | "HKD" | "MXN" => format!("{sign}${grouped}"),
        "EUR" => format!("{sign}€{grouped}"),
        "GBP" => format!("{sign}£{grouped}"),
        code => format!("{sign}{grouped} {code}"),
    }
}

/// A version for a menu when the store keeps no counter: the SHA-256 of everything
/// on it that can change a price or what a guest orders (item ids, names, prices,
/// availability, modifier groups with their bounds, and modifiers with their deltas
/// and defaults). Descriptions, tags, images and sections are left out.
pub fn menu_fingerprint(menu: &Menu) -> String {
    let mut c = Canon::new("stonepot.menu.v1");
    c.int("items", u64::try_from(menu.items.len()).unwrap_or(u64::MAX));
    for i in &menu.items {
        c.str("id", &i.id);
        c.str("name", &i.name);
        c.int("price", i.price);
        c.flag("available", i.available);
        c.int(
            "groups",
            u64::try_from(i.modifier_groups.len()).unwrap_or(u64::MAX),
        );
        for g in &i.modifier_groups {
            c.str("groupId", &g.id);
            c.str("groupName", &g.name);
            c.int("min", g.min);
            c.int("max", g.max);
            c.int(
                "modifiers",
                u64::try_from(g.modifiers.len()).unwrap_or(u64::MAX),
            );
            for m in &g.modifiers {
                c.str("modifierId", &m.id);
                c.str("modifierName", &m.name);
                c.int("priceDelta", m.price_delta);
                c.flag("default", m.default);
            }
        }
    }
    c.sha256_hex()
}
