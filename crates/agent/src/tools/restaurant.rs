//! Restaurant tools: search and show the menu, and change the cart.

use super::{DisplayOp, ToolOutcome, money, parse, price_text, words};
use serde::Deserialize;
use serde_json::{Value, json};
use stonepot_domain::cart::{self, CartError};
use stonepot_domain::menu::{Item, Menu};
use stonepot_domain::{Cart, Currency};
use stonepot_llm::ToolSpec;

fn spec(name: &str, description: &str, parameters: Value) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters,
    }
}

pub(super) fn specs() -> Vec<ToolSpec> {
    let modifiers = json!({"type": "array", "items": {"type": "string"},
        "description": "Modifier names or ids from the item's modifier groups, e.g. [\"No basil\", \"Large\"]"});
    vec![
        spec(
            "search_menu",
            "Find dishes by words, dietary tag or section. Shows the matches on the display.",
            json!({"type": "object", "properties": {
                "query": {"type": "string", "description": "Words to look for in names, descriptions and aliases"},
                "dietary": {"type": "array", "items": {"type": "string"}, "description": "Only items with all these tags, e.g. vegetarian, vegan, gluten_free"},
                "exclude_allergens": {"type": "array", "items": {"type": "string"}, "description": "Leave out items containing these allergens, e.g. gluten, milk"},
                "section": {"type": "string", "description": "A section id or name, e.g. pizzas"}
            }}),
        ),
        spec(
            "show_item",
            "Show one dish with its description, price, tags and modifier options.",
            json!({"type": "object", "properties": {
                "item": {"type": "string", "description": "Item id or name"}
            }, "required": ["item"]}),
        ),
        spec(
            "add_to_cart",
            "Add a dish to the guest's cart with optional modifiers. Prices come from the menu.",
            json!({"type": "object", "properties": {
                "item": {"type": "string", "description": "Item id or name"},
                "quantity": {"type": "integer", "minimum": 1, "maximum": 99, "default": 1},
                "modifiers": modifiers
            }, "required": ["item"]}),
        ),
        spec(
            "update_cart_line",
            "Change the quantity and/or the modifiers of a cart line (modifiers replace the old ones).",
            json!({"type": "object", "properties": {
                "line_id": {"type": "string", "description": "The line id from the cart, e.g. l1"},
                "quantity": {"type": "integer", "minimum": 1, "maximum": 99},
                "modifiers": modifiers
            }, "required": ["line_id"]}),
        ),
        spec(
            "remove_from_cart",
            "Remove a line from the cart.",
            json!({"type": "object", "properties": {
                "line_id": {"type": "string", "description": "The line id from the cart, e.g. l1"}
            }, "required": ["line_id"]}),
        ),
        spec(
            "show_cart",
            "Show the cart with its lines and subtotal.",
            json!({"type": "object", "properties": {}}),
        ),
        spec(
            "clear_cart",
            "Empty the cart.",
            json!({"type": "object", "properties": {}}),
        ),
        spec(
            "quote_order",
            "When the guest has finished ordering: price-lock the cart (taxes, tip, total, \
             10-minute expiry) and show the quote. Read its `readBack` to the guest word for \
             word and wait for a clear yes.",
            json!({"type": "object", "properties": {
                "tip_percent": {"type": "integer", "minimum": 0, "maximum": 100, "description": "A tip the guest asked for, in percent of the subtotal"},
                "tip_amount": {"type": "integer", "minimum": 0, "description": "A tip the guest asked for, in minor units (cents)"}
            }}),
        ),
        spec(
            "confirm_order",
            "Place the order after the guest clearly said yes to the read-back of the latest \
             quote. Pass that quote's hash. If the cart or prices changed, it is refused and \
             a new quote (with its own read-back) comes back: read that one instead.",
            json!({"type": "object", "properties": {
                "quote_hash": {"type": "string", "description": "The `hash` of the quote the guest agreed to"},
                "order_type": {"type": "string", "enum": ["dine_in", "pickup", "delivery"], "default": "dine_in"}
            }, "required": ["quote_hash"]}),
        ),
    ]
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    dietary: Vec<String>,
    #[serde(default)]
    exclude_allergens: Vec<String>,
    #[serde(default)]
    section: Option<String>,
}

#[derive(Deserialize)]
struct ItemRef {
    item: String,
}

#[derive(Deserialize)]
struct Add {
    item: String,
    #[serde(default = "one")]
    quantity: i64,
    #[serde(default)]
    modifiers: Vec<String>,
}

fn one() -> i64 {
    1
}

#[derive(Deserialize)]
struct Update {
    line_id: String,
    #[serde(default)]
    quantity: Option<i64>,
    #[serde(default)]
    modifiers: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct LineRef {
    line_id: String,
}

pub(super) fn run(
    menu: &Menu,
    cart: &mut Cart,
    cur: Currency,
    name: &str,
    args: &Value,
) -> ToolOutcome {
    let out = match name {
        "search_menu" => parse(args).map(|a| search(menu, cur, a)),
        "show_item" => parse(args).map(|a: ItemRef| show_item(menu, cur, &a.item)),
        "add_to_cart" => parse(args).map(|a: Add| {
            let added = cart
                .add(menu, &a.item, a.quantity, &a.modifiers)
                .map(|l| l.line_id.clone());
            cart_changed(menu, cart, cur, added, "added")
        }),
        "update_cart_line" => parse(args).map(|a: Update| {
            let r = cart
                .update(menu, &a.line_id, a.quantity, a.modifiers.as_deref())
                .map(|l| l.line_id.clone());
            cart_changed(menu, cart, cur, r, "updated")
        }),
        "remove_from_cart" => parse(args).map(|a: LineRef| {
            let r = cart.remove(&a.line_id).map(|l| l.line_id);
            cart_changed(menu, cart, cur, r, "removed")
        }),
        "show_cart" => Ok(ToolOutcome::ok(
            cart_json(cart, cur),
            vec![cart_display(cart)],
        )),
        "clear_cart" => {
            cart.clear();
            Ok(ToolOutcome::ok(cart_json(cart, cur), vec![cart_display(cart)]).changed())
        }
        other => Err(ToolOutcome::refused(
            "unknown_tool",
            format!("there is no tool '{other}'"),
        )),
    };
    out.unwrap_or_else(|refusal| refusal)
}

fn refusal(e: &CartError) -> ToolOutcome {
    let mut detail = serde_json::to_value(e).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut detail {
        m.insert("message".into(), Value::String(e.to_string()));
    }
    ToolOutcome::refused_with(detail)
}

fn cart_changed(
    menu: &Menu,
    cart: &Cart,
    cur: Currency,
    r: Result<String, CartError>,
    verb: &str,
) -> ToolOutcome {
    match r {
        Ok(line_id) => {
            let mut result = cart_json(cart, cur);
            if let Value::Object(m) = &mut result {
                m.insert(verb.into(), Value::String(line_id.clone()));
            }
            let mut display = vec![cart_display(cart)];
            if verb != "removed"
                && let Some(item) = cart.line(&line_id).and_then(|l| menu.item(&l.item_id))
            {
                display.insert(0, dish_display(item));
            }
            ToolOutcome::ok(result, display).changed()
        }
        Err(e) => refusal(&e),
    }
}

/// The cart as the model sees it.
fn cart_json(cart: &Cart, cur: Currency) -> Value {
    let lines: Vec<Value> = cart
        .lines
        .iter()
        .map(|l| {
            json!({
                "line_id": l.line_id,
                "item": l.name,
                "item_id": l.item_id,
                "quantity": l.quantity,
                "modifiers": l.modifiers.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
                "unit_price": price_text(l.unit_price, cur),
                "line_total": price_text(l.line_total, cur),
            })
        })
        .collect();
    json!({
        "lines": lines,
        "item_count": cart.item_count(),
        "subtotal": price_text(cart.subtotal(), cur),
    })
}

/// The `cart` component (key `cart`).
pub fn cart_display(cart: &Cart) -> DisplayOp {
    let lines: Vec<Value> = cart
        .lines
        .iter()
        .map(|l| {
            json!({
                "name": l.name,
                "itemId": l.item_id,
                "quantity": l.quantity,
                "unitPrice": money(l.unit_price),
                "modifiers": l.modifiers.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    DisplayOp::put("cart", "cart", json!({ "lines": lines }))
}

fn dish_display(item: &Item) -> DisplayOp {
    let mut data = json!({
        "name": item.name,
        "description": item.description,
        "price": money(item.price),
        "itemId": item.id,
        "dietary": item.dietary,
        "allergens": item.allergens,
        "available": item.available,
        "modifiers": item.modifier_groups.iter()
            .flat_map(|g| g.modifiers.iter().map(|m| m.name.as_str()))
            .collect::<Vec<_>>(),
    });
    if let (Some(url), Value::Object(m)) = (&item.image_url, &mut data) {
        m.insert("imageUrl".into(), Value::String(url.clone()));
    }
    DisplayOp::put("dish_card", "focus", data)
}

fn item_json(item: &Item, cur: Currency) -> Value {
    json!({
        "id": item.id,
        "name": item.name,
        "price": price_text(item.price, cur),
        "available": item.available,
        "dietary": item.dietary,
        "allergens": item.allergens,
    })
}

fn show_item(menu: &Menu, cur: Currency, key: &str) -> ToolOutcome {
    let Some(item) = cart::find_item(menu, key).or_else(|| best_match(menu, key)) else {
        return refusal(&CartError::UnknownItem { item: key.into() });
    };
    let mut result = item_json(item, cur);
    if let Value::Object(m) = &mut result {
        m.insert(
            "description".into(),
            Value::String(item.description.clone()),
        );
        let groups: Vec<Value> = item
            .modifier_groups
            .iter()
            .map(|g| {
                json!({
                    "group": g.name, "min": g.min, "max": g.max,
                    "options": g.modifiers.iter().map(|o| json!({
                        "name": o.name,
                        "price_delta": price_text(o.price_delta, cur),
                        "default": o.default,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        m.insert("modifier_groups".into(), Value::Array(groups));
    }
    ToolOutcome::ok(result, vec![dish_display(item)])
}

/// The item whose words best cover the query's (for `show_item` with a loose name).
fn best_match<'m>(menu: &'m Menu, key: &str) -> Option<&'m Item> {
    let q = words(key);
    menu.items
        .iter()
        .map(|i| (score(i, &q), i))
        .filter(|(s, _)| *s > 0)
        .max_by_key(|(s, _)| *s)
        .map(|(_, i)| i)
}

fn score(item: &Item, query: &[String]) -> usize {
    let mut hay = words(&item.name);
    hay.extend(words(&item.description));
    for a in &item.aliases {
        hay.extend(words(a));
    }
    hay.extend(words(&item.section_id));
    query
        .iter()
        .filter(|w| {
            hay.iter()
                .any(|h| h == *w || h.trim_end_matches('s') == w.trim_end_matches('s'))
        })
        .count()
}

fn search(menu: &Menu, cur: Currency, a: Search) -> ToolOutcome {
    let query = a.query.as_deref().map(words).unwrap_or_default();
    let section = a.section.as_deref().map(|s| s.trim().to_lowercase());
    let section_name = section.as_ref().and_then(|s| {
        menu.sections
            .iter()
            .find(|x| x.id == *s || x.name.to_lowercase() == *s)
    });
    if section.is_some() && section_name.is_none() {
        let names: Vec<&str> = menu.sections.iter().map(|s| s.name.as_str()).collect();
        return ToolOutcome::refused(
            "unknown_section",
            format!(
                "there is no section '{}'; sections: {}",
                a.section.unwrap_or_default(),
                names.join(", ")
            ),
        );
    }
    let hits: Vec<&Item> = menu
        .items
        .iter()
        .filter(|i| section_name.is_none_or(|s| i.section_id == s.id))
        .filter(|i| a.dietary.iter().all(|d| i.dietary.iter().any(|x| x == d)))
        .filter(|i| {
            !a.exclude_allergens
                .iter()
                .any(|d| i.allergens.iter().any(|x| x == d))
        })
        .filter(|i| query.is_empty() || score(i, &query) > 0)
        .collect();
    let title = match (section_name, a.query.as_deref(), a.dietary.is_empty()) {
        (Some(s), _, _) => s.name.clone(),
        (None, Some(q), _) if !q.trim().is_empty() => format!("Results for \"{}\"", q.trim()),
        (None, _, false) => a.dietary.join(", ").replace('_', " "),
        _ => "Menu".into(),
    };
    let items: Vec<Value> = hits
        .iter()
        .take(200)
        .map(|i| {
            json!({
                "name": i.name, "price": money(i.price), "description": i.description,
                "itemId": i.id, "dietary": i.dietary, "allergens": i.allergens,
                "available": i.available,
            })
        })
        .collect();
    let result = json!({
        "matches": hits.iter().map(|i| item_json(i, cur)).collect::<Vec<_>>(),
    });
    ToolOutcome::ok(
        result,
        vec![DisplayOp::put(
            "menu_section",
            "menu",
            json!({"title": title, "items": items}),
        )],
    )
}

#[cfg(test)]
mod tests {
    use crate::tools::Workspace;
    use crate::tools::tests::restaurant;
    use stonepot_domain::ComponentKind;

    fn normalizes(w: &Workspace, out: &crate::tools::ToolOutcome) {
        for d in &out.display {
            if let crate::tools::DisplayOp::Put { kind, data, .. } = d {
                let k = ComponentKind::parse(kind).unwrap();
                k.normalize(data, stonepot_domain::Currency::USD)
                    .unwrap_or_else(|e| panic!("{kind} does not fit its schema: {e}"));
            }
        }
        let _ = w;
    }

    #[test]
    fn add_with_modifiers_updates_cart_and_display() {
        let mut w = restaurant();
        let out = w.run(
            "add_to_cart",
            r#"{"item":"Margherita Pizza","quantity":2,"modifiers":["No basil"]}"#,
        );
        assert!(out.ok, "{}", out.result);
        assert!(out.cart_changed);
        assert_eq!(out.result["added"], "l1");
        assert_eq!(out.result["item_count"], 2);
        assert_eq!(out.display.len(), 2, "the dish and then the cart");
        normalizes(&w, &out);
        let cart = w.cart().unwrap();
        assert_eq!(cart.lines[0].quantity, 2);
    }

    #[test]
    fn refusals_carry_codes_and_change_nothing() {
        let mut w = restaurant();
        let out = w.run("add_to_cart", r#"{"item":"truffle pizza"}"#);
        assert!(!out.ok);
        assert_eq!(out.result["error"]["code"], "unavailable");
        assert!(
            out.result["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Truffle")
        );
        let out = w.run(
            "add_to_cart",
            r#"{"item":"margherita","modifiers":["anchovies"]}"#,
        );
        assert_eq!(out.result["error"]["code"], "unknown_modifier");
        let out = w.run("remove_from_cart", r#"{"line_id":"l7"}"#);
        assert_eq!(out.result["error"]["code"], "unknown_line");
        assert!(w.cart().unwrap().lines.is_empty());
        assert!(!out.cart_changed);
    }

    #[test]
    fn search_filters_and_renders_a_menu_section() {
        let mut w = restaurant();
        let out = w.run(
            "search_menu",
            r#"{"dietary":["vegetarian"],"section":"pizzas"}"#,
        );
        assert!(out.ok, "{}", out.result);
        let names: Vec<&str> = out.result["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"Margherita Pizza"), "{names:?}");
        assert!(!names.contains(&"Pepperoni Pizza"), "{names:?}");
        normalizes(&w, &out);
        let out = w.run("search_menu", r#"{"section":"sushi"}"#);
        assert_eq!(out.result["error"]["code"], "unknown_section");
    }

    #[test]
    fn update_remove_clear_and_show() {
        let mut w = restaurant();
        assert!(w.run("add_to_cart", r#"{"item":"margherita"}"#).ok);
        assert!(w.run("add_to_cart", r#"{"item":"caesar salad"}"#).ok);
        let out = w.run("update_cart_line", r#"{"line_id":"l1","quantity":3}"#);
        assert!(out.ok, "{}", out.result);
        assert_eq!(out.result["item_count"], 4);
        let out = w.run("remove_from_cart", r#"{"line_id":"l2"}"#);
        assert_eq!(out.result["item_count"], 3);
        normalizes(&w, &out);
        let out = w.run("show_item", r#"{"item":"the margarita"}"#);
        assert!(out.ok, "{}", out.result);
        assert_eq!(out.result["id"], "margherita");
        normalizes(&w, &out);
        let out = w.run("clear_cart", "");
        assert!(out.ok && out.cart_changed);
        assert_eq!(out.result["item_count"], 0);
        normalizes(&w, &out);
    }
}
