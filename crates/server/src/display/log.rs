//! The session log: the one interface through which display updates are appended, read
//! from a seq and subscribed to. [`LocalLog`] is the single-machine implementation (the
//! SQLite/PostgreSQL store for durability plus an in-process broadcast for fan-out); a
//! NATS JetStream implementation slots in behind the same trait for scale-out.
//!
//! The contract, which every implementation keeps:
//! - `append` assigns `expected + 1` or fails with [`LogError::Conflict`] when the session
//!   has moved on (another writer won); it returns only after the entry is durable.
//! - Subscribers receive committed entries in seq order, but may miss some (a slow
//!   subscriber, a reconnect): they detect the gap by seq and fill it with `read_after`.
//! - `read_after` returns retained entries in order; entries older than the retention
//!   window are gone, which `oldest` reveals so the reader can reset.

use super::hub::{Frame, Utf8Bytes};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use stonepot_domain::TenantId;
use stonepot_store::{Store, StoreError};
use tokio::sync::broadcast;

/// One committed log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    /// The update envelope as JSON text.
    pub envelope: String,
    /// Commit time, Unix milliseconds.
    pub at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("the session moved past the expected seq")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log's backend (NATS) cannot be reached: nothing was committed by this call,
    /// the write is refused and may be retried.
    #[error("{0}")]
    Unavailable(String),
}

/// How a log answered reads since start-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Reads that went to the backend through a consumer of their own (JetStream).
    pub backend_readers: u64,
    /// Reads answered from the entries held in memory.
    pub recent_hits: u64,
}

/// The update frame every subscriber receives for an entry, built once.
pub fn update_frame(seq: u64, envelope: &str) -> Frame {
    Frame {
        seq: Some(seq),
        event: "update",
        text: Utf8Bytes::from(format!(
            "{{\"seq\":{seq},\"type\":\"update\",\"update\":{envelope}}}"
        )),
    }
}

#[async_trait]
pub trait SessionLog: Send + Sync + 'static {
    /// Appends `envelope` as `expected + 1` once durable; publishes it to subscribers.
    async fn append(
        &self,
        session: &str,
        tenant: &TenantId,
        expected: u64,
        envelope: &str,
    ) -> Result<u64, LogError>;
    /// Appends `envelopes` as `expected + 1 ..= expected + n` and returns the last seq.
    /// This default appends them one by one, so a failure may leave a prefix appended
    /// (the caller reloads the session after any error); [`LocalLog`] writes them in one
    /// transaction, all or none, at the cost of one commit.
    async fn append_all(
        &self,
        session: &str,
        tenant: &TenantId,
        expected: u64,
        envelopes: &[String],
    ) -> Result<u64, LogError> {
        let mut seq = expected;
        for e in envelopes {
            seq = self.append(session, tenant, seq, e).await?;
        }
        Ok(seq)
    }
    /// Retained entries with `seq > after`, in order, at most `limit`.
    async fn read_after(
        &self,
        session: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Entry>, LogError>;
    /// What a subscriber of this process that has seen up to `after` and then fell behind
    /// its channel may have missed, as frames: at least every update published to the
    /// channel after `after` (those not yet published arrive on the channel). This
    /// default reads the log; logs that remember what they published answer from memory.
    async fn missed(&self, session: &str, after: u64, limit: u32) -> Result<Vec<Frame>, LogError> {
        Ok(self
            .read_after(session, after, limit)
            .await?
            .iter()
            .map(|e| update_frame(e.seq, &e.envelope))
            .collect())
    }
    /// How reads were answered, for `/metrics`.
    fn read_stats(&self) -> ReadStats {
        ReadStats::default()
    }
    /// The last `n` entries, oldest first.
    async fn read_last(&self, session: &str, n: u32) -> Result<Vec<Entry>, LogError>;
    /// The oldest retained seq (None when nothing is retained).
    async fn oldest(&self, session: &str) -> Result<Option<u64>, LogError>;
    /// Committed entries (and ephemeral frames) of a session from now on.
    fn subscribe(&self, session: &str) -> broadcast::Receiver<Frame>;
    /// Sends a frame that is not part of the log (presence) to current subscribers.
    fn publish_ephemeral(&self, session: &str, frame: Frame);
    /// Forgets fan-out state of sessions nobody subscribes to.
    fn prune(&self);
    /// The highest seq of `session` this process has seen committed by any writer, when
    /// other processes may write it; lets the hub notice that its resident copy is stale.
    fn head(&self, _session: &str) -> Option<u64> {
        None
    }
    /// Whether the log lives outside the store (other processes append to it), so a
    /// session loaded from the store must be brought up to date from the log.
    fn replicated(&self) -> bool {
        false
    }
    /// Applies to the store's materialized state every entry logged past `at` (entries a
    /// writer committed to the log but could not write to the store); returns how many.
    async fn catch_up(
        &self,
        _session: &str,
        _tenant: &TenantId,
        _at: u64,
    ) -> Result<usize, LogError> {
        Ok(0)
    }
}

/// This process's subscribers: one broadcast channel per session that has any, shared
/// by every log implementation.
pub(super) struct Fanout {
    capacity: usize,
    senders: Mutex<HashMap<String, broadcast::Sender<Frame>>>,
}

impl Fanout {
    pub(super) fn new(capacity: usize) -> Fanout {
        Fanout {
            capacity,
            senders: Mutex::new(HashMap::new()),
        }
    }

    /// The session's channel, when anyone here subscribes to it.
    pub(super) fn sender_if_any(&self, session: &str) -> Option<broadcast::Sender<Frame>> {
        self.senders.lock().ok()?.get(session).cloned()
    }

    pub(super) fn subscribe(&self, session: &str) -> broadcast::Receiver<Frame> {
        let mut senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        senders
            .entry(session.to_string())
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    /// Drops the channels nobody listens to.
    pub(super) fn prune(&self) {
        if let Ok(mut senders) = self.senders.lock() {
            senders.retain(|_, tx| tx.receiver_count() > 0);
        }
    }
}

/// The store plus in-process broadcast.
pub struct LocalLog {
    store: Store,
    retain: u64,
    fanout: Fanout,
}

impl LocalLog {
    pub fn new(store: Store, retain: u64, capacity: usize) -> LocalLog {
        LocalLog {
            store,
            retain,
            fanout: Fanout::new(capacity),
        }
    }

    fn sender_if_any(&self, session: &str) -> Option<broadcast::Sender<Frame>> {
        self.fanout.sender_if_any(session)
    }
}

pub(crate) fn entry(u: stonepot_store::UpdateRecord) -> Entry {
    Entry {
        seq: u.seq,
        envelope: u.body,
        at_ms: u.created_at,
    }
}

#[async_trait]
impl SessionLog for LocalLog {
    async fn append(
        &self,
        session: &str,
        tenant: &TenantId,
        expected: u64,
        envelope: &str,
    ) -> Result<u64, LogError> {
        let seq = match self
            .store
            .append_display_update(session, tenant, expected, envelope, self.retain)
            .await
        {
            Ok(seq) => seq,
            Err(StoreError::Conflict(_)) => return Err(LogError::Conflict),
            Err(e) => return Err(e.into()),
        };
        // The caller holds the session's lock, so frames go out in seq order.
        if let Some(tx) = self.sender_if_any(session) {
            let _fan_out =
                tracing::info_span!("fan_out", session, seq, sockets = tx.receiver_count())
                    .entered();
            let _ = tx.send(update_frame(seq, envelope));
        }
        Ok(seq)
    }

    async fn append_all(
        &self,
        session: &str,
        tenant: &TenantId,
        expected: u64,
        envelopes: &[String],
    ) -> Result<u64, LogError> {
        let bodies: Vec<&str> = envelopes.iter().map(String::as_str).collect();
        let last = match self
            .store
            .append_display_updates(session, tenant, expected, &bodies, self.retain)
            .await
        {
            Ok(seq) => seq,
            Err(StoreError::Conflict(_)) => return Err(LogError::Conflict),
            Err(e) => return Err(e.into()),
        };
        if let Some(tx) = self.sender_if_any(session) {
            let _fan_out = tracing::info_span!(
                "fan_out",
                session,
                seq = last,
                sockets = tx.receiver_count()
            )
            .entered();
            for (seq, envelope) in (expected + 1..=last).zip(envelopes) {
                let _ = tx.send(update_frame(seq, envelope));
            }
        }
        Ok(last)
    }

    async fn read_after(
        &self,
        session: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Entry>, LogError> {
        Ok(self
            .store
            .display_updates_after(session, after, limit)
            .await?
            .into_iter()
            .map(entry)
            .collect())
    }

    async fn read_last(&self, session: &str, n: u32) -> Result<Vec<Entry>, LogError> {
        Ok(self
            .store
            .display_updates_last(session, n)
            .await?
            .into_iter()
            .map(entry)
            .collect())
    }

    async fn oldest(&self, session: &str) -> Result<Option<u64>, LogError> {
        Ok(self.store.display_oldest_seq(session).await?)
    }

    fn subscribe(&self, session: &str) -> broadcast::Receiver<Frame> {
        self.fanout.subscribe(session)
    }

    fn publish_ephemeral(&self, session: &str, frame: Frame) {
        if let Some(tx) = self.sender_if_any(session) {
            let _ = tx.send(frame);
        }
    }

    fn prune(&self) {
        self.fanout.prune();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stonepot_domain::demo;

    #[tokio::test]
    async fn local_log_keeps_the_contract() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let t = demo::restaurant_tenant();
        store.upsert_tenant(&t).await.unwrap();
        store
            .create_display_session("s", &t.id, t.category, "{}")
            .await
            .unwrap();
        let log = LocalLog::new(store, 5, 16);
        let mut rx = log.subscribe("s");
        let env = |n: u64| {
            format!("{{\"data\":{{\"text\":\"{n}\"}},\"key\":\"k\",\"type\":\"message\"}}")
        };
        for n in 1..=12 {
            assert_eq!(log.append("s", &t.id, n - 1, &env(n)).await.unwrap(), n);
        }
        // A stale writer is refused, never forks the log.
        assert!(matches!(
            log.append("s", &t.id, 3, &env(99)).await,
            Err(LogError::Conflict)
        ));
        // Subscribers see committed entries in order, as ready-made frames.
        for n in 1..=12u64 {
            let f = rx.recv().await.unwrap();
            assert_eq!(f.seq, Some(n));
            let v: serde_json::Value = serde_json::from_str(f.text.as_str()).unwrap();
            assert_eq!(v["update"]["data"]["text"], n.to_string());
        }
        // Retention: old entries go, `oldest` says where the log starts.
        let oldest = log.oldest("s").await.unwrap().unwrap();
        assert!(oldest > 1, "trimmed: oldest {oldest}");
        let after = log.read_after("s", 9, 100).await.unwrap();
        assert_eq!(
            after.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [10, 11, 12]
        );
        assert_eq!(log.read_last("s", 1).await.unwrap()[0].seq, 12);
        // Ephemeral frames reach subscribers but not the log.
        log.publish_ephemeral(
            "s",
            Frame {
                seq: None,
                event: "presence",
                text: Utf8Bytes::from_static("{}"),
            },
        );
        assert_eq!(rx.recv().await.unwrap().seq, None);
        assert_eq!(log.read_last("s", 1).await.unwrap()[0].seq, 12);
        drop(rx);
        log.prune();
        assert!(log.sender_if_any("s").is_none());
    }
}
