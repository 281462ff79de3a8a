//! Menus: sections, items with integer prices, modifier groups with min/max, and the
//! fixed lists of dietary and allergen tags.
//!
//! The types refuse unknown fields: they are what operators send, and a misspelt field
//! (`"availble": false`) must be an error rather than a silently kept default.

use serde::{Deserialize, Serialize};

/// Dietary tags an item may carry (a fixed list so filters mean the same everywhere).
pub const DIETARY_TAGS: &[&str] = &[
    "vegetarian",
    "vegan",
    "gluten_free",
    "dairy_free",
    "nut_free",
    "halal",
    "kosher",
    "spicy",
];

/// Allergen tags (the 14 major allergens).
pub const ALLERGEN_TAGS: &[&str] = &[
    "gluten",
    "crustaceans",
    "eggs",
    "fish",
    "peanuts",
    "soy",
    "milk",
    "tree_nuts",
    "celery",
    "mustard",
    "sesame",
    "sulphites",
    "lupin",
    "molluscs",
];

/// A menu section ("Pizzas").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub id: String,
    pub name: String,
    pub position: i32,
}

/// One choice inside a modifier group ("No basil", "Large").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Modifier {
    pub id: String,
    pub name: String,
    /// Added to the item price, minor units (may be 0).
    pub price_delta: i64,
    /// Chosen when the guest says nothing about this group.
    #[serde(default)]
    pub default: bool,
}

/// A group of modifiers with how many the guest must and may choose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModifierGroup {
    pub id: String,
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub modifiers: Vec<Modifier>,
}

/// A dish or drink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Item {
    pub id: String,
    pub section_id: String,
    pub name: String,
    pub description: String,
    /// Price in minor units of the tenant's currency.
    pub price: i64,
    #[serde(default)]
    pub dietary: Vec<String>,
    #[serde(default)]
    pub allergens: Vec<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub available: bool,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default)]
    pub modifier_groups: Vec<ModifierGroup>,
}

/// A tenant's whole menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Menu {
    pub sections: Vec<Section>,
    pub items: Vec<Item>,
}

/// The highest item price or modifier delta (in either direction), in minor units:
/// 1,000,000.00 in a two-decimal currency. With [`MAX_GROUPS`] × [`MAX_MODIFIERS`]
/// modifiers, a cart's [`MAX_QUANTITY`](crate::cart::MAX_QUANTITY) and
/// [`MAX_LINES`](crate::cart::MAX_LINES), no cart, quote or tax sum can overflow `i64`.
pub const MAX_PRICE: i64 = 100_000_000;
/// The most sections a menu may have.
pub const MAX_SECTIONS: usize = 100;
/// The most items a menu may have.
pub const MAX_ITEMS: usize = 1_000;
/// The most modifier groups one item may have.
pub const MAX_GROUPS: usize = 20;
/// The most modifiers one group may have.
pub const MAX_MODIFIERS: usize = 50;
/// The longest id (item, section, group, modifier), in characters.
pub const ID_MAX: usize = 64;
/// The longest name, in characters (the display's limit).
pub const NAME_MAX: usize = 200;
/// The longest description, in characters (the display's limit).
pub const DESCRIPTION_MAX: usize = 2_000;
/// The most aliases an item may have.
pub const ALIASES_MAX: usize = 20;

/// Why a menu or item was refused: the field (a JSON path such as
/// `items[2].modifierGroups[0].max`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct MenuError {
    pub field: String,
    pub problem: String,
}

fn err(field: impl Into<String>, problem: impl Into<String>) -> MenuError {
    MenuError {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Prefixes the error's field with `at` (`items[3]` + `price` → `items[3].price`).
fn within(at: &str, e: MenuError) -> MenuError {
    err(format!("{at}.{}", e.field), e.problem)
}

/// Ids appear in URLs (`/menu/items/{id}`), display components and cart lines, so they
/// are short and plain: letters, digits, `-`, `_` and `.`.
pub fn check_id(field: &str, id: &str) -> Result<(), MenuError> {
    if id.is_empty() || id.chars().count() > ID_MAX {
        return Err(err(field, format!("must be 1 to {ID_MAX} characters")));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(err(
            field,
            format!("'{c}' is not allowed in an id (letters, digits, '-', '_' and '.')"),
        ));
    }
    Ok(())
}

fn check_name(field: &str, name: &str) -> Result<(), MenuError> {
    if name.trim().is_empty() {
        return Err(err(field, "must not be empty"));
    }
    if name.chars().count() > NAME_MAX {
        return Err(err(field, format!("must be at most {NAME_MAX} characters")));
    }
    Ok(())
}

fn check_tags(field: &str, tags: &[String], allowed: &[&str]) -> Result<(), MenuError> {
    for (i, tag) in tags.iter().enumerate() {
        if !allowed.contains(&tag.as_str()) {
            return Err(err(
                format!("{field}[{i}]"),
                format!(
                    "unknown tag '{tag}' (expected one of: {})",
                    allowed.join(", ")
                ),
            ));
        }
        if tags.get(..i).is_some_and(|before| before.contains(tag)) {
            return Err(err(
                format!("{field}[{i}]"),
                format!("'{tag}' is listed twice"),
            ));
        }
    }
    Ok(())
}

fn check_image_url(url: &str) -> Result<(), MenuError> {
    let field = "imageUrl";
    if url.chars().count() > 2048 {
        return Err(err(field, "must be at most 2048 characters"));
    }
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(err(
            field,
            "must not contain spaces, backslashes or control characters",
        ));
    }
    let lower = url.to_ascii_lowercase();
    let absolute = ["https://", "http://"]
        .iter()
        .any(|s| lower.starts_with(s) && lower.len() > s.len());
    if absolute || (url.starts_with('/') && !url.starts_with("//")) {
        Ok(())
    } else {
        Err(err(
            field,
            "must start with https://, http:// or / (a path on this site)",
        ))
    }
}

impl Section {
    /// Checks the id and name.
    pub fn validate(&self) -> Result<(), MenuError> {
        check_id("id", &self.id)?;
        check_name("name", &self.name)
    }
}

impl ModifierGroup {
    fn validate(&self) -> Result<(), MenuError> {
        check_id("id", &self.id)?;
        check_name("name", &self.name)?;
        if self.modifiers.is_empty() {
            return Err(err("modifiers", "a group needs at least one modifier"));
        }
        if self.modifiers.len() > MAX_MODIFIERS {
            return Err(err(
                "modifiers",
                format!("at most {MAX_MODIFIERS} per group"),
            ));
        }
        if self.min > self.max {
            return Err(err(
                "min",
                format!("must not exceed max ({} > {})", self.min, self.max),
            ));
        }
        let count = u32::try_from(self.modifiers.len()).unwrap_or(u32::MAX);
        if self.max == 0 || self.max > count {
            return Err(err(
                "max",
                format!(
                    "must be between 1 and the number of modifiers ({count}), not {}",
                    self.max
                ),
            ));
        }
        for (i, m) in self.modifiers.iter().enumerate() {
            let at = format!("modifiers[{i}]");
            check_id("id", &m.id).map_err(|e| within(&at, e))?;
            check_name("name", &m.name).map_err(|e| within(&at, e))?;
            if !(-MAX_PRICE..=MAX_PRICE).contains(&m.price_delta) {
                return Err(err(
                    format!("{at}.priceDelta"),
                    format!("must be between -{MAX_PRICE} and {MAX_PRICE} minor units"),
                ));
            }
        }
        let defaults = self.modifiers.iter().filter(|m| m.default).count();
        if u32::try_from(defaults).unwrap_or(u32::MAX) > self.max {
            return Err(err(
                "modifiers",
                format!("{defaults} defaults, but max is {}", self.max),
            ));
        }
        Ok(())
    }
}

impl Item {
    /// Checks ids, name, price bounds, tags against the fixed lists and every modifier
    /// group's rules (min ≤ max ≤ number of modifiers, unique ids, deltas in bounds,
    /// no choice that makes the price negative).
    pub fn validate(&self) -> Result<(), MenuError> {
        check_id("id", &self.id)?;
        check_id("sectionId", &self.section_id)?;
        check_name("name", &self.name)?;
        if self.description.chars().count() > DESCRIPTION_MAX {
            return Err(err(
                "description",
                format!("must be at most {DESCRIPTION_MAX} characters"),
            ));
        }
        if !(0..=MAX_PRICE).contains(&self.price) {
            return Err(err(
                "price",
                format!(
                    "must be between 0 and {MAX_PRICE} minor units, not {}",
                    self.price
                ),
            ));
        }
        check_tags("dietary", &self.dietary, DIETARY_TAGS)?;
        check_tags("allergens", &self.allergens, ALLERGEN_TAGS)?;
        if self.aliases.len() > ALIASES_MAX {
            return Err(err("aliases", format!("at most {ALIASES_MAX}")));
        }
        for (i, a) in self.aliases.iter().enumerate() {
            check_name(&format!("aliases[{i}]"), a)?;
        }
        if let Some(url) = &self.image_url {
            check_image_url(url)?;
        }
        if self.modifier_groups.len() > MAX_GROUPS {
            return Err(err(
                "modifierGroups",
                format!("at most {MAX_GROUPS} per item"),
            ));
        }
        let mut group_ids: Vec<&str> = Vec::new();
        let mut modifier_ids: Vec<&str> = Vec::new();
        let mut cheapest = self.price;
        for (i, g) in self.modifier_groups.iter().enumerate() {
            let at = format!("modifierGroups[{i}]");
            g.validate().map_err(|e| within(&at, e))?;
            if group_ids.contains(&g.id.as_str()) {
                return Err(err(
                    format!("{at}.id"),
                    format!("'{}' is used by another group of this item", g.id),
                ));
            }
            group_ids.push(&g.id);
            for (j, m) in g.modifiers.iter().enumerate() {
                // A guest names a modifier by id anywhere on the item, so ids are unique
                // across the item's groups, not only within one.
                if modifier_ids.contains(&m.id.as_str()) {
                    return Err(err(
                        format!("{at}.modifiers[{j}].id"),
                        format!("'{}' is used by another modifier of this item", m.id),
                    ));
                }
                modifier_ids.push(&m.id);
            }
            // The cheapest choice the group allows: its `max` most negative deltas.
            let mut negatives: Vec<i64> = g
                .modifiers
                .iter()
                .map(|m| m.price_delta)
                .filter(|d| *d < 0)
                .collect();
            negatives.sort_unstable();
            let take = usize::try_from(g.max).unwrap_or(usize::MAX);
            cheapest = cheapest.saturating_add(negatives.iter().take(take).sum::<i64>());
        }
        if cheapest < 0 {
            return Err(err(
                "modifierGroups",
                "a choice of modifiers would make the price negative",
            ));
        }
        Ok(())
    }
}

impl Menu {
    /// Validates every section and item, that ids are unique and that each item's
    /// section exists.
    pub fn validate(&self) -> Result<(), MenuError> {
        if self.sections.len() > MAX_SECTIONS {
            return Err(err("sections", format!("at most {MAX_SECTIONS}")));
        }
        if self.items.len() > MAX_ITEMS {
            return Err(err("items", format!("at most {MAX_ITEMS}")));
        }
        for (i, s) in self.sections.iter().enumerate() {
            let at = format!("sections[{i}]");
            s.validate().map_err(|e| within(&at, e))?;
            if self
                .sections
                .get(..i)
                .is_some_and(|b| b.iter().any(|o| o.id == s.id))
            {
                return Err(err(format!("{at}.id"), format!("'{}' is used twice", s.id)));
            }
        }
        for (i, item) in self.items.iter().enumerate() {
            let at = format!("items[{i}]");
            item.validate().map_err(|e| within(&at, e))?;
            if self
                .items
                .get(..i)
                .is_some_and(|b| b.iter().any(|o| o.id == item.id))
            {
                return Err(err(
                    format!("{at}.id"),
                    format!("'{}' is used twice", item.id),
                ));
            }
            if !self.sections.iter().any(|s| s.id == item.section_id) {
                return Err(err(
                    format!("{at}.sectionId"),
                    format!("unknown section '{}'", item.section_id),
                ));
            }
        }
        Ok(())
    }

    /// Finds an item by id.
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo;

    fn pizza() -> Item {
        demo::restaurant_menu()
            .item("margherita")
            .cloned()
            .unwrap_or_else(|| panic!("the demo has a margherita"))
    }

    fn refused(item: &Item) -> MenuError {
        match item.validate() {
            Ok(()) => panic!("{item:?} should be refused"),
            Err(e) => e,
        }
    }

    #[test]
    fn the_demo_menu_is_valid() {
        assert_eq!(demo::restaurant_menu().validate(), Ok(()));
    }

    #[test]
    fn tags_come_from_the_fixed_lists() {
        let mut i = pizza();
        i.dietary = vec!["vegetarian".into(), "keto".into()];
        let e = refused(&i);
        assert_eq!(e.field, "dietary[1]");
        assert!(e.problem.contains("'keto'"), "{e}");
        let mut i = pizza();
        i.allergens = vec!["milk".into(), "milk".into()];
        assert_eq!(refused(&i).field, "allergens[1]");
    }

    #[test]
    fn prices_are_bounded_and_never_go_negative() {
        let mut i = pizza();
        i.price = -1;
        assert_eq!(refused(&i).field, "price");
        i.price = MAX_PRICE + 1;
        assert_eq!(refused(&i).field, "price");
        let mut i = pizza();
        if let Some(m) = i
            .modifier_groups
            .first_mut()
            .and_then(|g| g.modifiers.first_mut())
        {
            m.price_delta = -(i.price + 1);
        }
        let e = refused(&i);
        assert_eq!(e.field, "modifierGroups", "{e}");
        let mut i = pizza();
        if let Some(m) = i
            .modifier_groups
            .first_mut()
            .and_then(|g| g.modifiers.first_mut())
        {
            m.price_delta = i64::MIN;
        }
        assert!(refused(&i).field.ends_with("priceDelta"));
    }

    #[test]
    fn modifier_groups_keep_their_rules() {
        let mut i = pizza();
        if let Some(g) = i.modifier_groups.first_mut() {
            g.min = 2;
            g.max = 1;
        }
        assert_eq!(refused(&i).field, "modifierGroups[0].min");
        let mut i = pizza();
        if let Some(g) = i.modifier_groups.first_mut() {
            g.min = 0;
            g.max = u32::try_from(g.modifiers.len()).unwrap_or(0) + 1;
        }
        assert_eq!(refused(&i).field, "modifierGroups[0].max");
        let mut i = pizza();
        let dup = i.modifier_groups.first().cloned();
        if let Some(g) = dup {
            i.modifier_groups.push(g);
        }
        let e = refused(&i);
        let last = i.modifier_groups.len() - 1;
        assert_eq!(e.field, format!("modifierGroups[{last}].id"), "{e}");
        let mut i = pizza();
        if let Some(g) = i.modifier_groups.first_mut()
            && let Some(first) = g.modifiers.first().cloned()
        {
            let mut twin = first;
            twin.name = "Twin".into();
            twin.default = false;
            g.modifiers.push(twin);
        }
        let e = refused(&i);
        assert!(e.problem.contains("another modifier"), "{e}");
    }

    #[test]
    fn ids_are_plain_and_unique() {
        let mut i = pizza();
        i.id = "has space".into();
        assert_eq!(refused(&i).field, "id");
        let mut m = demo::restaurant_menu();
        let first = m.items.first().cloned();
        if let Some(f) = first {
            m.items.push(f);
        }
        let e = m
            .validate()
            .err()
            .unwrap_or_else(|| panic!("duplicate ids"));
        assert!(e.problem.contains("used twice"), "{e}");
        let mut m = demo::restaurant_menu();
        if let Some(i) = m.items.first_mut() {
            i.section_id = "nowhere".into();
        }
        let e = m.validate().err().unwrap_or_else(|| panic!("bad section"));
        assert_eq!(e.field, "items[0].sectionId");
    }
}
