//! Tests of quotes and orders against the demo menu, plus property tests over
//! generated menus and carts.

mod order;
mod payment;
mod quote;

use super::*;
use crate::cart::{Cart, CartLine, ChosenModifier};
use crate::demo;
use crate::menu::{Item, Menu, Modifier, ModifierGroup, Section};
use crate::money::Currency;
use std::time::Duration;

/// 2026-09-21T…, a fixed "now".
pub(super) const NOW: UnixMs = UnixMs(1_790_000_000_000);

pub(super) fn menu() -> Menu {
    demo::restaurant_menu()
}

/// 2 × Margherita (No basil) and 1 × Tiramisu: 25.98 + 8.95 = 34.93.
pub(super) fn cart(menu: &Menu) -> Cart {
    let mut c = Cart::new();
    c.add(menu, "margherita", 2, &["No basil".into()]).unwrap();
    c.add(menu, "tiramisu", 1, &[]).unwrap();
    c
}

pub(super) fn exclusive(bps: u32) -> PricingPolicy {
    PricingPolicy {
        tax_rate_bps: bps,
        tax_inclusive: false,
        ..PricingPolicy::default()
    }
}

pub(super) fn inclusive(bps: u32) -> PricingPolicy {
    PricingPolicy {
        tax_rate_bps: bps,
        tax_inclusive: true,
        ..PricingPolicy::default()
    }
}

pub(super) fn quote_with(policy: &PricingPolicy, tip: Tip) -> Quote {
    let m = menu();
    Quote::build(
        &cart(&m),
        &m,
        policy,
        Currency::USD,
        tip,
        NOW,
        DEFAULT_QUOTE_TTL,
        "menu-7",
    )
    .unwrap()
}

/// A menu of one item per `(price, delta)` pair: item `i{k}` ("Item k") with an
/// optional group `g{k}` (0..=1 of modifier `m{k}`, priced `delta`).
pub(super) fn generated_menu(specs: &[(i64, i64)]) -> Menu {
    Menu {
        sections: vec![Section {
            id: "s".into(),
            name: "S".into(),
            position: 0,
        }],
        items: specs
            .iter()
            .enumerate()
            .map(|(k, (price, delta))| Item {
                id: format!("i{k}"),
                section_id: "s".into(),
                name: format!("Item {k}"),
                description: String::new(),
                price: *price,
                dietary: vec![],
                allergens: vec![],
                aliases: vec![],
                available: true,
                image_url: None,
                modifier_groups: vec![ModifierGroup {
                    id: format!("g{k}"),
                    name: format!("Group {k}"),
                    min: 0,
                    max: 1,
                    modifiers: vec![Modifier {
                        id: format!("m{k}"),
                        name: format!("Mod {k}"),
                        price_delta: *delta,
                        default: false,
                    }],
                }],
            })
            .collect(),
    }
}

/// A cart with one line per `(item index, quantity, with modifier)`, built directly
/// (its own prices are left at 0: a quote must not read them).
pub(super) fn generated_cart(lines: &[(usize, u32, bool)]) -> Cart {
    Cart {
        lines: lines
            .iter()
            .enumerate()
            .map(|(n, (k, qty, with_mod))| CartLine {
                line_id: format!("l{}", n + 1),
                item_id: format!("i{k}"),
                name: format!("Item {k}"),
                quantity: *qty,
                modifiers: if *with_mod {
                    vec![ChosenModifier {
                        group_id: format!("g{k}"),
                        id: format!("m{k}"),
                        name: format!("Mod {k}"),
                        price_delta: 0,
                    }]
                } else {
                    vec![]
                },
                unit_price: 0,
                line_total: 0,
            })
            .collect(),
        next_line: u32::try_from(lines.len()).unwrap() + 1,
        last_line: None,
    }
}

pub(super) fn ten_minutes() -> Duration {
    Duration::from_secs(600)
}
