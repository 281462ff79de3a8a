//! Runs an evaluation set through the offline agent.
//!
//! The set is JSON Lines, one guest turn per line, turns of one conversation on
//! consecutive lines with the same `conv`:
//!
//! ```json
//! {"conv": "c01", "say": "two margheritas, one without basil", "cart": ["1 margherita", "1 margherita [No basil]"]}
//! {"conv": "c01", "say": "what's in my cart?", "cart": ["1 margherita", "1 margherita [No basil]"], "tools": ["show_cart"]}
//! ```
//!
//! `cart` is the expected cart after the turn in canonical form (see [`canonical_cart`]);
//! the optional `tools` lists the tool calls expected, in order, and `reply` lists
//! fragments the reply must contain (case-insensitive). A turn is correct when all
//! given expectations hold. Each conversation starts with an empty cart and carries its
//! actual cart from turn to turn, so one mistake can cost the turns after it too.

use super::{Plan, plan, reply};
use crate::tools::{SERVER_TOOLS, ToolOutcome, Workspace};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use stonepot_domain::commerce::quote::{DEFAULT_QUOTE_TTL, Quote, Tip};
use stonepot_domain::commerce::{PricingPolicy, UnixMs};
use stonepot_domain::menu::Menu;
use stonepot_domain::{Cart, Currency};

#[derive(Deserialize)]
struct Turn {
    conv: String,
    say: String,
    cart: Vec<String>,
    #[serde(default)]
    tools: Option<Vec<String>>,
    #[serde(default)]
    reply: Vec<String>,
}

/// One turn the agent got wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// 1-based line in the set.
    pub line: usize,
    pub conversation: String,
    pub utterance: String,
    pub expected: Vec<String>,
    pub got: Vec<String>,
    /// The tool calls made, by name.
    pub tools: Vec<String>,
    pub reply: String,
    /// What did not hold.
    pub problem: String,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    pub turns: usize,
    pub correct: usize,
    /// `correct / turns` (0 for an empty set).
    pub accuracy: f64,
    pub conversations: usize,
    pub failures: Vec<Failure>,
}

/// A cart in the evaluation's canonical form: `"<quantity> <item id>"`, followed by
/// ` [A, B]` with the chosen modifier names (sorted) unless every group is at its
/// defaults; a group left at its defaults is omitted. Lines are sorted.
pub fn canonical_cart(menu: &Menu, cart: &Cart) -> Vec<String> {
    let mut out: Vec<String> = cart
        .lines
        .iter()
        .map(|l| {
            let mut names: Vec<String> = Vec::new();
            if let Some(item) = menu.item(&l.item_id) {
                for g in &item.modifier_groups {
                    let mut picked: Vec<&str> = l
                        .modifiers
                        .iter()
                        .filter(|m| m.group_id == g.id)
                        .map(|m| m.id.as_str())
                        .collect();
                    let mut defaults: Vec<&str> = g
                        .modifiers
                        .iter()
                        .filter(|m| m.default)
                        .map(|m| m.id.as_str())
                        .collect();
                    picked.sort_unstable();
                    defaults.sort_unstable();
                    if picked != defaults {
                        names.extend(
                            l.modifiers
                                .iter()
                                .filter(|m| m.group_id == g.id)
                                .map(|m| m.name.clone()),
                        );
                    }
                }
            } else {
                names.extend(l.modifiers.iter().map(|m| m.name.clone()));
            }
            entry(l.quantity, &l.item_id, names)
        })
        .collect();
    out.sort();
    out
}

fn entry(quantity: u32, item: &str, mut names: Vec<String>) -> String {
    names.sort();
    if names.is_empty() {
        format!("{quantity} {item}")
    } else {
        format!("{quantity} {item} [{}]", names.join(", "))
    }
}

/// Normalises a hand-written canonical line (spacing, modifier order).
fn normalize(line: &str) -> String {
    let line = line.trim();
    let (head, mods) = match line.split_once('[') {
        Some((h, rest)) => (h.trim(), rest.trim_end_matches(']')),
        None => (line, ""),
    };
    let names: Vec<String> = mods
        .split(',')
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect();
    let mut parts = head.split_whitespace();
    let q = parts.next().and_then(|q| q.parse::<u32>().ok());
    let item: Vec<&str> = parts.collect();
    match q {
        Some(q) => entry(q, &item.join(" "), names),
        None => line.to_string(),
    }
}

/// Runs one turn: plans, runs the calls on `ws`, and writes the reply.
pub fn run_turn(ws: &mut Workspace, utterance: &str) -> (Plan, Vec<ToolOutcome>, String) {
    let p = plan(ws, utterance);
    let outcomes: Vec<ToolOutcome> = p
        .calls
        .iter()
        .map(|c| {
            if SERVER_TOOLS.contains(&c.name.as_str()) {
                let (out, cart) = server_tool(ws, &c.name, &c.arguments);
                ws.absorb(&c.name, &out, cart);
                out
            } else {
                ws.run(&c.name, &c.arguments.to_string())
            }
        })
        .collect();
    let text = reply(ws, &p, &outcomes);
    (p, outcomes, text)
}

/// Plays the server's part for `quote_order` and `confirm_order`, as the engine
/// would on a default pricing policy: a real quote (its hash and read-back) and an
/// order that empties the cart — so the set can hold whole ordering conversations.
fn server_tool(ws: &Workspace, name: &str, args: &Value) -> (ToolOutcome, Option<Cart>) {
    let Workspace::Restaurant {
        menu,
        cart,
        currency,
        quote,
    } = ws
    else {
        return (ToolOutcome::refused("unsupported", name), None);
    };
    match name {
        "quote_order" => match Quote::build(
            cart,
            menu,
            &PricingPolicy::default(),
            *currency,
            Tip::None,
            UnixMs(0),
            DEFAULT_QUOTE_TTL,
            "eval",
        ) {
            Ok(q) => (
                ToolOutcome::ok(
                    json!({"hash": q.hash, "readBack": q.read_back(), "total": q.total}),
                    Vec::new(),
                ),
                None,
            ),
            Err(e) => (ToolOutcome::refused(e.code(), e.to_string()), None),
        },
        "confirm_order" => {
            let named = args.get("quote_hash").and_then(Value::as_str);
            match quote {
                Some(q) if Some(q.hash.as_str()) == named => {
                    let mut next = cart.clone();
                    next.clear();
                    (
                        ToolOutcome::ok(
                            json!({"orderId": "eval", "status": "confirmed", "ticket": 1}),
                            Vec::new(),
                        ),
                        Some(next),
                    )
                }
                _ => (
                    ToolOutcome::refused("hash_mismatch", "that is not the quote on the display"),
                    None,
                ),
            }
        }
        _ => (ToolOutcome::refused("unknown_tool", name), None),
    }
}

fn restaurant(menu: &Arc<Menu>) -> Workspace {
    Workspace::Restaurant {
        menu: Arc::clone(menu),
        cart: Cart::new(),
        currency: Currency::USD,
        quote: None,
    }
}

/// Runs every turn of `jsonl` against `menu` (a restaurant conversation each).
pub fn evaluate(jsonl: &str, menu: &Menu) -> EvalReport {
    let menu = Arc::new(menu.clone());
    let mut ws = restaurant(&menu);
    let mut conv: Option<String> = None;
    let mut report = EvalReport {
        turns: 0,
        correct: 0,
        accuracy: 0.0,
        conversations: 0,
        failures: Vec::new(),
    };
    for (i, raw) in jsonl.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        report.turns += 1;
        let turn: Turn = match serde_json::from_str(raw) {
            Ok(t) => t,
            Err(e) => {
                report.failures.push(Failure {
                    line: i + 1,
                    conversation: String::new(),
                    utterance: raw.to_string(),
                    expected: Vec::new(),
                    got: Vec::new(),
                    tools: Vec::new(),
                    reply: String::new(),
                    problem: format!("not a valid turn: {e}"),
                });
                continue;
            }
        };
        if conv.as_deref() != Some(turn.conv.as_str()) {
            ws = restaurant(&menu);
            conv = Some(turn.conv.clone());
            report.conversations += 1;
        }
        let (p, _, text) = run_turn(&mut ws, &turn.say);
        let got = ws
            .cart()
            .map(|c| canonical_cart(&menu, c))
            .unwrap_or_default();
        let mut expected: Vec<String> = turn.cart.iter().map(|l| normalize(l)).collect();
        expected.sort();
        let tools: Vec<String> = p.calls.iter().map(|c| c.name.clone()).collect();
        let mut problems = Vec::new();
        if got != expected {
            problems.push("cart differs".to_string());
        }
        if let Some(want) = &turn.tools
            && *want != tools
        {
            problems.push(format!("expected tools {want:?}"));
        }
        let lower = text.to_lowercase();
        for frag in &turn.reply {
            if !lower.contains(&frag.to_lowercase()) {
                problems.push(format!("reply lacks \"{frag}\""));
            }
        }
        if problems.is_empty() {
            report.correct += 1;
        } else {
            report.failures.push(Failure {
                line: i + 1,
                conversation: turn.conv,
                utterance: turn.say,
                expected,
                got,
                tools,
                reply: text,
                problem: problems.join("; "),
            });
        }
    }
    report.accuracy = if report.turns == 0 {
        0.0
    } else {
        report.correct as f64 / report.turns as f64
    };
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use stonepot_domain::demo;

    #[test]
    fn canonical_form_drops_defaults_and_sorts() {
        let menu = demo::restaurant_menu();
        let mut cart = Cart::new();
        for (item, q, mods) in [
            ("lemonade", 1, vec![]),
            (
                "margherita",
                2,
                vec!["No basil".to_string(), "Large".to_string()],
            ),
            ("gelato", 1, vec!["Pistachio".to_string()]),
            ("gelato", 1, vec!["Chocolate".to_string()]),
        ] {
            assert!(cart.add(&menu, item, q, &mods).is_ok());
        }
        assert_eq!(
            canonical_cart(&menu, &cart),
            [
                "1 gelato",
                "1 gelato [Pistachio]",
                "1 lemonade",
                "2 margherita [Large, No basil]"
            ]
        );
        assert_eq!(
            normalize(" 2 margherita [No basil,Large] "),
            "2 margherita [Large, No basil]"
        );
    }

    #[test]
    fn bad_lines_count_as_failures() {
        let menu = demo::restaurant_menu();
        let r = evaluate(
            "{\"conv\":\"a\",\"say\":\"a lemonade\",\"cart\":[\"1 lemonade\"]}\nnot json\n",
            &menu,
        );
        assert_eq!((r.turns, r.correct), (2, 1));
        assert_eq!(r.failures.len(), 1);
        assert_eq!(r.failures.first().map(|f| f.line), Some(2));
    }
}
