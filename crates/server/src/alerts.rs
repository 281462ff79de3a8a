//! Error capture to a Sentry-compatible service (`SENTRY_DSN`) and critical alerts to
//! Slack (`SLACK_WEBHOOK_URL`).
//!
//! - What is captured: every 5xx answer (the request's route, id and trace id as tags)
//!   and anything the code reports with [`Alerts::critical`]. 5xx answers are critical
//!   too: a server error is something a person should hear about.
//! - Both sinks are rate-limited so an outage becomes a handful of messages, not a
//!   flood: the same problem (its fingerprint) at most once per [`SAME_PROBLEM`], and
//!   at most [`PER_MINUTE`] events (Sentry) or [`SLACK_PER_HOUR`] messages (Slack)
//!   overall. A Sentry `429` with `Retry-After` pauses sending for that long.
//! - Delivery is in the background through a bounded queue: a slow or unreachable
//!   sink never slows a request, and what does not fit is dropped and counted.
//!
//! Sentry events go to the DSN's envelope endpoint
//! (`{scheme}://{host}{path}/api/{project}/envelope/`) with the `X-Sentry-Auth` header,
//! which is what Sentry, GlitchTip and other compatible services accept.

use crate::close::Slack;
use crate::config::Secret;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The same problem is reported at most once in this long.
pub const SAME_PROBLEM: Duration = Duration::from_secs(300);
/// At most this many Sentry events per minute.
pub const PER_MINUTE: u32 = 20;
/// At most this many Slack alerts per hour.
pub const SLACK_PER_HOUR: u32 = 12;
/// Events waiting for delivery beyond this are dropped.
const QUEUE: usize = 64;

/// A parsed Sentry DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    /// Where envelopes are posted.
    pub envelope_url: String,
    pub public_key: String,
}

impl Dsn {
    /// Parses `{scheme}://{key}[:{secret}]@{host}[:{port}]{/path}/{project}`.
    pub fn parse(raw: &str) -> Result<Dsn, String> {
        let (scheme, rest) = raw
            .split_once("://")
            .ok_or("SENTRY_DSN: expected scheme://key@host/project")?;
        if scheme != "https" && scheme != "http" {
            return Err(format!("SENTRY_DSN: scheme '{scheme}' is not http(s)"));
        }
        let (auth, location) = rest
            .split_once('@')
            .ok_or("SENTRY_DSN: the public key (before '@') is missing")?;
        let public_key = auth.split(':').next().unwrap_or_default();
        if public_key.is_empty() {
            return Err("SENTRY_DSN: the public key is empty".into());
        }
        let location = location.trim_end_matches('/');
        let (base, project) = location
            .rsplit_once('/')
            .ok_or("SENTRY_DSN: the project id (last path segment) is missing")?;
        if project.is_empty() || !project.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("SENTRY_DSN: '{project}' is not a project id"));
        }
        Ok(Dsn {
            envelope_url: format!("{scheme}://{base}/api/{project}/envelope/"),
            public_key: public_key.to_string(),
        })
    }
}

/// How bad an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Fatal,
}

/// One problem to report.
#[derive(Debug, Clone)]
pub struct Problem {
    /// What identifies "the same problem" for rate limiting, e.g. `5xx GET /api/x 502`.
    pub fingerprint: String,
    pub message: String,
    pub level: Level,
    pub tags: Vec<(&'static str, String)>,
    pub trace_id: Option<String>,
}

/// A rate limit: the same key once per `same`, and `cap` in total per `window`.
struct Gate {
    same: Duration,
    window: Duration,
    cap: u32,
    seen: HashMap<String, Instant>,
    window_start: Instant,
    in_window: u32,
    paused_until: Option<Instant>,
}

impl Gate {
    fn new(same: Duration, window: Duration, cap: u32) -> Gate {
        Gate {
            same,
            window,
            cap,
            seen: HashMap::new(),
            window_start: Instant::now(),
            in_window: 0,
            paused_until: None,
        }
    }

    /// Whether an event with `key` may go now (and counts it when it may).
    fn admit(&mut self, key: &str, now: Instant) -> bool {
        if self.paused_until.is_some_and(|t| now < t) {
            return false;
        }
        if now.duration_since(self.window_start) >= self.window {
            self.window_start = now;
            self.in_window = 0;
        }
        if self.in_window >= self.cap {
            return false;
        }
        if self
            .seen
            .get(key)
            .is_some_and(|t| now.duration_since(*t) < self.same)
        {
            return false;
        }
        if self.seen.len() > 1_000 {
            let same = self.same;
            self.seen.retain(|_, t| now.duration_since(*t) < same);
        }
        self.seen.insert(key.to_string(), now);
        self.in_window += 1;
        true
    }
}

enum Job {
    Sentry(String, String),
    Slack(String),
}

/// The configured sinks; cheap to share.
pub struct Alerts {
    sentry: Option<(Dsn, Mutex<Gate>)>,
    slack: Option<Mutex<Gate>>,
    tx: Option<mpsc::Sender<Job>>,
    environment: String,
    /// Events not sent because of the rate limits or a full queue.
    pub dropped: AtomicU64,
    /// Events handed to a sink.
    pub sent: AtomicU64,
}

impl Alerts {
    /// No sinks: everything is a no-op.
    pub fn off() -> Alerts {
        Alerts {
            sentry: None,
            slack: None,
            tx: None,
            environment: String::new(),
            dropped: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }

    /// Sinks from the configuration; starts the delivery task when there is one (needs
    /// a Tokio runtime). A malformed DSN is an error, so a typo is not silence.
    pub fn new(
        sentry_dsn: Option<&Secret>,
        slack: Option<Slack>,
        environment: &str,
    ) -> Result<Alerts, String> {
        let dsn = sentry_dsn.map(|d| Dsn::parse(d.expose())).transpose()?;
        if dsn.is_none() && slack.is_none() {
            return Ok(Alerts::off());
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let alerts = Alerts {
            sentry: dsn.clone().map(|d| {
                (
                    d,
                    Mutex::new(Gate::new(SAME_PROBLEM, Duration::from_secs(60), PER_MINUTE)),
                )
            }),
            slack: slack.as_ref().map(|_| {
                Mutex::new(Gate::new(
                    SAME_PROBLEM,
                    Duration::from_secs(3600),
                    SLACK_PER_HOUR,
                ))
            }),
            tx: Some(tx),
            environment: environment.to_string(),
            dropped: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        };
        tokio::spawn(deliver(rx, client, dsn, slack));
        Ok(alerts)
    }

    /// Reports an error to Sentry (rate-limited).
    pub fn error(&self, p: Problem) {
        if let Some((dsn, gate)) = &self.sentry {
            if admit(gate, &p.fingerprint) {
                let event = event(&p, &self.environment);
                self.send(Job::Sentry(envelope(&event), dsn.public_key.clone()));
            } else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Reports a critical problem: to Sentry and to Slack (each rate-limited).
    pub fn critical(&self, p: Problem) {
        if let Some(gate) = &self.slack {
            if admit(gate, &p.fingerprint) {
                let mut text = format!(
                    ":rotating_light: Stonepot ({}): {}",
                    self.environment, p.message
                );
                for (k, v) in &p.tags {
                    text.push_str(&format!("\n• {k}: {v}"));
                }
                if let Some(t) = &p.trace_id {
                    text.push_str(&format!("\n• trace: {t}"));
                }
                self.send(Job::Slack(text));
            } else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.error(p);
    }

    fn send(&self, job: Job) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(job) {
            Ok(()) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn admit(gate: &Mutex<Gate>, key: &str) -> bool {
    gate.lock()
        .map(|mut g| g.admit(key, Instant::now()))
        .unwrap_or(false)
}

/// The Sentry event for a problem.
fn event(p: &Problem, environment: &str) -> Value {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let tags: serde_json::Map<String, Value> = p
        .tags
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
        .collect();
    let mut e = json!({
        "event_id": id,
        "timestamp": jiff::Timestamp::now().as_millisecond() as f64 / 1000.0,
        "platform": "other",
        "level": match p.level { Level::Error => "error", Level::Fatal => "fatal" },
        "logger": "stonepot",
        "server_name": hostname(),
        "release": format!("stonepot@{}", env!("CARGO_PKG_VERSION")),
        "environment": environment,
        "message": { "formatted": p.message },
        "fingerprint": [p.fingerprint],
        "tags": tags,
    });
    if let Some(t) = &p.trace_id {
        e["contexts"] = json!({ "trace": { "trace_id": t, "span_id": &t[..16.min(t.len())] } });
    }
    e
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "stonepot".into())
}

/// The envelope carrying one event: a header line, an item header line, the event.
fn envelope(event: &Value) -> String {
    let body = event.to_string();
    let header = json!({
        "event_id": event["event_id"],
        "sent_at": jiff::Timestamp::now().to_string(),
    });
    let item = json!({ "type": "event", "length": body.len(), "content_type": "application/json" });
    format!("{header}\n{item}\n{body}\n")
}

/// The background task: posts each job, pausing Sentry on its 429s.
async fn deliver(
    mut rx: mpsc::Receiver<Job>,
    client: reqwest::Client,
    dsn: Option<Dsn>,
    slack: Option<Slack>,
) {
    let mut sentry_paused_until: Option<Instant> = None;
    while let Some(job) = rx.recv().await {
        match job {
            Job::Slack(text) => {
                if let Some(s) = &slack {
                    s.post(&text).await;
                }
            }
            Job::Sentry(body, key) => {
                let Some(dsn) = &dsn else { continue };
                if sentry_paused_until.is_some_and(|t| Instant::now() < t) {
                    continue;
                }
                let auth = format!(
                    "Sentry sentry_version=7, sentry_key={key}, sentry_client=stonepot/{}",
                    env!("CARGO_PKG_VERSION")
                );
                let res = client
                    .post(&dsn.envelope_url)
                    .header("x-sentry-auth", auth)
                    .header("content-type", "application/x-sentry-envelope")
                    .body(body)
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) if r.status().as_u16() == 429 => {
                        let secs = r
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .unwrap_or(60);
                        sentry_paused_until = Some(Instant::now() + Duration::from_secs(secs));
                        tracing::warn!(
                            retry_after = secs,
                            "error capture is rate-limited by the server"
                        );
                    }
                    Ok(r) => tracing::warn!(
                        status = r.status().as_u16(),
                        "error capture refused the event"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e.without_url(), "error capture could not be reached")
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsns_parse_to_their_envelope_endpoint() {
        let d =
            Dsn::parse("https://abc123@o1.ingest.sentry.io/4505").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            d.envelope_url,
            "https://o1.ingest.sentry.io/api/4505/envelope/"
        );
        assert_eq!(d.public_key, "abc123");
        let d = Dsn::parse("http://k:secret@127.0.0.1:9000/sentry/7/")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            d.envelope_url,
            "http://127.0.0.1:9000/sentry/api/7/envelope/"
        );
        assert_eq!(d.public_key, "k");
        for bad in [
            "nope",
            "ftp://k@h/1",
            "https://h/1",
            "https://@h/1",
            "https://k@h/",
            "https://k@h/a-b",
        ] {
            assert!(Dsn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_gate_admits_a_problem_once_per_period_and_caps_the_window() {
        let mut g = Gate::new(Duration::from_secs(300), Duration::from_secs(60), 3);
        let t0 = Instant::now();
        assert!(g.admit("a", t0));
        assert!(!g.admit("a", t0 + Duration::from_secs(10)), "same problem");
        assert!(g.admit("b", t0));
        assert!(g.admit("c", t0));
        assert!(!g.admit("d", t0), "cap");
        // A new window: the cap resets, the same-problem period does not.
        assert!(g.admit("d", t0 + Duration::from_secs(61)));
        assert!(!g.admit("a", t0 + Duration::from_secs(61)));
        assert!(g.admit("a", t0 + Duration::from_secs(301)));
        g.paused_until = Some(t0 + Duration::from_secs(400));
        assert!(!g.admit("z", t0 + Duration::from_secs(350)));
    }
}
