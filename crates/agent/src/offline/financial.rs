//! Plans the financial desk's tools: a client's accounts, one account's transactions,
//! and product comparisons ("show me Ada's accounts", "Grace's savings transactions",
//! "compare the CDs").

use super::text::{allowed, close, has_any, key, quantity_at, tokenize};
use super::{Note, Plan, Purpose};
use serde_json::{Map, Value, json};
use stonepot_domain::finance::{Account, Book, Client};

const COMPARE: &[&str] = &[
    "compare",
    "comparison",
    "versus",
    "vs",
    "products",
    "product",
    "rates",
    "better",
    "difference",
];
const TRANSACTIONS: &[&str] = &[
    "transaction",
    "transactions",
    "spending",
    "spent",
    "spend",
    "activity",
    "history",
    "statement",
    "payments",
    "payment",
    "purchases",
    "deposits",
    "charges",
    "debits",
    "credits",
];

/// Account kinds and the words guests use for them.
const KINDS: &[(&str, &[&str])] = &[
    ("checking", &["checking", "chequing", "current", "everyday"]),
    ("savings", &["savings", "saving", "emergency"]),
    ("retirement", &["retirement", "ira", "roth", "pension"]),
    (
        "brokerage",
        &[
            "brokerage",
            "investment",
            "investments",
            "trading",
            "stocks",
        ],
    ),
];

/// Product kinds for `compare_products`.
const PRODUCT_KINDS: &[(&str, &[&str])] = &[
    ("savings", &["savings", "saving"]),
    ("cd", &["cd", "cds", "certificate", "certificates"]),
    ("fund", &["fund", "funds", "index", "bond", "bonds", "etf"]),
];

/// Everyday words for transaction categories.
const CATEGORY_WORDS: &[(&str, &[&str])] = &[
    (
        "groceries",
        &["grocery", "groceries", "grocer", "food", "supermarket"],
    ),
    ("housing", &["rent", "housing", "mortgage"]),
    (
        "utilities",
        &["utilities", "utility", "bills", "electricity"],
    ),
    (
        "income",
        &[
            "income", "salary", "payroll", "paycheck", "pension", "wages",
        ],
    ),
    ("interest", &["interest"]),
    ("dividend", &["dividend", "dividends"]),
    ("shopping", &["shopping", "shops", "books"]),
    ("health", &["health", "pharmacy", "medical", "doctor"]),
    ("transfer", &["transfer", "transfers"]),
    ("investment", &["investment", "buys", "trades"]),
];

fn find_client<'b>(book: &'b Book, toks: &[String]) -> Option<&'b Client> {
    book.clients.iter().find(|c| {
        c.name.split_whitespace().any(|part| {
            let k = key(&part.to_lowercase());
            toks.iter()
                .any(|t| close(&key(t), &k, allowed(k.len()).min(1)).is_some())
        })
    })
}

fn kind_in(toks: &[String], table: &[(&'static str, &[&str])]) -> Option<&'static str> {
    table
        .iter()
        .find(|(_, words)| has_any(toks, words))
        .map(|(k, _)| *k)
}

fn account_for<'b>(book: &'b Book, client: &Client, toks: &[String]) -> Option<&'b Account> {
    let mine: Vec<&Account> = book
        .accounts
        .iter()
        .filter(|a| a.client_id == client.id)
        .collect();
    if let Some(kind) = kind_in(toks, KINDS)
        && let Some(a) = mine.iter().find(|a| a.kind == kind)
    {
        return Some(a);
    }
    mine.iter()
        .find(|a| {
            a.name
                .to_lowercase()
                .split_whitespace()
                .any(|w| w.len() > 3 && toks.iter().any(|t| t == w))
        })
        .or_else(|| mine.first())
        .copied()
}

fn named_products(book: &Book, toks: &[String]) -> Vec<String> {
    let kind_words: Vec<&str> = PRODUCT_KINDS
        .iter()
        .flat_map(|(_, ws)| ws.iter().copied())
        .chain(["month", "high", "yield", "total", "market"])
        .collect();
    let words = |name: &str| -> Vec<String> {
        name.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut out = Vec::new();
    for p in &book.products {
        let own = words(&p.name);
        let distinctive: Vec<&String> = own
            .iter()
            .filter(|w| {
                !kind_words.contains(&w.as_str())
                    && book
                        .products
                        .iter()
                        .filter(|o| words(&o.name).contains(w))
                        .count()
                        == 1
            })
            .collect();
        let phrase = own.join(" ");
        let said = toks.join(" ");
        if distinctive.iter().any(|w| toks.contains(w)) || said.contains(&phrase) {
            out.push(p.id.clone());
        }
    }
    out
}

/// Plans the calls for one utterance at the financial desk.
pub(super) fn plan(book: &Book, text: &str) -> Plan {
    let toks = tokenize(text);
    let mut plan = Plan::default();
    let client = find_client(book, &toks);
    let products = named_products(book, &toks);
    let wants_compare = has_any(&toks, COMPARE) || products.len() >= 2;
    if wants_compare && (client.is_none() || has_any(&toks, &["compare", "comparison"])) {
        let mut args = Map::new();
        if products.len() >= 2 {
            args.insert("products".into(), json!(products));
        } else if let Some(kind) = kind_in(&toks, PRODUCT_KINDS) {
            args.insert("kind".into(), json!(kind));
        }
        plan.push("compare_products", Value::Object(args), Purpose::Compare);
        return plan;
    }
    let Some(client) = client else {
        if has_any(&toks, &["hi", "hello", "hey"]) {
            plan.note(Note::Greeting);
        } else if has_any(&toks, &["thanks", "thank"]) {
            plan.note(Note::Thanks);
        } else if has_any(&toks, TRANSACTIONS)
            || has_any(
                &toks,
                &["account", "accounts", "balance", "balances", "portfolio"],
            )
        {
            plan.note(Note::WhichClient(
                book.clients.iter().map(|c| c.name.clone()).collect(),
            ));
        } else {
            plan.note(Note::Help);
        }
        return plan;
    };
    let category = CATEGORY_WORDS
        .iter()
        .find(|(_, ws)| has_any(&toks, ws))
        .map(|(c, _)| *c)
        .filter(|c| book.transactions.iter().any(|t| t.category == *c));
    let wants_transactions = has_any(&toks, TRANSACTIONS) || category.is_some();
    if wants_transactions && let Some(account) = account_for(book, client, &toks) {
        let mut args = Map::new();
        args.insert("account".into(), json!(account.id));
        if let Some(c) = category {
            args.insert("category".into(), json!(c));
        }
        let limit = (0..toks.len()).find_map(|i| {
            quantity_at(&toks, i)
                .filter(|q| !q.article && q.value > 0)
                .filter(|_| {
                    i > 0
                        && toks.get(i - 1).is_some_and(|w| {
                            ["last", "latest", "recent", "past", "top"].contains(&w.as_str())
                        })
                        || toks.get(i + 1).is_some_and(|w| {
                            w.starts_with("transaction")
                                || ["most", "latest", "recent"].contains(&w.as_str())
                        })
                })
                .map(|q| q.value)
        });
        if let Some(n) = limit {
            args.insert("limit".into(), json!(n.min(200)));
        }
        plan.push(
            "show_transactions",
            Value::Object(args),
            Purpose::Transactions,
        );
        return plan;
    }
    plan.push(
        "show_account_summary",
        json!({ "client": client.name }),
        Purpose::Accounts,
    );
    plan
}
