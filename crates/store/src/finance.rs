//! The financial desk's sample book: clients, accounts, transactions and products.

use crate::{Result, Store, with_pool};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use stonepot_domain::TenantId;
use stonepot_domain::finance::Book;

const KINDS: [&str; 4] = ["client", "account", "transaction", "product"];

fn rows<T: Serialize>(
    kind: &'static str,
    list: &[T],
    id: impl Fn(&T) -> &str,
    parent: impl Fn(&T) -> &str,
) -> Result<Vec<(&'static str, String, String, String)>> {
    list.iter()
        .map(|x| {
            Ok((
                kind,
                id(x).to_string(),
                parent(x).to_string(),
                serde_json::to_string(x)?,
            ))
        })
        .collect()
}

fn parse<T: DeserializeOwned>(bodies: &[(String, String)], kind: &str) -> Result<Vec<T>> {
    bodies
        .iter()
        .filter(|(k, _)| k == kind)
        .map(|(_, b)| Ok(serde_json::from_str(b)?))
        .collect()
}

impl Store {
    /// Replaces the tenant's whole book in one transaction.
    pub async fn replace_book(&self, tenant: &TenantId, book: &Book) -> Result<()> {
        self.write(async || {
            let mut all = rows("client", &book.clients, |c| &c.id, |_| "")?;
            all.extend(rows(
                "account",
                &book.accounts,
                |a| &a.id,
                |a| &a.client_id,
            )?);
            all.extend(rows(
                "transaction",
                &book.transactions,
                |t| &t.id,
                |t| &t.account_id,
            )?);
            all.extend(rows("product", &book.products, |p| &p.id, |_| "")?);
            let t = tenant.as_str();
            with_pool!(self, |p| {
                let mut tx = p.begin().await?;
                query("DELETE FROM fin_records WHERE tenant_id = $1")
                    .bind(t)
                    .execute(&mut *tx)
                    .await?;
                for (pos, (kind, id, parent, body)) in all.iter().enumerate() {
                    query(
                        "INSERT INTO fin_records (tenant_id, kind, id, parent_id, position, body) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(t)
                    .bind(*kind)
                    .bind(id)
                    .bind(parent)
                    .bind(i64::try_from(pos).unwrap_or(i64::MAX))
                    .bind(body)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            });
            Ok(())
        })
        .await
    }

    /// The tenant's book (empty when it has none).
    pub async fn book(&self, tenant: &TenantId) -> Result<Book> {
        let bodies: Vec<(String, String)> = with_pool!(self, |p| {
            query("SELECT kind, body FROM fin_records WHERE tenant_id = $1 ORDER BY position")
                .bind(tenant.as_str())
                .fetch_all(p)
                .await?
                .into_iter()
                .map(|r| Ok((r.try_get("kind")?, r.try_get("body")?)))
                .collect::<Result<_>>()?
        });
        debug_assert!(bodies.iter().all(|(k, _)| KINDS.contains(&k.as_str())));
        Ok(Book {
            clients: parse(&bodies, "client")?,
            accounts: parse(&bodies, "account")?,
            transactions: parse(&bodies, "transaction")?,
            products: parse(&bodies, "product")?,
        })
    }
}
