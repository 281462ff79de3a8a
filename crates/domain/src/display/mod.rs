//! Display components: the typed cards a conversation puts on the guest's screen.
//!
//! A display update is `{"type": KIND, "data": {...}}`. [`normalize`] checks that the
//! kind exists and belongs to the tenant's [`Category`], validates `data` against the
//! kind's schema (documented on each [`ComponentKind`] variant) and returns the
//! normalized data that is stored and sent to displays.
//!
//! Rules shared by every kind:
//!
//! - `data` is a JSON object. Unknown fields are refused, naming the field's path
//!   (`data.lines[2].colour`). Every field is declared in camelCase and its snake_case
//!   spelling is accepted too (`image_url` for `imageUrl`), so bodies written by the
//!   original system keep working; giving both spellings is refused. Output keys are
//!   always camelCase.
//! - An optional field set to `null` counts as absent; an optional string that is empty
//!   after trimming is dropped. Required strings must be non-empty after trimming;
//!   strings are stored trimmed. Lengths are counted in characters: names, labels and
//!   titles at most [`NAME_MAX`], descriptions and bodies at most [`TEXT_MAX`], ids at
//!   most [`ID_MAX`], URLs at most [`URL_MAX`].
//! - URLs must start with `https://`, `http://` or a single `/` (a path on this site);
//!   `//host` (scheme-relative), backslashes, spaces and control characters are refused.
//! - Ids (`itemId`, `orderId`, `quoteId`, `accountId`) are strings, or non-negative
//!   whole numbers which are stored as strings.
//! - Enumerated values and tags are matched case-insensitively with `-` and spaces read
//!   as `_` (`"In Kitchen"` is `in_kitchen`) and stored in their canonical spelling.
//!   Dietary and allergen tags come from [`DIETARY_TAGS`](crate::menu::DIETARY_TAGS)
//!   and [`ALLERGEN_TAGS`](crate::menu::ALLERGEN_TAGS); duplicates are dropped.
//! - Money (see [`Money`](crate::Money)) is accepted as a JSON number in major units
//!   (`12.99`), a string in major units (`"12.99"`) or `{"minor": 1299}` /
//!   `{"minor": 1299, "currency": "USD"}`. Numbers are converted from their JSON text,
//!   never through a float, so `0.30` is exactly 30 cents; more decimals than the
//!   currency has (`12.999` for USD), exponent notation (`1.299e1`) and out-of-range
//!   amounts are refused. A currency, when given, must be the tenant's. The output is
//!   always `{"minor": <integer>, "currency": "<CODE>"}`. Prices and totals must not be
//!   negative; balances and transaction amounts may be.
//! - Arrays are capped ([`LIST_MAX`] lines, items, rows and transactions; see each
//!   kind for the rest) so one update stays small.

// The schemas by category: `restaurant`, `financial`, and `generic` for the kinds both
// categories share. Each reads its fields with `fields` (objects, strings, ids, URLs,
// numbers, enumerations), `amounts` (money) and `dates`.
mod amounts;
mod dates;
mod fields;
mod financial;
mod generic;
mod restaurant;
#[cfg(test)]
mod tests;

use crate::{Category, Currency};
use fields::{clip, err};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Most characters in a name, label, title, tag or short free-text value.
pub const NAME_MAX: usize = 200;
/// Most characters in a description, body, message or read-back.
pub const TEXT_MAX: usize = 2000;
/// Most characters in a URL.
pub const URL_MAX: usize = 2048;
/// Most characters in an id.
pub const ID_MAX: usize = 128;
/// Most entries in lines, menu items, table rows and transactions.
pub const LIST_MAX: usize = 200;
/// Most entries in a short string list (modifiers, dietary tags, allergens).
pub const STRINGS_MAX: usize = 50;
/// Most fields on a generic card.
pub const FIELDS_MAX: usize = 50;
/// Most columns in a comparison table.
pub const COLUMNS_MAX: usize = 20;
/// Most series in a chart.
pub const SERIES_MAX: usize = 20;
/// Most points in one chart series.
pub const POINTS_MAX: usize = 1000;
/// Largest quantity of one line.
pub const QUANTITY_MAX: u64 = 99;
/// Largest `etaMinutes` (one week).
pub const ETA_MAX: u64 = 7 * 24 * 60;
/// Most characters in a masked account number.
pub const MASKED_MAX: usize = 32;

/// Order states an `order_status` component may show.
pub const ORDER_STATUSES: &[&str] = &[
    "confirmed",
    "paid",
    "in_kitchen",
    "ready",
    "completed",
    "cancelled",
    "refunded",
];
/// Who a `message` component speaks for.
pub const MESSAGE_ROLES: &[&str] = &["assistant", "user", "system"];
/// How a `message` component is styled.
pub const MESSAGE_TONES: &[&str] = &["info", "success", "warning", "error"];
/// Kinds of account an `account_card` may show.
pub const ACCOUNT_KINDS: &[&str] = &[
    "checking",
    "savings",
    "brokerage",
    "retirement",
    "credit",
    "loan",
    "other",
];
/// Chart styles.
pub const CHART_TYPES: &[&str] = &["line", "bar", "pie"];

/// Why a display update was refused: the field's path and what is wrong with it.
///
/// Displays as `data.items[1].price: must not be negative`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ComponentError {
    /// Path of the offending field: `type`, `data`, `data.lines[2].quantity`.
    pub field: String,
    /// What is wrong with it, phrased to follow the path.
    pub problem: String,
}

/// The kinds of display component. The wire name is the snake_case form
/// ([`ComponentKind::as_str`]); each variant documents its `data` schema, where `*`
/// marks a required field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    /// `dish_card` (restaurant): one dish.
    ///
    /// `name*` string; `description` text; `price*` money ≥ 0; `dietary` tags;
    /// `allergens` tags; `imageUrl` URL; `itemId` id; `available` bool (default true);
    /// `modifiers` strings (≤ 50); `quantity` integer 1..=99.
    /// Output always has `dietary`, `allergens`, `modifiers` and `available`.
    DishCard,
    /// `menu_section` (restaurant): a titled list of dishes.
    ///
    /// `title*` string; `items` (≤ 200, default empty) of {`name*` string, `price*`
    /// money ≥ 0, `description` text, `itemId` id, `dietary` tags, `allergens` tags,
    /// `imageUrl` URL, `available` bool (default true)}.
    MenuSection,
    /// `cart` (restaurant): what the guest has ordered so far.
    ///
    /// `lines*` (≤ 200, may be empty) of order lines: {`name*` string, `quantity*`
    /// 1..=99, `unitPrice*` money ≥ 0, `modifiers` strings (≤ 50), `itemId` id,
    /// `lineTotal` money (computed as unitPrice × quantity; if given it must equal
    /// that)}; `subtotal` money (computed as the sum of line totals; if given it must
    /// equal that); `itemCount` (computed as the sum of quantities; if given it must
    /// equal that).
    Cart,
    /// `order_summary` (restaurant): an order as placed.
    ///
    /// `orderId` id; `lines` order lines as in `cart` (omitted when not given);
    /// `subtotal` money ≥ 0 (computed from `lines` when absent; must equal their sum
    /// when both are given); `tax`, `tip` money ≥ 0; `taxInclusive` bool; `total*` money
    /// ≥ 0; `status` string. When the subtotal is known and either `tax` is given or
    /// `taxInclusive` is true, `total` must equal subtotal + tip (+ tax unless
    /// tax-inclusive).
    OrderSummary,
    /// `quote` (restaurant): the priced order read back for confirmation.
    ///
    /// `quoteId*` id; `lines` order lines as in `cart` (omitted when not given;
    /// `subtotal` must equal their sum when given); `subtotal*`, `tax*` money ≥ 0;
    /// `tip` money ≥ 0 (default 0); `taxInclusive` bool (default false); `total*` money
    /// which must equal subtotal + tax + tip, or subtotal + tip when tax-inclusive (then
    /// `tax` must not exceed `subtotal`); `expiresAt` RFC 3339 timestamp; `hash` string;
    /// `readBack` text.
    Quote,
    /// `order_status` (restaurant): where an order is.
    ///
    /// `orderId*` id; `status*` one of confirmed, paid, in_kitchen, ready, completed,
    /// cancelled, refunded; `etaMinutes` integer 0..=10080; `message` text.
    OrderStatus,
    /// `kitchen_ticket` (restaurant): one order on the kitchen's board.
    ///
    /// `orderId*` id; `number*` integer 1..=999999999 (the number the kitchen calls);
    /// `status*` an order status as in `order_status`; `orderType` one of dine_in,
    /// pickup, delivery; `paid` bool (default false); `placedAt` RFC 3339 timestamp;
    /// `lines*` (1..=200) of {`name*` string, `quantity*` integer 1..=999, `modifiers`
    /// strings (≤ 50)}; `note` text.
    KitchenTicket,
    /// `message` (both categories): a line of text.
    ///
    /// `text*` text (≤ 2000); `role` one of assistant, user, system (default
    /// assistant); `tone` one of info, success, warning, error (default info).
    Message,
    /// `account_card` (financial): one account.
    ///
    /// `accountId` id; `name*` string; `kind` one of checking, savings, brokerage,
    /// retirement, credit, loan, other; `balance*` money (may be negative); `owner`
    /// string; `maskedNumber` string of at most 32 characters showing at most 4 digits
    /// (a full account number is refused).
    AccountCard,
    /// `transaction_list` (financial): posted transactions.
    ///
    /// `accountId` id; `title` string; `transactions` (≤ 200, default empty) of
    /// {`date*` `YYYY-MM-DD`, `description*` text, `amount*` money (negative for
    /// debits), `category` string}.
    TransactionList,
    /// `comparison_table` (financial): options side by side.
    ///
    /// `title` string; `columns*` strings (1..=20); `rows*` (1..=200) of {`label*`
    /// string, `values*` strings (≤ 200 characters, may be empty) or plain numbers, one
    /// per column}.
    ComparisonTable,
    /// `chart` (financial): plain numbers over a series (not money).
    ///
    /// `title` string; `chartType` one of line, bar, pie (default bar); `series*`
    /// (1..=20) of {`name*` string, `points` (≤ 1000, default empty) of {`x*` string or
    /// number, `y*` number}}. Numbers are kept as written and must be finite; pie
    /// charts refuse negative `y`.
    Chart,
    /// `card` (both categories): a generic titled card.
    ///
    /// `title*` string; `body` text; `imageUrl` URL; `fields` (≤ 50, default empty) of
    /// {`label*` string, `value*` non-empty text or plain number}.
    Card,
}

const RESTAURANT_KINDS: &[ComponentKind] = &[
    ComponentKind::DishCard,
    ComponentKind::MenuSection,
    ComponentKind::Cart,
    ComponentKind::OrderSummary,
    ComponentKind::Quote,
    ComponentKind::OrderStatus,
    ComponentKind::KitchenTicket,
    ComponentKind::Message,
    ComponentKind::Card,
];

const FINANCIAL_KINDS: &[ComponentKind] = &[
    ComponentKind::AccountCard,
    ComponentKind::TransactionList,
    ComponentKind::ComparisonTable,
    ComponentKind::Chart,
    ComponentKind::Message,
    ComponentKind::Card,
];

impl ComponentKind {
    /// Every kind, restaurant kinds first.
    pub const ALL: [ComponentKind; 13] = [
        ComponentKind::DishCard,
        ComponentKind::MenuSection,
        ComponentKind::Cart,
        ComponentKind::OrderSummary,
        ComponentKind::Quote,
        ComponentKind::OrderStatus,
        ComponentKind::KitchenTicket,
        ComponentKind::Message,
        ComponentKind::AccountCard,
        ComponentKind::TransactionList,
        ComponentKind::ComparisonTable,
        ComponentKind::Chart,
        ComponentKind::Card,
    ];

    /// Reads a wire name (`"dish_card"`); exact, case-sensitive.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ComponentKind::DishCard => "dish_card",
            ComponentKind::MenuSection => "menu_section",
            ComponentKind::Cart => "cart",
            ComponentKind::OrderSummary => "order_summary",
            ComponentKind::Quote => "quote",
            ComponentKind::OrderStatus => "order_status",
            ComponentKind::KitchenTicket => "kitchen_ticket",
            ComponentKind::Message => "message",
            ComponentKind::AccountCard => "account_card",
            ComponentKind::TransactionList => "transaction_list",
            ComponentKind::ComparisonTable => "comparison_table",
            ComponentKind::Chart => "chart",
            ComponentKind::Card => "card",
        }
    }

    /// Whether a tenant of `category` may show this kind.
    pub fn allowed_in(&self, category: Category) -> bool {
        Self::for_category(category).contains(self)
    }

    /// The kinds a tenant of `category` may show.
    pub fn for_category(category: Category) -> &'static [ComponentKind] {
        match category {
            Category::Restaurant => RESTAURANT_KINDS,
            Category::Financial => FINANCIAL_KINDS,
        }
    }

    /// Validates and normalizes `data` for this kind, without checking the category
    /// (use [`normalize`] for a tenant's update).
    pub fn normalize(&self, data: &Value, currency: Currency) -> Result<Value, ComponentError> {
        match self {
            ComponentKind::DishCard => restaurant::dish_card(data, currency),
            ComponentKind::MenuSection => restaurant::menu_section(data, currency),
            ComponentKind::Cart => restaurant::cart(data, currency),
            ComponentKind::OrderSummary => restaurant::order_summary(data, currency),
            ComponentKind::Quote => restaurant::quote(data, currency),
            ComponentKind::OrderStatus => restaurant::order_status(data),
            ComponentKind::KitchenTicket => restaurant::kitchen_ticket(data),
            ComponentKind::Message => generic::message(data),
            ComponentKind::AccountCard => financial::account_card(data, currency),
            ComponentKind::TransactionList => financial::transaction_list(data, currency),
            ComponentKind::ComparisonTable => financial::comparison_table(data),
            ComponentKind::Chart => financial::chart(data),
            ComponentKind::Card => generic::card(data),
        }
    }
}

impl fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Validates `data` for `kind` in a tenant of `category` with `currency`, returning the
/// normalized data.
///
/// An unknown kind, or a kind of the other category, is refused with field `type`;
/// everything else is refused with the path of the offending field under `data`.
pub fn normalize(
    category: Category,
    kind: &str,
    data: &Value,
    currency: Currency,
) -> Result<Value, ComponentError> {
    let allowed = || {
        ComponentKind::for_category(category)
            .iter()
            .map(ComponentKind::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(k) = ComponentKind::parse(kind) else {
        return Err(err(
            "type",
            format!(
                "unknown component type '{}' (expected one of: {})",
                clip(kind),
                allowed()
            ),
        ));
    };
    if !k.allowed_in(category) {
        return Err(err(
            "type",
            format!(
                "'{k}' is not available to {} tenants (expected one of: {})",
                category.as_str(),
                allowed()
            ),
        ));
    }
    k.normalize(data, currency)
}
