//! The tools an agent may call. Each tool validates its arguments, changes the
//! conversation's state (the cart) and says which display updates follow; the model
//! only ever sees the structured result, never writes the display itself.

mod financial;
mod restaurant;

pub use restaurant::cart_display;

use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use stonepot_domain::finance::Book;
use stonepot_domain::menu::Menu;
use stonepot_domain::{Cart, Category, Currency};
use stonepot_llm::ToolSpec;

/// One change to the session's display, appended through the session log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DisplayOp {
    /// Show (or replace, when `key` matches) a component.
    Put {
        kind: String,
        key: Option<String>,
        data: Value,
    },
    /// Retract the component with this key.
    Remove { key: String },
}

impl DisplayOp {
    pub fn put(kind: &str, key: &str, data: Value) -> Self {
        DisplayOp::Put {
            kind: kind.into(),
            key: Some(key.into()),
            data,
        }
    }

    /// The body `POST /conversation/{id}/update` takes for this change.
    pub fn update_body(&self) -> Value {
        match self {
            DisplayOp::Put { kind, key, data } => match key {
                Some(k) => json!({"type": kind, "key": k, "data": data}),
                None => json!({"type": kind, "data": data}),
            },
            DisplayOp::Remove { key } => json!({"op": "remove", "key": key}),
        }
    }
}

/// What a tool call produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolOutcome {
    /// False when the call was refused; `result` then holds `{"error": {...}}`.
    pub ok: bool,
    /// What goes back to the model, as JSON.
    pub result: Value,
    /// Display changes to append, in order (empty when refused).
    #[serde(skip)]
    pub display: Vec<DisplayOp>,
    /// Whether the cart changed (so the caller persists it).
    #[serde(skip)]
    pub cart_changed: bool,
}

impl ToolOutcome {
    pub fn ok(result: Value, display: Vec<DisplayOp>) -> Self {
        ToolOutcome {
            ok: true,
            result,
            display,
            cart_changed: false,
        }
    }

    pub fn refused(code: &str, message: impl Into<String>) -> Self {
        Self::refused_with(json!({"code": code, "message": message.into()}))
    }

    pub fn refused_with(error: Value) -> Self {
        ToolOutcome {
            ok: false,
            result: json!({ "error": error }),
            display: Vec::new(),
            cart_changed: false,
        }
    }

    pub(crate) fn changed(mut self) -> Self {
        self.cart_changed = self.ok;
        self
    }
}

/// Tools only the server can run: a quote needs the tenant's pricing and the clock, an
/// order needs the store. The turn hands these to
/// [`Ledger::server_tool`](crate::turn::Ledger::server_tool); the model sees them like
/// any other tool. None of them can pay or refund.
pub const SERVER_TOOLS: &[&str] = &["quote_order", "confirm_order"];

/// The quote the guest was last read, while it can still be confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingQuote {
    pub hash: String,
    pub read_back: String,
}

/// The state tools work on for one conversation.
#[derive(Debug, Clone)]
pub enum Workspace {
    Restaurant {
        menu: Arc<Menu>,
        cart: Cart,
        currency: Currency,
        /// The latest quote shown and not yet ordered (what a "yes" confirms).
        quote: Option<PendingQuote>,
    },
    Financial {
        book: Arc<Book>,
        currency: Currency,
    },
}

impl Workspace {
    pub fn category(&self) -> Category {
        match self {
            Workspace::Restaurant { .. } => Category::Restaurant,
            Workspace::Financial { .. } => Category::Financial,
        }
    }

    /// The tools this workspace offers, with JSON Schemas for their arguments.
    pub fn specs(&self) -> Vec<ToolSpec> {
        match self {
            Workspace::Restaurant { .. } => restaurant::specs(),
            Workspace::Financial { .. } => financial::specs(),
        }
    }

    /// The cart, for restaurant conversations.
    pub fn cart(&self) -> Option<&Cart> {
        match self {
            Workspace::Restaurant { cart, .. } => Some(cart),
            Workspace::Financial { .. } => None,
        }
    }

    /// The quote waiting for the guest's yes, in restaurant conversations.
    pub fn pending_quote(&self) -> Option<&PendingQuote> {
        match self {
            Workspace::Restaurant { quote, .. } => quote.as_ref(),
            Workspace::Financial { .. } => None,
        }
    }

    /// Follows a server tool's effect: the cart it left, and the quote now waiting
    /// (a new quote, none after an order, or a fresh quote after a stale one).
    pub fn absorb(&mut self, name: &str, outcome: &ToolOutcome, new_cart: Option<Cart>) {
        let Workspace::Restaurant { cart, quote, .. } = self else {
            return;
        };
        if let Some(c) = new_cart {
            *cart = c;
        }
        let shown = |v: &Value| {
            Some(PendingQuote {
                hash: v.get("hash")?.as_str()?.to_string(),
                read_back: v.get("readBack")?.as_str()?.to_string(),
            })
        };
        match (name, outcome.ok) {
            ("quote_order", true) => *quote = shown(&outcome.result),
            ("confirm_order", true) => *quote = None,
            ("confirm_order", false) => {
                if let Some(fresh) = outcome
                    .result
                    .get("error")
                    .and_then(|e| e.get("freshQuote"))
                {
                    *quote = shown(fresh);
                }
            }
            _ => {}
        }
    }

    /// Runs one tool call. `arguments` is the JSON text the model produced; anything
    /// wrong with it comes back as a refusal the model can read, never a panic.
    pub fn run(&mut self, name: &str, arguments: &str) -> ToolOutcome {
        let args = match parse_arguments(arguments) {
            Ok(a) => a,
            Err(refusal) => return refusal,
        };
        if SERVER_TOOLS.contains(&name) {
            // Only reached when planning on a copy: the real call goes to the server.
            return ToolOutcome::refused(
                "server_tool",
                format!("{name} runs on the server, not in a simulation"),
            );
        }
        match self {
            Workspace::Restaurant {
                menu,
                cart,
                currency,
                quote,
            } => {
                let out = restaurant::run(menu, cart, *currency, name, &args);
                if out.cart_changed {
                    // A changed cart no longer matches the quote the guest heard.
                    *quote = None;
                }
                out
            }
            Workspace::Financial { book, currency } => financial::run(book, *currency, name, &args),
        }
    }
}

/// Reads a call's arguments as the JSON object they must be (empty text is `{}`);
/// anything else is a refusal the model can read.
pub fn parse_arguments(arguments: &str) -> Result<Value, ToolOutcome> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ToolOutcome::refused(
            "invalid_arguments",
            "arguments must be a JSON object",
        )),
        Err(e) => Err(ToolOutcome::refused(
            "invalid_arguments",
            format!("arguments are not valid JSON: {e}"),
        )),
    }
}

/// Parses arguments into a typed struct, turning serde's message into a refusal.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(args: &Value) -> Result<T, ToolOutcome> {
    serde_json::from_value(args.clone())
        .map_err(|e| ToolOutcome::refused("invalid_arguments", e.to_string()))
}

/// Money as the display's exact form.
pub(crate) fn money(minor: i64) -> Value {
    json!({ "minor": minor })
}

/// Money as text for the model ("12.99 USD").
pub(crate) fn price_text(minor: i64, currency: Currency) -> String {
    format!("{} {}", currency.format_minor(minor), currency.code())
}

/// Lower-cased words, punctuation dropped; the shared matcher for names and queries.
pub(crate) fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use stonepot_domain::demo;

    pub(crate) fn restaurant() -> Workspace {
        Workspace::Restaurant {
            menu: Arc::new(demo::restaurant_menu()),
            cart: Cart::new(),
            currency: Currency::USD,
            quote: None,
        }
    }

    #[test]
    fn malformed_arguments_are_refused_not_fatal() {
        let mut w = restaurant();
        for bad in ["{", "[1]", "\"x\"", "{\"item\": 5}"] {
            let out = w.run("add_to_cart", bad);
            assert!(!out.ok, "{bad}");
            assert_eq!(out.result["error"]["code"], "invalid_arguments", "{bad}");
            assert!(out.display.is_empty());
        }
        let out = w.run("launch_rocket", "{}");
        assert_eq!(out.result["error"]["code"], "unknown_tool");
    }

    #[test]
    fn every_spec_has_an_object_schema() {
        for w in [
            restaurant(),
            Workspace::Financial {
                book: Arc::new(demo::finance_book()),
                currency: Currency::USD,
            },
        ] {
            for s in w.specs() {
                assert_eq!(s.parameters["type"], "object", "{}", s.name);
                assert!(!s.description.is_empty());
            }
        }
    }
}
