//! Plans that change what is already in the cart: swaps ("the carbonara instead"),
//! removals ("no more garlic bread", "less", "the one without basil"), quantity and
//! option changes ("make that three", "one of them large", "another one").

use super::Planner;
use super::lines::{Mode, change_mode};
use crate::offline::Note;
use crate::offline::matcher::{Mention, SectionMention};
use crate::offline::text::{Quantity, find, has, has_any, starts_with};
use stonepot_domain::CartLine;

const REMOVE_VERBS: &[&str] = &[
    "remove", "drop", "delete", "cancel", "forget", "scratch", "ditch", "lose", "nix", "skip",
    "less", "fewer",
];

impl Planner<'_, '_> {
    /// "swap the salad for a lasagna", "make that a caprese", "the carbonara instead".
    pub(super) fn try_swap(
        &mut self,
        t: &[String],
        items: &[Mention],
        sections: &[SectionMention],
    ) -> bool {
        let cue = has_any(
            t,
            &[
                "swap",
                "switch",
                "replace",
                "change",
                "exchange",
                "substitute",
                "make",
                "turn",
                "instead",
            ],
        );
        if !cue {
            return false;
        }
        let fresh: Vec<&Mention> = items
            .iter()
            .filter(|m| self.lines_of_item(m.item).is_empty())
            .collect();
        let [y] = fresh.as_slice() else {
            return false;
        };
        let y = **y;
        let old = items
            .iter()
            .find(|m| m.item != y.item && !self.lines_of_item(m.item).is_empty());
        let x_lines: Vec<CartLine> = if let Some(o) = old {
            self.lines_of_item(o.item)
        } else if let Some(s) = sections
            .iter()
            .find(|s| !self.lines_of_section(s.section).is_empty())
        {
            self.lines_of_section(s.section)
        } else if find(t, &["instead", "of"]).is_some() {
            Vec::new()
        } else {
            self.last_line().into_iter().collect()
        };
        if x_lines.is_empty() {
            return false;
        }
        let regions = Self::regions(t, items);
        let (from, to) = items
            .iter()
            .position(|m| *m == y)
            .and_then(|k| regions.get(k).copied())
            .unwrap_or((y.start, y.end));
        let q = Self::pre_quantity(t, from, y.start, y.plural)
            .filter(|q| !q.article)
            .map(|q| q.value)
            .unwrap_or_else(|| x_lines.iter().map(|l| l.quantity).sum::<u32>().max(1));
        let mut parse = self.lex.modifiers(y.item, t, from, y.start, false);
        let post = self.lex.modifiers(y.item, t, y.end, to, false);
        parse.ops.extend(post.ops);
        let mut chosen = Vec::new();
        self.apply_ops(y.item, &mut chosen, &parse.ops, Mode::New);
        for l in &x_lines {
            self.remove_line(l);
        }
        let names = self.modifier_names(y.item, &chosen);
        self.add(y.item, q, names);
        true
    }

    pub(super) fn try_remove(
        &mut self,
        t: &[String],
        items: &[Mention],
        sections: &[SectionMention],
    ) -> bool {
        let verb = has_any(t, REMOVE_VERBS)
            || (has(t, "take") && has_any(t, &["off", "away", "out"]))
            || find(t, &["get", "rid"]).is_some()
            || find(t, &["do", "not", "want"]).is_some()
            || find(t, &["no", "more"]).is_some();
        let negated = |start: usize| {
            let mut j = start;
            while j > 0
                && t.get(j - 1)
                    .is_some_and(|w| ["the", "more", "any", "a"].contains(&w.as_str()))
            {
                j -= 1;
            }
            j > 0 && t.get(j - 1).is_some_and(|w| w == "no" || w == "not")
        };
        let neg_items: Vec<Mention> = items
            .iter()
            .filter(|m| negated(m.start) && !self.lines_of_item(m.item).is_empty())
            .copied()
            .collect();
        let neg_sections: Vec<SectionMention> = sections
            .iter()
            .filter(|s| negated(s.start) && !self.lines_of_section(s.section).is_empty())
            .copied()
            .collect();
        if !verb && neg_items.is_empty() && neg_sections.is_empty() {
            return false;
        }
        let (target_items, target_sections): (Vec<Mention>, Vec<SectionMention>) = if verb {
            (items.to_vec(), sections.to_vec())
        } else {
            (neg_items, neg_sections)
        };
        // "less garlic bread": one fewer, unless a count says otherwise.
        let less = has_any(t, &["less", "fewer"]).then_some(Quantity {
            value: 1,
            len: 0,
            article: false,
            more: false,
        });
        let regions = Self::regions(t, &target_items);
        let mut handled = false;
        for (k, m) in target_items.iter().enumerate() {
            handled = true;
            let (from, to) = regions.get(k).copied().unwrap_or((m.start, m.end));
            let lines = self.lines_of_item(m.item);
            if lines.is_empty() {
                self.plan.note(Note::NotInCart(self.item_name(m.item)));
                continue;
            }
            let post = self.lex.modifiers(m.item, t, m.end, to, false);
            let lines = self.filter_by_modifiers(lines, m.item, &post);
            let q = Self::pre_quantity(t, from, m.start, false).or(less);
            self.remove_lines(&lines, q, m.plural);
        }
        for s in &target_sections {
            handled = true;
            let lines = self.lines_of_section(s.section);
            if lines.is_empty() {
                let name = self
                    .lex
                    .menu
                    .sections
                    .get(s.section)
                    .map(|x| x.name.to_lowercase())
                    .unwrap_or_default();
                self.plan.note(Note::NotInCart(name));
                continue;
            }
            let q = Self::pre_quantity(t, 0, s.start, false);
            self.remove_lines(&lines, q, s.plural);
        }
        if handled {
            return true;
        }
        // Nothing named: "the one without basil", "take the olives off", "two of them".
        let q = Self::explicit_quantity(t, items).map(|(_, q)| q);
        if has(t, "one") && q.is_none_or(|q| q.value == 1) {
            let picked: Vec<CartLine> = self
                .cart_lines()
                .into_iter()
                .filter(|l| {
                    self.item_of_line(l).is_some_and(|idx| {
                        let p = self.lex.modifiers(idx, t, 0, t.len(), false);
                        !p.ops.is_empty() && self.line_satisfies(l, idx, &p.ops)
                    })
                })
                .collect();
            if !picked.is_empty() {
                for l in &picked {
                    self.remove_line(l);
                }
                return true;
            }
        }
        if self.lex.mentions_modifier(t, 0, t.len()) {
            return self.change_modifiers_of(t, items, true);
        }
        match self.last_line() {
            Some(line) => {
                if let Some(q) = q {
                    self.decrease(&line, q.value);
                } else {
                    self.remove_line(&line);
                }
            }
            None => self.plan.note(Note::NothingToChange),
        }
        true
    }

    fn decrease(&mut self, line: &CartLine, by: u32) {
        if line.quantity > by {
            self.set_quantity(line, line.quantity - by);
        } else {
            self.remove_line(line);
        }
    }

    fn remove_lines(&mut self, lines: &[CartLine], q: Option<Quantity>, plural: bool) {
        match q {
            Some(q) if !(q.article && plural) => {
                if let Some(line) = self.pick_line(lines) {
                    self.decrease(&line, q.value);
                }
            }
            _ if plural || lines.len() == 1 => {
                for l in lines {
                    self.remove_line(l);
                }
            }
            _ => {
                let names = lines.iter().map(|l| self.describe_line(l)).collect();
                self.plan.note(Note::WhichOne(names));
            }
        }
    }

    /// Quantity changes, option changes, "another one", "one of them large".
    pub(super) fn try_change(
        &mut self,
        t: &[String],
        items: &[Mention],
        sections: &[SectionMention],
        actually: bool,
    ) -> bool {
        let make = has_any(
            t,
            &[
                "make", "change", "switch", "turn", "update", "instead", "just", "only",
            ],
        ) || actually;
        let refs: Vec<Mention> = items
            .iter()
            .filter(|m| !self.lines_of_item(m.item).is_empty() && (Self::is_ref(t, m) || make))
            .copied()
            .collect();
        let fresh = items.len() > refs.len();
        let qty = Self::explicit_quantity(t, items);

        // "can one of them be large": split one off the line.
        let leading = qty.is_some_and(|(i, q)| {
            i == 0 && items.is_empty() && t.get(i + q.len).is_none_or(|w| w != "more")
        });
        if let Some((i, q)) = qty
            && !fresh
            && (leading
                || ["them", "those", "these", "the"]
                    .iter()
                    .any(|w| starts_with(t, i + q.len, &["of", w])))
            && !has(t, "remove")
            && !has(t, "another")
        {
            let target = match refs.first() {
                Some(m) => self.pick_line(&self.lines_of_item(m.item)),
                None => self.last_line(),
            };
            if let Some(line) = target
                && let Some(idx) = self.item_of_line(&line)
            {
                let p = self.lex.modifiers(idx, t, 0, t.len(), false);
                if !p.ops.is_empty() {
                    let mut chosen = self.line_choice(&line, idx);
                    self.apply_ops(idx, &mut chosen, &p.ops, change_mode(t));
                    let names = self.modifier_names(idx, &chosen);
                    if line.quantity > q.value {
                        self.set_quantity(&line, line.quantity - q.value);
                        self.add(idx, q.value, names);
                    } else {
                        self.change_options(&line, names);
                    }
                    return true;
                }
            }
        }

        // "another one", "two more", "same again", "a small one".
        if items.is_empty() && sections.is_empty() {
            let more = has(t, "another")
                || find(t, &["one", "more"]).is_some()
                || qty.is_some_and(|(i, q)| t.get(i + q.len).is_some_and(|w| w == "more"))
                || find(t, &["same", "again"]).is_some()
                || find(t, &["the", "same"]).is_some();
            let pronoun_one = t.iter().enumerate().any(|(i, w)| {
                (w == "one" || w == "ones")
                    && i > 0
                    && t.get(i + 1).is_none_or(|n| n != "of")
                    && self.lex.mentions_modifier(t, 0, i)
            });
            if (more || pronoun_one)
                && let Some(line) = self.last_line()
                && let Some(idx) = self.item_of_line(&line)
            {
                let n = qty.map(|(_, q)| q.value).unwrap_or(1);
                let p = self.lex.modifiers(idx, t, 0, t.len(), false);
                let mut chosen = self.line_choice(&line, idx);
                self.apply_ops(idx, &mut chosen, &p.ops, change_mode(t));
                let names = self.modifier_names(idx, &chosen);
                self.add(idx, n, names);
                return true;
            }
        }

        // "make that three", "actually two espressos", "and the tiramisu, make it two".
        if let Some((_, q)) = qty
            && make
            && !fresh
        {
            let target = if let Some(m) = refs.first() {
                self.pick_line(&self.lines_of_item(m.item))
            } else if let Some(s) = sections
                .iter()
                .find(|s| !self.lines_of_section(s.section).is_empty())
            {
                self.pick_line(&self.lines_of_section(s.section))
            } else {
                self.last_line()
            };
            if let Some(line) = target {
                self.set_quantity(&line, q.value);
                return true;
            }
        }

        if fresh {
            return false;
        }
        self.change_modifiers_of(t, &refs, false)
    }

    /// Applies the options named in the clause to the lines it refers to (or the last
    /// line touched). Returns whether anything was planned.
    fn change_modifiers_of(&mut self, t: &[String], refs: &[Mention], removing: bool) -> bool {
        let sections = self.lex.sections(t, refs);
        let mut targets: Vec<CartLine> = Vec::new();
        for m in refs {
            let lines = self.lines_of_item(m.item);
            if m.plural {
                targets.extend(lines);
            } else {
                targets.extend(self.pick_line(&lines));
            }
        }
        for s in &sections {
            let lines = self.lines_of_section(s.section);
            if s.plural {
                targets.extend(lines);
            } else {
                targets.extend(self.pick_line(&lines));
            }
        }
        if targets.is_empty() {
            targets.extend(self.last_line());
        }
        let mut any = false;
        for line in targets {
            let Some(idx) = self.item_of_line(&line) else {
                continue;
            };
            // The option words, outside the dish names themselves.
            let masked: Vec<String> = t
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    if refs.iter().any(|m| (m.start..m.end).contains(&i)) {
                        ",".to_string()
                    } else {
                        w.clone()
                    }
                })
                .collect();
            let p = self.lex.modifiers(idx, &masked, 0, masked.len(), removing);
            if p.ops.is_empty() && p.foreign.is_empty() && p.unknown.is_empty() {
                continue;
            }
            let mut chosen = self.line_choice(&line, idx);
            self.apply_ops(idx, &mut chosen, &p.ops, change_mode(t));
            let mut names = self.modifier_names(idx, &chosen);
            names.extend(p.foreign.iter().cloned());
            names.extend(p.unknown.iter().cloned());
            self.change_options(&line, names);
            any = true;
        }
        any
    }
}
