//! The system prompt: the tenant's persona and instructions (stored per tenant, with a
//! default per category), the rules every Stonepot agent keeps, and a compact index of
//! what the tools can reach.

use stonepot_agent::Workspace;
use stonepot_domain::{Category, Tenant};

/// Items listed in the prompt at most; the model searches for the rest.
const PROMPT_ITEMS: usize = 150;

pub fn welcome(t: &Tenant) -> String {
    match t.category {
        Category::Restaurant => format!("Welcome to {}! What can I get you today?", t.name),
        Category::Financial => format!("Welcome to {}. How can I help you today?", t.name),
    }
}

pub fn default_persona(t: &Tenant) -> String {
    match t.category {
        Category::Restaurant => format!(
            "You are the friendly order-taking assistant of {}. You help guests choose \
             dishes and build their order.",
            t.name
        ),
        Category::Financial => format!(
            "You are a careful assistant at {}, an advisory desk. You show clients their \
             accounts and compare products; you never give personalised investment advice.",
            t.name
        ),
    }
}

const RULES: &str = "Rules:\n\
- Every change to the order goes through a tool; never claim a change you did not make.\n\
- Prices, totals and availability come only from tool results.\n\
- When a tool refuses, read its error and fix the call or ask the guest.\n\
- The display beside the guest updates by itself from your tool calls; do not describe it.\n\
- Keep replies short and spoken-friendly (one or two sentences).\n\
- When the guest has finished ordering, call quote_order and read its readBack word for word.\n\
- Call confirm_order with that quote's hash only after the guest clearly says yes; if it is \
refused with a fresh quote, read the fresh one instead.\n\
- You cannot take payments or give refunds; staff handle those.";

pub fn system_prompt(t: &Tenant, profile: Option<&(String, String)>, ws: &Workspace) -> String {
    let (persona, instructions) = match profile {
        Some((p, i)) => (p.clone(), i.clone()),
        None => (default_persona(t), String::new()),
    };
    let mut s = format!("{persona}\n\n{RULES}\n");
    if !instructions.trim().is_empty() {
        s.push_str(&format!("\nHouse instructions:\n{}\n", instructions.trim()));
    }
    s.push_str(&format!("\nAll prices are in {}.\n", t.currency.code()));
    match ws {
        Workspace::Restaurant { menu, .. } => {
            s.push_str("\nMenu (id: name, price; * = unavailable):\n");
            for i in menu.items.iter().take(PROMPT_ITEMS) {
                s.push_str(&format!(
                    "- {}: {}, {}{}\n",
                    i.id,
                    i.name,
                    t.currency.format_minor(i.price),
                    if i.available { "" } else { " *" }
                ));
            }
        }
        Workspace::Financial { book, .. } => {
            s.push_str("\nClients:\n");
            for c in &book.clients {
                s.push_str(&format!("- {}: {} ({})\n", c.id, c.name, c.risk_profile));
            }
        }
    }
    s
}
