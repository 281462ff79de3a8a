//! What the store's test files share: a migrated store of either backend holding the
//! two demo tenants, and the macro that runs each test once per backend.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use stonepot_domain::{TenantId, demo};
use stonepot_store::{Backend, Store, testing};

/// A migrated store of the given backend with the two demo tenants: `a` (the
/// restaurant) and `b` (the financial desk).
pub struct Fixture {
    pub store: Store,
    _dir: tempfile::TempDir,
    pg_url: Option<String>,
    pub a: TenantId,
    pub b: TenantId,
}

impl Fixture {
    /// `name` names the SQLite file and the throwaway PostgreSQL database.
    pub async fn new(backend: Backend, name: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg_url) = match backend {
            Backend::Sqlite => (
                format!(
                    "sqlite://{}",
                    dir.path().join(format!("{name}.db")).display()
                ),
                None,
            ),
            Backend::Postgres => {
                let url = testing::fresh_postgres_url(name)
                    .await
                    .expect("PostgreSQL is required for the store tests");
                (url.clone(), Some(url))
            }
        };
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        assert_eq!(store.backend(), backend);
        let (ta, tb) = (demo::restaurant_tenant(), demo::finance_tenant());
        store.upsert_tenant(&ta).await.unwrap();
        store.upsert_tenant(&tb).await.unwrap();
        Fixture {
            store,
            _dir: dir,
            pg_url,
            a: ta.id,
            b: tb.id,
        }
    }

    /// Closes the store and drops the PostgreSQL database.
    pub async fn done(self) {
        self.store.close().await;
        if let Some(url) = self.pg_url {
            testing::drop_postgres_database(&url).await.unwrap();
        }
    }
}

/// Runs each named `async fn(Backend)` once on SQLite and once on PostgreSQL.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
              async fn $name() { super::$name(stonepot_store::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
              async fn $name() { super::$name(stonepot_store::Backend::Postgres).await })*
        }
    };
}
