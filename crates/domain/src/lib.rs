//! Stonepot's domain: pure types and rules with no I/O.
//!
//! Ids and money validate on construction; menus, tenants, themes and the demo data
//! live here so every other crate (store, server, agent) shares one vocabulary.

pub mod cart;
pub mod commerce;
pub mod demo;
pub mod display;
pub mod finance;
pub mod ids;
pub mod menu;
pub mod money;
pub mod palette;
pub mod tenant;
pub mod theme;

pub use cart::{Cart, CartError, CartLine};
pub use commerce::{Order, OrderId, OrderStatus, PricingPolicy, Quote, QuoteId, UnixMs};
pub use display::{ComponentError, ComponentKind};
pub use ids::{IdError, SessionId, TenantId};
pub use money::{Currency, Money, MoneyError};
pub use tenant::{Category, Tenant};
pub use theme::Theme;
