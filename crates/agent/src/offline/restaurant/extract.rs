//! Where a clause's dishes and counts are: the words that belong to each dish, the
//! count said before one, an explicit count outside the dish names, and references to
//! a dish already ordered ("the margherita").

use super::Planner;
use crate::offline::matcher::Mention;
use crate::offline::text::{Quantity, homophone, quantity_at};

/// Separators between one dish's words and the next dish's.
const CONJ: &[&str] = &["and", ",", "plus", "also", "then", "or", "but", "&"];

const DEFINITE: &[&str] = &[
    "the", "that", "this", "those", "these", "my", "our", "your", "his", "her", "to", "on", "from",
    "off",
];

/// Words after which "to" before a dish is the preposition ("change it to margherita",
/// "switch to pepperoni"), never a recognizer's "two".
const PREPOSITION_TO: &[&str] = &[
    "change", "changed", "switch", "switched", "swap", "swapped", "it", "them", "that", "this",
    "those", "these", "one", "ones", "back", "go", "upgrade", "make", "from", "turn",
];

/// Words after which "to"/"too" directly before a dish can only be a count, as a
/// speech recognizer writes "two": no verb follows the "to" ("I'd like to margherita
/// pizzas", "can I get to pepperoni"), so it is no infinitive.
const ORDERING_TO: &[&str] = &[
    "like", "want", "need", "have", "get", "order", "take", "please", "and", "also", "plus", "can",
    "could", "i", "we", "me", "us", "just", "maybe", "yes", "yeah", "ok", "okay",
];

impl Planner<'_, '_> {
    /// Where each dish's words begin (after the last separator before it) and end.
    pub(super) fn regions(t: &[String], items: &[Mention]) -> Vec<(usize, usize)> {
        let starts: Vec<usize> = items
            .iter()
            .enumerate()
            .map(|(k, m)| {
                let floor = if k == 0 {
                    0
                } else {
                    items.get(k - 1).map_or(0, |p| p.end)
                };
                let mut j = m.start;
                while j > floor && !t.get(j - 1).is_some_and(|w| CONJ.contains(&w.as_str())) {
                    j -= 1;
                }
                j
            })
            .collect();
        items
            .iter()
            .enumerate()
            .map(|(k, m)| {
                let end = starts.get(k + 1).copied().unwrap_or(t.len()).max(m.end);
                (starts.get(k).copied().unwrap_or(m.start), end)
            })
            .collect()
    }

    pub(super) fn is_ref(t: &[String], m: &Mention) -> bool {
        m.start > 0
            && t.get(m.start - 1)
                .is_some_and(|w| DEFINITE.contains(&w.as_str()))
    }

    /// The count said before a dish in `t[from..to]` (the last one, "a … two
    /// margheritas" is two). With none, a sound-alike right before the dish counts:
    /// any of them before a plural ("for lemonades"), and "to"/"too" also before a
    /// singular where no verb could follow the "to" (the recognizer writes "two
    /// margherita pizzas" as "to margherita pizza is"). A "to" after "change it",
    /// "switch" and the like stays a preposition.
    pub(super) fn pre_quantity(
        t: &[String],
        from: usize,
        to: usize,
        plural: bool,
    ) -> Option<Quantity> {
        let mut found = None;
        let mut i = from;
        while i < to {
            match quantity_at(t, i) {
                Some(q) if i + q.len <= to => {
                    found = Some(q);
                    i += q.len;
                }
                _ => i += 1,
            }
        }
        if found.is_none()
            && to > from
            && let Some(v) = t.get(to - 1).and_then(|w| homophone(w))
            && (plural || v == 2)
            && Self::count_before_dish(t, from, to - 1, plural)
        {
            found = Some(Quantity {
                value: v,
                len: 1,
                article: false,
                more: false,
            });
        }
        found
    }

    /// Whether the sound-alike at `at`, right before a dish, is a count: not after a
    /// word that makes it a preposition ("change it to", "switch to") nor right after
    /// another dish ("change the pepperoni to margherita"); before a singular only at
    /// the start of a clause or after an ordering word.
    fn count_before_dish(t: &[String], from: usize, at: usize, plural: bool) -> bool {
        let Some(before) = at.checked_sub(1).and_then(|i| t.get(i)) else {
            return true;
        };
        let clause_start =
            crate::offline::text::is_punct(before) || CONJ.contains(&before.as_str());
        if PREPOSITION_TO.contains(&before.as_str()) || (at == from && !clause_start) {
            return false;
        }
        plural || clause_start || ORDERING_TO.contains(&before.as_str())
    }

    /// The explicit count in a clause outside the dish names ("make that three").
    pub(super) fn explicit_quantity(t: &[String], items: &[Mention]) -> Option<(usize, Quantity)> {
        let mut i = 0;
        while i < t.len() {
            if items.iter().any(|m| (m.start..m.end).contains(&i)) {
                i += 1;
                continue;
            }
            if let Some(q) = quantity_at(t, i) {
                if !q.article {
                    return Some((i, q));
                }
                i += q.len;
            } else {
                i += 1;
            }
        }
        None
    }
}
