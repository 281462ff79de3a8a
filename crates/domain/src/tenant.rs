//! Tenants: one business each, with a category that picks its display components.

use crate::{Currency, TenantId, Theme};
use serde::{Deserialize, Serialize};

/// What kind of business a tenant is; selects component kinds and agent tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Restaurant,
    Financial,
}

impl Category {
    pub fn as_str(&self) -> &'static str {
        match self {
            Category::Restaurant => "restaurant",
            Category::Financial => "financial",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "restaurant" => Some(Category::Restaurant),
            "financial" => Some(Category::Financial),
            _ => None,
        }
    }
}

/// A business using Stonepot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub category: Category,
    pub currency: Currency,
    /// IANA time zone used for business dates.
    pub timezone: String,
    pub theme: Theme,
}
