//! Financial desk tools over the tenant's book: accounts, transactions, products.

use super::{DisplayOp, ToolOutcome, money, parse, price_text, words};
use serde::Deserialize;
use serde_json::{Value, json};
use stonepot_domain::Currency;
use stonepot_domain::finance::{Account, Book, Client, Product};
use stonepot_llm::ToolSpec;

pub(super) fn specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "show_account_summary".into(),
            description: "Show a client's accounts and balances on the display.".into(),
            parameters: json!({"type": "object", "properties": {
                "client": {"type": "string", "description": "Client id or name"}
            }, "required": ["client"]}),
        },
        ToolSpec {
            name: "show_transactions".into(),
            description: "Show recent transactions of one account, optionally of one category."
                .into(),
            parameters: json!({"type": "object", "properties": {
                "account": {"type": "string", "description": "Account id, or a client's name plus the account kind, e.g. \"Ada checking\""},
                "category": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 20}
            }, "required": ["account"]}),
        },
        ToolSpec {
            name: "compare_products".into(),
            description: "Compare products side by side (rate, fee, minimum, risk, liquidity)."
                .into(),
            parameters: json!({"type": "object", "properties": {
                "products": {"type": "array", "items": {"type": "string"}, "description": "Product ids or names; all products of `kind` when omitted"},
                "kind": {"type": "string", "description": "savings, cd or fund"}
            }}),
        },
    ]
}

#[derive(Deserialize)]
struct ClientRef {
    client: String,
}

#[derive(Deserialize)]
struct Transactions {
    account: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

#[derive(Deserialize)]
struct Compare {
    #[serde(default)]
    products: Vec<String>,
    #[serde(default)]
    kind: Option<String>,
}

pub(super) fn run(book: &Book, cur: Currency, name: &str, args: &Value) -> ToolOutcome {
    let out = match name {
        "show_account_summary" => parse(args).map(|a: ClientRef| summary(book, cur, &a.client)),
        "show_transactions" => parse(args).map(|a| transactions(book, cur, a)),
        "compare_products" => parse(args).map(|a| compare(book, a)),
        other => Err(ToolOutcome::refused(
            "unknown_tool",
            format!("there is no tool '{other}'"),
        )),
    };
    out.unwrap_or_else(|r| r)
}

fn find_client<'b>(book: &'b Book, key: &str) -> Option<&'b Client> {
    let q = words(key);
    book.clients.iter().find(|c| c.id == key).or_else(|| {
        book.clients
            .iter()
            .find(|c| !q.is_empty() && q.iter().all(|w| words(&c.name).contains(w)))
    })
}

fn clients_list(book: &Book) -> String {
    book.clients
        .iter()
        .map(|c| format!("{} ({})", c.name, c.id))
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary(book: &Book, cur: Currency, key: &str) -> ToolOutcome {
    let Some(client) = find_client(book, key) else {
        return ToolOutcome::refused(
            "unknown_client",
            format!(
                "there is no client '{key}'; clients: {}",
                clients_list(book)
            ),
        );
    };
    let accounts: Vec<&Account> = book
        .accounts
        .iter()
        .filter(|a| a.client_id == client.id)
        .collect();
    let display = accounts
        .iter()
        .map(|a| {
            DisplayOp::put(
                "account_card",
                &format!("account-{}", a.id),
                json!({
                    "accountId": a.id, "name": a.name, "kind": a.kind,
                    "balance": money(a.balance), "owner": client.name,
                }),
            )
        })
        .collect();
    let total: i64 = accounts.iter().map(|a| a.balance).sum();
    ToolOutcome::ok(
        json!({
            "client": client.name,
            "risk_profile": client.risk_profile,
            "accounts": accounts.iter().map(|a| json!({
                "id": a.id, "name": a.name, "kind": a.kind, "balance": price_text(a.balance, cur),
            })).collect::<Vec<_>>(),
            "total": price_text(total, cur),
        }),
        display,
    )
}

fn find_account<'b>(book: &'b Book, key: &str) -> Option<&'b Account> {
    if let Some(a) = book.accounts.iter().find(|a| a.id == key) {
        return Some(a);
    }
    let q = words(key);
    book.accounts.iter().find(|a| {
        let owner = book
            .clients
            .iter()
            .find(|c| c.id == a.client_id)
            .map(|c| words(&c.name))
            .unwrap_or_default();
        let mut hay = words(&a.name);
        hay.extend(words(&a.kind));
        let names_owner = q.iter().any(|w| owner.contains(w));
        let names_account = q.iter().any(|w| hay.contains(w));
        names_owner && names_account
    })
}

fn transactions(book: &Book, cur: Currency, a: Transactions) -> ToolOutcome {
    let Some(account) = find_account(book, &a.account) else {
        let ids: Vec<&str> = book.accounts.iter().map(|a| a.id.as_str()).collect();
        return ToolOutcome::refused(
            "unknown_account",
            format!(
                "there is no account '{}'; accounts: {}",
                a.account,
                ids.join(", ")
            ),
        );
    };
    let limit = usize::try_from(a.limit.unwrap_or(20).clamp(1, 200)).unwrap_or(20);
    let category = a.category.as_deref().map(str::to_lowercase);
    let mut txs: Vec<_> = book
        .transactions
        .iter()
        .filter(|t| t.account_id == account.id)
        .filter(|t| {
            category
                .as_ref()
                .is_none_or(|c| t.category.to_lowercase() == *c)
        })
        .collect();
    txs.sort_by(|x, y| y.date.cmp(&x.date));
    txs.truncate(limit);
    let rows: Vec<Value> = txs
        .iter()
        .map(|t| {
            json!({"date": t.date, "description": t.description, "amount": money(t.amount), "category": t.category})
        })
        .collect();
    ToolOutcome::ok(
        json!({
            "account": account.name,
            "transactions": txs.iter().map(|t| json!({
                "date": t.date, "description": t.description,
                "amount": price_text(t.amount, cur), "category": t.category,
            })).collect::<Vec<_>>(),
        }),
        vec![DisplayOp::put(
            "transaction_list",
            "transactions",
            json!({"accountId": account.id, "title": account.name, "transactions": rows}),
        )],
    )
}

fn bps(v: i64) -> String {
    format!("{}.{:02}%", v / 100, (v % 100).abs())
}

fn compare(book: &Book, a: Compare) -> ToolOutcome {
    let mut chosen: Vec<&Product> = Vec::new();
    for key in &a.products {
        let q = words(key);
        let hit = book.products.iter().find(|p| p.id == *key).or_else(|| {
            book.products
                .iter()
                .find(|p| !q.is_empty() && q.iter().all(|w| words(&p.name).contains(w)))
        });
        match hit {
            Some(p) if !chosen.iter().any(|c| c.id == p.id) => chosen.push(p),
            Some(_) => {}
            None => {
                let names: Vec<&str> = book.products.iter().map(|p| p.name.as_str()).collect();
                return ToolOutcome::refused(
                    "unknown_product",
                    format!(
                        "there is no product '{key}'; products: {}",
                        names.join(", ")
                    ),
                );
            }
        }
    }
    if a.products.is_empty() {
        let kind = a.kind.as_deref().map(str::to_lowercase);
        chosen = book
            .products
            .iter()
            .filter(|p| kind.as_ref().is_none_or(|k| p.kind == *k))
            .collect();
    }
    if chosen.is_empty() {
        return ToolOutcome::refused("no_products", "no product matches; try another kind");
    }
    let columns = ["Rate", "Fee", "Minimum", "Risk", "Liquidity"];
    let rows: Vec<Value> = chosen
        .iter()
        .map(|p| {
            json!({"label": p.name, "values": [
                bps(p.rate_bps), bps(p.fee_bps),
                stonepot_domain::money::format_minor(p.minimum, 2), p.risk, p.liquidity,
            ]})
        })
        .collect();
    ToolOutcome::ok(
        json!({"columns": columns, "rows": rows}),
        vec![DisplayOp::put(
            "comparison_table",
            "comparison",
            json!({"title": "Product comparison", "columns": columns, "rows": rows}),
        )],
    )
}

#[cfg(test)]
mod tests {
    use crate::tools::{DisplayOp, Workspace};
    use std::sync::Arc;
    use stonepot_domain::{ComponentKind, Currency, demo};

    fn desk() -> Workspace {
        Workspace::Financial {
            book: Arc::new(demo::finance_book()),
            currency: Currency::USD,
        }
    }

    fn fits(out: &crate::tools::ToolOutcome) {
        assert!(!out.display.is_empty());
        for d in &out.display {
            if let DisplayOp::Put { kind, data, .. } = d {
                ComponentKind::parse(kind)
                    .unwrap()
                    .normalize(data, Currency::USD)
                    .unwrap_or_else(|e| panic!("{kind}: {e}"));
            }
        }
    }

    #[test]
    fn summary_transactions_and_comparison_render_financial_components() {
        let mut w = desk();
        let out = w.run("show_account_summary", r#"{"client":"Ada"}"#);
        assert!(out.ok, "{}", out.result);
        assert_eq!(out.result["client"], "Ada Lovelace");
        fits(&out);
        let out = w.run(
            "show_transactions",
            r#"{"account":"Ada checking","limit":3}"#,
        );
        assert!(out.ok, "{}", out.result);
        assert!(out.result["transactions"].as_array().unwrap().len() <= 3);
        fits(&out);
        let out = w.run("compare_products", r#"{"kind":"savings"}"#);
        assert!(out.ok, "{}", out.result);
        fits(&out);
        let out = w.run("show_account_summary", r#"{"client":"Nobody"}"#);
        assert_eq!(out.result["error"]["code"], "unknown_client");
        assert!(
            out.result["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Ada Lovelace")
        );
    }
}
