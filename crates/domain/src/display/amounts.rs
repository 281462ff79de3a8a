//! Amounts of money in display data (see the module docs of `display`): a number or
//! string in major units, or `{"minor": …}`, read exactly as minor units of the
//! tenant's currency.

use super::ComponentError;
use super::fields::{Obj, clip, err};
use crate::Currency;
use crate::money::MoneyError;
use serde_json::Value;

/// Whether a money field may be negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sign {
    NonNegative,
    Any,
}

/// Reads an amount of money (see the module docs) as minor units of `cur`.
pub(super) fn money_value(
    v: &Value,
    field: &str,
    cur: Currency,
    sign: Sign,
) -> Result<i64, ComponentError> {
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

#[cfg(test)]
mod tests {
    use crate::Currency;
    use crate::display::normalize;
    use crate::display::tests::{F, R, USD, ok, parse, refused, usd};
    use proptest::prelude::*;
    use serde_json::json;

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
