//! Durable state behind one interface: SQLite by default, PostgreSQL for scale-out.
//!
//! Both backends share the SQL text (numbered `$N` parameters work in both) and differ
//! only in their migrations and connection setup. Every query on tenant-owned data names
//! the tenant.

mod backup;
mod closes;
mod commerce;
mod conversations;
mod display;
mod durable;
mod finance;
mod kitchen;
mod lite;
mod menu;
mod payments;
mod pool;
mod tenants;
#[cfg(feature = "testing")]
pub mod testing;

pub use backup::{BackupError, BackupReport};
pub use closes::{CloseRecord, CloseRevision, CloseSaved, NewClose};
pub use commerce::{IDEMPOTENCY_TTL_MS, IdempotencyRecord, OrderCreated, StoredQuote};
pub use conversations::{ConversationRecord, ToolCallRow, TurnRow};
pub use display::{ComponentChange, ComponentRecord, Created, SessionRecord, UpdateRecord};
pub use kitchen::{Receipt, Ticket};
pub use menu::{ItemChange, MenuEditError};
pub use payments::{
    CheckoutSessionRecord, NewRefund, PaymentAction, PaymentEventInput, PaymentEventRecord,
    PaymentOutcome, PaymentRecorded, RefundRecord, SessionUpdate,
};
pub use pool::{Backend, Store, sqlite_file};
pub use tenants::{ApiKeyInfo, KEY_ID_LEN, hash_api_key};

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid database url: {0}")]
    BadUrl(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// Whether the database could not be reached (connection refused or lost, no pooled
    /// connection in time): the operation did not happen and may be retried later, so
    /// the HTTP layer answers 503 rather than 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Db(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            )
        ) || matches!(self, StoreError::Db(sqlx::Error::Database(e)) if e.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Row counts for `/api/session/stats` and the smoke check.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub tenants: i64,
    pub menu_items: i64,
    pub api_keys: i64,
}

/// Milliseconds since the Unix epoch, the store's time unit.
pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Runs `$body` with `$p` bound to whichever concrete pool the store has, so one piece
/// of SQL code serves both backends with full static typing. In `$body`, `query` is
/// the backend's statement builder: sqlx's for PostgreSQL, [`lite::query`] (same shape,
/// SQLite on the calling thread) for SQLite.
macro_rules! with_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            $crate::pool::AnyPool::Sqlite($p) => {
                #[allow(unused_imports)]
                use $crate::lite::query;
                let $p: &$crate::lite::SqliteConns = $p;
                $body
            }
            $crate::pool::AnyPool::Postgres($p) => {
                #[allow(unused_imports)]
                use sqlx::query;
                $body
            }
        }
    };
}
pub(crate) use with_pool;
