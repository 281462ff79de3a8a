//! Displays connected across instances: each instance writes the displays it holds for a
//! session into one JetStream key-value entry per session (compare-and-set, so instances
//! never overwrite each other's displays), refreshes them on a heartbeat, and readers
//! ignore entries whose instance stopped refreshing (it crashed). `/state` lists them,
//! with each display's receipt (`ackedSeq`), whichever instance it is connected to.

use super::hub::DisplayInfo;
use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

/// How often an instance re-writes the displays it holds.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Entries not refreshed for this long belong to a dead instance.
const STALE_MS: i64 = 45_000;
const CAS_ATTEMPTS: usize = 16;

/// One display as other instances see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SharedDisplay {
    pub id: u64,
    pub kind: String,
    pub connected_at: String,
    pub acked_seq: Option<u64>,
    pub instance: String,
    /// When its instance last confirmed it, Unix ms.
    pub seen_ms: i64,
}

pub struct SharedDisplays {
    /// Checked first, so that while NATS is away callers learn it at once.
    client: async_nats::Client,
    bucket: kv::Store,
    instance: String,
    dirty: Mutex<HashSet<String>>,
    pub wake: tokio::sync::Notify,
}

fn key(session: &str) -> String {
    hex::encode(session.as_bytes())
}

impl SharedDisplays {
    pub async fn open(
        client: async_nats::Client,
        js: &async_nats::jetstream::Context,
        stream: &str,
        replicas: usize,
    ) -> anyhow::Result<SharedDisplays> {
        let bucket = crate::bus::open_bucket(
            js,
            &format!("{stream}_DISPLAYS"),
            "Stonepot displays connected to each session, per instance",
            Duration::from_secs(3600),
            replicas,
        )
        .await?;
        Ok(SharedDisplays {
            client,
            bucket,
            instance: format!("i{}", uuid::Uuid::new_v4().simple()),
            dirty: Mutex::new(HashSet::new()),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Notes that this instance's displays of `session` changed; `now` flushes at once
    /// (joins and leaves), otherwise with the next tick (receipts).
    pub fn mark(&self, session: &str, now: bool) {
        if let Ok(mut d) = self.dirty.lock() {
            d.insert(session.to_string());
        }
        if now {
            self.wake.notify_one();
        }
    }

    /// Sessions marked since the last call.
    pub fn take_dirty(&self) -> Vec<String> {
        self.dirty
            .lock()
            .map(|mut d| d.drain().collect())
            .unwrap_or_default()
    }

    /// Replaces this instance's displays of `session` with `mine`; returns every fresh
    /// display of the session afterwards.
    pub async fn write(
        &self,
        session: &str,
        mine: &[DisplayInfo],
    ) -> Result<Vec<SharedDisplay>, String> {
        crate::bus::connected(&self.client)?;
        let k = key(session);
        let now = jiff::Timestamp::now().as_millisecond();
        for _ in 0..CAS_ATTEMPTS {
            let entry = self
                .bucket
                .entry(k.clone())
                .await
                .map_err(|e| e.to_string())?;
            let (mut all, revision) = match &entry {
                Some(e) if e.operation == kv::Operation::Put => (
                    serde_json::from_slice::<Vec<SharedDisplay>>(&e.value).unwrap_or_default(),
                    Some(e.revision),
                ),
                Some(e) => (Vec::new(), Some(e.revision)),
                None => (Vec::new(), None),
            };
            all.retain(|d| d.instance != self.instance && now - d.seen_ms < STALE_MS);
            all.extend(mine.iter().map(|d| SharedDisplay {
                id: d.id,
                kind: d.kind.to_string(),
                connected_at: d.connected_at.clone(),
                acked_seq: d.acked_seq,
                instance: self.instance.clone(),
                seen_ms: now,
            }));
            all.sort_by_key(|d| d.id);
            let body = serde_json::to_vec(&all).map_err(|e| e.to_string())?;
            let done = match revision {
                Some(r) => self.bucket.update(&k, body.into(), r).await.is_ok(),
                None => self.bucket.create(&k, body.into()).await.is_ok(),
            };
            if done {
                return Ok(all);
            }
        }
        Err(format!("displays of {session} kept changing"))
    }

    /// Every fresh display of `session`, on any instance.
    pub async fn list(&self, session: &str) -> Result<Vec<SharedDisplay>, String> {
        crate::bus::connected(&self.client)?;
        let now = jiff::Timestamp::now().as_millisecond();
        let Some(v) = self
            .bucket
            .get(key(session))
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(Vec::new());
        };
        let mut all: Vec<SharedDisplay> = serde_json::from_slice(&v).unwrap_or_default();
        all.retain(|d| now - d.seen_ms < STALE_MS);
        Ok(all)
    }
}

/// Presence frames waiting for the shared list (their `count` covers every instance).
#[derive(Default)]
pub struct PendingPresence(pub Mutex<HashMap<String, Vec<(String, u64)>>>);
