//! Restaurant kinds: `dish_card`, `menu_section`, `cart`, `order_summary`, `quote` and
//! `order_status`, and the kitchen's `kitchen_ticket`, with the order lines and totals the cart, summary and quote share.

use super::amounts::Sign;
use super::dates::is_rfc3339;
use super::fields::{Obj, Out, err};
use super::{
    ComponentError, ETA_MAX, LIST_MAX, NAME_MAX, ORDER_STATUSES, QUANTITY_MAX, STRINGS_MAX,
    TEXT_MAX,
};
use crate::Currency;
use crate::menu::{ALLERGEN_TAGS, DIETARY_TAGS};
use serde_json::Value;

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

pub(super) fn dish_card(data: &Value, cur: Currency) -> Result<Value, ComponentError> {
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

pub(super) fn menu_section(data: &Value, cur: Currency) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", MENU_SECTION_KEYS)?;
    let mut out = Out::default();
    out.set("title", o.req_text("title", NAME_MAX)?);
    let items = o.objects("items", LIST_MAX, MENU_ITEM_KEYS, |i| {
        let mut item = Out::default();
        item.set("name", i.req_text("name", NAME_MAX)?);
        item.money("price", i.req_money("price", cur, Sign::NonNegative)?, cur);
        item.opt("description", i.text("description", TEXT_MAX)?);
        item.opt("itemId", i.id("itemId")?);
        item.set("dietary", i.tags("dietary", DIETARY_TAGS)?);
        item.set("allergens", i.tags("allergens", ALLERGEN_TAGS)?);
        item.opt("imageUrl", i.url("imageUrl")?);
        item.set("available", i.flag("available")?.unwrap_or(true));
        Ok(item.done())
    })?;
    out.set("items", items.unwrap_or_default());
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

impl Lines {
    /// The order lines under `o`'s `lines`, if given.
    fn read(o: &Obj, cur: Currency) -> Result<Option<Lines>, ComponentError> {
        o.array("lines", LIST_MAX)?
            .map(|items| order_lines(items, cur))
            .transpose()
    }

    /// `o`'s `subtotal`, which when given must equal the sum of the line totals.
    fn subtotal(&self, o: &Obj, cur: Currency) -> Result<i64, ComponentError> {
        o.must_equal("subtotal", self.subtotal, "the sum of line totals", cur)
    }
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

pub(super) fn cart(data: &Value, cur: Currency) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", &["lines", "subtotal", "itemCount"])?;
    let lines = Lines::read(&o, cur)?.ok_or_else(|| o.missing("lines"))?;
    let subtotal = lines.subtotal(&o, cur)?;
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

/// What an order's `total` is checked against.
struct Totals {
    subtotal: i64,
    tax: i64,
    tip: i64,
    /// Whether the prices include tax.
    inclusive: bool,
}

impl Totals {
    /// subtotal + tip, plus tax unless the prices include it; `None` on overflow.
    fn expected(&self) -> Option<i64> {
        let base = self.subtotal.checked_add(self.tip)?;
        if self.inclusive {
            Some(base)
        } else {
            base.checked_add(self.tax)
        }
    }

    /// Refuses `o`'s `total` unless it is the expected one.
    fn check(&self, o: &Obj, total: i64, cur: Currency) -> Result<(), ComponentError> {
        let expected = self.expected();
        if expected == Some(total) {
            return Ok(());
        }
        let formula = if self.inclusive {
            "subtotal + tip (tax-inclusive)"
        } else {
            "subtotal + tax + tip"
        };
        let problem = match expected {
            Some(e) => format!(
                "must equal {formula} = {} (got {})",
                cur.format_minor(e),
                cur.format_minor(total)
            ),
            None => format!("{formula} is out of range"),
        };
        Err(err(o.at("total"), problem))
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

pub(super) fn order_summary(data: &Value, cur: Currency) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", ORDER_SUMMARY_KEYS)?;
    let mut out = Out::default();
    out.opt("orderId", o.id("orderId")?);
    let subtotal = match Lines::read(&o, cur)? {
        Some(lines) => {
            let subtotal = lines.subtotal(&o, cur)?;
            out.set("lines", lines.json);
            Some(subtotal)
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
        let totals = Totals {
            subtotal: sub,
            tax: tax.unwrap_or(0),
            tip: tip.unwrap_or(0),
            inclusive: inclusive.unwrap_or(false),
        };
        totals.check(&o, total, cur)?;
    }
    out.opt_money("subtotal", subtotal, cur);
    out.opt_money("tax", tax, cur);
    out.opt_money("tip", tip, cur);
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

pub(super) fn quote(data: &Value, cur: Currency) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", QUOTE_KEYS)?;
    let mut out = Out::default();
    out.set("quoteId", o.req_id("quoteId")?);
    let lines = Lines::read(&o, cur)?;
    let subtotal = o.req_money("subtotal", cur, Sign::NonNegative)?;
    if let Some(l) = &lines {
        l.subtotal(&o, cur)?;
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
    let totals = Totals {
        subtotal,
        tax,
        tip,
        inclusive,
    };
    totals.check(&o, total, cur)?;
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

pub(super) fn order_status(data: &Value) -> Result<Value, ComponentError> {
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

/// Order types a `kitchen_ticket` may name.
const ORDER_TYPES: &[&str] = &["dine_in", "pickup", "delivery"];

pub(super) fn kitchen_ticket(data: &Value) -> Result<Value, ComponentError> {
    let o = Obj::new(
        data,
        "data",
        &[
            "orderId",
            "number",
            "status",
            "orderType",
            "paid",
            "placedAt",
            "lines",
            "note",
        ],
    )?;
    let mut out = Out::default();
    out.set("orderId", o.req_id("orderId")?);
    out.set(
        "number",
        o.int("number", 1, 999_999_999)?
            .ok_or_else(|| o.missing("number"))?,
    );
    out.set(
        "status",
        o.choice("status", ORDER_STATUSES)?
            .ok_or_else(|| o.missing("status"))?,
    );
    out.opt("orderType", o.choice("orderType", ORDER_TYPES)?);
    out.set("paid", o.flag("paid")?.unwrap_or(false));
    match o.text("placedAt", NAME_MAX)? {
        Some(s) if is_rfc3339(&s) => out.set("placedAt", s),
        Some(_) => {
            return Err(err(
                o.at("placedAt"),
                "must be an RFC 3339 timestamp like 2026-11-20T18:30:00Z",
            ));
        }
        None => {}
    }
    let lines = o
        .objects("lines", LIST_MAX, &["name", "quantity", "modifiers"], |l| {
            let mut line = Out::default();
            line.set("name", l.req_text("name", NAME_MAX)?);
            line.set(
                "quantity",
                l.int("quantity", 1, 999)?
                    .ok_or_else(|| l.missing("quantity"))?,
            );
            line.set(
                "modifiers",
                l.strings("modifiers", STRINGS_MAX, NAME_MAX)?
                    .unwrap_or_default(),
            );
            Ok(line.done())
        })?
        .ok_or_else(|| o.missing("lines"))?;
    if lines.is_empty() {
        return Err(err(o.at("lines"), "must have at least one line"));
    }
    out.set("lines", lines);
    out.opt("note", o.text("note", TEXT_MAX)?);
    Ok(out.done())
}

#[cfg(test)]
mod tests {
    use crate::display::tests::{R, ok, parse, refused, usd};
    use serde_json::{Value, json};

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
}
