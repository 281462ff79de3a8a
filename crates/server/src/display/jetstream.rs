//! The session log on NATS JetStream, for running many instances: one stream
//! (`CONVERSATIONS` by default) with a subject per session, so every instance sees one
//! order per session and fan-out crosses instances.
//!
//! How the per-session `seq` of the display protocol maps onto the stream: the stream
//! sequence is global, so each message carries its session seq in the `Stonepot-Seq`
//! header, and an append of `expected + 1` is published with
//! `Nats-Expected-Last-Subject-Sequence` set to the stream sequence of the message that
//! holds `expected` (0 when the subject is empty). JetStream refuses the publish when
//! another instance appended first, which becomes [`LogError::Conflict`]: the hub reloads
//! and retries, the log never forks.
//!
//! The store keeps the materialized state (the session's seq and current components) so
//! `/state` and snapshots need no replay. It is written after the publish is acknowledged;
//! if that write fails (PostgreSQL away) the append still succeeds — the entry is in the
//! log — and whoever appends to or loads the session next replays the log past the
//! store's seq ([`JetStreamLog::catch_up`]).
//!
//! Fan-out: each instance runs one ordered consumer over every session subject from "now"
//! (recreated where it left off when the connection to NATS comes back)
//! and hands entries to its local subscribers; presence frames travel on plain NATS
//! subjects (they are not part of the log).

use super::hub::{Frame, Utf8Bytes};
use super::log::{Entry, Fanout, LogError, ReadStats, SessionLog};
use super::recent::Recent;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, context, stream};
use async_trait::async_trait;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stonepot_domain::TenantId;
use stonepot_store::{Store, StoreError};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// The header that carries an entry's per-session seq.
pub(super) const SEQ_HEADER: &str = "Stonepot-Seq";
/// The header that carries an entry's commit time (Unix milliseconds).
pub(super) const AT_HEADER: &str = "Stonepot-At";
/// JetStream's optimistic-concurrency header.
pub(super) const EXPECTED_LAST_SUBJECT_SEQ: &str = "Nats-Expected-Last-Subject-Sequence";
/// Updates the store keeps beside the materialized state (the log itself is JetStream).
const STORE_TAIL: u64 = 100;
/// (seq → stream sequence) pairs remembered per session to start reads where they belong.
const INDEX_PER_SESSION: usize = 512;
/// The longest a fan-out pull request waits; see [`JetStreamLog::fanout_messages`].
const FANOUT_PULL_EXPIRES: Duration = Duration::from_secs(4);
/// How long a head learned from the fan-out consumer is kept (longer than any idle time).
const HEAD_TTL: Duration = Duration::from_secs(600);

/// Where and how the stream lives.
#[derive(Debug, Clone)]
pub struct JetStreamSettings {
    pub url: String,
    pub token: Option<String>,
    /// Stream name (`CONVERSATIONS`).
    pub stream: String,
    /// Subject prefix; a session's subject is `<prefix>.<hex of the session id>`.
    pub prefix: String,
    /// Entries kept per session (the resumable window).
    pub max_per_session: i64,
    /// Maximum age of an entry; zero keeps entries until the per-session limit drops them.
    pub max_age: Duration,
    /// Bytes the whole stream may hold; -1 for no limit.
    pub max_bytes: i64,
    /// Replicas in a clustered JetStream.
    pub replicas: usize,
    /// Publish acknowledgement and API timeout.
    pub timeout: Duration,
    /// Entries of each subscribed session kept in memory for subscribers that fall
    /// behind (see [`Recent`]); 0 keeps none.
    pub recent: usize,
}

/// Hex keeps any session id (which may hold `.` or `:`) a single, valid subject token.
pub(super) fn subject_token(session: &str) -> String {
    hex::encode(session.as_bytes())
}

pub(super) fn session_of(token: &str) -> Option<String> {
    String::from_utf8(hex::decode(token).ok()?).ok()
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(format!("bus: {what}: {e}"))
}

pub(super) fn header_u64(h: Option<&HeaderMap>, name: &str) -> Option<u64> {
    h?.get(name)?.as_str().parse().ok()
}

pub(super) fn header_i64(h: Option<&HeaderMap>, name: &str) -> Option<i64> {
    h?.get(name)?.as_str().parse().ok()
}

/// Known positions of one session in the stream.
#[derive(Default)]
struct Positions {
    /// Session seq → stream sequence, the most recent [`INDEX_PER_SESSION`].
    index: BTreeMap<u64, u64>,
    /// The highest seq seen on the fan-out consumer, and when.
    head: Option<(u64, Instant)>,
}

impl Positions {
    fn learn(&mut self, seq: u64, stream_seq: u64) {
        self.index.insert(seq, stream_seq);
        while self.index.len() > INDEX_PER_SESSION {
            self.index.pop_first();
        }
    }
}

pub struct JetStreamLog {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: stream::Stream,
    settings: JetStreamSettings,
    store: Store,
    fanout: Fanout,
    positions: Mutex<HashMap<String, Positions>>,
    /// The latest entries of the sessions subscribed here, as the fan-out consumer
    /// delivered them.
    recent: Recent,
    /// Consumers opened to read a session (each is a JetStream API call).
    readers: AtomicU64,
    /// Unique per process: names this instance's ephemeral consumers and presence source.
    instance: String,
}

impl JetStreamLog {
    /// Connects, creates or checks the stream, and starts the fan-out consumer. Fails with
    /// a clear message when the server is unreachable or has JetStream disabled.
    pub async fn connect(
        settings: JetStreamSettings,
        store: Store,
        capacity: usize,
        stop: CancellationToken,
    ) -> anyhow::Result<std::sync::Arc<JetStreamLog>> {
        let client = connect_client(&settings.url, settings.token.as_deref()).await?;
        let js = jetstream::ContextBuilder::new()
            .timeout(settings.timeout)
            .build(client.clone());
        account_info(&js).await.map_err(|e| {
            anyhow::anyhow!(
                "NATS_URL: the NATS server at {} has no JetStream ({e}); start it with JetStream enabled (nats-server -js)",
                settings.url
            )
        })?;
        let stream = ensure_stream(&js, &settings).await?;
        let recent = settings
            .recent
            .min(usize::try_from(settings.max_per_session).unwrap_or(usize::MAX));
        let log = std::sync::Arc::new(JetStreamLog {
            client,
            js,
            stream,
            settings,
            store,
            fanout: Fanout::new(capacity),
            positions: Mutex::new(HashMap::new()),
            recent: Recent::new(recent),
            readers: AtomicU64::new(0),
            instance: format!("stonepot-{}", uuid::Uuid::new_v4().simple()),
        });
        log.clone().spawn_fanout(stop.clone()).await?;
        log.clone().spawn_presence(stop).await?;
        Ok(log)
    }

    fn subject(&self, session: &str) -> String {
        self.settings.subject(session)
    }

    fn learn(&self, session: &str, seq: u64, stream_seq: u64) {
        let mut p = self.positions.lock().unwrap_or_else(|p| p.into_inner());
        p.entry(session.to_string())
            .or_default()
            .learn(seq, stream_seq);
    }

    fn forget_position(&self, session: &str, seq: u64) {
        let mut p = self.positions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pos) = p.get_mut(session) {
            pos.index.remove(&seq);
        }
    }

    fn known(&self, session: &str, seq: u64) -> Option<u64> {
        let p = self.positions.lock().ok()?;
        p.get(session)?.index.get(&seq).copied()
    }

    /// The stream sequence of the last message at or below `seq` that this process knows.
    fn start_hint(&self, session: &str, seq: u64) -> Option<(u64, u64)> {
        let p = self.positions.lock().ok()?;
        p.get(session)?
            .index
            .range(..=seq)
            .next_back()
            .map(|(s, ss)| (*s, *ss))
    }

    fn check_connected(&self) -> Result<(), LogError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(LogError::Unavailable(format!(
                "bus: not connected to NATS ({state:?})"
            ))),
        }
    }

    /// The last message of a session: (session seq, stream sequence); None when empty.
    async fn last(&self, session: &str) -> Result<Option<(u64, u64)>, LogError> {
        match self
            .stream
            .get_last_raw_message_by_subject(&self.subject(session))
            .await
        {
            Ok(m) => {
                let seq = header_u64(Some(&m.headers), SEQ_HEADER).ok_or_else(|| {
                    LogError::Store(StoreError::Corrupt(format!(
                        "stream message {} has no {SEQ_HEADER} header",
                        m.sequence
                    )))
                })?;
                self.learn(session, seq, m.sequence);
                Ok(Some((seq, m.sequence)))
            }
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(unavailable("reading the last entry", e)),
        }
    }

    /// Writes a committed entry into the store's materialized state, replaying whatever
    /// the store missed before it. Idempotent: entries already applied are skipped.
    async fn materialize(
        &self,
        session: &str,
        tenant: &TenantId,
        seq: u64,
        envelope: &str,
    ) -> Result<(), LogError> {
        match self
            .store
            .append_display_update(session, tenant, seq - 1, envelope, STORE_TAIL)
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(_)) => {
                let at = self
                    .store
                    .display_session(session)
                    .await?
                    .map(|r| r.seq)
                    .unwrap_or(0);
                if at >= seq {
                    return Ok(());
                }
                self.replay(session, tenant, at).await.map(|_| ())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Applies to the store every logged entry past `at`; returns how many this call
    /// applied (another instance may apply some of them at the same time: the store's
    /// seq check lets exactly one of them through).
    async fn replay(
        &self,
        session: &str,
        tenant: &TenantId,
        mut at: u64,
    ) -> Result<usize, LogError> {
        let mut applied = 0;
        loop {
            let batch = self.read_after(session, at, 256).await?;
            if batch.is_empty() {
                return Ok(applied);
            }
            for e in batch {
                if e.seq > at + 1 {
                    // The store is older than the retained log: the missing entries are
                    // gone, so the state continues from here.
                    tracing::warn!(
                        session,
                        from = at,
                        to = e.seq,
                        "log trimmed past the store's state"
                    );
                    self.store
                        .advance_display_seq(session, at, e.seq - 1)
                        .await?;
                }
                match self
                    .store
                    .append_display_update(session, tenant, e.seq - 1, &e.envelope, STORE_TAIL)
                    .await
                {
                    Ok(_) => applied += 1,
                    Err(StoreError::Conflict(_)) => {}
                    Err(err) => return Err(err.into()),
                }
                at = e.seq;
            }
        }
    }

    /// An ordered consumer over every session subject from stream sequence `from`.
    async fn fanout_messages(&self, from: u64) -> anyhow::Result<consumer::pull::Ordered> {
        let consumer = self
            .stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: format!("{}.*", self.settings.prefix),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                },
                // Short pulls, so that a consumer lost with its server is noticed soon
                // even when no reconnect is seen (see spawn_fanout).
                max_expires: FANOUT_PULL_EXPIRES,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("creating the fan-out consumer: {e}"))?;
        consumer
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("starting the fan-out consumer: {e}"))
    }

    /// Hands every entry any instance appends from now on to this instance's subscribers.
    ///
    /// The consumer lives on the NATS server; when the connection drops (NATS restarted),
    /// it is recreated as soon as the client is connected again, from the stream sequence
    /// after the last one delivered, so nothing appended meanwhile is skipped or repeated.
    /// The client's own recovery (after missed heartbeats) would take tens of seconds.
    async fn spawn_fanout(
        self: std::sync::Arc<Self>,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let last = self
            .stream
            .clone()
            .info()
            .await
            .map_err(|e| anyhow::anyhow!("reading stream {}: {e}", self.settings.stream))?
            .state
            .last_sequence;
        let mut next_seq = last + 1;
        let mut messages = Some(self.fanout_messages(next_seq).await?);
        let log = self;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut was_connected = true;
            loop {
                let next = tokio::select! {
                    m = async {
                        match messages.as_mut() {
                            Some(m) => m.next().await,
                            None => std::future::pending().await,
                        }
                    } => m,
                    _ = tick.tick() => {
                        let connected = log.check_connected().is_ok();
                        if !connected {
                            was_connected = false;
                        } else if !was_connected || messages.is_none() {
                            match log.fanout_messages(next_seq).await {
                                Ok(m) => {
                                    tracing::info!(from = next_seq, "JetStream fan-out consumer recreated");
                                    messages = Some(m);
                                    was_connected = true;
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "JetStream fan-out consumer not recreated yet");
                                    messages = None;
                                }
                            }
                        }
                        continue;
                    }
                    _ = stop.cancelled() => break,
                };
                match next {
                    Some(Ok(m)) => {
                        if let Ok(info) = m.info() {
                            next_seq = next_seq.max(info.stream_sequence + 1);
                        }
                        log.deliver(&m);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "JetStream fan-out consumer error");
                    }
                    None => {
                        tracing::warn!("JetStream fan-out consumer ended; recreating it");
                        messages = None;
                    }
                }
            }
        });
        Ok(())
    }

    fn deliver(&self, m: &jetstream::Message) {
        let Some(session) = m.subject.as_str().rsplit('.').next().and_then(session_of) else {
            return;
        };
        let Some(seq) = header_u64(m.headers.as_ref(), SEQ_HEADER) else {
            return;
        };
        {
            let mut p = self.positions.lock().unwrap_or_else(|p| p.into_inner());
            let pos = p.entry(session.clone()).or_default();
            if let Ok(info) = m.info() {
                pos.learn(seq, info.stream_sequence);
            }
            if pos.head.is_none_or(|(h, _)| h < seq) {
                pos.head = Some((seq, Instant::now()));
            }
        }
        if let Some(tx) = self.sender_if_any(&session) {
            // Held before it is sent: a subscriber that sees this frame out of turn and
            // catches up finds it (and everything before it that is held) in `recent`.
            let frame = self.recent.push(
                &session,
                Entry {
                    seq,
                    envelope: String::from_utf8_lossy(&m.payload).into_owned(),
                    at_ms: header_i64(m.headers.as_ref(), AT_HEADER).unwrap_or(0),
                },
            );
            let _ = tx.send(frame);
        }
    }

    fn presence_subject(&self, session: Option<&str>) -> String {
        match session {
            Some(s) => format!(
                "stonepot.presence.{}.{}",
                self.settings.stream,
                subject_token(s)
            ),
            None => format!("stonepot.presence.{}.*", self.settings.stream),
        }
    }

    async fn spawn_presence(
        self: std::sync::Arc<Self>,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut sub = self
            .client
            .subscribe(self.presence_subject(None))
            .await
            .map_err(|e| anyhow::anyhow!("subscribing to presence: {e}"))?;
        let log = self;
        tokio::spawn(async move {
            loop {
                let m = tokio::select! {
                    m = sub.next() => m,
                    _ = stop.cancelled() => break,
                };
                let Some(m) = m else { break };
                let Some(session) = m.subject.as_str().rsplit('.').next().and_then(session_of)
                else {
                    continue;
                };
                let event = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Stonepot-Event"))
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default();
                let event: &'static str = match event.as_str() {
                    "presence" => "presence",
                    "receipt" => "receipt",
                    _ => "message",
                };
                if let (Some(tx), Ok(text)) = (
                    log.sender_if_any(&session),
                    String::from_utf8(m.payload.to_vec()),
                ) {
                    let _ = tx.send(Frame {
                        seq: None,
                        event,
                        text: Utf8Bytes::from(text),
                    });
                }
            }
        });
        Ok(())
    }

    fn sender_if_any(&self, session: &str) -> Option<broadcast::Sender<Frame>> {
        self.fanout.sender_if_any(session)
    }

    /// Whether NATS answers a JetStream request now (for `/health`).
    pub async fn check(&self) -> Result<(), String> {
        self.check_connected().map_err(|e| e.to_string())?;
        match tokio::time::timeout(Duration::from_secs(2), account_info(&self.js)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("JetStream: {e}")),
            Err(_) => Err("JetStream: no answer within 2s".into()),
        }
    }

    /// The JetStream context (backups read the stream through it).
    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }

    pub fn stream_name(&self) -> &str {
        &self.settings.stream
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }
}

impl JetStreamSettings {
    /// A session's subject.
    pub fn subject(&self, session: &str) -> String {
        format!("{}.{}", self.prefix, subject_token(session))
    }
}

/// Creates the stream when missing; an existing stream is updated to the configured
/// limits so changing them needs no manual step (JetStream refuses incompatible changes,
/// and that error names the stream).
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &JetStreamSettings,
) -> anyhow::Result<stream::Stream> {
    let config = stream::Config {
        name: settings.stream.clone(),
        subjects: vec![format!("{}.*", settings.prefix)],
        max_messages_per_subject: settings.max_per_session,
        max_age: settings.max_age,
        max_bytes: settings.max_bytes,
        num_replicas: settings.replicas.max(1),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        description: Some("Stonepot conversation display logs, one subject per session".into()),
        ..Default::default()
    };
    match js.get_stream(&settings.stream).await {
        Ok(_) => {
            js.update_stream(config.clone()).await.map_err(|e| {
                anyhow::anyhow!("updating JetStream stream {}: {e}", settings.stream)
            })?;
            Ok(js.get_stream(&settings.stream).await?)
        }
        Err(_) => js
            .create_stream(config)
            .await
            .map_err(|e| anyhow::anyhow!("creating JetStream stream {}: {e}", settings.stream)),
    }
}

/// Asks JetStream for the account's information (`$JS.API.INFO`), read as plain JSON:
/// the typed answer of the client expects fields that servers before 2.10 (Debian's
/// 2.9) do not send, and all this needs to know is whether JetStream answers.
pub(super) async fn account_info(js: &jetstream::Context) -> Result<(), String> {
    let v: serde_json::Value = js
        .request("INFO", &serde_json::json!({}))
        .await
        .map_err(|e| e.to_string())?;
    match v.get("error") {
        Some(e) => Err(e
            .get("description")
            .and_then(|d| d.as_str())
            .unwrap_or("JetStream error")
            .to_string()),
        None => Ok(()),
    }
}

/// Connects with the token when given; keeps reconnecting forever once connected.
pub async fn connect_client(url: &str, token: Option<&str>) -> anyhow::Result<async_nats::Client> {
    let opts = match token {
        Some(t) => async_nats::ConnectOptions::with_token(t.to_string()),
        None => async_nats::ConnectOptions::new(),
    }
    .connection_timeout(Duration::from_secs(5))
    .max_reconnects(None)
    .name("stonepot");
    opts.connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("NATS_URL: connecting to {url}: {e}"))
}

#[async_trait]
impl SessionLog for JetStreamLog {
    async fn append(
        &self,
        session: &str,
        tenant: &TenantId,
        expected: u64,
        envelope: &str,
    ) -> Result<u64, LogError> {
        self.check_connected()?;
        let last_stream_seq = match self.known(session, expected) {
            Some(s) => s,
            None => match self.last(session).await? {
                Some((seq, _)) if seq != expected => return Err(LogError::Conflict),
                Some((_, stream_seq)) => stream_seq,
                // Nothing retained (a new session, or one logged before JetStream was
                // configured): the subject must still be empty when the append lands.
                None => 0,
            },
        };
        let seq = expected + 1;
        let at = jiff::Timestamp::now().as_millisecond();
        let mut headers = HeaderMap::new();
        headers.insert(
            EXPECTED_LAST_SUBJECT_SEQ,
            last_stream_seq.to_string().as_str(),
        );
        headers.insert(SEQ_HEADER, seq.to_string().as_str());
        headers.insert(AT_HEADER, at.to_string().as_str());
        let ack = self
            .js
            .publish_with_headers(
                self.subject(session),
                headers,
                envelope.to_string().into_bytes().into(),
            )
            .await
            .map_err(|e| unavailable("publishing", e))?
            .await;
        match ack {
            Ok(ack) => self.learn(session, seq, ack.sequence),
            Err(e) if e.kind() == context::PublishErrorKind::WrongLastSequence => {
                self.forget_position(session, expected);
                return Err(LogError::Conflict);
            }
            Err(e) => return Err(unavailable("publishing", e)),
        }
        // The entry is committed (JetStream acknowledged it): answering with an error now
        // would make the client retry a write that happened. The store's copy is only
        // the materialized state, and whoever appends or loads the session next replays
        // what it missed.
        if let Err(e) = self.materialize(session, tenant, seq, envelope).await {
            tracing::warn!(session, seq, error = %e, "entry logged; the store catches up later");
        }
        Ok(seq)
    }

    async fn read_after(
        &self,
        session: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Entry>, LogError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        if let Some(held) = self.recent.entries_after(session, after, limit) {
            return Ok(held);
        }
        self.readers.fetch_add(1, Ordering::Relaxed);
        let deliver_policy = match self.start_hint(session, after + 1) {
            Some((_, stream_seq)) => consumer::DeliverPolicy::ByStartSequence {
                start_sequence: stream_seq,
            },
            None => consumer::DeliverPolicy::All,
        };
        let consumer = self
            .stream
            .create_consumer(consumer::pull::Config {
                filter_subject: self.subject(session),
                deliver_policy,
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(10),
                memory_storage: true,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("opening a reader", e))?;
        let name = consumer.cached_info().name.clone();
        let mut out = Vec::new();
        let result: Result<(), LogError> = async {
            loop {
                let mut batch = consumer
                    .fetch()
                    .max_messages(256)
                    .messages()
                    .await
                    .map_err(|e| unavailable("reading", e))?;
                let mut got = 0;
                let mut pending = 0;
                while let Some(m) = batch.next().await {
                    let m = m.map_err(|e| unavailable("reading", e))?;
                    got += 1;
                    let Some(seq) = header_u64(m.headers.as_ref(), SEQ_HEADER) else {
                        continue;
                    };
                    if let Ok(info) = m.info() {
                        pending = info.pending;
                        self.learn(session, seq, info.stream_sequence);
                    }
                    if seq > after && out.len() < limit as usize {
                        out.push(Entry {
                            seq,
                            envelope: String::from_utf8_lossy(&m.payload).into_owned(),
                            at_ms: header_i64(m.headers.as_ref(), AT_HEADER).unwrap_or(0),
                        });
                    }
                }
                if got == 0 || pending == 0 || out.len() >= limit as usize {
                    return Ok(());
                }
            }
        }
        .await;
        let stream = self.stream.clone();
        tokio::spawn(async move {
            let _ = stream.delete_consumer(&name).await;
        });
        result?;
        Ok(out)
    }

    async fn missed(&self, session: &str, after: u64, limit: u32) -> Result<Vec<Frame>, LogError> {
        if let Some(held) = self.recent.missed(session, after, limit) {
            return Ok(held);
        }
        Ok(self
            .read_after(session, after, limit)
            .await?
            .iter()
            .map(|e| super::log::update_frame(e.seq, &e.envelope))
            .collect())
    }

    fn read_stats(&self) -> ReadStats {
        ReadStats {
            backend_readers: self.readers.load(Ordering::Relaxed),
            recent_hits: self.recent.hits.load(Ordering::Relaxed),
        }
    }

    async fn read_last(&self, session: &str, n: u32) -> Result<Vec<Entry>, LogError> {
        let from_stream = async {
            self.check_connected()?;
            let Some((last, _)) = self.last(session).await? else {
                return Ok(Vec::new());
            };
            self.read_after(session, last.saturating_sub(u64::from(n)), n)
                .await
        };
        match from_stream.await {
            // `/state` keeps answering while NATS is away, from the tail the store keeps
            // beside the materialized state (it may miss entries not yet materialized).
            Err(LogError::Unavailable(e)) => {
                tracing::warn!(session, error = %e, "reading the last entries from the store");
                Ok(self
                    .store
                    .display_updates_last(session, n.min(STORE_TAIL as u32))
                    .await?
                    .into_iter()
                    .map(super::log::entry)
                    .collect())
            }
            other => other,
        }
    }

    async fn oldest(&self, session: &str) -> Result<Option<u64>, LogError> {
        match self
            .stream
            .get_first_raw_message_by_subject(self.subject(session), 1)
            .await
        {
            Ok(m) => Ok(header_u64(Some(&m.headers), SEQ_HEADER)),
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(unavailable("reading the first entry", e)),
        }
    }

    fn subscribe(&self, session: &str) -> broadcast::Receiver<Frame> {
        self.fanout.subscribe(session)
    }

    fn publish_ephemeral(&self, session: &str, frame: Frame) {
        // Through NATS so displays on every instance get it (this one included, via its
        // own subscription).
        let client = self.client.clone();
        let subject = self.presence_subject(Some(session));
        let mut headers = HeaderMap::new();
        headers.insert("Stonepot-Event", frame.event);
        headers.insert("Stonepot-Source", self.instance.as_str());
        let payload = frame.text.as_str().to_string().into_bytes();
        tokio::spawn(async move {
            let _ = client
                .publish_with_headers(subject, headers, payload.into())
                .await;
        });
    }

    fn prune(&self) {
        self.fanout.prune();
        self.recent
            .retain(|session| self.fanout.sender_if_any(session).is_some());
        if let Ok(mut p) = self.positions.lock() {
            p.retain(|_, pos| pos.head.is_some_and(|(_, at)| at.elapsed() < HEAD_TTL));
        }
    }

    fn head(&self, session: &str) -> Option<u64> {
        let p = self.positions.lock().ok()?;
        p.get(session)?.head.map(|(h, _)| h)
    }

    fn replicated(&self) -> bool {
        true
    }

    async fn catch_up(&self, session: &str, tenant: &TenantId, at: u64) -> Result<usize, LogError> {
        self.replay(session, tenant, at).await
    }
}
