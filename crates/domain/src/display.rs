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
//!   Dietary and allergen tags come from [`DIETARY_TAGS`] and [`ALLERGEN_TAGS`];
//!   duplicates are dropped.
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

use crate::menu::{ALLERGEN_TAGS, DIETARY_TAGS};
use crate::money::MoneyError;
use crate::{Category, Currency};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
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

fn err(field: impl Into<String>, problem: impl Into<String>) -> ComponentError {
    ComponentError {
        field: field.into(),
        problem: problem.into(),
    }
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
    pub const ALL: [ComponentKind; 12] = [
        ComponentKind::DishCard,
        ComponentKind::MenuSection,
        ComponentKind::Cart,
        ComponentKind::OrderSummary,
        ComponentKind::Quote,
        ComponentKind::OrderStatus,
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
            ComponentKind::DishCard => dish_card(data, currency),
            ComponentKind::MenuSection => menu_section(data, currency),
            ComponentKind::Cart => cart(data, currency),
            ComponentKind::OrderSummary => order_summary(data, currency),
            ComponentKind::Quote => quote(data, currency),
            ComponentKind::OrderStatus => order_status(data),
            ComponentKind::Message => message(data),
            ComponentKind::AccountCard => account_card(data, currency),
            ComponentKind::TransactionList => transaction_list(data, currency),
            ComponentKind::ComparisonTable => comparison_table(data),
            ComponentKind::Chart => chart(data),
            ComponentKind::Card => card(data),
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

// ---------------------------------------------------------------------------------
// Kinds

const DISH_KEYS: &[&str] = &[
    "name",
    "description",
    "price",
    "dietary",
    "allergens",
    "imageUrl",
    "itemId",
    "available",
    "modifiers",
    "quantity",
];

fn dish_card(data: &Value, cur: Currency) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", DISH_KEYS)?;
    let mut out = Out::default();
    out.set("name", o.req_text("name", NAME_MAX)?);
    out.opt("description", o.text("description", TEXT_MAX)?);
    out.money("price", o.req_money("price", cur, Sign::NonNegative)?, cur);
    out.set("dietary", o.tags("dietary", DIETARY_TAGS)?);
    out.set("allergens", o.tags("allergens", ALLERGEN_TAGS)?);
    out.opt("imageUrl", o.url("imageUrl")?);
    out.opt("itemId", o.id("itemId")?);
    out.set("available", o.flag("available")?.unwrap_or(true));
    out.set(
        "modifiers",
        o.strings("modifiers", STRINGS_MAX, NAME_MAX)?
            .unwrap_or_default(),
    );
    out.opt("quantity", o.int("quantity", 1, QUANTITY_MAX)?);
    Ok(out.done())
}

const MENU_SECTION_KEYS: &[&str] = &["title", "items"];
const MENU_ITEM_KEYS: &[&str] = &[
    "name",
    "price",
    "description",
    "itemId",
    "dietary",
    "allergens",
    "imageUrl",
    "available",
];

fn menu_section(data: &Value, cur: Currency) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", MENU_SECTION_KEYS)?;
    let mut out = Out::default();
    out.set("title", o.req_text("title", NAME_MAX)?);
    let mut items = Vec::new();
    for (path, v) in o.array("items", LIST_MAX)?.unwrap_or_default() {
        let i = Obj::new(v, &path, MENU_ITEM_KEYS)?;
        let mut item = Out::default();
        item.set("name", i.req_text("name", NAME_MAX)?);
        item.money("price", i.req_money("price", cur, Sign::NonNegative)?, cur);
        item.opt("description", i.text("description", TEXT_MAX)?);
        item.opt("itemId", i.id("itemId")?);
        item.set("dietary", i.tags("dietary", DIETARY_TAGS)?);
        item.set("allergens", i.tags("allergens", ALLERGEN_TAGS)?);
        item.opt("imageUrl", i.url("imageUrl")?);
        item.set("available", i.flag("available")?.unwrap_or(true));
        items.push(item.done());
    }
    out.set("items", items);
    Ok(out.done())
}

const LINE_KEYS: &[&str] = &[
    "name",
    "quantity",
    "unitPrice",
    "lineTotal",
    "modifiers",
    "itemId",
];

/// Validated order lines with their computed totals.
struct Lines {
    json: Vec<Value>,
    subtotal: i64,
    count: u64,
}

fn order_lines(items: Vec<(String, &Value)>, cur: Currency) -> Result<Lines, ComponentError> {
    let mut lines = Lines {
        json: Vec::with_capacity(items.len()),
        subtotal: 0,
        count: 0,
    };
    for (path, v) in items {
        let o = Obj::new(v, &path, LINE_KEYS)?;
        let name = o.req_text("name", NAME_MAX)?;
        let quantity = o
            .int("quantity", 1, QUANTITY_MAX)?
            .ok_or_else(|| o.missing("quantity"))?;
        let unit = o.req_money("unitPrice", cur, Sign::NonNegative)?;
        let computed = i64::try_from(quantity)
            .ok()
            .and_then(|q| unit.checked_mul(q))
            .ok_or_else(|| err(o.at("unitPrice"), "times quantity is out of range"))?;
        let total = o.must_equal("lineTotal", computed, "unitPrice × quantity", cur)?;
        let mut line = Out::default();
        line.set("name", name);
        line.set("quantity", quantity);
        line.money("unitPrice", unit, cur);
        line.money("lineTotal", total, cur);
        line.set(
            "modifiers",
            o.strings("modifiers", STRINGS_MAX, NAME_MAX)?
                .unwrap_or_default(),
        );
        line.opt("itemId", o.id("itemId")?);
        lines.json.push(line.done());
        lines.subtotal = lines
            .subtotal
            .checked_add(total)
            .ok_or_else(|| err(&path, "the line totals are out of range"))?;
        lines.count += quantity;
    }
    Ok(lines)
}

fn cart(data: &Value, cur: Currency) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", &["lines", "subtotal", "itemCount"])?;
    let items = o
        .array("lines", LIST_MAX)?
        .ok_or_else(|| o.missing("lines"))?;
    let lines = order_lines(items, cur)?;
    let subtotal = o.must_equal("subtotal", lines.subtotal, "the sum of line totals", cur)?;
    if let Some(given) = o.int("itemCount", 0, u64::MAX)?
        && given != lines.count
    {
        return Err(err(
            o.at("itemCount"),
            format!(
                "must equal the sum of quantities, {} (got {given})",
                lines.count
            ),
        ));
    }
    let mut out = Out::default();
    out.set("lines", lines.json);
    out.money("subtotal", subtotal, cur);
    out.set("itemCount", lines.count);
    Ok(out.done())
}

/// subtotal + tip, plus tax unless the prices include it; `None` on overflow.
fn expected_total(subtotal: i64, tax: i64, tip: i64, inclusive: bool) -> Option<i64> {
    let base = subtotal.checked_add(tip)?;
    if inclusive {
        Some(base)
    } else {
        base.checked_add(tax)
    }
}

fn total_problem(expected: Option<i64>, total: i64, inclusive: bool, cur: Currency) -> String {
    let formula = if inclusive {
        "subtotal + tip (tax-inclusive)"
    } else {
        "subtotal + tax + tip"
    };
    match expected {
        Some(e) => format!(
            "must equal {formula} = {} (got {})",
            cur.format_minor(e),
            cur.format_minor(total)
        ),
        None => format!("{formula} is out of range"),
    }
}

const ORDER_SUMMARY_KEYS: &[&str] = &[
    "orderId",
    "lines",
    "subtotal",
    "tax",
    "tip",
    "taxInclusive",
    "total",
    "status",
];

fn order_summary(data: &Value, cur: Currency) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", ORDER_SUMMARY_KEYS)?;
    let mut out = Out::default();
    out.opt("orderId", o.id("orderId")?);
    let subtotal = match o.array("lines", LIST_MAX)? {
        Some(items) => {
            let lines = order_lines(items, cur)?;
            out.set("lines", lines.json);
            Some(o.must_equal("subtotal", lines.subtotal, "the sum of line totals", cur)?)
        }
        None => o.money("subtotal", cur, Sign::NonNegative)?,
    };
    let tax = o.money("tax", cur, Sign::NonNegative)?;
    let tip = o.money("tip", cur, Sign::NonNegative)?;
    let inclusive = o.flag("taxInclusive")?;
    let total = o.req_money("total", cur, Sign::NonNegative)?;
    if let Some(sub) = subtotal
        && (tax.is_some() || inclusive == Some(true))
    {
        let incl = inclusive.unwrap_or(false);
        let expected = expected_total(sub, tax.unwrap_or(0), tip.unwrap_or(0), incl);
        if expected != Some(total) {
            return Err(err(
                o.at("total"),
                total_problem(expected, total, incl, cur),
            ));
        }
    }
    if let Some(sub) = subtotal {
        out.money("subtotal", sub, cur);
    }
    if let Some(t) = tax {
        out.money("tax", t, cur);
    }
    if let Some(t) = tip {
        out.money("tip", t, cur);
    }
    out.opt("taxInclusive", inclusive);
    out.money("total", total, cur);
    out.opt("status", o.text("status", NAME_MAX)?);
    Ok(out.done())
}

const QUOTE_KEYS: &[&str] = &[
    "quoteId",
    "lines",
    "subtotal",
    "tax",
    "tip",
    "taxInclusive",
    "total",
    "expiresAt",
    "hash",
    "readBack",
];

fn quote(data: &Value, cur: Currency) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", QUOTE_KEYS)?;
    let mut out = Out::default();
    out.set("quoteId", o.req_id("quoteId")?);
    let lines = match o.array("lines", LIST_MAX)? {
        Some(items) => Some(order_lines(items, cur)?),
        None => None,
    };
    let subtotal = o.req_money("subtotal", cur, Sign::NonNegative)?;
    if let Some(l) = &lines {
        o.must_equal("subtotal", l.subtotal, "the sum of line totals", cur)?;
    }
    let tax = o.req_money("tax", cur, Sign::NonNegative)?;
    let tip = o.money("tip", cur, Sign::NonNegative)?.unwrap_or(0);
    let inclusive = o.flag("taxInclusive")?.unwrap_or(false);
    if inclusive && tax > subtotal {
        return Err(err(
            o.at("tax"),
            "must not exceed the subtotal when prices include tax",
        ));
    }
    let total = o.req_money("total", cur, Sign::NonNegative)?;
    let expected = expected_total(subtotal, tax, tip, inclusive);
    if expected != Some(total) {
        return Err(err(
            o.at("total"),
            total_problem(expected, total, inclusive, cur),
        ));
    }
    let expires = match o.text("expiresAt", NAME_MAX)? {
        Some(s) if is_rfc3339(&s) => Some(s),
        Some(_) => {
            return Err(err(
                o.at("expiresAt"),
                "must be an RFC 3339 timestamp like 2026-11-20T18:30:00Z",
            ));
        }
        None => None,
    };
    if let Some(l) = lines {
        out.set("lines", l.json);
    }
    out.money("subtotal", subtotal, cur);
    out.money("tax", tax, cur);
    out.money("tip", tip, cur);
    out.set("taxInclusive", inclusive);
    out.money("total", total, cur);
    out.opt("expiresAt", expires);
    out.opt("hash", o.text("hash", NAME_MAX)?);
    out.opt("readBack", o.text("readBack", TEXT_MAX)?);
    Ok(out.done())
}

fn order_status(data: &Value) -> Result<Value, ComponentError> {
    let o = Obj::new(
        data,
        "data",
        &["orderId", "status", "etaMinutes", "message"],
    )?;
    let mut out = Out::default();
    out.set("orderId", o.req_id("orderId")?);
    out.set(
        "status",
        o.choice("status", ORDER_STATUSES)?
            .ok_or_else(|| o.missing("status"))?,
    );
    out.opt("etaMinutes", o.int("etaMinutes", 0, ETA_MAX)?);
    out.opt("message", o.text("message", TEXT_MAX)?);
    Ok(out.done())
}

fn message(data: &Value) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", &["text", "role", "tone"])?;
    let mut out = Out::default();
    out.set("text", o.req_text("text", TEXT_MAX)?);
    out.set(
        "role",
        o.choice("role", MESSAGE_ROLES)?.unwrap_or("assistant"),
    );
    out.set("tone", o.choice("tone", MESSAGE_TONES)?.unwrap_or("info"));
    Ok(out.done())
}

const ACCOUNT_KEYS: &[&str] = &[
    "accountId",
    "name",
    "kind",
    "balance",
    "owner",
    "maskedNumber",
];

fn account_card(data: &Value, cur: Currency) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", ACCOUNT_KEYS)?;
    let mut out = Out::default();
    out.opt("accountId", o.id("accountId")?);
    out.set("name", o.req_text("name", NAME_MAX)?);
    out.opt("kind", o.choice("kind", ACCOUNT_KINDS)?);
    out.money("balance", o.req_money("balance", cur, Sign::Any)?, cur);
    out.opt("owner", o.text("owner", NAME_MAX)?);
    if let Some(masked) = o.text("maskedNumber", MASKED_MAX)? {
        if masked.chars().filter(char::is_ascii_digit).count() > 4 {
            return Err(err(
                o.at("maskedNumber"),
                "must show at most 4 digits (like ••••1234), never the full number",
            ));
        }
        out.set("maskedNumber", masked);
    }
    Ok(out.done())
}

const TRANSACTION_KEYS: &[&str] = &["date", "description", "amount", "category"];

fn transaction_list(data: &Value, cur: Currency) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", &["accountId", "title", "transactions"])?;
    let mut out = Out::default();
    out.opt("accountId", o.id("accountId")?);
    out.opt("title", o.text("title", NAME_MAX)?);
    let mut list = Vec::new();
    for (path, v) in o.array("transactions", LIST_MAX)?.unwrap_or_default() {
        let t = Obj::new(v, &path, TRANSACTION_KEYS)?;
        let date = t.req_text("date", NAME_MAX)?;
        if !is_date(&date) {
            return Err(err(t.at("date"), "must be a date written YYYY-MM-DD"));
        }
        let mut tx = Out::default();
        tx.set("date", date);
        tx.set("description", t.req_text("description", TEXT_MAX)?);
        tx.money("amount", t.req_money("amount", cur, Sign::Any)?, cur);
        tx.opt("category", t.text("category", NAME_MAX)?);
        list.push(tx.done());
    }
    out.set("transactions", list);
    Ok(out.done())
}

fn comparison_table(data: &Value) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", &["title", "columns", "rows"])?;
    let mut out = Out::default();
    out.opt("title", o.text("title", NAME_MAX)?);
    let columns = o
        .strings("columns", COLUMNS_MAX, NAME_MAX)?
        .ok_or_else(|| o.missing("columns"))?;
    if columns.is_empty() {
        return Err(err(o.at("columns"), "must have at least one column"));
    }
    let rows = o
        .array("rows", LIST_MAX)?
        .ok_or_else(|| o.missing("rows"))?;
    if rows.is_empty() {
        return Err(err(o.at("rows"), "must have at least one row"));
    }
    let mut out_rows = Vec::with_capacity(rows.len());
    for (path, v) in rows {
        let r = Obj::new(v, &path, &["label", "values"])?;
        let label = r.req_text("label", NAME_MAX)?;
        let cells = r
            .array("values", COLUMNS_MAX)?
            .ok_or_else(|| r.missing("values"))?;
        if cells.len() != columns.len() {
            return Err(err(
                r.at("values"),
                format!(
                    "must have {} entries, one per column (got {})",
                    columns.len(),
                    cells.len()
                ),
            ));
        }
        let mut values = Vec::with_capacity(cells.len());
        for (cell_path, cell) in cells {
            values.push(match cell {
                Value::Number(n) => Value::Number(plain_number(n, &cell_path)?),
                Value::String(_) => Value::String(str_field(cell, &cell_path, NAME_MAX)?),
                _ => return Err(err(cell_path, "must be a string or a number")),
            });
        }
        let mut row = Out::default();
        row.set("label", label);
        row.set("values", values);
        out_rows.push(row.done());
    }
    out.set("columns", columns);
    out.set("rows", out_rows);
    Ok(out.done())
}

fn chart(data: &Value) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", &["title", "chartType", "series"])?;
    let mut out = Out::default();
    out.opt("title", o.text("title", NAME_MAX)?);
    let chart_type = o.choice("chartType", CHART_TYPES)?.unwrap_or("bar");
    out.set("chartType", chart_type);
    let series = o
        .array("series", SERIES_MAX)?
        .ok_or_else(|| o.missing("series"))?;
    if series.is_empty() {
        return Err(err(o.at("series"), "must have at least one series"));
    }
    let mut out_series = Vec::with_capacity(series.len());
    for (path, v) in series {
        let s = Obj::new(v, &path, &["name", "points"])?;
        let name = s.req_text("name", NAME_MAX)?;
        let mut points = Vec::new();
        for (point_path, p) in s.array("points", POINTS_MAX)?.unwrap_or_default() {
            let p = Obj::new(p, &point_path, &["x", "y"])?;
            let x = match p.get("x") {
                Some(Value::Number(n)) => Value::Number(plain_number(n, &p.at("x"))?),
                Some(v @ Value::String(_)) => {
                    Value::String(nonempty(str_field(v, &p.at("x"), NAME_MAX)?, &p.at("x"))?)
                }
                Some(_) => return Err(err(p.at("x"), "must be a string or a number")),
                None => return Err(p.missing("x")),
            };
            let y = match p.get("y") {
                Some(Value::Number(n)) => plain_number(n, &p.at("y"))?,
                Some(_) => return Err(err(p.at("y"), "must be a number")),
                None => return Err(p.missing("y")),
            };
            if chart_type == "pie" && y.as_f64().is_some_and(|f| f < 0.0) {
                return Err(err(p.at("y"), "must not be negative in a pie chart"));
            }
            let mut point = Out::default();
            point.set("x", x);
            point.set("y", y);
            points.push(point.done());
        }
        let mut one = Out::default();
        one.set("name", name);
        one.set("points", points);
        out_series.push(one.done());
    }
    out.set("series", out_series);
    Ok(out.done())
}

fn card(data: &Value) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", &["title", "body", "imageUrl", "fields"])?;
    let mut out = Out::default();
    out.set("title", o.req_text("title", NAME_MAX)?);
    out.opt("body", o.text("body", TEXT_MAX)?);
    out.opt("imageUrl", o.url("imageUrl")?);
    let mut fields = Vec::new();
    for (path, v) in o.array("fields", FIELDS_MAX)?.unwrap_or_default() {
        let f = Obj::new(v, &path, &["label", "value"])?;
        let label = f.req_text("label", NAME_MAX)?;
        let value = match f.get("value") {
            Some(Value::Number(n)) => Value::Number(plain_number(n, &f.at("value"))?),
            Some(Value::String(_)) => Value::String(f.req_text("value", TEXT_MAX)?),
            Some(_) => return Err(err(f.at("value"), "must be a string or a number")),
            None => return Err(f.missing("value")),
        };
        let mut field = Out::default();
        field.set("label", label);
        field.set("value", value);
        fields.push(field.done());
    }
    out.set("fields", fields);
    Ok(out.done())
}

// ---------------------------------------------------------------------------------
// Field readers

/// Whether a money field may be negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    NonNegative,
    Any,
}

/// A JSON object under validation: its path and declared keys.
struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    /// Checks that `value` is an object whose keys are all declared (in camelCase or
    /// its snake_case spelling, not both).
    fn new(value: &'a Value, path: &str, keys: &[&str]) -> Result<Self, ComponentError> {
        let Value::Object(map) = value else {
            return Err(err(path, "must be a JSON object"));
        };
        for k in map.keys() {
            if !keys.iter().any(|d| *d == k || snake(d) == *k) {
                return Err(err(
                    format!("{path}.{}", clip(k)),
                    format!("unknown field (expected one of: {})", keys.join(", ")),
                ));
            }
        }
        for d in keys {
            let s = snake(d);
            if s != *d && map.contains_key(*d) && map.contains_key(&s) {
                return Err(err(
                    format!("{path}.{d}"),
                    format!("given twice, as '{d}' and '{s}'"),
                ));
            }
        }
        Ok(Obj {
            path: path.to_string(),
            map,
        })
    }

    /// The value of a declared key under either spelling; `null` counts as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        let v = match self.map.get(key) {
            Some(v) => v,
            None => self.map.get(&snake(key))?,
        };
        (!v.is_null()).then_some(v)
    }

    /// The path of a key, spelled as the input spelled it.
    fn at(&self, key: &str) -> String {
        let s = snake(key);
        if !self.map.contains_key(key) && self.map.contains_key(&s) {
            format!("{}.{s}", self.path)
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn missing(&self, key: &str) -> ComponentError {
        err(self.at(key), "is required")
    }

    /// An optional string; empty counts as absent.
    fn text(&self, key: &str, max: usize) -> Result<Option<String>, ComponentError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => {
                let s = str_field(v, &self.at(key), max)?;
                Ok((!s.is_empty()).then_some(s))
            }
        }
    }

    fn req_text(&self, key: &str, max: usize) -> Result<String, ComponentError> {
        let v = self.get(key).ok_or_else(|| self.missing(key))?;
        nonempty(str_field(v, &self.at(key), max)?, &self.at(key))
    }

    /// An optional id: a string, or a non-negative whole number stored as a string.
    fn id(&self, key: &str) -> Result<Option<String>, ComponentError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => {
                let s = id_field(v, &self.at(key))?;
                Ok((!s.is_empty()).then_some(s))
            }
        }
    }

    fn req_id(&self, key: &str) -> Result<String, ComponentError> {
        let v = self.get(key).ok_or_else(|| self.missing(key))?;
        nonempty(id_field(v, &self.at(key))?, &self.at(key))
    }

    fn url(&self, key: &str) -> Result<Option<String>, ComponentError> {
        let Some(s) = self.text(key, URL_MAX)? else {
            return Ok(None);
        };
        check_url(&s).map_err(|problem| err(self.at(key), problem))?;
        Ok(Some(s))
    }

    fn flag(&self, key: &str) -> Result<Option<bool>, ComponentError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(err(self.at(key), "must be true or false")),
        }
    }

    /// An optional whole number in `min..=max`.
    fn int(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ComponentError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ if max == u64::MAX => Err(err(
                self.at(key),
                format!("must be a whole number of at least {min}"),
            )),
            _ => Err(err(
                self.at(key),
                format!("must be a whole number from {min} to {max}"),
            )),
        }
    }

    /// An optional value from `options`, matched leniently (see the module docs).
    fn choice(
        &self,
        key: &str,
        options: &'static [&'static str],
    ) -> Result<Option<&'static str>, ComponentError> {
        let Some(s) = self.text(key, NAME_MAX)? else {
            return Ok(None);
        };
        let c = canon(&s);
        match options.iter().copied().find(|o| *o == c) {
            Some(o) => Ok(Some(o)),
            None => Err(err(
                self.at(key),
                format!(
                    "must be one of: {} (got '{}')",
                    options.join(", "),
                    clip(&s)
                ),
            )),
        }
    }

    /// A list of tags from `allowed`, canonical and without duplicates.
    fn tags(
        &self,
        key: &str,
        allowed: &'static [&'static str],
    ) -> Result<Vec<Value>, ComponentError> {
        let mut out: Vec<&'static str> = Vec::new();
        for (path, v) in self.array(key, STRINGS_MAX)?.unwrap_or_default() {
            let s = str_field(v, &path, NAME_MAX)?;
            let c = canon(&s);
            let Some(tag) = allowed.iter().copied().find(|t| *t == c) else {
                return Err(err(
                    path,
                    format!(
                        "unknown tag '{}' (expected one of: {})",
                        clip(&s),
                        allowed.join(", ")
                    ),
                ));
            };
            if !out.contains(&tag) {
                out.push(tag);
            }
        }
        Ok(out.into_iter().map(Value::from).collect())
    }

    /// An optional list of non-empty strings.
    fn strings(
        &self,
        key: &str,
        max_items: usize,
        max_len: usize,
    ) -> Result<Option<Vec<Value>>, ComponentError> {
        let Some(items) = self.array(key, max_items)? else {
            return Ok(None);
        };
        items
            .into_iter()
            .map(|(path, v)| {
                Ok(Value::String(nonempty(
                    str_field(v, &path, max_len)?,
                    &path,
                )?))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An optional array of at most `max` entries, each with its path.
    fn array(
        &self,
        key: &str,
        max: usize,
    ) -> Result<Option<Vec<(String, &'a Value)>>, ComponentError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let field = self.at(key);
        let Value::Array(items) = v else {
            return Err(err(field, "must be an array"));
        };
        if items.len() > max {
            return Err(err(field, format!("must have at most {max} entries")));
        }
        Ok(Some(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{field}[{i}]"), v))
                .collect(),
        ))
    }

    fn money(&self, key: &str, cur: Currency, sign: Sign) -> Result<Option<i64>, ComponentError> {
        self.get(key)
            .map(|v| money_value(v, &self.at(key), cur, sign))
            .transpose()
    }

    fn req_money(&self, key: &str, cur: Currency, sign: Sign) -> Result<i64, ComponentError> {
        self.money(key, cur, sign)?.ok_or_else(|| self.missing(key))
    }

    /// A non-negative amount that, when given, must equal `computed`; returns `computed`.
    fn must_equal(
        &self,
        key: &str,
        computed: i64,
        what: &str,
        cur: Currency,
    ) -> Result<i64, ComponentError> {
        match self.money(key, cur, Sign::NonNegative)? {
            Some(given) if given != computed => Err(err(
                self.at(key),
                format!(
                    "must equal {what} = {} (got {})",
                    cur.format_minor(computed),
                    cur.format_minor(given)
                ),
            )),
            _ => Ok(computed),
        }
    }
}

/// Reads an amount of money (see the module docs) as minor units of `cur`.
fn money_value(v: &Value, field: &str, cur: Currency, sign: Sign) -> Result<i64, ComponentError> {
    let minor = match v {
        Value::Number(n) => decimal(&n.to_string(), field, cur)?,
        Value::String(s) if s.trim().is_empty() => {
            return Err(err(field, "must not be empty"));
        }
        Value::String(s) => decimal(s, field, cur)?,
        Value::Object(_) => {
            let o = Obj::new(v, field, &["minor", "currency"])?;
            if let Some(c) = o.get("currency") {
                let Value::String(code) = c else {
                    return Err(err(o.at("currency"), "must be a currency code like USD"));
                };
                let given = Currency::from_code(code.trim()).map_err(|_| {
                    err(
                        o.at("currency"),
                        format!("unknown currency '{}'", clip(code)),
                    )
                })?;
                if given != cur {
                    return Err(err(
                        o.at("currency"),
                        format!(
                            "must be {} (the tenant's currency), not {}",
                            cur.code(),
                            given.code()
                        ),
                    ));
                }
            }
            match o.get("minor") {
                Some(m) => m.as_i64().ok_or_else(|| {
                    err(
                        o.at("minor"),
                        "must be a whole number of minor units (1299 for 12.99)",
                    )
                })?,
                None => return Err(o.missing("minor")),
            }
        }
        _ => {
            return Err(err(
                field,
                "must be an amount: a number or string in major units (12.99) or {\"minor\": 1299}",
            ));
        }
    };
    if sign == Sign::NonNegative && minor < 0 {
        return Err(err(field, "must not be negative"));
    }
    Ok(minor)
}

/// Exact decimal text in major units to minor units.
fn decimal(text: &str, field: &str, cur: Currency) -> Result<i64, ComponentError> {
    cur.parse_minor(text).map_err(|e| match e {
        MoneyError::TooPrecise { .. } if cur.exponent() == 0 => err(
            field,
            format!(
                "must be a whole amount: {} has no minor unit (got '{}')",
                cur.code(),
                clip(text)
            ),
        ),
        MoneyError::TooPrecise { .. } => err(
            field,
            format!(
                "must have at most {} decimal places for {} (got '{}')",
                cur.exponent(),
                cur.code(),
                clip(text)
            ),
        ),
        MoneyError::Overflow(_) => err(field, format!("is out of range (got '{}')", clip(text))),
        _ => err(
            field,
            format!(
                "must be a plain decimal amount in major units like 12.99, without exponent (got '{}')",
                clip(text)
            ),
        ),
    })
}

/// A string field, trimmed, of at most `max` characters (possibly empty).
fn str_field(v: &Value, field: &str, max: usize) -> Result<String, ComponentError> {
    let Value::String(s) = v else {
        return Err(err(field, "must be a string"));
    };
    let t = s.trim();
    if t.chars().count() > max {
        return Err(err(field, format!("must be at most {max} characters")));
    }
    Ok(t.to_string())
}

fn id_field(v: &Value, field: &str) -> Result<String, ComponentError> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(|u| u.to_string())
            .ok_or_else(|| err(field, "must be a string or a non-negative whole number")),
        _ => str_field(v, field, ID_MAX),
    }
}

fn nonempty(s: String, field: &str) -> Result<String, ComponentError> {
    if s.is_empty() {
        Err(err(field, "must not be empty"))
    } else {
        Ok(s)
    }
}

/// A finite plain number, kept as written.
fn plain_number(n: &Number, field: &str) -> Result<Number, ComponentError> {
    if n.as_f64().is_some_and(f64::is_finite) {
        Ok(n.clone())
    } else {
        Err(err(field, "must be a finite number"))
    }
}

fn check_url(s: &str) -> Result<(), &'static str> {
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err("must not contain spaces, backslashes or control characters");
    }
    let absolute = ["https://", "http://"].iter().any(|scheme| {
        s.len() > scheme.len()
            && s.get(..scheme.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
    });
    if absolute || (s.starts_with('/') && !s.starts_with("//")) {
        Ok(())
    } else {
        Err("must start with https://, http:// or / (a path on this site)")
    }
}

/// camelCase to snake_case (`imageUrl` → `image_url`).
fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Canonical spelling for matching enums and tags: lowercase, `-` and spaces as `_`.
fn canon(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Shortens user text quoted in an error.
fn clip(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

fn two_digits(s: &str, from: usize) -> Option<u32> {
    let part = s.get(from..from + 2)?;
    if part.bytes().all(|b| b.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A calendar date written `YYYY-MM-DD`.
fn is_date(s: &str) -> bool {
    if s.len() != 10 || s.get(4..5) != Some("-") || s.get(7..8) != Some("-") {
        return false;
    }
    let year = match s.get(0..4) {
        Some(y) if y.bytes().all(|b| b.is_ascii_digit()) => y.parse::<u32>().ok(),
        _ => None,
    };
    match (year, two_digits(s, 5), two_digits(s, 8)) {
        (Some(y), Some(m), Some(d)) => (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m),
        _ => false,
    }
}

/// An RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
fn is_rfc3339(s: &str) -> bool {
    let Some(date) = s.get(0..10) else {
        return false;
    };
    if !is_date(date) || !matches!(s.get(10..11), Some("T" | "t")) {
        return false;
    }
    if s.get(13..14) != Some(":") || s.get(16..17) != Some(":") {
        return false;
    }
    let time_ok = matches!(
        (two_digits(s, 11), two_digits(s, 14), two_digits(s, 17)),
        (Some(h), Some(m), Some(sec)) if h < 24 && m < 60 && sec <= 60
    );
    if !time_ok {
        return false;
    }
    let Some(mut rest) = s.get(19..) else {
        return false;
    };
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = frac.get(digits..).unwrap_or("");
    }
    match rest {
        "Z" | "z" => true,
        _ => {
            rest.len() == 6
                && matches!(rest.get(0..1), Some("+" | "-"))
                && rest.get(3..4) == Some(":")
                && matches!(
                    (two_digits(rest, 1), two_digits(rest, 4)),
                    (Some(h), Some(m)) if h < 24 && m < 60
                )
        }
    }
}

/// Builds a normalized object.
#[derive(Default)]
struct Out(Map<String, Value>);

impl Out {
    fn set(&mut self, key: &str, v: impl Into<Value>) {
        self.0.insert(key.to_string(), v.into());
    }

    fn opt(&mut self, key: &str, v: Option<impl Into<Value>>) {
        if let Some(v) = v {
            self.set(key, v);
        }
    }

    fn money(&mut self, key: &str, minor: i64, cur: Currency) {
        let mut m = Map::new();
        m.insert("minor".to_string(), Value::from(minor));
        m.insert("currency".to_string(), Value::from(cur.code()));
        self.set(key, Value::Object(m));
    }

    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const R: Category = Category::Restaurant;
    const F: Category = Category::Financial;
    const USD: Currency = Currency::USD;

    fn ok(category: Category, kind: &str, data: Value) -> Value {
        match normalize(category, kind, &data, USD) {
            Ok(v) => v,
            Err(e) => panic!("{kind} {data} was refused: {e}"),
        }
    }

    fn refused(category: Category, kind: &str, data: Value) -> ComponentError {
        match normalize(category, kind, &data, USD) {
            Ok(v) => panic!("{kind} {data} was accepted as {v}"),
            Err(e) => e,
        }
    }

    /// Parses JSON text, so numbers keep their written form as they do on the wire.
    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn usd(minor: i64) -> Value {
        json!({"minor": minor, "currency": "USD"})
    }

    #[test]
    fn the_original_dish_card_is_accepted() {
        let v = ok(
            R,
            "dish_card",
            parse(
                r#"{"name":"Margherita Pizza","description":"Classic pizza","price":12.99,"dietary":["vegetarian"]}"#,
            ),
        );
        assert_eq!(
            v,
            json!({
                "name": "Margherita Pizza",
                "description": "Classic pizza",
                "price": {"minor": 1299, "currency": "USD"},
                "dietary": ["vegetarian"],
                "allergens": [],
                "available": true,
                "modifiers": [],
            })
        );
    }

    #[test]
    fn decimal_amounts_are_exact() {
        for (text, minor) in [
            ("0.30", 30),
            ("0.3", 30),
            ("0.1", 10),
            ("0.2", 20),
            ("12.990", 1299),
            ("0", 0),
        ] {
            let v = ok(
                R,
                "dish_card",
                parse(&format!(r#"{{"name":"x","price":{text}}}"#)),
            );
            assert_eq!(v["price"], usd(minor), "{text}");
            let v = ok(R, "dish_card", json!({"name": "x", "price": text}));
            assert_eq!(v["price"], usd(minor), "string {text}");
        }
        let v = ok(
            R,
            "dish_card",
            json!({"name": "x", "price": {"minor": 1299}}),
        );
        assert_eq!(v["price"], usd(1299));
        let v = ok(
            R,
            "dish_card",
            json!({"name": "x", "price": {"minor": 1299, "currency": "usd"}}),
        );
        assert_eq!(v["price"], usd(1299));
    }

    #[test]
    fn excess_precision_is_refused_naming_the_field() {
        let e = refused(R, "dish_card", parse(r#"{"name":"x","price":12.999}"#));
        assert_eq!(e.field, "data.price");
        assert!(e.problem.contains("2 decimal places"), "{e}");
        let e = refused(R, "dish_card", json!({"name": "x", "price": "12.999"}));
        assert_eq!(e.field, "data.price");
        assert!(e.to_string().starts_with("data.price: "), "{e}");
    }

    #[test]
    fn exponent_notation_and_junk_are_refused() {
        for text in ["1.299e1", "1E3", "1299e-2"] {
            let e = refused(
                R,
                "dish_card",
                parse(&format!(r#"{{"name":"x","price":{text}}}"#)),
            );
            assert_eq!(e.field, "data.price", "{text}");
        }
        for price in [
            json!("1.299e1"),
            json!("$12"),
            json!(""),
            json!(true),
            json!([1]),
            json!("12."),
        ] {
            let e = refused(R, "dish_card", json!({"name": "x", "price": price}));
            assert_eq!(e.field, "data.price", "{price}");
        }
        let e = refused(
            R,
            "dish_card",
            parse(r#"{"name":"x","price":99999999999999999999}"#),
        );
        assert!(e.problem.contains("out of range"), "{e}");
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": {"minor": 12.5}}),
        );
        assert_eq!(e.field, "data.price.minor");
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": {"amount": 12}}),
        );
        assert_eq!(e.field, "data.price.amount");
    }

    #[test]
    fn zero_exponent_currencies() {
        let jpy = Currency::from_code("JPY").unwrap();
        let data = parse(r#"{"name":"Ramen","price":1200}"#);
        let v = normalize(R, "dish_card", &data, jpy).unwrap();
        assert_eq!(v["price"], json!({"minor": 1200, "currency": "JPY"}));
        let e = normalize(
            R,
            "dish_card",
            &parse(r#"{"name":"Ramen","price":1200.5}"#),
            jpy,
        )
        .unwrap_err();
        assert_eq!(e.field, "data.price");
        assert!(e.problem.contains("JPY"), "{e}");
        let kwd = Currency::from_code("KWD").unwrap();
        let v = normalize(R, "dish_card", &parse(r#"{"name":"x","price":1.125}"#), kwd).unwrap();
        assert_eq!(v["price"]["minor"], 1125);
    }

    #[test]
    fn currency_must_be_the_tenants() {
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": {"minor": 100, "currency": "EUR"}}),
        );
        assert_eq!(e.field, "data.price.currency");
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": {"minor": 100, "currency": "ZZZ"}}),
        );
        assert_eq!(e.field, "data.price.currency");
    }

    #[test]
    fn negative_amounts_only_where_they_make_sense() {
        let e = refused(R, "dish_card", json!({"name": "x", "price": "-1.00"}));
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            ("data.price", "must not be negative")
        );
        let v = ok(F, "account_card", json!({"name": "Card", "balance": -12.5}));
        assert_eq!(v["balance"], usd(-1250));
        let v = ok(
            F,
            "transaction_list",
            json!({"transactions": [{"date": "2026-11-20", "description": "Coffee", "amount": "-4.10"}]}),
        );
        assert_eq!(v["transactions"][0]["amount"], usd(-410));
    }

    #[test]
    fn cart_totals_are_computed() {
        let v = ok(
            R,
            "cart",
            parse(
                r#"{"lines":[
                    {"name":"Margherita Pizza","quantity":2,"unitPrice":12.99,"modifiers":["No basil"]},
                    {"name":"Cola","quantity":1,"unitPrice":"2.50","lineTotal":2.5}
                ]}"#,
            ),
        );
        assert_eq!(v["lines"][0]["lineTotal"], usd(2598));
        assert_eq!(v["lines"][0]["modifiers"], json!(["No basil"]));
        assert_eq!(v["lines"][1]["lineTotal"], usd(250));
        assert_eq!(v["subtotal"], usd(2848));
        assert_eq!(v["itemCount"], 3);
        let empty = ok(R, "cart", json!({"lines": []}));
        assert_eq!(empty["subtotal"], usd(0));
        assert_eq!(empty["itemCount"], 0);
    }

    #[test]
    fn cart_refuses_wrong_totals() {
        let e = refused(
            R,
            "cart",
            parse(
                r#"{"lines":[{"name":"a","quantity":1,"unitPrice":1},{"name":"b","quantity":2,"unitPrice":12.99,"lineTotal":25.00}]}"#,
            ),
        );
        assert_eq!(e.field, "data.lines[1].lineTotal");
        assert!(e.problem.contains("25.98"), "{e}");
        let e = refused(
            R,
            "cart",
            parse(r#"{"lines":[{"name":"a","quantity":2,"unitPrice":1}],"subtotal":1}"#),
        );
        assert_eq!(e.field, "data.subtotal");
        let e = refused(
            R,
            "cart",
            parse(r#"{"lines":[{"name":"a","quantity":2,"unitPrice":1}],"itemCount":1}"#),
        );
        assert_eq!(e.field, "data.itemCount");
        let e = refused(
            R,
            "cart",
            json!({"lines": [{"name": "a", "quantity": 100, "unitPrice": 1}]}),
        );
        assert_eq!(e.field, "data.lines[0].quantity");
        let e = refused(
            R,
            "cart",
            json!({"lines": [{"name": "a", "quantity": 0, "unitPrice": 1}]}),
        );
        assert_eq!(e.field, "data.lines[0].quantity");
        let e = refused(
            R,
            "cart",
            json!({"lines": [{"name": "a", "quantity": 1.5, "unitPrice": 1}]}),
        );
        assert_eq!(e.field, "data.lines[0].quantity");
        let e = refused(R, "cart", json!({}));
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            ("data.lines", "is required")
        );
    }

    #[test]
    fn kinds_of_the_other_category_are_refused() {
        let e = refused(R, "account_card", json!({"name": "x", "balance": 1}));
        assert_eq!(e.field, "type");
        assert!(e.problem.contains("restaurant"), "{e}");
        let e = refused(F, "dish_card", json!({"name": "x", "price": 1}));
        assert_eq!(e.field, "type");
        let e = refused(R, "hologram", json!({}));
        assert_eq!(e.field, "type");
        let e = refused(R, "Dish_Card", json!({}));
        assert_eq!(e.field, "type");
        // Shared kinds work in both.
        ok(R, "message", json!({"text": "hi"}));
        ok(F, "message", json!({"text": "hi"}));
        ok(R, "card", json!({"title": "hi"}));
        ok(F, "card", json!({"title": "hi"}));
    }

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "colour": "red"}),
        );
        assert_eq!(e.field, "data.colour");
        assert!(e.problem.starts_with("unknown field"), "{e}");
        let e = refused(
            R,
            "cart",
            json!({"lines": [{"name": "a", "quantity": 1, "unitPrice": 1}, {"name": "b", "quantity": 1, "unitPrice": 1, "note": "x"}]}),
        );
        assert_eq!(e.field, "data.lines[1].note");
        let e = refused(R, "message", json!("hello"));
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            ("data", "must be a JSON object")
        );
        let e = refused(R, "message", Value::Null);
        assert!(e.to_string().starts_with("data"), "{e}");
    }

    #[test]
    fn snake_case_spellings_are_accepted_and_normalized() {
        let v = ok(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "image_url": "https://img.example/p.jpg", "item_id": 42}),
        );
        assert_eq!(v["imageUrl"], "https://img.example/p.jpg");
        assert_eq!(v["itemId"], "42");
        assert!(v.get("image_url").is_none());
        let v = ok(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "imageUrl": "/static/p.jpg"}),
        );
        assert_eq!(v["imageUrl"], "/static/p.jpg");
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "imageUrl": "/a", "image_url": "/a"}),
        );
        assert_eq!(e.field, "data.imageUrl");
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "image_url": "javascript:alert(1)"}),
        );
        assert_eq!(e.field, "data.image_url");
        for bad in [
            "//evil.example/x",
            "/\\evil.example",
            "ftp://x",
            "https://",
            "https://a b",
        ] {
            let e = refused(
                R,
                "dish_card",
                json!({"name": "x", "price": 1, "imageUrl": bad}),
            );
            assert_eq!(e.field, "data.imageUrl", "{bad}");
        }
        let v = ok(
            R,
            "order_status",
            json!({"order_id": "A-1", "status": "ready", "eta_minutes": 5}),
        );
        assert_eq!(
            v,
            json!({"orderId": "A-1", "status": "ready", "etaMinutes": 5})
        );
    }

    #[test]
    fn strings_are_trimmed_and_bounded() {
        let v = ok(
            R,
            "dish_card",
            json!({"name": "  Soup ", "price": 1, "description": "  "}),
        );
        assert_eq!(v["name"], "Soup");
        assert!(v.get("description").is_none());
        let e = refused(R, "dish_card", json!({"name": "   ", "price": 1}));
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            ("data.name", "must not be empty")
        );
        let e = refused(R, "dish_card", json!({"price": 1}));
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            ("data.name", "is required")
        );
        let e = refused(R, "dish_card", json!({"name": "é".repeat(201), "price": 1}));
        assert_eq!(e.field, "data.name");
        ok(R, "dish_card", json!({"name": "é".repeat(200), "price": 1}));
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "description": "d".repeat(2001)}),
        );
        assert_eq!(e.field, "data.description");
        let e = refused(R, "dish_card", json!({"name": 5, "price": 1}));
        assert_eq!(e.problem, "must be a string");
        let v = ok(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "description": null}),
        );
        assert!(v.get("description").is_none());
    }

    #[test]
    fn dish_card_tags_and_options() {
        let v = ok(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "dietary": ["Gluten-Free", "vegan", "gluten_free"], "allergens": ["tree nuts"],
                   "available": false, "modifiers": ["Large"], "quantity": 2}),
        );
        assert_eq!(v["dietary"], json!(["gluten_free", "vegan"]));
        assert_eq!(v["allergens"], json!(["tree_nuts"]));
        assert_eq!(v["available"], false);
        assert_eq!(v["modifiers"], json!(["Large"]));
        assert_eq!(v["quantity"], 2);
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "dietary": ["vegetarian", "keto"]}),
        );
        assert_eq!(e.field, "data.dietary[1]");
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "allergens": ["vegan"]}),
        );
        assert_eq!(e.field, "data.allergens[0]");
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "available": "yes"}),
        );
        assert_eq!(e.field, "data.available");
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "quantity": 0}),
        );
        assert_eq!(e.field, "data.quantity");
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "modifiers": vec!["m"; 51]}),
        );
        assert_eq!(e.field, "data.modifiers");
    }

    #[test]
    fn menu_section() {
        let v = ok(
            R,
            "menu_section",
            parse(
                r#"{"title":"Pizzas","items":[{"name":"Margherita","price":12.99,"item_id":"p1"},{"name":"Diavola","price":"14","available":false,"dietary":["spicy"]}]}"#,
            ),
        );
        assert_eq!(v["items"][0]["price"], usd(1299));
        assert_eq!(v["items"][0]["itemId"], "p1");
        assert_eq!(v["items"][0]["available"], true);
        assert_eq!(v["items"][1]["available"], false);
        assert_eq!(
            ok(R, "menu_section", json!({"title": "Empty"}))["items"],
            json!([])
        );
        let e = refused(
            R,
            "menu_section",
            json!({"title": "P", "items": [{"name": "a", "price": 1}, {"name": "b"}]}),
        );
        assert_eq!(e.field, "data.items[1].price");
        let e = refused(
            R,
            "menu_section",
            json!({"title": "P", "items": [{"name": "a", "price": -1}]}),
        );
        assert_eq!(e.field, "data.items[0].price");
        let many: Vec<Value> = (0..201)
            .map(|i| json!({"name": format!("i{i}"), "price": 1}))
            .collect();
        let e = refused(R, "menu_section", json!({"title": "P", "items": many}));
        assert_eq!(e.field, "data.items");
    }

    #[test]
    fn order_summary() {
        let v = ok(
            R,
            "order_summary",
            parse(
                r#"{"orderId":17,"lines":[{"name":"a","quantity":2,"unitPrice":5}],"tax":0.8,"tip":1,"total":11.80,"status":"Sent to kitchen"}"#,
            ),
        );
        assert_eq!(v["orderId"], "17");
        assert_eq!(v["subtotal"], usd(1000));
        assert_eq!(v["total"], usd(1180));
        assert_eq!(v["status"], "Sent to kitchen");
        // Total alone is enough.
        let v = ok(R, "order_summary", json!({"total": "9.99"}));
        assert_eq!(v, json!({"total": usd(999)}));
        let e = refused(
            R,
            "order_summary",
            json!({"subtotal": 10, "tax": 1, "total": 10}),
        );
        assert_eq!(e.field, "data.total");
        assert!(e.problem.contains("11.00"), "{e}");
        let e = refused(R, "order_summary", json!({"subtotal": 10}));
        assert_eq!(e.field, "data.total");
        let v = ok(
            R,
            "order_summary",
            json!({"subtotal": 10, "tax": 1, "taxInclusive": true, "total": 10}),
        );
        assert_eq!(v["taxInclusive"], true);
    }

    #[test]
    fn quote() {
        let v = ok(
            R,
            "quote",
            parse(
                r#"{"quoteId":"q-1","lines":[{"name":"Margherita Pizza","quantity":2,"unitPrice":12.99}],
                    "subtotal":25.98,"tax":2.14,"total":28.12,"expiresAt":"2026-11-20T18:30:00Z",
                    "hash":"abc123","readBack":"Two Margherita pizzas, 28.12 in total."}"#,
            ),
        );
        assert_eq!(v["tip"], usd(0));
        assert_eq!(v["taxInclusive"], false);
        assert_eq!(v["total"], usd(2812));
        assert_eq!(v["lines"][0]["lineTotal"], usd(2598));
        assert_eq!(v["expiresAt"], "2026-11-20T18:30:00Z");
        let v = ok(
            R,
            "quote",
            json!({"quoteId": "q", "subtotal": 10, "tax": 1.5, "tip": 2, "taxInclusive": true, "total": 12}),
        );
        assert_eq!(v["total"], usd(1200));
        let e = refused(
            R,
            "quote",
            json!({"quoteId": "q", "subtotal": 10, "tax": 1, "total": 10}),
        );
        assert_eq!(e.field, "data.total");
        let e = refused(R, "quote", json!({"subtotal": 10, "tax": 1, "total": 11}));
        assert_eq!(e.field, "data.quoteId");
        let e = refused(
            R,
            "quote",
            json!({"quoteId": "q", "subtotal": 10, "total": 10}),
        );
        assert_eq!(e.field, "data.tax");
        let e = refused(
            R,
            "quote",
            json!({"quoteId": "q", "lines": [{"name": "a", "quantity": 1, "unitPrice": 5}], "subtotal": 10, "tax": 0, "total": 10}),
        );
        assert_eq!(e.field, "data.subtotal");
        let e = refused(
            R,
            "quote",
            json!({"quoteId": "q", "subtotal": 10, "tax": 0, "total": 10, "expiresAt": "tomorrow"}),
        );
        assert_eq!(e.field, "data.expiresAt");
        let e = refused(
            R,
            "quote",
            json!({"quoteId": "q", "subtotal": 1, "tax": 2, "taxInclusive": true, "total": 1}),
        );
        assert_eq!(e.field, "data.tax");
    }

    #[test]
    fn order_status() {
        let v = ok(
            R,
            "order_status",
            json!({"orderId": "A-17", "status": "in_kitchen", "etaMinutes": 12}),
        );
        assert_eq!(
            v,
            json!({"orderId": "A-17", "status": "in_kitchen", "etaMinutes": 12})
        );
        let v = ok(
            R,
            "order_status",
            json!({"orderId": "A-17", "status": "In Kitchen", "message": "Almost there"}),
        );
        assert_eq!(v["status"], "in_kitchen");
        let e = refused(
            R,
            "order_status",
            json!({"orderId": "A-17", "status": "lost"}),
        );
        assert_eq!(e.field, "data.status");
        let e = refused(
            R,
            "order_status",
            json!({"orderId": "A-17", "status": "ready", "etaMinutes": -1}),
        );
        assert_eq!(e.field, "data.etaMinutes");
        let e = refused(R, "order_status", json!({"status": "ready"}));
        assert_eq!(e.field, "data.orderId");
    }

    #[test]
    fn message() {
        let v = ok(R, "message", json!({"text": "Anything to drink?"}));
        assert_eq!(
            v,
            json!({"text": "Anything to drink?", "role": "assistant", "tone": "info"})
        );
        let v = ok(
            F,
            "message",
            json!({"text": "Saved", "role": "system", "tone": "SUCCESS"}),
        );
        assert_eq!(
            (v["role"].as_str(), v["tone"].as_str()),
            (Some("system"), Some("success"))
        );
        let e = refused(R, "message", json!({"text": "y".repeat(2001)}));
        assert_eq!(e.field, "data.text");
        let e = refused(R, "message", json!({"text": "hi", "tone": "loud"}));
        assert_eq!(e.field, "data.tone");
        let e = refused(R, "message", json!({"text": "hi", "role": "bot"}));
        assert_eq!(e.field, "data.role");
    }

    #[test]
    fn account_card() {
        let v = ok(
            F,
            "account_card",
            parse(
                r#"{"name":"Everyday Checking","balance":4823.17,"kind":"checking","maskedNumber":"••••1234","owner":"Ana"}"#,
            ),
        );
        assert_eq!(v["balance"], usd(482_317));
        assert_eq!(v["kind"], "checking");
        assert_eq!(v["maskedNumber"], "••••1234");
        let e = refused(
            F,
            "account_card",
            json!({"name": "x", "balance": 1, "maskedNumber": "1234567812345678"}),
        );
        assert_eq!(e.field, "data.maskedNumber");
        let e = refused(
            F,
            "account_card",
            json!({"name": "x", "balance": 1, "kind": "crypto"}),
        );
        assert_eq!(e.field, "data.kind");
        let e = refused(F, "account_card", json!({"name": "x"}));
        assert_eq!(e.field, "data.balance");
    }

    #[test]
    fn transaction_list() {
        let v = ok(
            F,
            "transaction_list",
            parse(
                r#"{"title":"Recent","transactions":[
                    {"date":"2026-11-20","description":"Grocery store","amount":-84.12,"category":"food"},
                    {"date":"2024-02-29","description":"Salary","amount":3200,"category":"income"}]}"#,
            ),
        );
        assert_eq!(v["transactions"][0]["amount"], usd(-8412));
        assert_eq!(v["transactions"][1]["amount"], usd(320_000));
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "20-11-2026",
            "2026-1-01",
            "２０２６-11-20",
        ] {
            let e = refused(
                F,
                "transaction_list",
                json!({"transactions": [{"date": bad, "description": "x", "amount": 1}]}),
            );
            assert_eq!(e.field, "data.transactions[0].date", "{bad}");
        }
        let e = refused(
            F,
            "transaction_list",
            json!({"transactions": [{"date": "2026-11-20", "description": "x"}]}),
        );
        assert_eq!(e.field, "data.transactions[0].amount");
    }

    #[test]
    fn comparison_table() {
        let v = ok(
            F,
            "comparison_table",
            parse(
                r#"{"title":"Savings options","columns":["Rate","Minimum"],"rows":[{"label":"High-Yield Savings","values":["4.10%","$0"]},{"label":"12-month CD","values":[4.6,1000]}]}"#,
            ),
        );
        assert_eq!(v["rows"][1]["values"], parse("[4.6, 1000]"));
        let e = refused(
            F,
            "comparison_table",
            json!({"columns": ["a", "b"], "rows": [{"label": "r", "values": ["1"]}]}),
        );
        assert_eq!(e.field, "data.rows[0].values");
        let e = refused(F, "comparison_table", json!({"columns": [], "rows": []}));
        assert_eq!(e.field, "data.columns");
        let e = refused(
            F,
            "comparison_table",
            json!({"columns": ["a"], "rows": [{"label": "r", "values": [true]}]}),
        );
        assert_eq!(e.field, "data.rows[0].values[0]");
        let e = refused(F, "comparison_table", json!({"columns": ["a"]}));
        assert_eq!(e.field, "data.rows");
    }

    #[test]
    fn chart() {
        let v = ok(
            F,
            "chart",
            parse(
                r#"{"title":"Spending","series":[{"name":"2026","points":[{"x":"Jan","y":120.5},{"x":2,"y":-3}]}]}"#,
            ),
        );
        assert_eq!(v["chartType"], "bar");
        assert_eq!(
            v["series"][0]["points"][0],
            parse(r#"{"x":"Jan","y":120.5}"#)
        );
        let e = refused(
            F,
            "chart",
            json!({"chartType": "pie", "series": [{"name": "s", "points": [{"x": "a", "y": -1}]}]}),
        );
        assert_eq!(e.field, "data.series[0].points[0].y");
        let e = refused(
            F,
            "chart",
            json!({"series": [{"name": "s", "points": [{"x": "a", "y": "1"}]}]}),
        );
        assert_eq!(e.field, "data.series[0].points[0].y");
        let e = refused(
            F,
            "chart",
            parse(r#"{"series":[{"name":"s","points":[{"x":"a","y":1e999}]}]}"#),
        );
        assert_eq!(e.field, "data.series[0].points[0].y");
        let points: Vec<Value> = (0..1001).map(|i| json!({"x": i, "y": i})).collect();
        let e = refused(
            F,
            "chart",
            json!({"series": [{"name": "s", "points": points}]}),
        );
        assert_eq!(e.field, "data.series[0].points");
        let e = refused(
            F,
            "chart",
            json!({"chartType": "radar", "series": [{"name": "s"}]}),
        );
        assert_eq!(e.field, "data.chartType");
        let e = refused(F, "chart", json!({"title": "t"}));
        assert_eq!(e.field, "data.series");
    }

    #[test]
    fn card() {
        let v = ok(
            F,
            "card",
            json!({"title": "Your adviser", "body": "Meet Sam", "image_url": "https://x.example/a.png",
                   "fields": [{"label": "Phone", "value": "555-0100"}, {"label": "Years", "value": 12}]}),
        );
        assert_eq!(v["imageUrl"], "https://x.example/a.png");
        assert_eq!(v["fields"][1]["value"], 12);
        let e = refused(R, "card", json!({"title": "t", "fields": [{"label": "a"}]}));
        assert_eq!(e.field, "data.fields[0].value");
        let fields: Vec<Value> = (0..51).map(|i| json!({"label": "l", "value": i})).collect();
        let e = refused(R, "card", json!({"title": "t", "fields": fields}));
        assert_eq!(e.field, "data.fields");
        let e = refused(R, "card", json!({"body": "no title"}));
        assert_eq!(e.field, "data.title");
    }

    #[test]
    fn kinds_parse_and_belong_to_categories() {
        for k in ComponentKind::ALL {
            assert_eq!(ComponentKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), json!(k.as_str()));
            assert!(k.allowed_in(R) || k.allowed_in(F));
        }
        let names = |c| {
            ComponentKind::for_category(c)
                .iter()
                .map(ComponentKind::as_str)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(R),
            [
                "dish_card",
                "menu_section",
                "cart",
                "order_summary",
                "quote",
                "order_status",
                "message",
                "card"
            ]
        );
        assert_eq!(
            names(F),
            [
                "account_card",
                "transaction_list",
                "comparison_table",
                "chart",
                "message",
                "card"
            ]
        );
        assert!(!ComponentKind::DishCard.allowed_in(F));
        assert!(!ComponentKind::Chart.allowed_in(R));
        assert_eq!(ComponentKind::parse("nope"), None);
    }

    #[test]
    fn error_displays_path_then_problem() {
        let e = refused(
            R,
            "menu_section",
            json!({"title": "P", "items": [{"name": "a", "price": 1}, {"name": "b", "price": -2}]}),
        );
        assert_eq!(e.to_string(), "data.items[1].price: must not be negative");
    }

    #[test]
    fn timestamps() {
        for good in [
            "2026-11-20T18:30:00Z",
            "2026-11-20t18:30:00.123z",
            "2024-02-29T23:59:60+05:30",
            "2026-01-01T00:00:00-08:00",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "2026-11-20",
            "2026-11-20T18:30:00",
            "2026-11-20T24:00:00Z",
            "2026-11-20T18:30:00.Z",
            "2026-11-20 18:30:00Z",
            "2026-11-20T18:30:00+0530",
            "2025-02-29T00:00:00Z",
            "",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn major_unit_text_round_trips_for_dish_card(minor in 0i64..1_000_000_000_000i64, which in 0usize..3) {
            let cur = [Currency::USD, Currency::from_code("JPY").unwrap(), Currency::from_code("KWD").unwrap()][which];
            let text = cur.format_minor(minor);
            let expected = json!({"minor": minor, "currency": cur.code()});
            let as_number = parse(&format!(r#"{{"name":"Dish","price":{text}}}"#));
            let v = normalize(R, "dish_card", &as_number, cur);
            prop_assert_eq!(v.map(|v| v["price"].clone()), Ok(expected.clone()));
            let as_string = json!({"name": "Dish", "price": text});
            let v = normalize(R, "dish_card", &as_string, cur);
            prop_assert_eq!(v.map(|v| v["price"].clone()), Ok(expected));
        }

        #[test]
        fn any_price_text_is_answered_without_panicking(s in "\\PC{0,30}") {
            let _ = normalize(R, "dish_card", &json!({"name": "x", "price": s}), USD);
        }
    }
}
