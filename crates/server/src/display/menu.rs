//! Menu changes pushed live to a tenant's open displays (kiosks, storefronts, screens).
//!
//! Two things go to every session of the tenant with a display connected here (found
//! through [`Hub::open_sessions`], which the hub keeps from its subscribers, so nothing
//! is loaded for sessions nobody watches):
//!
//! - **Durable revisions.** Components already on the screen that show a changed item —
//!   a `dish_card` or a row of a `menu_section` with its `itemId` — are put again under
//!   the same key with the new availability, name and price. They go through the hub
//!   like any update (validated, logged with the next seq, resumable with `?since=`), and
//!   the revision is derived under the session's lock, so an agent replacing the card at
//!   the same moment is never overwritten with a stale one.
//! - **An ephemeral `menu` frame**, `{"type":"menu","version":N,"items":[{"itemId",
//!   "available","removed"}],"reload":bool}`: a storefront greys an item out from it, or
//!   fetches its menu again when `reload` says the menu's shape changed. It is not in the
//!   log (it describes the menu, not the conversation), so a client re-reads the menu
//!   whenever it (re)connects instead of relying on having seen every frame.
//!
//! Why the hub's subscriber registry rather than a separate per-tenant broadcast: the
//! sockets and SSE streams displays already hold carry the change, there is no second
//! connection per page, and the durable part keeps "one path for every change". The
//! registry is per process, like the in-process fan-out itself; a cross-instance bus
//! would publish the same frames per session subject.

use super::hub::{Hub, UpdateCommand};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use stonepot_domain::TenantId;
use stonepot_domain::menu::{Item, Menu};

/// What changed on a tenant's menu, as displays need it.
#[derive(Debug, Clone, Default)]
pub struct MenuChange {
    /// The menu version the change produced.
    pub version: u64,
    /// Items whose name, price, availability or other fields changed: the new item, or
    /// None when it was deleted.
    pub items: BTreeMap<String, Option<Item>>,
    /// Whether the menu's shape changed (items added, deleted or moved, sections
    /// changed), so a page listing the menu should fetch it again.
    pub reload: bool,
}

impl MenuChange {
    /// One item changed (or, with `after` None, was deleted).
    pub fn item(version: u64, id: &str, after: Option<Item>, reload: bool) -> MenuChange {
        MenuChange {
            version,
            items: BTreeMap::from([(id.to_string(), after)]),
            reload,
        }
    }

    /// Everything that differs between two whole menus.
    pub fn between(version: u64, old: &Menu, new: &Menu) -> MenuChange {
        let mut items = BTreeMap::new();
        for o in &old.items {
            match new.item(&o.id) {
                None => {
                    items.insert(o.id.clone(), None);
                }
                Some(n) if n != o => {
                    items.insert(o.id.clone(), Some(n.clone()));
                }
                Some(_) => {}
            }
        }
        let ids = |m: &Menu| m.items.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        let reload = !items.is_empty() || old.sections != new.sections || ids(old) != ids(new);
        MenuChange {
            version,
            items,
            reload,
        }
    }
}

/// Pushes `change` to every open display of `tenant`; returns how many sessions it
/// reached. A display that cannot take the revision is logged and skipped: the menu
/// change is already committed and the other displays still get it.
pub async fn push(hub: &Hub, tenant: &TenantId, change: &MenuChange) -> usize {
    let sessions = hub.open_sessions(tenant);
    let frame = json!({
        "type": "menu",
        "version": change.version,
        "reload": change.reload,
        "items": change.items.iter().map(|(id, after)| json!({
            "itemId": id,
            "available": after.as_ref().is_some_and(|i| i.available),
            "removed": after.is_none(),
        })).collect::<Vec<_>>(),
    })
    .to_string();
    for id in &sessions {
        if !change.items.is_empty()
            && let Err(e) = hub
                .revise(id, |components| revisions(components, change))
                .await
        {
            tracing::warn!(session = %id, error = %e, "could not revise a display after a menu change");
        }
        hub.publish_ephemeral(id, "menu", frame.clone());
    }
    sessions.len()
}

/// The updates that bring a session's components in line with `change`.
fn revisions(
    components: &BTreeMap<String, (u64, Value)>,
    change: &MenuChange,
) -> Vec<UpdateCommand> {
    let mut out = Vec::new();
    for (key, (_, env)) in components {
        let kind = env.get("type").and_then(Value::as_str).unwrap_or_default();
        let Some(data) = env.get("data") else {
            continue;
        };
        let revised = match kind {
            "dish_card" => revise_dish(data, change),
            "menu_section" => revise_section(data, change),
            _ => None,
        };
        if let Some(data) = revised {
            out.push(UpdateCommand::Put {
                kind: kind.to_string(),
                data,
                key: Some(key.clone()),
            });
        }
    }
    out
}

/// `row` (a dish card or a section row) with `item`'s current fields, or marked
/// unavailable when the item is gone.
fn patch(row: &mut Value, item: Option<&Item>, full: bool) {
    let Value::Object(m) = row else { return };
    match item {
        None => {
            m.insert("available".into(), Value::Bool(false));
        }
        Some(i) => {
            m.insert("available".into(), Value::Bool(i.available));
            m.insert("name".into(), Value::String(i.name.clone()));
            m.insert("price".into(), json!({"minor": i.price}));
            if full {
                m.insert("description".into(), Value::String(i.description.clone()));
                m.insert("dietary".into(), json!(i.dietary));
                m.insert("allergens".into(), json!(i.allergens));
            }
        }
    }
}

fn changed<'c>(row: &Value, change: &'c MenuChange) -> Option<Option<&'c Item>> {
    let id = row.get("itemId").and_then(Value::as_str)?;
    change.items.get(id).map(Option::as_ref)
}

fn revise_dish(data: &Value, change: &MenuChange) -> Option<Value> {
    let item = changed(data, change)?;
    let mut d = data.clone();
    patch(&mut d, item, true);
    (d != *data).then_some(d)
}

fn revise_section(data: &Value, change: &MenuChange) -> Option<Value> {
    let mut d = data.clone();
    let rows = d.get_mut("items").and_then(Value::as_array_mut)?;
    for row in rows.iter_mut() {
        if let Some(item) = changed(row, change) {
            patch(row, item, false);
        }
    }
    (d != *data).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stonepot_domain::demo;

    fn comps(entries: &[(&str, Value)]) -> BTreeMap<String, (u64, Value)> {
        entries
            .iter()
            .zip(1u64..)
            .map(|((k, v), seq)| ((*k).to_string(), (seq, v.clone())))
            .collect()
    }

    #[test]
    fn only_components_showing_a_changed_item_are_revised() {
        let menu = demo::restaurant_menu();
        let mut off = menu
            .item("margherita")
            .cloned()
            .unwrap_or_else(|| panic!("demo"));
        off.available = false;
        let change = MenuChange::item(7, "margherita", Some(off), false);
        let c = comps(&[
            (
                "focus",
                json!({"type": "dish_card", "key": "focus", "data": {"name": "Margherita Pizza", "itemId": "margherita", "available": true, "price": {"minor": 1299, "currency": "USD"}}}),
            ),
            (
                "other",
                json!({"type": "dish_card", "key": "other", "data": {"name": "Tiramisu", "itemId": "tiramisu", "available": true, "price": {"minor": 800, "currency": "USD"}}}),
            ),
            (
                "menu",
                json!({"type": "menu_section", "key": "menu", "data": {"title": "Pizzas", "items": [
                {"name": "Margherita Pizza", "itemId": "margherita", "available": true, "price": {"minor": 1299, "currency": "USD"}},
                {"name": "Pepperoni", "itemId": "pepperoni", "available": true, "price": {"minor": 1499, "currency": "USD"}}]}}),
            ),
            (
                "cart",
                json!({"type": "cart", "key": "cart", "data": {"lines": []}}),
            ),
        ]);
        let out = revisions(&c, &change);
        assert_eq!(out.len(), 2, "{out:?}");
        for cmd in out {
            let UpdateCommand::Put { kind, data, key } = cmd else {
                panic!("a put")
            };
            match kind.as_str() {
                "dish_card" => {
                    assert_eq!(key.as_deref(), Some("focus"));
                    assert_eq!(data["available"], false);
                }
                "menu_section" => {
                    assert_eq!(data["items"][0]["available"], false);
                    assert_eq!(data["items"][1]["available"], true);
                }
                other => panic!("{other}"),
            }
        }
    }

    #[test]
    fn whole_menu_diffs_name_changed_and_deleted_items() {
        let old = demo::restaurant_menu();
        let mut new = old.clone();
        if let Some(i) = new.items.first_mut() {
            i.price += 1;
        }
        let gone = new.items.pop().map(|i| i.id).unwrap_or_default();
        let c = MenuChange::between(3, &old, &new);
        assert!(c.reload);
        assert_eq!(c.items.len(), 2);
        assert_eq!(c.items.get(&gone), Some(&None));
        assert!(!MenuChange::between(4, &old, &old).reload);
    }
}
