//! Helpers for the display tests, and the tests of the public API: kinds, categories
//! and how a refusal reads.

use super::*;
use serde_json::json;

pub(super) const R: Category = Category::Restaurant;
pub(super) const F: Category = Category::Financial;
pub(super) const USD: Currency = Currency::USD;

pub(super) fn ok(category: Category, kind: &str, data: Value) -> Value {
    match normalize(category, kind, &data, USD) {
        Ok(v) => v,
        Err(e) => panic!("{kind} {data} was refused: {e}"),
    }
}

pub(super) fn refused(category: Category, kind: &str, data: Value) -> ComponentError {
    match normalize(category, kind, &data, USD) {
        Ok(v) => panic!("{kind} {data} was accepted as {v}"),
        Err(e) => e,
    }
}

/// Parses JSON text, so numbers keep their written form as they do on the wire.
pub(super) fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

pub(super) fn usd(minor: i64) -> Value {
    json!({"minor": minor, "currency": "USD"})
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
            "kitchen_ticket",
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
