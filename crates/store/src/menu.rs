//! Menus: sections and items per tenant. Scalar fields that queries filter on are
//! columns; the rest of an item (tags, aliases, modifier groups) is a JSON body.
//!
//! Every change — the whole menu, one section, one item, one "86" — runs in one
//! transaction that first bumps the tenant's menu version (`tenant_pricing`), so a quote
//! priced under the old menu is stale the moment the change is visible, never before
//! and never after. Bumping first also takes the version row's lock on PostgreSQL, which
//! serializes a tenant's menu writers there (SQLite serializes them with the write
//! guard), so an expected-version check cannot race.

use crate::{Result, Store, StoreError, now_ms, with_pool};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::sync::Arc;
use stonepot_domain::TenantId;
use stonepot_domain::commerce::PricingPolicy;
use stonepot_domain::menu::{
    Item, MAX_ITEMS, MAX_SECTIONS, Menu, MenuError, ModifierGroup, Section,
};

/// The part of an item kept in the `body` column.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemBody {
    description: String,
    dietary: Vec<String>,
    allergens: Vec<String>,
    aliases: Vec<String>,
    image_url: Option<String>,
    modifier_groups: Vec<ModifierGroup>,
}

/// Why a menu change was refused. Nothing was written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum MenuEditError {
    /// The menu, section or item breaks a rule (see [`MenuError`]).
    #[error(transparent)]
    Invalid(#[from] MenuError),
    /// The section or item to change is not on the tenant's menu.
    #[error("no {kind} '{id}' on the menu")]
    NotFound { kind: &'static str, id: String },
    /// The caller edited an older menu than the stored one.
    #[error("the menu is at version {current}, not {expected}; reload it and retry")]
    VersionMismatch { expected: u64, current: u64 },
    /// A section that still holds items cannot be deleted.
    #[error("section '{id}' still has {items} item(s); move or delete them first")]
    SectionInUse { id: String, items: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MenuEditError {
    fn from(e: sqlx::Error) -> Self {
        MenuEditError::Store(e.into())
    }
}

impl From<serde_json::Error> for MenuEditError {
    fn from(e: serde_json::Error) -> Self {
        MenuEditError::Store(e.into())
    }
}

/// A committed item change: the item before it (None when new) and the menu version
/// the change produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemChange {
    pub before: Option<Item>,
    pub after: Item,
    pub version: u64,
}

const BUMP: &str = "INSERT INTO tenant_pricing (tenant_id, policy, menu_version, updated_at) \
     VALUES ($1, $2, 1, $3) \
     ON CONFLICT (tenant_id) DO UPDATE SET \
     menu_version = tenant_pricing.menu_version + 1, updated_at = excluded.updated_at \
     RETURNING menu_version";

const INSERT_ITEM: &str = "INSERT INTO menu_items (tenant_id, id, section_id, position, name, price, available, body, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

const SELECT_ITEM: &str = "SELECT id, section_id, name, price, available, body FROM menu_items";

fn body_of(item: &Item) -> Result<String> {
    Ok(serde_json::to_string(&ItemBody {
        description: item.description.clone(),
        dietary: item.dietary.clone(),
        allergens: item.allergens.clone(),
        aliases: item.aliases.clone(),
        image_url: item.image_url.clone(),
        modifier_groups: item.modifier_groups.clone(),
    })?)
}

fn version_of(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("menu version {v}")))
}

/// Builds an [`Item`] from a `menu_items` row of either backend.
macro_rules! item_row {
    ($r:expr) => {{
        let r = $r;
        let body: String = r.try_get("body")?;
        let b: ItemBody = serde_json::from_str(&body)?;
        Item {
            id: r.try_get("id")?,
            section_id: r.try_get("section_id")?,
            name: r.try_get("name")?,
            description: b.description,
            price: r.try_get("price")?,
            dietary: b.dietary,
            allergens: b.allergens,
            aliases: b.aliases,
            available: r.try_get("available")?,
            image_url: b.image_url,
            modifier_groups: b.modifier_groups,
        }
    }};
}

/// The tenant's item `$id` read through `$ex` (a pool or `&mut *tx`), if there is one.
macro_rules! item_by_id {
    ($ex:expr, $tenant:expr, $id:expr) => {
        match query(&format!("{SELECT_ITEM} WHERE tenant_id = $1 AND id = $2"))
            .bind($tenant)
            .bind($id)
            .fetch_optional($ex)
            .await?
        {
            Some(r) => Some(item_row!(r)),
            None => None,
        }
    };
}

/// Bumps the menu version inside `$tx` and returns the new one (see the module docs).
macro_rules! bump {
    ($tx:expr, $tenant:expr) => {{
        let policy = serde_json::to_string(&PricingPolicy::default())?;
        let v: i64 = query(BUMP)
            .bind($tenant)
            .bind(policy)
            .bind(now_ms())
            .fetch_one(&mut *$tx)
            .await?
            .try_get("menu_version")?;
        version_of(v)?
    }};
}

impl Store {
    /// Replaces the tenant's whole menu in one transaction and returns the new menu
    /// version.
    pub async fn replace_menu(&self, tenant: &TenantId, menu: &Menu) -> Result<u64> {
        self.replace_menu_at(tenant, menu, None)
            .await
            .map_err(|e| match e {
                MenuEditError::Store(s) => s,
                other => StoreError::Corrupt(format!("menu rejected: {other}")),
            })
    }

    /// Replaces the whole menu, when `expected` is given only if the menu is still at
    /// that version. Returns the new version.
    pub async fn replace_menu_at(
        &self,
        tenant: &TenantId,
        menu: &Menu,
        expected: Option<u64>,
    ) -> Result<u64, MenuEditError> {
        menu.validate()?;
        let t = tenant.as_str();
        let bodies = menu.items.iter().map(body_of).collect::<Result<Vec<_>>>()?;
        self.write(async || {
        let now = now_ms();
        let version = with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let version = bump!(tx, t);
            if let Some(expected) = expected
                && expected.checked_add(1) != Some(version)
            {
                return Err(MenuEditError::VersionMismatch {
                    expected,
                    current: version - 1,
                });
            }
            query("DELETE FROM menu_items WHERE tenant_id = $1")
                .bind(t)
                .execute(&mut *tx)
                .await?;
            query("DELETE FROM menu_sections WHERE tenant_id = $1")
                .bind(t)
                .execute(&mut *tx)
                .await?;
            for s in &menu.sections {
                query(
                    "INSERT INTO menu_sections (tenant_id, id, name, position) VALUES ($1, $2, $3, $4)",
                )
                .bind(t)
                .bind(&s.id)
                .bind(&s.name)
                .bind(i64::from(s.position))
                .execute(&mut *tx)
                .await?;
            }
            for ((pos, item), body) in menu.items.iter().enumerate().zip(&bodies) {
                query(INSERT_ITEM)
                    .bind(t)
                    .bind(&item.id)
                    .bind(&item.section_id)
                    .bind(i64::try_from(pos).unwrap_or(i64::MAX))
                    .bind(&item.name)
                    .bind(item.price)
                    .bind(item.available)
                    .bind(body)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            version
        });
        Ok(version)
        }).await
    }

    /// The tenant's menu (empty when it has none), sections and items in order.
    pub async fn menu(&self, tenant: &TenantId) -> Result<Arc<Menu>> {
        Ok(self.menu_with_version(tenant).await?.0)
    }

    /// The tenant's menu with its version (0 before any change), read in one
    /// transaction so the two agree.
    ///
    /// Every order reads the menu three times (the agent's turn, the quote, the
    /// confirmation), so a menu is kept in memory per version: since every menu change
    /// bumps the version in its own transaction, a cached menu of the version the
    /// database holds now is exactly what a full read would return — on PostgreSQL
    /// across instances too, as the version is read from the database each time.
    pub async fn menu_with_version(&self, tenant: &TenantId) -> Result<(Arc<Menu>, u64)> {
        let t = tenant.as_str();
        let current: Option<i64> = with_pool!(self, |p| {
            query("SELECT menu_version FROM tenant_pricing WHERE tenant_id = $1")
                .bind(t)
                .fetch_optional(p)
                .await?
                .map(|r| r.try_get("menu_version"))
                .transpose()?
        });
        if let Some(v) = current.filter(|v| *v > 0).map(version_of).transpose()?
            && let Some(menu) = self.menus.get(t, v)
        {
            return Ok((menu, v));
        }
        let (menu, version) = self.read_menu(tenant).await?;
        let menu = Arc::new(menu);
        if version > 0 {
            self.menus.put(t, version, &menu);
        }
        Ok((menu, version))
    }

    /// The menu, the pricing policy and the menu version, for a quote or a
    /// confirmation: one read of the pricing row gives the policy and the version, and
    /// the menu of that version comes from memory when cached (one statement where a
    /// menu read and a policy read took two).
    pub async fn priced_menu(&self, tenant: &TenantId) -> Result<(Arc<Menu>, PricingPolicy, u64)> {
        let (policy, version) = self.pricing_policy(tenant).await?;
        if version > 0
            && let Some(menu) = self.menus.get(tenant.as_str(), version)
        {
            return Ok((menu, policy, version));
        }
        let (menu, read) = self.menu_with_version(tenant).await?;
        if read == version {
            return Ok((menu, policy, version));
        }
        // The menu changed between the two reads: the policy read with the newer
        // version is the one that goes with this menu.
        let (policy, _) = self.pricing_policy(tenant).await?;
        Ok((menu, policy, read))
    }

    async fn read_menu(&self, tenant: &TenantId) -> Result<(Menu, u64)> {
        let t = tenant.as_str();
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let version: Option<i64> =
                query("SELECT menu_version FROM tenant_pricing WHERE tenant_id = $1")
                    .bind(t)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get("menu_version"))
                    .transpose()?;
            let sections = query(
                "SELECT id, name, position FROM menu_sections WHERE tenant_id = $1 ORDER BY position, id",
            )
            .bind(t)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|r| {
                let position: i64 = r.try_get("position")?;
                Ok(Section {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    position: i32::try_from(position)
                        .map_err(|_| StoreError::Corrupt("section position out of range".into()))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            let items = query(&format!(
                "{SELECT_ITEM} WHERE tenant_id = $1 ORDER BY position, id"
            ))
            .bind(t)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|r| Ok(item_row!(r)))
            .collect::<Result<Vec<_>>>()?;
            tx.commit().await?;
            Ok((Menu { sections, items }, version_of(version.unwrap_or(0))?))
        })
    }

    /// One item of the tenant's menu.
    pub async fn menu_item(&self, tenant: &TenantId, id: &str) -> Result<Option<Item>> {
        with_pool!(self, |p| Ok(item_by_id!(p, tenant.as_str(), id)))
    }

    /// Creates or replaces a section (its items stay). Returns whether it was new and
    /// the new menu version.
    pub async fn upsert_menu_section(
        &self,
        tenant: &TenantId,
        section: &Section,
    ) -> Result<(bool, u64), MenuEditError> {
        section.validate()?;
        let t = tenant.as_str();
        self.write(async || {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let version = bump!(tx, t);
            let count: i64 =
                query("SELECT COUNT(*) AS n FROM menu_sections WHERE tenant_id = $1")
                    .bind(t)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
            let updated = query(
                "UPDATE menu_sections SET name = $3, position = $4 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(t)
            .bind(&section.id)
            .bind(&section.name)
            .bind(i64::from(section.position))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let created = updated == 0;
            if created {
                if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_SECTIONS {
                    return Err(MenuError {
                        field: "sections".into(),
                        problem: format!("the menu already has {MAX_SECTIONS} sections"),
                    }
                    .into());
                }
                query(
                    "INSERT INTO menu_sections (tenant_id, id, name, position) VALUES ($1, $2, $3, $4)",
                )
                .bind(t)
                .bind(&section.id)
                .bind(&section.name)
                .bind(i64::from(section.position))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok((created, version))
        })
        }).await
    }

    /// Deletes an empty section; returns the new menu version.
    pub async fn delete_menu_section(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<u64, MenuEditError> {
        let t = tenant.as_str();
        self.write(async || {
            with_pool!(self, |p| {
                let mut tx = p.begin().await?;
                let version = bump!(tx, t);
                let items: i64 = query(
                    "SELECT COUNT(*) AS n FROM menu_items WHERE tenant_id = $1 AND section_id = $2",
                )
                .bind(t)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
                if items > 0 {
                    return Err(MenuEditError::SectionInUse {
                        id: id.into(),
                        items,
                    });
                }
                let gone = query("DELETE FROM menu_sections WHERE tenant_id = $1 AND id = $2")
                    .bind(t)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if gone == 0 {
                    return Err(MenuEditError::NotFound {
                        kind: "section",
                        id: id.into(),
                    });
                }
                tx.commit().await?;
                Ok(version)
            })
        })
        .await
    }

    /// Creates or replaces an item. A new item goes last on the menu; an existing one
    /// keeps its place. Its section must exist.
    pub async fn upsert_menu_item(
        &self,
        tenant: &TenantId,
        item: &Item,
    ) -> Result<ItemChange, MenuEditError> {
        item.validate()?;
        let body = body_of(item)?;
        let t = tenant.as_str();
        self.write(async || {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let version = bump!(tx, t);
            let section =
                query("SELECT 1 AS one FROM menu_sections WHERE tenant_id = $1 AND id = $2")
                    .bind(t)
                    .bind(&item.section_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if section.is_none() {
                return Err(MenuError {
                    field: "sectionId".into(),
                    problem: format!("unknown section '{}'", item.section_id),
                }
                .into());
            }
            let before = item_by_id!(&mut *tx, t, &item.id);
            let now = now_ms();
            if before.is_some() {
                query(
                    "UPDATE menu_items SET section_id = $3, name = $4, price = $5, available = $6, \
                     body = $7, updated_at = $8 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(t)
                .bind(&item.id)
                .bind(&item.section_id)
                .bind(&item.name)
                .bind(item.price)
                .bind(item.available)
                .bind(&body)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            } else {
                let row = query(
                    "SELECT COUNT(*) AS n, COALESCE(MAX(position), -1) AS last FROM menu_items WHERE tenant_id = $1",
                )
                .bind(t)
                .fetch_one(&mut *tx)
                .await?;
                let count: i64 = row.try_get("n")?;
                let last: i64 = row.try_get("last")?;
                if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_ITEMS {
                    return Err(MenuError {
                        field: "items".into(),
                        problem: format!("the menu already has {MAX_ITEMS} items"),
                    }
                    .into());
                }
                query(INSERT_ITEM)
                    .bind(t)
                    .bind(&item.id)
                    .bind(&item.section_id)
                    .bind(last.saturating_add(1))
                    .bind(&item.name)
                    .bind(item.price)
                    .bind(item.available)
                    .bind(&body)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(ItemChange {
                before,
                after: item.clone(),
                version,
            })
        })
        }).await
    }

    /// Deletes an item; returns it as it was and the new menu version.
    pub async fn delete_menu_item(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<(Item, u64), MenuEditError> {
        let t = tenant.as_str();
        self.write(async || {
            with_pool!(self, |p| {
                let mut tx = p.begin().await?;
                let version = bump!(tx, t);
                let before =
                    item_by_id!(&mut *tx, t, id).ok_or_else(|| MenuEditError::NotFound {
                        kind: "item",
                        id: id.into(),
                    })?;
                query("DELETE FROM menu_items WHERE tenant_id = $1 AND id = $2")
                    .bind(t)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok((before, version))
            })
        })
        .await
    }

    /// Marks an item available or not (the "86"). Bumps the version even when the flag
    /// was already so: the caller asked for a change and every quote it races must be
    /// re-checked.
    pub async fn set_menu_item_available(
        &self,
        tenant: &TenantId,
        id: &str,
        available: bool,
    ) -> Result<ItemChange, MenuEditError> {
        let t = tenant.as_str();
        self.write(async || {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let version = bump!(tx, t);
            let before = item_by_id!(&mut *tx, t, id).ok_or_else(|| MenuEditError::NotFound {
                    kind: "item",
                    id: id.into(),
                })?;
            query(
                "UPDATE menu_items SET available = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(t)
            .bind(id)
            .bind(available)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            let mut after = before.clone();
            after.available = available;
            Ok(ItemChange {
                before: Some(before),
                after,
                version,
            })
        })
        }).await
    }
}

/// Menus by tenant, each with the version it was read at (the latest only). A menu is
/// shared, not copied: readers of one version get the same `Arc`, so what is derived
/// from a menu (the offline agent's word index) can be kept per menu as well.
#[derive(Debug, Default)]
pub(crate) struct MenuCache(std::sync::Mutex<std::collections::HashMap<String, (u64, Arc<Menu>)>>);

impl MenuCache {
    fn get(&self, tenant: &str, version: u64) -> Option<Arc<Menu>> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(tenant)
            .filter(|(v, _)| *v == version)
            .map(|(_, m)| m.clone())
    }

    fn put(&self, tenant: &str, version: u64, menu: &Arc<Menu>) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(tenant) {
            // A slower reader must not replace a newer menu with its older one.
            Some((v, _)) if *v > version => {}
            _ => {
                map.insert(tenant.to_string(), (version, Arc::clone(menu)));
            }
        }
    }
}
