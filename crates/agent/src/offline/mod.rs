//! The offline agent: a deterministic order-taker for when no model is configured (or
//! every model failed). It reads one guest utterance, plans calls to the same tools a
//! model would use, and writes a short reply from what those calls returned.
//!
//! Planning runs the calls on a copy of the workspace as it goes, so a multi-step plan
//! ("swap the salad for a lasagna": remove, then add) names the line ids the real calls
//! will meet. Matching is menu-aware and forgiving: misspellings and speech-recognition
//! slips ("peperoni", "tira misu", "to pepperoni pizzas"), number words, several dishes
//! in one breath, modifiers, removals, changes, questions and read-backs.
//!
//! - [`text`]: tokens, number words, phonetic keys, edit distance.
//! - [`matcher`]: dishes, sections and modifiers found in the text.
//! - `restaurant` / `financial`: the planners; `replies`: the words.
//! - [`eval`]: the evaluation set runner (`cargo run -p stonepot-agent --bin agent-eval`).

pub mod eval;
mod financial;
pub(crate) mod matcher;
mod replies;
mod restaurant;
pub(crate) mod text;

use crate::tools::{ToolOutcome, Workspace};
use serde_json::Value;

/// One tool call the offline agent wants run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCall {
    pub name: String,
    pub arguments: Value,
}

/// The calls for one utterance, with what each is for (the reply reads that).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub calls: Vec<PlannedCall>,
    /// Why each call is made, in call order.
    purposes: Vec<Purpose>,
    /// What to say besides the calls' results.
    notes: Vec<Note>,
}

impl Plan {
    fn push(&mut self, name: &str, arguments: Value, purpose: Purpose) {
        self.calls.push(PlannedCall {
            name: name.into(),
            arguments,
        });
        self.purposes.push(purpose);
    }

    fn note(&mut self, note: Note) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}

/// What a question was about, so the reply answers that.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ask {
    Price,
    Availability,
    Options,
    Describe,
}

/// Why a call was planned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    Add {
        item: String,
        quantity: u32,
        modifiers: Vec<String>,
    },
    SetQuantity {
        item: String,
        quantity: u32,
    },
    ChangeOptions {
        item: String,
    },
    Remove {
        item: String,
    },
    ReadBack {
        done: bool,
    },
    /// Price-lock the cart for the guest's yes (`quote_order`).
    Quote,
    /// Place the order the guest agreed to (`confirm_order`).
    Confirm,
    Clear,
    Search {
        topic: String,
        recommend: bool,
        which: bool,
    },
    Dish {
        ask: Ask,
        option: Option<String>,
    },
    Accounts,
    Transactions,
    Compare,
}

/// Something to say that no call answers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Note {
    Greeting,
    Thanks,
    Confirmed,
    Help,
    OffTopic,
    NotOnMenu(String),
    NotInCart(String),
    WhichOne(Vec<String>),
    NothingToChange,
    WhichClient(Vec<String>),
    /// A quote was read and nothing changed: the order waits for a yes.
    QuoteWaiting,
}

/// Decides the tool calls for `utterance` given the workspace (menu and cart, or the
/// financial book). The caller runs them in order with `ws.run(name, &arguments.to_string())`.
pub fn plan(ws: &Workspace, utterance: &str) -> Plan {
    match ws {
        Workspace::Restaurant { .. } => restaurant::plan(ws, utterance),
        Workspace::Financial { book, .. } => financial::plan(book, utterance),
    }
}

/// Writes the reply after the calls ran (`outcomes` in call order; `ws` as it is now).
pub fn reply(ws: &Workspace, plan: &Plan, outcomes: &[ToolOutcome]) -> String {
    replies::write(ws, plan, outcomes)
}

#[cfg(test)]
mod tests;
