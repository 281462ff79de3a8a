//! A guest's cart: lines priced from the menu, modifiers checked against each group's
//! min/max, and errors precise enough for a model (or the offline agent) to act on.
//!
//! The cart never trusts a price from outside: every line's unit price is the menu
//! price plus the chosen modifiers' deltas, recomputed whenever the line changes.

use crate::menu::{Item, Menu, Modifier};
use serde::{Deserialize, Serialize};

/// The most of one item a single line may hold (a typo guard, not a business rule).
pub const MAX_QUANTITY: u32 = 99;
/// The most lines one cart may hold.
pub const MAX_LINES: usize = 50;

/// A modifier chosen on a line, with the name and price it had when chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChosenModifier {
    pub group_id: String,
    pub id: String,
    pub name: String,
    pub price_delta: i64,
}

/// One line of the cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CartLine {
    /// Stable within the cart (`l1`, `l2`, …); never reused after a removal.
    pub line_id: String,
    pub item_id: String,
    pub name: String,
    pub quantity: u32,
    pub modifiers: Vec<ChosenModifier>,
    /// Item price plus modifier deltas, minor units.
    pub unit_price: i64,
    /// `unit_price × quantity`.
    pub line_total: i64,
}

/// The cart of one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Cart {
    pub lines: Vec<CartLine>,
    /// The number the next line gets.
    #[serde(default = "one")]
    pub next_line: u32,
    /// The line most recently added to or changed ("make that three" refers to it).
    #[serde(default)]
    pub last_line: Option<String>,
}

fn one() -> u32 {
    1
}

/// Why a cart change was refused. `code` is stable; the message is for humans and models.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum CartError {
    #[error("there is no menu item '{item}'")]
    UnknownItem { item: String },
    #[error("{name} is not available right now")]
    Unavailable { item: String, name: String },
    #[error("{name} has no option '{modifier}'; the options are: {options}")]
    UnknownModifier {
        item: String,
        name: String,
        modifier: String,
        options: String,
    },
    #[error("{name} needs at least {min} choice(s) of {group}: {options}")]
    TooFewModifiers {
        item: String,
        name: String,
        group: String,
        min: u32,
        options: String,
    },
    #[error("{name} allows at most {max} choice(s) of {group}")]
    TooManyModifiers {
        item: String,
        name: String,
        group: String,
        max: u32,
    },
    #[error("the quantity must be between 1 and {max}, not {quantity}")]
    BadQuantity { quantity: i64, max: u32 },
    #[error("the cart has no line '{line}'")]
    UnknownLine { line: String },
    #[error("the cart is full ({max} lines)")]
    CartFull { max: usize },
}

impl CartError {
    /// The stable code, as serialized.
    pub fn code(&self) -> &'static str {
        match self {
            CartError::UnknownItem { .. } => "unknown_item",
            CartError::Unavailable { .. } => "unavailable",
            CartError::UnknownModifier { .. } => "unknown_modifier",
            CartError::TooFewModifiers { .. } => "too_few_modifiers",
            CartError::TooManyModifiers { .. } => "too_many_modifiers",
            CartError::BadQuantity { .. } => "bad_quantity",
            CartError::UnknownLine { .. } => "unknown_line",
            CartError::CartFull { .. } => "cart_full",
        }
    }
}

/// Looks an item up by id, then by name or alias (case- and space-insensitive).
pub fn find_item<'m>(menu: &'m Menu, key: &str) -> Option<&'m Item> {
    if let Some(i) = menu.item(key) {
        return Some(i);
    }
    let k = fold(key);
    menu.items
        .iter()
        .find(|i| fold(&i.name) == k || fold(&i.id) == k || i.aliases.iter().any(|a| fold(a) == k))
}

fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn option_list(item: &Item) -> String {
    item.modifier_groups
        .iter()
        .map(|g| {
            let names: Vec<&str> = g.modifiers.iter().map(|m| m.name.as_str()).collect();
            format!("{} ({})", g.name, names.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Resolves the requested modifiers (ids or names) of `item`, fills in each group's
/// defaults where the guest said nothing, and checks every group's min/max.
pub fn resolve_modifiers(
    item: &Item,
    requested: &[String],
) -> Result<Vec<ChosenModifier>, CartError> {
    let mut chosen: Vec<(usize, &Modifier)> = Vec::new();
    for r in requested {
        let k = fold(r);
        let found = item.modifier_groups.iter().enumerate().find_map(|(gi, g)| {
            g.modifiers
                .iter()
                .find(|m| m.id == *r || fold(&m.name) == k)
                .map(|m| (gi, m))
        });
        match found {
            Some(hit) if !chosen.iter().any(|(_, m)| m.id == hit.1.id) => chosen.push(hit),
            Some(_) => {}
            None => {
                return Err(CartError::UnknownModifier {
                    item: item.id.clone(),
                    name: item.name.clone(),
                    modifier: r.clone(),
                    options: option_list(item),
                });
            }
        }
    }
    let mut out = Vec::new();
    for (gi, g) in item.modifier_groups.iter().enumerate() {
        let mut picked: Vec<&Modifier> = chosen
            .iter()
            .filter(|(i, _)| *i == gi)
            .map(|(_, m)| *m)
            .collect();
        if picked.is_empty() {
            picked = g.modifiers.iter().filter(|m| m.default).collect();
        }
        let n = u32::try_from(picked.len()).unwrap_or(u32::MAX);
        if n < g.min {
            return Err(CartError::TooFewModifiers {
                item: item.id.clone(),
                name: item.name.clone(),
                group: g.name.clone(),
                min: g.min,
                options: g
                    .modifiers
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if n > g.max {
            return Err(CartError::TooManyModifiers {
                item: item.id.clone(),
                name: item.name.clone(),
                group: g.name.clone(),
                max: g.max,
            });
        }
        out.extend(picked.into_iter().map(|m| ChosenModifier {
            group_id: g.id.clone(),
            id: m.id.clone(),
            name: m.name.clone(),
            price_delta: m.price_delta,
        }));
    }
    Ok(out)
}

fn check_quantity(q: i64) -> Result<u32, CartError> {
    match u32::try_from(q) {
        Ok(n) if (1..=MAX_QUANTITY).contains(&n) => Ok(n),
        _ => Err(CartError::BadQuantity {
            quantity: q,
            max: MAX_QUANTITY,
        }),
    }
}

fn priced(item: &Item, modifiers: &[ChosenModifier]) -> i64 {
    item.price
        .saturating_add(modifiers.iter().map(|m| m.price_delta).sum::<i64>())
}

/// An item that exists and can be ordered.
pub fn orderable<'m>(menu: &'m Menu, key: &str) -> Result<&'m Item, CartError> {
    let item = find_item(menu, key).ok_or_else(|| CartError::UnknownItem { item: key.into() })?;
    if !item.available {
        return Err(CartError::Unavailable {
            item: item.id.clone(),
            name: item.name.clone(),
        });
    }
    Ok(item)
}

impl Cart {
    pub fn new() -> Self {
        Cart {
            lines: Vec::new(),
            next_line: 1,
            last_line: None,
        }
    }

    /// Adds `quantity` of an item with the given modifiers. The same item with the
    /// same modifiers joins the existing line instead of making a second one.
    pub fn add(
        &mut self,
        menu: &Menu,
        item: &str,
        quantity: i64,
        modifiers: &[String],
    ) -> Result<&CartLine, CartError> {
        let qty = check_quantity(quantity)?;
        let item = orderable(menu, item)?;
        let chosen = resolve_modifiers(item, modifiers)?;
        let unit = priced(item, &chosen);
        if let Some(pos) = self
            .lines
            .iter()
            .position(|l| l.item_id == item.id && l.modifiers == chosen)
        {
            let merged = self.lines.get(pos).map_or(0, |l| i64::from(l.quantity)) + i64::from(qty);
            let q = check_quantity(merged)?;
            if let Some(l) = self.lines.get_mut(pos) {
                self.last_line = Some(l.line_id.clone());
                l.quantity = q;
                l.unit_price = unit;
                l.line_total = unit.saturating_mul(i64::from(q));
            }
            return self.lines.get(pos).ok_or(CartError::UnknownLine {
                line: String::new(),
            });
        }
        if self.lines.len() >= MAX_LINES {
            return Err(CartError::CartFull { max: MAX_LINES });
        }
        let line_id = format!("l{}", self.next_line.max(1));
        self.next_line = self.next_line.max(1) + 1;
        self.last_line = Some(line_id.clone());
        self.lines.push(CartLine {
            line_id,
            item_id: item.id.clone(),
            name: item.name.clone(),
            quantity: qty,
            modifiers: chosen,
            unit_price: unit,
            line_total: unit.saturating_mul(i64::from(qty)),
        });
        self.lines.last().ok_or(CartError::UnknownLine {
            line: String::new(),
        })
    }

    /// Changes a line's quantity and/or modifiers (modifiers replace the old choice).
    pub fn update(
        &mut self,
        menu: &Menu,
        line_id: &str,
        quantity: Option<i64>,
        modifiers: Option<&[String]>,
    ) -> Result<&CartLine, CartError> {
        let pos = self.position(line_id)?;
        let qty = quantity.map(check_quantity).transpose()?;
        let item_id = self
            .lines
            .get(pos)
            .map(|l| l.item_id.clone())
            .unwrap_or_default();
        let item = orderable(menu, &item_id)?;
        let chosen = match modifiers {
            Some(m) => Some(resolve_modifiers(item, m)?),
            None => None,
        };
        let line = self
            .lines
            .get_mut(pos)
            .ok_or_else(|| CartError::UnknownLine {
                line: line_id.into(),
            })?;
        if let Some(q) = qty {
            line.quantity = q;
        }
        if let Some(c) = chosen {
            line.modifiers = c;
        }
        line.name = item.name.clone();
        self.last_line = Some(line.line_id.clone());
        line.unit_price = priced(item, &line.modifiers);
        line.line_total = line.unit_price.saturating_mul(i64::from(line.quantity));
        Ok(line)
    }

    /// Removes a line and returns it.
    pub fn remove(&mut self, line_id: &str) -> Result<CartLine, CartError> {
        let pos = self.position(line_id)?;
        if self.last_line.as_deref() == Some(line_id) {
            self.last_line = None;
        }
        Ok(self.lines.remove(pos))
    }

    /// Empties the cart (line numbers keep counting up).
    pub fn clear(&mut self) {
        self.lines.clear();
        self.last_line = None;
    }

    pub fn subtotal(&self) -> i64 {
        self.lines.iter().map(|l| l.line_total).sum()
    }

    pub fn item_count(&self) -> u32 {
        self.lines.iter().map(|l| l.quantity).sum()
    }

    pub fn line(&self, line_id: &str) -> Option<&CartLine> {
        self.lines.iter().find(|l| l.line_id == line_id)
    }

    fn position(&self, line_id: &str) -> Result<usize, CartError> {
        self.lines
            .iter()
            .position(|l| l.line_id == line_id)
            .ok_or_else(|| CartError::UnknownLine {
                line: line_id.into(),
            })
    }

    /// A canonical, order-independent summary used by the evaluation set and tests:
    /// `"2 margherita [margherita-no-basil]"` per line, sorted.
    pub fn canonical(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .lines
            .iter()
            .map(|l| {
                let mut mods: Vec<&str> = l.modifiers.iter().map(|m| m.id.as_str()).collect();
                mods.sort_unstable();
                if mods.is_empty() {
                    format!("{} {}", l.quantity, l.item_id)
                } else {
                    format!("{} {} [{}]", l.quantity, l.item_id, mods.join(","))
                }
            })
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo;

    fn menu() -> Menu {
        demo::restaurant_menu()
    }

    #[test]
    fn prices_come_from_the_menu_with_modifier_deltas() {
        let m = menu();
        let mut c = Cart::new();
        let line = c
            .add(&m, "Margherita Pizza", 2, &["Extra basil".into()])
            .cloned();
        let line = line.unwrap_or_else(|e| panic!("{e}"));
        let item = m.item("margherita").map(|i| i.price).unwrap_or_default();
        assert_eq!(line.unit_price, item + 50);
        assert_eq!(line.line_total, (item + 50) * 2);
        assert!(
            line.modifiers
                .iter()
                .any(|x| x.id == "margherita-extra-basil")
        );
        assert_eq!(c.subtotal(), line.line_total);
    }

    #[test]
    fn same_item_and_modifiers_join_one_line_different_ones_split() {
        let m = menu();
        let mut c = Cart::new();
        c.add(&m, "margherita", 1, &[]).map(|_| ()).unwrap();
        c.add(&m, "margarita", 1, &[]).map(|_| ()).unwrap();
        c.add(&m, "margherita", 1, &["No basil".into()])
            .map(|_| ())
            .unwrap();
        assert_eq!(c.lines.len(), 2);
        assert_eq!(c.item_count(), 3);
        assert_eq!(c.lines[0].line_id, "l1");
        assert_eq!(c.lines[1].line_id, "l2");
    }

    #[test]
    fn refusals_name_the_problem() {
        let m = menu();
        let mut c = Cart::new();
        let unknown = c.add(&m, "unicorn steak", 1, &[]).map(|_| ()).unwrap_err();
        assert_eq!(unknown.code(), "unknown_item");
        let off = m
            .items
            .iter()
            .find(|i| !i.available)
            .map(|i| i.id.clone())
            .unwrap();
        assert_eq!(
            c.add(&m, &off, 1, &[]).map(|_| ()).unwrap_err().code(),
            "unavailable"
        );
        let bad = c
            .add(&m, "margherita", 1, &["pineapple".into()])
            .map(|_| ())
            .unwrap_err();
        assert_eq!(bad.code(), "unknown_modifier");
        assert!(bad.to_string().contains("No basil"), "{bad}");
        let both = c
            .add(
                &m,
                "margherita",
                1,
                &["No basil".into(), "Extra basil".into()],
            )
            .map(|_| ())
            .unwrap_err();
        assert_eq!(both.code(), "too_many_modifiers");
        assert_eq!(
            c.add(&m, "margherita", 0, &[])
                .map(|_| ())
                .unwrap_err()
                .code(),
            "bad_quantity"
        );
        assert_eq!(
            c.add(&m, "margherita", 100, &[])
                .map(|_| ())
                .unwrap_err()
                .code(),
            "bad_quantity"
        );
        assert_eq!(c.remove("l9").unwrap_err().code(), "unknown_line");
        assert!(
            c.lines.is_empty(),
            "a refused change leaves the cart as it was"
        );
        let json = serde_json::to_value(&unknown).unwrap();
        assert_eq!(json["code"], "unknown_item");
    }

    #[test]
    fn update_reprices_and_remove_keeps_numbering() {
        let m = menu();
        let mut c = Cart::new();
        c.add(&m, "margherita", 1, &[]).map(|_| ()).unwrap();
        c.add(&m, "tiramisu", 1, &[])
            .map(|_| ())
            .unwrap_or_else(|_| {
                c.add(&m, &m.items[m.items.len() - 1].id.clone(), 1, &[])
                    .map(|_| ())
                    .unwrap()
            });
        let l = c
            .update(&m, "l1", Some(3), Some(&["Extra basil".into()]))
            .cloned()
            .unwrap();
        assert_eq!(l.quantity, 3);
        assert_eq!(l.line_total, l.unit_price * 3);
        c.remove("l2").unwrap();
        c.add(&m, "margherita", 1, &[]).map(|_| ()).unwrap();
        assert_eq!(c.lines.last().map(|l| l.line_id.as_str()), Some("l3"));
        c.clear();
        assert_eq!(c.subtotal(), 0);
    }
}
