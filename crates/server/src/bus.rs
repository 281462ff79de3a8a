//! The NATS side of running many instances (`NATS_URL`): the JetStream session log and
//! the key-value bucket that holds the rate-limit counters (per IP, API key and tenant)
//! every instance shares. Absent
//! when `NATS_URL` is unset, and then everything stays in this process.

use crate::config::Config;
use crate::display::jetstream::{JetStreamLog, JetStreamSettings};
use async_nats::jetstream::kv;
use std::sync::Arc;
use std::time::Duration;
use stonepot_store::Store;
use tokio_util::sync::CancellationToken;

/// The connected bus; cheap to clone.
#[derive(Clone)]
pub struct Bus {
    pub log: Arc<JetStreamLog>,
    /// Displays of every instance, with their receipts.
    pub displays: Arc<crate::display::presence::SharedDisplays>,
    pub limits: SharedLimits,
    /// Stops the fan-out and presence tasks when the server shuts down.
    pub stop: CancellationToken,
}

impl Bus {
    /// Connects to `NATS_URL`, creates or checks the stream and the rate-limit bucket.
    pub async fn connect(
        config: &Config,
        store: Store,
        channel_capacity: usize,
    ) -> anyhow::Result<Option<Bus>> {
        let Some(url) = &config.nats_url else {
            return Ok(None);
        };
        let settings = jetstream_settings(config, url);
        let stop = CancellationToken::new();
        let log = JetStreamLog::connect(settings, store, channel_capacity, stop.clone()).await?;
        let displays = Arc::new(
            crate::display::presence::SharedDisplays::open(
                log.client().clone(),
                log.context(),
                &config.nats_stream,
                config.nats_replicas,
            )
            .await?,
        );
        let window = config.rate_limit_window;
        let bucket = open_bucket(
            log.context(),
            &format!("{}_RATE_LIMITS", config.nats_stream),
            "Stonepot rate-limit counters shared by every instance",
            // A counter outlives its window by one more, then JetStream drops it.
            window * 2,
            config.nats_replicas,
        )
        .await?;
        tracing::info!(
            url = %url,
            stream = %config.nats_stream,
            "session log and rate limits on NATS JetStream"
        );
        let client = log.client().clone();
        Ok(Some(Bus {
            log,
            displays,
            limits: SharedLimits {
                client: client.clone(),
                bucket,
                window,
            },
            stop,
        }))
    }
}

/// Where the session log's stream lives and its limits, from the configuration.
pub fn jetstream_settings(config: &Config, url: &str) -> JetStreamSettings {
    JetStreamSettings {
        url: url.to_string(),
        token: config.nats_token.as_ref().map(|t| t.expose().to_string()),
        stream: config.nats_stream.clone(),
        prefix: format!("stonepot.{}", config.nats_stream.to_ascii_lowercase()),
        max_per_session: i64::try_from(config.display_retain)
            .unwrap_or(i64::MAX)
            .max(1),
        max_age: config.nats_max_age,
        max_bytes: config.nats_max_bytes,
        replicas: config.nats_replicas,
        timeout: Duration::from_secs(3),
        recent: config.display_recent,
    }
}

/// Creates (or updates to these settings) the key-value bucket `name`, holding the latest
/// value of each key, and opens it. File storage, like the conversation stream: a memory
/// bucket would vanish when the NATS server restarts, and every instance would then fail
/// to use it until its own restart.
///
/// The stream behind it is declared here with the settings the client's own
/// `create_key_value` would use, because that call first reads the account information in
/// a shape servers before 2.10 (Debian's 2.9) do not send, and fails there.
pub async fn open_bucket(
    js: &async_nats::jetstream::Context,
    name: &str,
    description: &str,
    max_age: Duration,
    replicas: usize,
) -> anyhow::Result<kv::Store> {
    use async_nats::jetstream::stream;
    let config = stream::Config {
        name: format!("KV_{name}"),
        description: Some(description.to_string()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: replicas.max(1),
        ..Default::default()
    };
    match js.get_stream(&config.name).await {
        Ok(_) => {
            js.update_stream(config)
                .await
                .map_err(|e| anyhow::anyhow!("updating the key-value bucket {name}: {e}"))?;
        }
        Err(_) => {
            js.create_stream(config)
                .await
                .map_err(|e| anyhow::anyhow!("creating the key-value bucket {name}: {e}"))?;
        }
    }
    js.get_key_value(name)
        .await
        .map_err(|e| anyhow::anyhow!("opening the key-value bucket {name}: {e}"))
}

/// Fixed-window request counters in a JetStream key-value bucket: one key per
/// (client, window), incremented with compare-and-set so concurrent instances never lose
/// a count.
#[derive(Clone)]
pub struct SharedLimits {
    /// Checked before each count: while NATS is away the request is limited per instance
    /// at once rather than after a JetStream timeout.
    client: async_nats::Client,
    bucket: kv::Store,
    window: Duration,
}

/// Attempts at the compare-and-set before giving up on a hot counter.
const CAS_ATTEMPTS: usize = 8;

impl SharedLimits {
    /// Counts one request for `client` (a scope-prefixed name: `ip.…`, `key.…`,
    /// `tenant.…`) against `requests` per window; `Ok(None)` when allowed, `Ok(Some(wait))`
    /// when over the limit (the refused request is not counted), `Err` when the bucket
    /// cannot be reached (the caller falls back to its own per-instance limiter).
    pub async fn hit(&self, client: &str, requests: u32) -> Result<Option<Duration>, String> {
        connected(&self.client)?;
        let window_ms = u64::try_from(self.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let now_ms = u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0);
        let index = now_ms / window_ms;
        let wait = Duration::from_millis((index + 1) * window_ms - now_ms);
        // Hex keeps any client key (an IPv6 address has ':') a valid KV key.
        let key = format!("{}.{index}", hex::encode(client.as_bytes()));
        for _ in 0..CAS_ATTEMPTS {
            let entry = self
                .bucket
                .entry(key.clone())
                .await
                .map_err(|e| e.to_string())?;
            let done = match entry {
                Some(e) if e.operation == kv::Operation::Put => {
                    let n: u64 = std::str::from_utf8(&e.value)
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if n >= u64::from(requests) {
                        return Ok(Some(wait));
                    }
                    self.bucket
                        .update(&key, (n + 1).to_string().into(), e.revision)
                        .await
                        .is_ok()
                }
                _ => self.bucket.create(&key, "1".into()).await.is_ok(),
            };
            if done {
                return Ok(None);
            }
        }
        Err(format!(
            "counter {key} kept changing under {CAS_ATTEMPTS} attempts"
        ))
    }
}

/// `Err` naming the state unless the client is connected to NATS now.
pub fn connected(client: &async_nats::Client) -> Result<(), String> {
    match client.connection_state() {
        async_nats::connection::State::Connected => Ok(()),
        state => Err(format!("not connected to NATS ({state:?})")),
    }
}
