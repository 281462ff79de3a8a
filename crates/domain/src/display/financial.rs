//! Financial kinds: `account_card`, `transaction_list`, `comparison_table` and `chart`.

use super::amounts::Sign;
use super::dates::is_date;
use super::fields::{Obj, Out, err, plain_number, text_or_number};
use super::{
    ACCOUNT_KINDS, CHART_TYPES, COLUMNS_MAX, ComponentError, LIST_MAX, MASKED_MAX, NAME_MAX,
    POINTS_MAX, SERIES_MAX, TEXT_MAX,
};
use crate::Currency;
use serde_json::Value;

const ACCOUNT_KEYS: &[&str] = &[
    "accountId",
    "name",
    "kind",
    "balance",
    "owner",
    "maskedNumber",
];

pub(super) fn account_card(data: &Value, cur: Currency) -> Result<Value, ComponentError> {
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

pub(super) fn transaction_list(data: &Value, cur: Currency) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", &["accountId", "title", "transactions"])?;
    let mut out = Out::default();
    out.opt("accountId", o.id("accountId")?);
    out.opt("title", o.text("title", NAME_MAX)?);
    let list = o.objects("transactions", LIST_MAX, TRANSACTION_KEYS, |t| {
        let date = t.req_text("date", NAME_MAX)?;
        if !is_date(&date) {
            return Err(err(t.at("date"), "must be a date written YYYY-MM-DD"));
        }
        let mut tx = Out::default();
        tx.set("date", date);
        tx.set("description", t.req_text("description", TEXT_MAX)?);
        tx.money("amount", t.req_money("amount", cur, Sign::Any)?, cur);
        tx.opt("category", t.text("category", NAME_MAX)?);
        Ok(tx.done())
    })?;
    out.set("transactions", list.unwrap_or_default());
    Ok(out.done())
}

pub(super) fn comparison_table(data: &Value) -> Result<Value, ComponentError> {
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
        .objects("rows", LIST_MAX, &["label", "values"], |r| {
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
            let values = cells
                .into_iter()
                .map(|(cell_path, cell)| text_or_number(cell, &cell_path, NAME_MAX))
                .collect::<Result<Vec<_>, _>>()?;
            let mut row = Out::default();
            row.set("label", label);
            row.set("values", values);
            Ok(row.done())
        })?
        .ok_or_else(|| o.missing("rows"))?;
    if rows.is_empty() {
        return Err(err(o.at("rows"), "must have at least one row"));
    }
    out.set("columns", columns);
    out.set("rows", rows);
    Ok(out.done())
}

pub(super) fn chart(data: &Value) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", &["title", "chartType", "series"])?;
    let mut out = Out::default();
    out.opt("title", o.text("title", NAME_MAX)?);
    let chart_type = o.choice("chartType", CHART_TYPES)?.unwrap_or("bar");
    out.set("chartType", chart_type);
    let series = o
        .objects("series", SERIES_MAX, &["name", "points"], |s| {
            let name = s.req_text("name", NAME_MAX)?;
            let points = s.objects("points", POINTS_MAX, &["x", "y"], |p| {
                let x = p.req_text_or_number("x", NAME_MAX)?;
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
                Ok(point.done())
            })?;
            let mut one = Out::default();
            one.set("name", name);
            one.set("points", points.unwrap_or_default());
            Ok(one.done())
        })?
        .ok_or_else(|| o.missing("series"))?;
    if series.is_empty() {
        return Err(err(o.at("series"), "must have at least one series"));
    }
    out.set("series", series);
    Ok(out.done())
}

#[cfg(test)]
mod tests {
    use crate::display::tests::{F, ok, parse, refused, usd};
    use serde_json::{Value, json};

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
}
