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
            && plural
            && to > from
            && let Some(v) = t.get(to - 1).and_then(|w| homophone(w))
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
