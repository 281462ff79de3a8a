//! Plans that add dishes: each dish with its count and options, shares split off it
//! ("two margheritas, one without basil"), options said for all of them ("both
//! large"), and counted words that are on no menu ("two cokes").

use super::Planner;
use super::lines::Mode;
use crate::offline::Note;
use crate::offline::matcher::{Mention, ModParse, SectionMention};
use crate::offline::text::{is_stop, key, quantity_at};

/// Nouns after "a" that are not dishes ("a big group", "a moment").
const NOT_DISHES: &[&str] = &[
    "lot", "bit", "few", "little", "moment", "second", "minute", "while", "group", "question",
    "table", "party", "look", "go", "try", "break", "quick", "couple", "pair", "dozen", "half",
    "time", "day", "night", "nut", "allergy", "side", "round",
];

impl Planner<'_, '_> {
    /// "two cokes", "a cheeseburger": a count and a word that is on no menu.
    pub(super) fn report_unknown(
        &mut self,
        t: &[String],
        items: &[Mention],
        sections: &[SectionMention],
    ) {
        let covered = |i: usize| {
            items.iter().any(|m| (m.start..m.end).contains(&i))
                || sections.iter().any(|s| s.start == i)
        };
        let mut i = 0;
        while i < t.len() {
            let Some(q) = quantity_at(t, i) else {
                i += 1;
                continue;
            };
            let j = i + q.len;
            if let Some(w) = t.get(j)
                && !is_stop(w)
                && !covered(j)
                && quantity_at(t, j).is_none()
                && !NOT_DISHES.contains(&key(w).as_str())
                && !NOT_DISHES.contains(&w.as_str())
                && !self.lex.mentions_modifier(t, j, j + 1)
            {
                let mut words = vec![w.clone()];
                let mut k = j + 1;
                while let Some(n) = t.get(k) {
                    if is_stop(n) || covered(k) || self.lex.mentions_modifier(t, k, k + 1) {
                        break;
                    }
                    words.push(n.clone());
                    k += 1;
                }
                self.plan.note(Note::NotOnMenu(words.join(" ")));
                i = k;
                continue;
            }
            i = j.max(i + 1);
        }
    }

    pub(super) fn add_items(&mut self, t: &[String], items: &[Mention]) {
        let regions = Self::regions(t, items);
        // Options said for all of them at the end ("…, both large").
        let mut shared: Vec<(usize, usize)> = Vec::new();
        let mut planned: Vec<(usize, Vec<(u32, ModParse)>)> = Vec::new();
        for (k, m) in items.iter().enumerate() {
            let (from, to) = regions.get(k).copied().unwrap_or((m.start, m.end));
            let q = Self::pre_quantity(t, from, m.start, m.plural);
            let mut main = self.lex.modifiers(m.item, t, from, m.start, false);
            let mut subs: Vec<(Option<u32>, ModParse)> = Vec::new();
            for (a, b) in chunks(t, m.end, to) {
                let w = |i: usize| t.get(i).map(String::as_str).unwrap_or("");
                let (kind, body) = if ["both", "all", "each", "every"].contains(&w(a)) {
                    shared.push((a, b));
                    (Sub::All, a + 1)
                } else if w(a) == "the" && ["other", "rest", "others"].contains(&w(a + 1)) {
                    (Sub::Rest, a + 2)
                } else if let Some(sq) = quantity_at(t, a).filter(|sq| !sq.article) {
                    (Sub::Count(sq.value), a + sq.len)
                } else {
                    (Sub::Main, a)
                };
                let p = self.lex.modifiers(m.item, t, body, b, false);
                match kind {
                    Sub::Main | Sub::All => {
                        main.ops.extend(p.ops);
                        main.unknown.extend(p.unknown);
                    }
                    Sub::Rest => subs.push((None, p)),
                    Sub::Count(n) => {
                        // "two cokes": a count and a word that is no option (reported
                        // by `report_unknown`), not a share of this dish.
                        let unknown_dish = p.ops.is_empty()
                            && t.get(body..b)
                                .is_some_and(|ws| ws.iter().any(|x| !is_stop(x)));
                        if !unknown_dish {
                            subs.push((Some(n), p));
                        }
                    }
                }
            }
            let mut lines: Vec<(u32, ModParse)> = Vec::new();
            if subs.is_empty() {
                lines.push((q.map_or(1, |q| q.value), main));
            } else {
                let explicit: u32 = subs.iter().filter_map(|(n, _)| *n).sum();
                let total = match q {
                    Some(q) if !q.article => q.value,
                    _ => explicit.max(1),
                };
                let mut rest = total.saturating_sub(explicit);
                // The plain share first ("1 margherita, and 1 without basil").
                if rest > 0 && subs.iter().all(|(n, _)| n.is_some()) {
                    lines.push((std::mem::take(&mut rest), main.clone()));
                }
                for (n, p) in subs {
                    let mut ops = main.ops.clone();
                    ops.extend(p.ops);
                    let mut unknown = main.unknown.clone();
                    unknown.extend(p.unknown);
                    let count = match n {
                        Some(n) => n,
                        None => std::mem::take(&mut rest),
                    };
                    if count > 0 {
                        lines.push((
                            count,
                            ModParse {
                                ops,
                                unknown,
                                ..ModParse::default()
                            },
                        ));
                    }
                }
                if rest > 0 {
                    lines.push((rest, main));
                }
            }
            planned.push((m.item, lines));
        }
        for (item, lines) in planned {
            for (count, mut p) in lines {
                for (a, b) in &shared {
                    let extra = self.lex.modifiers(item, t, a + 1, *b, false);
                    p.ops.extend(extra.ops);
                }
                let mut chosen = Vec::new();
                self.apply_ops(item, &mut chosen, &p.ops, Mode::New);
                let mut names = self.modifier_names(item, &chosen);
                names.extend(p.unknown);
                self.add(item, count, names);
            }
        }
    }
}

enum Sub {
    Main,
    All,
    Rest,
    Count(u32),
}

/// Splits `t[from..to]` at commas and "and".
fn chunks(t: &[String], from: usize, to: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut a = from;
    for i in from..to {
        if t.get(i)
            .is_some_and(|w| [",", "and", "but", "plus"].contains(&w.as_str()))
        {
            if i > a {
                out.push((a, i));
            }
            a = i + 1;
        } else if i > a
            && quantity_at(t, i).is_some_and(|q| !q.article)
            && quantity_at(t, i - 1).is_none()
        {
            // Speech comes without commas: "three lemonades two large one regular".
            out.push((a, i));
            a = i;
        }
    }
    if to > a {
        out.push((a, to));
    }
    out
}
