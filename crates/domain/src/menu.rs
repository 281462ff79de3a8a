//! Menus: sections, items with integer prices, modifier groups with min/max, and the
//! fixed lists of dietary and allergen tags.

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
pub struct Section {
    pub id: String,
    pub name: String,
    pub position: i32,
}

/// One choice inside a modifier group ("No basil", "Large").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
pub struct ModifierGroup {
    pub id: String,
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub modifiers: Vec<Modifier>,
}

/// A dish or drink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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

/// Why a menu or item was refused.
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

impl Item {
    /// Checks prices, tags and modifier-group bounds.
    pub fn validate(&self) -> Result<(), MenuError> {
        if self.name.trim().is_empty() {
            return Err(err("name", "must not be empty"));
        }
        if self.price < 0 {
            return Err(err("price", "must not be negative"));
        }
        for tag in &self.dietary {
            if !DIETARY_TAGS.contains(&tag.as_str()) {
                return Err(err("dietary", format!("unknown tag '{tag}'")));
            }
        }
        for tag in &self.allergens {
            if !ALLERGEN_TAGS.contains(&tag.as_str()) {
                return Err(err("allergens", format!("unknown tag '{tag}'")));
            }
        }
        for (i, g) in self.modifier_groups.iter().enumerate() {
            let field = format!("modifierGroups[{i}]");
            if g.min > g.max {
                return Err(err(field, "min must not exceed max"));
            }
            if g.max == 0 || usize::try_from(g.max).unwrap_or(usize::MAX) > g.modifiers.len() {
                return Err(err(
                    field,
                    "max must be between 1 and the number of modifiers",
                ));
            }
            let defaults = g.modifiers.iter().filter(|m| m.default).count();
            if u32::try_from(defaults).unwrap_or(u32::MAX) > g.max {
                return Err(err(field, "more defaults than max allows"));
            }
        }
        Ok(())
    }
}

impl Menu {
    /// Validates every item and that each item's section exists.
    pub fn validate(&self) -> Result<(), MenuError> {
        for (i, item) in self.items.iter().enumerate() {
            item.validate()
                .map_err(|e| err(format!("items[{i}].{}", e.field), e.problem))?;
            if !self.sections.iter().any(|s| s.id == item.section_id) {
                return Err(err(
                    format!("items[{i}].sectionId"),
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
