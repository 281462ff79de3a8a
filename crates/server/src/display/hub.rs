//! The display hub: one single-owner session at a time per conversation, a totally
//! ordered durable log, and in-process fan-out to display sockets.
//!
//! A command (init, update) locks the session, validates, commits the update to the store
//! with the next `seq`, applies it to the in-memory state, and publishes the pre-serialized
//! frame while still holding the lock, so every subscriber sees updates in `seq` order.
//! Readers (sockets, SSE, `/state`) only read the log and the state. Sessions idle for
//! `idle` leave memory ("hibernate"); their fan-out channels stay while sockets are open,
//! and the next command rebuilds the session from the store.

use super::log::{LocalLog, LogError, SessionLog};
use super::presence::{PendingPresence, SharedDisplays};
use envelope::state_json;

mod batch;
mod envelope;
mod shared;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stonepot_domain::{Category, Currency, TenantId};
use stonepot_store::{Created, SessionRecord, Store, StoreError};
use tokio::sync::{broadcast, oneshot};
use tracing::Instrument;

pub use axum::extract::ws::Utf8Bytes;

/// One frame on a session's fan-out channel, serialized once for every socket.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The update's seq; None for presence frames.
    pub seq: Option<u64>,
    /// SSE event name: `update` or `presence`.
    pub event: &'static str,
    pub text: Utf8Bytes,
}

/// A display connected to a session.
#[derive(Debug, Clone)]
pub struct DisplayInfo {
    pub id: u64,
    pub kind: &'static str,
    pub connected_at: String,
    pub acked_seq: Option<u64>,
}

/// The displays connected to a session; outlives hibernation while sockets are open.
#[derive(Default)]
pub struct Channel {
    displays: Mutex<HashMap<u64, DisplayInfo>>,
    /// The session's tenant, set once its first subscriber has read the snapshot; lets
    /// [`Hub::open_sessions`] find a tenant's open displays without loading sessions.
    tenant: std::sync::OnceLock<TenantId>,
}

/// The in-memory state of a resident session.
pub struct Loaded {
    pub rec: SessionRecord,
    pub currency: Currency,
    /// Current components by key: (seq that set it, the update envelope).
    pub components: BTreeMap<String, (u64, Value)>,
}

/// An update and the id of the trace it was sent under (when traces are exported),
/// which its envelope carries as `traceId`.
pub(crate) type Traced = (UpdateCommand, Option<String>);

/// Where a queued update's outcome goes.
type Waiter = oneshot::Sender<Result<u64, HubError>>;

struct Cell {
    state: tokio::sync::Mutex<Option<Loaded>>,
    last_used_ms: AtomicI64,
    /// Updates waiting for the lock (each with the trace it was sent under), with where
    /// to send each one's outcome.
    pending: Mutex<Vec<(Traced, Waiter)>>,
}

/// Hub settings.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Updates kept resumable per session.
    pub retain: u64,
    /// Idle time before a session leaves memory.
    pub idle: Duration,
    /// Frames buffered per subscriber before it must catch up from the store.
    pub channel_capacity: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            retain: 1000,
            idle: Duration::from_secs(10),
            channel_capacity: 256,
        }
    }
}

/// Why a hub command failed.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("no session '{0}'")]
    NotFound(String),
    #[error("session '{0}' has not been initialized; POST /conversation/{0}/init first")]
    NotInitialized(String),
    #[error("session '{id}' belongs to tenant '{tenant}'")]
    OtherTenant { id: String, tenant: String },
    #[error("no tenant '{0}'")]
    UnknownTenant(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Other writers kept winning the race for the session's next seq.
    #[error("session '{0}' is being written by other instances at the same time; retry")]
    Busy(String),
    /// A dependency (the log's NATS) cannot be reached; nothing was committed.
    #[error("{0}")]
    Unavailable(String),
}

impl From<LogError> for HubError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Store(s) => HubError::Store(s),
            LogError::Unavailable(m) => HubError::Unavailable(m),
            LogError::Conflict => {
                HubError::Invalid("seq: the session is being written elsewhere; retry".into())
            }
        }
    }
}

/// What an update asks for, already parsed from its body.
#[derive(Debug, Clone)]
pub enum UpdateCommand {
    Put {
        kind: String,
        data: Value,
        key: Option<String>,
    },
    Remove {
        key: String,
    },
}

impl From<stonepot_agent::DisplayOp> for UpdateCommand {
    fn from(op: stonepot_agent::DisplayOp) -> Self {
        match op {
            stonepot_agent::DisplayOp::Put { kind, key, data } => {
                UpdateCommand::Put { kind, data, key }
            }
            stonepot_agent::DisplayOp::Remove { key } => UpdateCommand::Remove { key },
        }
    }
}

pub struct Hub {
    store: Store,
    log: Arc<dyn SessionLog>,
    config: HubConfig,
    cells: Mutex<HashMap<String, Arc<Cell>>>,
    channels: Mutex<HashMap<String, Arc<Channel>>>,
    next_display: AtomicU64,
    pub sockets: AtomicI64,
    /// Times a subscriber fell behind its channel (lagged, or saw a gap) and caught up
    /// from the log.
    pub catch_ups: AtomicU64,
    /// Displays across instances (with NATS); None keeps presence in this process.
    shared: Option<Arc<SharedDisplays>>,
    /// Join/leave frames held until the shared list is written, so their count is the
    /// count over every instance.
    pending: PendingPresence,
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Times an append that lost the race for the next seq is retried on the fresh state.
const CONFLICT_RETRIES: u32 = 8;

/// Kinds with one instance per session: an update replaces the previous one by default.
pub(super) fn singleton(kind: &str) -> bool {
    matches!(kind, "cart" | "order_summary" | "quote" | "order_status")
}

impl Hub {
    pub fn new(store: Store, config: HubConfig) -> Arc<Hub> {
        let log = Arc::new(LocalLog::new(
            store.clone(),
            config.retain,
            config.channel_capacity,
        ));
        Hub::with_log(store, config, log, None)
    }

    /// A hub over another session log (JetStream when running many instances), with the
    /// displays of every instance in `shared`.
    pub fn with_log(
        store: Store,
        config: HubConfig,
        log: Arc<dyn SessionLog>,
        shared: Option<Arc<SharedDisplays>>,
    ) -> Arc<Hub> {
        // Display ids name a display across instances too: start each process at a
        // random point (below 2^52, exact in JavaScript) instead of 1.
        let first = if shared.is_some() {
            rand::random_range(1u64..(1 << 40)) << 12
        } else {
            1
        };
        Arc::new(Hub {
            shared,
            pending: PendingPresence::default(),
            store,
            log,
            config,
            cells: Mutex::new(HashMap::new()),
            channels: Mutex::new(HashMap::new()),
            next_display: AtomicU64::new(first),
            sockets: AtomicI64::new(0),
            catch_ups: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The session log updates go through.
    pub fn log(&self) -> &Arc<dyn SessionLog> {
        &self.log
    }

    /// Sessions currently in memory.
    pub fn resident(&self) -> usize {
        self.cells.lock().map(|c| c.len()).unwrap_or(0)
    }

    fn cell(&self, id: &str) -> Arc<Cell> {
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        let cell = cells
            .entry(id.to_string())
            .or_insert_with(|| {
                Arc::new(Cell {
                    state: tokio::sync::Mutex::new(None),
                    last_used_ms: AtomicI64::new(now_ms()),
                    pending: Mutex::new(Vec::new()),
                })
            })
            .clone();
        cell.last_used_ms.store(now_ms(), Ordering::Relaxed);
        cell
    }

    async fn load(&self, id: &str) -> Result<Option<Loaded>, HubError> {
        let Some(mut rec) = self.store.display_session(id).await? else {
            return Ok(None);
        };
        if self.log.replicated() {
            // Another process may have committed entries to the log that the store has
            // not materialized yet (it failed between the two writes): apply them first.
            // Without the bus the store's state is served as it is; a write then fails
            // with 503 and the next load after the bus returns catches up.
            match self.log.catch_up(id, &rec.tenant_id, rec.seq).await {
                Ok(0) => {}
                Ok(_) => {
                    rec = self
                        .store
                        .display_session(id)
                        .await?
                        .ok_or_else(|| HubError::NotFound(id.into()))?;
                }
                Err(LogError::Unavailable(e)) => {
                    tracing::warn!(session = id, error = %e, "serving the stored state without the log");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let tenant = self
            .store
            .tenant(&rec.tenant_id)
            .await?
            .ok_or_else(|| HubError::UnknownTenant(rec.tenant_id.to_string()))?;
        let mut components = BTreeMap::new();
        for c in self.store.display_components(id).await? {
            let v: Value = serde_json::from_str(&c.body).map_err(StoreError::from)?;
            components.insert(c.key, (c.seq, v));
        }
        Ok(Some(Loaded {
            rec,
            currency: tenant.currency,
            components,
        }))
    }

    /// Runs `f` with the session's state locked (loading it from the store if needed).
    async fn with_session<T>(
        &self,
        id: &str,
        f: impl AsyncFnOnce(&mut Option<Loaded>) -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        let cell = self.cell(id);
        let mut guard = cell.state.lock().await;
        // Another instance appended since this copy was loaded: reload it.
        let stale = match (&*guard, self.log.head(id)) {
            (Some(l), Some(head)) => head > l.rec.seq,
            _ => false,
        };
        if guard.is_none() || stale {
            *guard = self.load(id).await?;
        }
        let out = f(&mut guard).await;
        cell.last_used_ms.store(now_ms(), Ordering::Relaxed);
        out
    }

    /// Creates the session, or returns the existing one when it belongs to `tenant`.
    pub async fn init(
        &self,
        id: &str,
        tenant: &TenantId,
        category: Category,
        init: &Value,
    ) -> Result<(SessionRecord, bool), HubError> {
        let body = serde_json::to_string(init).map_err(StoreError::from)?;
        let created = self
            .store
            .create_display_session(id, tenant, category, &body)
            .await?;
        let (rec, new) = match created {
            Created::New(r) => (r, true),
            Created::Existing(r) => (r, false),
        };
        if &rec.tenant_id != tenant {
            return Err(HubError::OtherTenant {
                id: id.into(),
                tenant: rec.tenant_id.to_string(),
            });
        }
        if new {
            // A session just created here has no components and is at seq 0: keep it
            // in memory now rather than read it back on its first update. (An append
            // from another instance moves the log's head past 0, which reloads it.)
            if let Some(t) = self.store.tenant(tenant).await? {
                let cell = self.cell(id);
                let mut state = cell.state.lock().await;
                if state.is_none() {
                    *state = Some(Loaded {
                        rec: rec.clone(),
                        currency: t.currency,
                        components: BTreeMap::new(),
                    });
                }
            }
        }
        Ok((rec, new))
    }

    /// The tenant a session belongs to (loading it if needed).
    pub async fn tenant_of(&self, id: &str) -> Result<Option<TenantId>, HubError> {
        self.with_session(id, async |s| {
            Ok(s.as_ref().map(|l| l.rec.tenant_id.clone()))
        })
        .await
    }

    /// Validates and commits one update; returns its seq.
    ///
    /// Updates arriving while the session is locked queue up and are appended together
    /// by whichever task takes the lock next (see [`super::batch`]). The batch runs in a
    /// task of its own, so a caller that goes away (a dropped request) cannot cut short
    /// the updates of the other callers it carries.
    pub async fn update(self: &Arc<Self>, id: &str, cmd: UpdateCommand) -> Result<u64, HubError> {
        self.update_all(id, vec![cmd])
            .await
            .pop()
            .unwrap_or_else(|| Err(HubError::Invalid("no update".into())))
    }

    /// Several updates of one session queued at once, so they are appended as one batch
    /// (one transaction, one sync) instead of one after another: an agent turn that
    /// shows the cart and a message pays for one durable write. Each update is still
    /// validated on its own and gets its own outcome, in order.
    pub async fn update_all(
        self: &Arc<Self>,
        id: &str,
        cmds: Vec<UpdateCommand>,
    ) -> Vec<Result<u64, HubError>> {
        let cell = self.cell(id);
        let trace = crate::telemetry::current_trace_id();
        let waiting: Vec<_> = {
            let mut pending = cell.pending.lock().unwrap_or_else(|p| p.into_inner());
            cmds.into_iter()
                .map(|cmd| {
                    let (tx, rx) = oneshot::channel();
                    pending.push(((cmd, trace.clone()), tx));
                    rx
                })
                .collect()
        };
        let hub = Arc::clone(self);
        let id = id.to_string();
        // The batch is appended under the sender's span (the first sender's, when several
        // updates share one batch).
        tokio::spawn(async move { hub.drain(&id, &cell).await }.in_current_span());
        let mut out = Vec::with_capacity(waiting.len());
        for rx in waiting {
            out.push(rx.await.unwrap_or_else(|_| {
                Err(HubError::Store(StoreError::Io(std::io::Error::other(
                    "the display update was dropped before it was applied",
                ))))
            }));
        }
        out
    }

    /// Applies every update queued on `cell`, under its lock.
    async fn drain(&self, id: &str, cell: &Cell) {
        let mut guard = cell.state.lock().await;
        let queued = std::mem::take(&mut *cell.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if queued.is_empty() {
            return;
        }
        let (cmds, waiters): (Vec<Traced>, Vec<_>) = queued.into_iter().unzip();
        let results = match self.loaded(id, &mut guard).await {
            Ok(loaded) => self.apply_all(id, loaded, cmds).await,
            Err(e) => (0..waiters.len()).map(|_| Err(batch::copy(&e))).collect(),
        };
        cell.last_used_ms.store(now_ms(), Ordering::Relaxed);
        for (tx, r) in waiters.into_iter().zip(results) {
            let _ = tx.send(r);
        }
    }

    /// The locked session's state, loaded from the store if needed.
    async fn loaded<'a>(
        &self,
        id: &str,
        guard: &'a mut Option<Loaded>,
    ) -> Result<&'a mut Loaded, HubError> {
        if guard.is_none() {
            *guard = self.load(id).await?;
        }
        guard
            .as_mut()
            .ok_or_else(|| HubError::NotInitialized(id.into()))
    }

    /// Commits the updates `revise` derives from the session's current components, under
    /// the session's lock, so nothing can replace a component between reading and
    /// revising it. An unknown or uninitialized session has nothing to revise.
    pub async fn revise(
        &self,
        id: &str,
        revise: impl FnOnce(&BTreeMap<String, (u64, Value)>) -> Vec<UpdateCommand>,
    ) -> Result<Vec<u64>, HubError> {
        self.with_session(id, async move |state| {
            let Some(loaded) = state.as_mut() else {
                return Ok(Vec::new());
            };
            let trace = crate::telemetry::current_trace_id();
            let cmds = revise(&loaded.components)
                .into_iter()
                .map(|c| (c, trace.clone()))
                .collect();
            self.apply_all(id, loaded, cmds).await.into_iter().collect()
        })
        .await
    }

    /// Validates the updates against the locked session, appends them and applies them.
    async fn apply_all(
        &self,
        id: &str,
        loaded: &mut Loaded,
        cmds: Vec<Traced>,
    ) -> Vec<Result<u64, HubError>> {
        batch::apply_batch(self, id, loaded, cmds).await
    }

    /// `(seq, state)` of a session, consistent with each other; None if unknown.
    pub async fn snapshot(&self, id: &str) -> Result<Option<(u64, Value)>, HubError> {
        self.with_session(id, async |s| {
            Ok(s.as_ref().map(|l| (l.rec.seq, state_json(l))))
        })
        .await
    }

    /// Like [`Hub::snapshot`], and records the session's tenant on a subscriber's
    /// channel (see [`Hub::open_sessions`]).
    pub async fn snapshot_for(
        &self,
        id: &str,
        channel: &Channel,
    ) -> Result<Option<(u64, Value)>, HubError> {
        self.with_session(id, async |s| {
            Ok(s.as_ref().map(|l| {
                let _ = channel.tenant.set(l.rec.tenant_id.clone());
                (l.rec.seq, state_json(l))
            }))
        })
        .await
    }

    /// The sessions of `tenant` with at least one display connected to this process.
    pub fn open_sessions(&self, tenant: &TenantId) -> Vec<String> {
        let chans = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<String> = chans
            .iter()
            .filter(|(_, ch)| ch.tenant.get() == Some(tenant))
            .filter(|(_, ch)| ch.displays.lock().map(|d| !d.is_empty()).unwrap_or(false))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Sends a frame outside the log (not resumable) to the session's current displays.
    pub fn publish_ephemeral(&self, id: &str, event: &'static str, text: String) {
        self.log.publish_ephemeral(
            id,
            Frame {
                seq: None,
                event,
                text: Utf8Bytes::from(text),
            },
        );
    }

    /// The full `/state` document.
    pub async fn state(&self, id: &str, last: u32) -> Result<Option<Value>, HubError> {
        let snap = self
            .with_session(id, async |s| {
                Ok(s.as_ref().map(|l| {
                    let init: Value = serde_json::from_str(&l.rec.init).unwrap_or(Value::Null);
                    (l.rec.clone(), init, state_json(l))
                }))
            })
            .await?;
        let Some((rec, init, state)) = snap else {
            return Ok(None);
        };
        let updates: Vec<Value> = self
            .log
            .read_last(id, last)
            .await?
            .into_iter()
            .map(|u| {
                let update: Value = serde_json::from_str(&u.envelope).unwrap_or(Value::Null);
                let at = jiff::Timestamp::from_millisecond(u.at_ms)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                json!({"seq": u.seq, "update": update, "at": at})
            })
            .collect();
        let local = || {
            self.displays(id)
                .into_iter()
                .map(|d| json!({"id": d.id, "kind": d.kind, "connectedAt": d.connected_at, "ackedSeq": d.acked_seq}))
                .collect()
        };
        let displays: Vec<Value> = match &self.shared {
            Some(shared) => match shared.list(id).await {
                Ok(all) => all
                    .into_iter()
                    .map(|d| json!({"id": d.id, "kind": d.kind, "connectedAt": d.connected_at, "ackedSeq": d.acked_seq}))
                    .collect(),
                // NATS away: this instance's own displays are all it knows.
                Err(e) => {
                    tracing::warn!(session = id, error = %e, "listing this instance's displays only");
                    local()
                }
            },
            None => local(),
        };
        Ok(Some(json!({
            "sessionId": rec.id,
            "tenantId": rec.tenant_id,
            "category": rec.category.as_str(),
            "init": init,
            "seq": rec.seq,
            "components": state["components"],
            "order": state["order"],
            "updates": updates,
            "displays": displays,
        })))
    }

    fn channel_if_any(&self, id: &str) -> Option<Arc<Channel>> {
        self.channels.lock().ok().and_then(|c| c.get(id).cloned())
    }

    /// Subscribes a display: returns its id, the receiver, and its presence record.
    pub fn subscribe(
        &self,
        id: &str,
        kind: &'static str,
    ) -> (u64, broadcast::Receiver<Frame>, Arc<Channel>) {
        let ch = {
            let mut chans = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            chans.entry(id.to_string()).or_default().clone()
        };
        let rx = self.log.subscribe(id);
        let display = self.next_display.fetch_add(1, Ordering::Relaxed);
        let count = {
            let mut d = ch.displays.lock().unwrap_or_else(|p| p.into_inner());
            d.insert(
                display,
                DisplayInfo {
                    id: display,
                    kind,
                    connected_at: jiff::Timestamp::now().to_string(),
                    acked_seq: None,
                },
            );
            d.len()
        };
        self.sockets.fetch_add(1, Ordering::Relaxed);
        self.presence(id, "join", display, count);
        (display, rx, ch)
    }

    /// Removes a display; drops the channel when it was the last.
    pub fn unsubscribe(&self, id: &str, display: u64) {
        self.sockets.fetch_sub(1, Ordering::Relaxed);
        let Some(ch) = self.channel_if_any(id) else {
            return;
        };
        let count = {
            let mut d = ch.displays.lock().unwrap_or_else(|p| p.into_inner());
            d.remove(&display);
            d.len()
        };
        self.presence(id, "leave", display, count);
        if count == 0 {
            let mut chans = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = chans.get(id)
                && Arc::ptr_eq(c, &ch)
                && c.displays.lock().map(|d| d.is_empty()).unwrap_or(false)
            {
                chans.remove(id);
            }
            drop(chans);
            self.log.prune();
        }
    }

    /// Records a display receipt.
    pub fn ack(&self, id: &str, display: u64, seq: u64) {
        if let Some(ch) = self.channel_if_any(id)
            && let Ok(mut d) = ch.displays.lock()
            && let Some(info) = d.get_mut(&display)
        {
            info.acked_seq = Some(info.acked_seq.map_or(seq, |a| a.max(seq)));
            if let Some(shared) = &self.shared {
                shared.mark(id, false);
            }
        }
    }

    pub fn displays(&self, id: &str) -> Vec<DisplayInfo> {
        let mut v: Vec<DisplayInfo> = self
            .channel_if_any(id)
            .and_then(|ch| {
                ch.displays
                    .lock()
                    .ok()
                    .map(|d| d.values().cloned().collect())
            })
            .unwrap_or_default();
        v.sort_by_key(|d| d.id);
        v
    }

    fn presence(&self, id: &str, event: &str, display: u64, count: usize) {
        if let Some(shared) = &self.shared {
            if let Ok(mut p) = self.pending.0.lock() {
                p.entry(id.to_string())
                    .or_default()
                    .push((event.to_string(), display));
            }
            shared.mark(id, true);
            return;
        }
        self.publish_presence(id, event, display, count);
    }

    fn publish_presence(&self, id: &str, event: &str, display: u64, count: usize) {
        let text = json!({"type": "presence", "event": event, "display": display, "count": count})
            .to_string();
        self.log.publish_ephemeral(
            id,
            Frame {
                seq: None,
                event: "presence",
                text: Utf8Bytes::from(text),
            },
        );
    }

    /// Drops sessions idle for longer than the configured time. Returns how many left.
    pub fn hibernate_idle(&self) -> usize {
        let cutoff = now_ms() - i64::try_from(self.config.idle.as_millis()).unwrap_or(i64::MAX);
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        let before = cells.len();
        cells.retain(|_, cell| {
            if cell.last_used_ms.load(Ordering::Relaxed) > cutoff {
                return true;
            }
            // Busy sessions stay; an idle one is only a cache of the store.
            cell.state.try_lock().is_err()
        });
        before - cells.len()
    }

    /// Runs [`Hub::hibernate_idle`] periodically until `stop`.
    pub fn spawn_sweeper(self: &Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        if let Some(shared) = self.shared.clone() {
            self.spawn_shared_flusher(shared, stop.clone());
        }
        let hub = self.clone();
        let every = (self.config.idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => { hub.hibernate_idle(); }
                    _ = stop.cancelled() => break,
                }
            }
        });
    }
}
