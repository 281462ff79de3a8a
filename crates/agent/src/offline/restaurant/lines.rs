//! The cart lines a clause refers to, and their options: lines of a dish or section,
//! narrowing by the options named, the line a singular reference means, and how named
//! options combine with a line's choice ([`Mode`]).

use super::Planner;
use crate::offline::matcher::{ModOp, ModParse};
use crate::offline::text::has_any;
use stonepot_domain::CartLine;

impl Planner<'_, '_> {
    pub(super) fn lines_of_item(&self, idx: usize) -> Vec<CartLine> {
        let Some(item) = self.lex.item(idx) else {
            return Vec::new();
        };
        self.cart_lines()
            .into_iter()
            .filter(|l| l.item_id == item.id)
            .collect()
    }

    pub(super) fn lines_of_section(&self, section: usize) -> Vec<CartLine> {
        let Some(sec) = self.lex.menu.sections.get(section) else {
            return Vec::new();
        };
        self.cart_lines()
            .into_iter()
            .filter(|l| {
                self.lex
                    .menu
                    .item(&l.item_id)
                    .is_some_and(|i| i.section_id == sec.id)
            })
            .collect()
    }

    /// Lines matching what a region says about them ("the margherita without basil").
    pub(super) fn filter_by_modifiers(
        &self,
        lines: Vec<CartLine>,
        item: usize,
        p: &ModParse,
    ) -> Vec<CartLine> {
        if p.ops.is_empty() {
            return lines;
        }
        let narrowed: Vec<CartLine> = lines
            .iter()
            .filter(|l| self.line_satisfies(l, item, &p.ops))
            .cloned()
            .collect();
        if narrowed.is_empty() { lines } else { narrowed }
    }

    pub(super) fn line_satisfies(&self, line: &CartLine, item: usize, ops: &[ModOp]) -> bool {
        ops.iter().all(|op| match *op {
            ModOp::Add { group, modifier } => line
                .modifiers
                .iter()
                .any(|m| m.name == self.lex.modifier_name(item, group, modifier)),
            ModOp::Remove { group, modifier } => !line
                .modifiers
                .iter()
                .any(|m| m.name == self.lex.modifier_name(item, group, modifier)),
        })
    }

    /// The line a singular reference means: the last one touched if it is among them.
    pub(super) fn pick_line(&self, lines: &[CartLine]) -> Option<CartLine> {
        let last = self.sim.cart().and_then(|c| c.last_line.clone());
        lines
            .iter()
            .find(|l| Some(&l.line_id) == last.as_ref())
            .or_else(|| lines.last())
            .cloned()
    }

    pub(super) fn describe_line(&self, line: &CartLine) -> String {
        let extras: Vec<String> = line
            .modifiers
            .iter()
            .filter(|c| {
                !self.lex.menu.item(&line.item_id).is_some_and(|i| {
                    i.modifier_groups
                        .iter()
                        .any(|g| g.modifiers.iter().any(|m| m.id == c.id && m.default))
                })
            })
            .map(|c| c.name.clone())
            .collect();
        if extras.is_empty() {
            line.name.clone()
        } else {
            format!("{} ({})", line.name, extras.join(", "))
        }
    }

    pub(super) fn modifier_names(&self, item: usize, chosen: &[(usize, usize)]) -> Vec<String> {
        chosen
            .iter()
            .map(|(g, m)| self.lex.modifier_name(item, *g, *m))
            .collect()
    }

    /// Applies `ops` to a choice of modifiers (see [`Mode`]); a group that allows one
    /// pick keeps the last one named.
    pub(super) fn apply_ops(
        &self,
        item: usize,
        chosen: &mut Vec<(usize, usize)>,
        ops: &[ModOp],
        mode: Mode,
    ) {
        let mut cleared: Vec<usize> = Vec::new();
        let Some(it) = self.lex.item(item) else {
            return;
        };
        for op in ops {
            match *op {
                ModOp::Add { group, modifier } => {
                    if let Some(g) = it.modifier_groups.get(group) {
                        let only_defaults = chosen
                            .iter()
                            .filter(|(gi, _)| *gi == group)
                            .all(|(_, mi)| g.modifiers.get(*mi).is_some_and(|m| m.default));
                        let replace = mode == Mode::Replace && !cleared.contains(&group);
                        if g.max == 1 || replace || (mode != Mode::New && only_defaults) {
                            chosen.retain(|(gi, _)| *gi != group);
                            cleared.push(group);
                        }
                        let in_group = chosen.iter().filter(|(gi, _)| *gi == group).count();
                        if mode != Mode::New
                            && u32::try_from(in_group).unwrap_or(u32::MAX) >= g.max
                            && let Some(pos) = chosen.iter().position(|(gi, _)| *gi == group)
                        {
                            // Full group: the newest pick pushes out the oldest.
                            chosen.remove(pos);
                        }
                    }
                    if !chosen.contains(&(group, modifier)) {
                        chosen.push((group, modifier));
                    }
                }
                ModOp::Remove { group, modifier } => chosen.retain(|c| *c != (group, modifier)),
            }
        }
    }

    pub(super) fn line_choice(&self, line: &CartLine, item: usize) -> Vec<(usize, usize)> {
        let Some(it) = self.lex.item(item) else {
            return Vec::new();
        };
        line.modifiers
            .iter()
            .filter_map(|c| {
                it.modifier_groups.iter().enumerate().find_map(|(gi, g)| {
                    g.modifiers
                        .iter()
                        .position(|m| m.id == c.id)
                        .map(|mi| (gi, mi))
                })
            })
            .collect()
    }
}

/// How named options combine with what a line already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// A new line: every option named counts ("chocolate and pistachio").
    New,
    /// Adding to a line ("add olives"): a pick replaces the group's defaults, and a full
    /// group drops its oldest pick.
    Keep,
    /// Changing a line ("change it to chocolate"): the picks replace the group's.
    Replace,
}

pub(super) fn change_mode(t: &[String]) -> Mode {
    if has_any(
        t,
        &[
            "change", "switch", "swap", "instead", "replace", "make", "rather",
        ],
    ) {
        Mode::Replace
    } else {
        Mode::Keep
    }
}
