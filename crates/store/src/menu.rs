//! Menus: sections and items per tenant. Scalar fields that queries filter on are
//! columns; the rest of an item (tags, aliases, modifier groups) is a JSON body.

use crate::{Result, Store, StoreError, now_ms, with_pool};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use stonepot_domain::TenantId;
use stonepot_domain::menu::{Item, Menu, ModifierGroup, Section};

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

impl Store {
    /// Replaces the tenant's whole menu in one transaction.
    pub async fn replace_menu(&self, tenant: &TenantId, menu: &Menu) -> Result<()> {
        let _write = self.write_guard().await;
        menu.validate()
            .map_err(|e| StoreError::Corrupt(format!("menu rejected: {e}")))?;
        let now = now_ms();
        let t = tenant.as_str();
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM menu_items WHERE tenant_id = $1")
                .bind(t)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM menu_sections WHERE tenant_id = $1")
                .bind(t)
                .execute(&mut *tx)
                .await?;
            for s in &menu.sections {
                sqlx::query(
                    "INSERT INTO menu_sections (tenant_id, id, name, position) VALUES ($1, $2, $3, $4)",
                )
                .bind(t)
                .bind(&s.id)
                .bind(&s.name)
                .bind(i64::from(s.position))
                .execute(&mut *tx)
                .await?;
            }
            for (pos, item) in menu.items.iter().enumerate() {
                let body = serde_json::to_string(&ItemBody {
                    description: item.description.clone(),
                    dietary: item.dietary.clone(),
                    allergens: item.allergens.clone(),
                    aliases: item.aliases.clone(),
                    image_url: item.image_url.clone(),
                    modifier_groups: item.modifier_groups.clone(),
                })?;
                sqlx::query(
                    "INSERT INTO menu_items (tenant_id, id, section_id, position, name, price, available, body, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
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
        });
        Ok(())
    }

    /// The tenant's menu (empty when it has none), sections and items in order.
    pub async fn menu(&self, tenant: &TenantId) -> Result<Menu> {
        let t = tenant.as_str();
        with_pool!(self, |p| {
            let sections = sqlx::query(
                "SELECT id, name, position FROM menu_sections WHERE tenant_id = $1 ORDER BY position, id",
            )
            .bind(t)
            .fetch_all(p)
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
            let items = sqlx::query(
                "SELECT id, section_id, name, price, available, body FROM menu_items \
                 WHERE tenant_id = $1 ORDER BY position, id",
            )
            .bind(t)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                let b: ItemBody = serde_json::from_str(&body)?;
                Ok(Item {
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
                })
            })
            .collect::<Result<Vec<_>>>()?;
            Ok(Menu { sections, items })
        })
    }
}
