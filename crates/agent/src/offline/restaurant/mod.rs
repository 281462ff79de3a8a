//! Plans the restaurant tools for one guest utterance.
//!
//! The utterance is cut into clauses ("remove the caesar | and add a caprese"); each
//! clause is a clear, a "that's all", a question about the cart or the menu, or an
//! order move: swap, remove, change (quantity, options, "another one"), or add. Every
//! planned call is run at once on a copy of the workspace so later steps see the cart
//! the earlier ones leave behind.
//!
//! - [`intent`]: clauses, greetings and acknowledgements, clears, question detection.
//! - [`questions`]: questions about the cart and the menu.
//! - [`extract`]: where each dish's words, counts and references are.
//! - [`lines`]: the cart lines a clause refers to, and how options combine.
//! - [`changes`]: swaps, removals, quantity and option changes.
//! - [`adding`]: new dishes with their counts, shares and options.

mod adding;
mod changes;
mod extract;
mod intent;
mod lines;
mod questions;

use super::matcher::Lexicon;
use super::text::{is_punct, tokenize};
use super::{Note, Plan, Purpose};
use crate::tools::{ToolOutcome, Workspace};
use intent::{
    clear_span, is_clear, is_question, split_clauses, strip_ack, strip_done, strip_lead,
    strip_place, words_only,
};
use serde_json::{Value, json};
use std::sync::Arc;
use stonepot_domain::CartLine;
use stonepot_domain::menu::Menu;

/// Plans the calls for one utterance in a restaurant conversation.
pub(super) fn plan(ws: &Workspace, text: &str) -> Plan {
    let Workspace::Restaurant { menu, .. } = ws else {
        return Plan::default();
    };
    let menu: Arc<Menu> = Arc::clone(menu);
    let lex = Lexicon::shared(&menu);
    let mut p = Planner {
        lex: &lex,
        sim: ws.clone(),
        plan: Plan::default(),
        done: false,
        place: false,
    };
    let toks = tokenize(text);
    let clauses = split_clauses(&toks);
    // "scratch that, start again": whatever came before a clear is moot.
    let first = clauses.iter().rposition(|c| is_clear(&c.t)).unwrap_or(0);
    for clause in clauses.into_iter().skip(first) {
        p.clause(clause.t);
    }
    p.finish(ws);
    if p.plan.calls.is_empty() && p.plan.notes.is_empty() {
        p.plan.note(Note::Help);
    }
    p.plan
}

struct Planner<'l, 'm> {
    lex: &'l Lexicon<'m>,
    sim: Workspace,
    plan: Plan,
    /// "that's all": the guest has finished choosing.
    done: bool,
    /// "yes" (to a read-back) or "place the order".
    place: bool,
}

impl Planner<'_, '_> {
    /// The end of an order: "that's all" prices the cart as a quote for the guest's
    /// yes; a yes (or "place the order") to a quote nothing has changed since places
    /// it. A yes with no quote waiting is just a yes.
    fn finish(&mut self, before: &Workspace) {
        let cart_same = self.sim.cart() == before.cart();
        let pending = before.pending_quote().filter(|_| cart_same).cloned();
        let has_lines = self.sim.cart().is_some_and(|c| !c.lines.is_empty());
        if self.place
            && let Some(q) = pending
        {
            self.call(
                "confirm_order",
                json!({"quote_hash": q.hash}),
                Purpose::Confirm,
            );
        } else if self.place && has_lines && self.done {
            self.call("quote_order", json!({}), Purpose::Quote);
        } else if self.done && before.pending_quote().is_some() && cart_same {
            self.plan.note(Note::QuoteWaiting);
        } else if self.done && has_lines {
            self.call("quote_order", json!({}), Purpose::Quote);
        } else if self.done {
            self.call("show_cart", json!({}), Purpose::ReadBack { done: true });
        }
    }

    fn call(&mut self, name: &str, args: Value, purpose: Purpose) -> ToolOutcome {
        let out = self.sim.run(name, &args.to_string());
        self.plan.push(name, args, purpose);
        out
    }

    fn cart_lines(&self) -> Vec<CartLine> {
        self.sim.cart().map(|c| c.lines.clone()).unwrap_or_default()
    }

    fn last_line(&self) -> Option<CartLine> {
        let cart = self.sim.cart()?;
        let id = cart.last_line.as_deref()?;
        cart.line(id).cloned()
    }

    fn item_name(&self, idx: usize) -> String {
        self.lex
            .item(idx)
            .map(|i| i.name.clone())
            .unwrap_or_default()
    }

    fn clause(&mut self, mut t: Vec<String>) {
        let done = strip_done(&mut t);
        self.done |= done;
        if strip_place(&mut t) {
            // "place the order" is "that's all" and "yes" at once.
            self.place = true;
            self.done = true;
        }
        let mut lead = strip_lead(&mut t);
        if strip_ack(&mut t) {
            lead.ack = true;
        }
        if let Some((a, b)) = clear_span(&t) {
            self.call("clear_cart", json!({}), Purpose::Clear);
            // "let me start again with a funghi": the rest is the new order.
            let rest: Vec<String> = t.get(b..).unwrap_or(&[]).to_vec();
            if a < b && !self.lex.items(&rest).is_empty() {
                self.order(&rest, false);
            }
            return;
        }
        while t.last().is_some_and(|w| is_punct(w) || w == "please") {
            t.pop();
        }
        if !words_only(&t) {
            if done {
                return;
            }
            if lead.greeted {
                self.plan.note(Note::Greeting);
            } else if lead.thanked {
                self.plan.note(Note::Thanks);
            } else if lead.ack {
                if self.sim.pending_quote().is_some() {
                    self.place = true;
                } else {
                    self.plan.note(Note::Confirmed);
                }
            }
            return;
        }
        if self.cart_question(&t) {
            self.call("show_cart", json!({}), Purpose::ReadBack { done: false });
            return;
        }
        if is_question(&t) {
            self.menu_question(&t);
            return;
        }
        self.order(&t, lead.actually);
    }

    fn order(&mut self, t: &[String], actually: bool) {
        let items = self.lex.items(t);
        let sections = self.lex.sections(t, &items);
        if self.try_swap(t, &items, &sections) {
            return;
        }
        if self.try_remove(t, &items, &sections) {
            return;
        }
        if self.try_change(t, &items, &sections, actually) {
            return;
        }
        self.report_unknown(t, &items, &sections);
        if !items.is_empty() {
            self.add_items(t, &items);
            return;
        }
        if let Some(s) = sections.first()
            && let Some(sec) = self.lex.menu.sections.get(s.section)
        {
            let (id, name) = (sec.id.clone(), sec.name.to_lowercase());
            self.call(
                "search_menu",
                json!({ "section": id }),
                Purpose::Search {
                    topic: name,
                    recommend: false,
                    which: true,
                },
            );
        }
    }

    fn add(&mut self, item: usize, quantity: u32, modifiers: Vec<String>) {
        let Some(it) = self.lex.item(item) else {
            return;
        };
        let shown: Vec<String> = modifiers
            .iter()
            .filter(|n| {
                !it.modifier_groups
                    .iter()
                    .any(|g| g.modifiers.iter().any(|m| m.name == **n && m.default))
            })
            .cloned()
            .collect();
        self.call(
            "add_to_cart",
            json!({ "item": it.id, "quantity": quantity, "modifiers": modifiers }),
            Purpose::Add {
                item: it.name.clone(),
                quantity,
                modifiers: shown,
            },
        );
    }

    fn remove_line(&mut self, line: &CartLine) {
        self.call(
            "remove_from_cart",
            json!({ "line_id": line.line_id }),
            Purpose::Remove {
                item: line.name.clone(),
            },
        );
    }

    fn set_quantity(&mut self, line: &CartLine, quantity: u32) {
        self.call(
            "update_cart_line",
            json!({ "line_id": line.line_id, "quantity": quantity }),
            Purpose::SetQuantity {
                item: line.name.clone(),
                quantity,
            },
        );
    }

    fn change_options(&mut self, line: &CartLine, modifiers: Vec<String>) {
        self.call(
            "update_cart_line",
            json!({ "line_id": line.line_id, "modifiers": modifiers }),
            Purpose::ChangeOptions {
                item: line.name.clone(),
            },
        );
    }

    fn item_of_line(&self, line: &CartLine) -> Option<usize> {
        self.lex.item_index(&line.item_id)
    }
}
