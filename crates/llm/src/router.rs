//! Routing one request to a model: resolve the name (route, target or `provider/model`),
//! order the candidates (the conversation's sticky target, a weighted random pick, the
//! rest of the weighted set, then the fallback list), and get a first event from one of
//! them — retrying with jittered backoff, honouring `Retry-After`, bounding the time to
//! the first token, and skipping targets whose circuit is open. Once a stream has
//! started it is the caller's: its errors are yielded, never hidden behind a fallback.

use crate::anthropic::AnthropicMessages;
use crate::config::{self, ConfigError, LlmConfig, ProviderKind, RouteConfig, Secret};
use crate::gemini::Gemini;
use crate::openai::OpenAiChat;
use crate::provider::{EventStream, Price, Provider};
use crate::{ChatRequest, LlmError, StreamEvent};
use futures::{Stream, StreamExt};
use rand::Rng;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// How many conversations remember their target (about; older ones are forgotten).
const STICKY_CAPACITY: usize = 10_000;

/// Picks targets and starts streams. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    slots: BTreeMap<String, Arc<Slot>>,
    routes: BTreeMap<String, Route>,
    /// Endpoints for `provider/model` requests.
    endpoints: BTreeMap<ProviderKind, Provider>,
    defaults: Policy,
    sticky: Mutex<Sticky>,
}

/// A started stream and where it came from.
pub struct RoutedStream {
    /// The configured target that answered (`provider/model` for ad-hoc requests).
    pub target: String,
    /// `openai`, `anthropic` or `gemini`.
    pub provider: &'static str,
    /// The model name as the provider knows it.
    pub model: String,
    pub price: Option<Price>,
    /// Attempts made, this one included (1 when the first try answered).
    pub attempts: u32,
    /// The events, first one included. Dropping them closes the upstream connection.
    pub events: EventStream,
}

impl std::fmt::Debug for RoutedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedStream")
            .field("target", &self.target)
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Stream for RoutedStream {
    type Item = Result<StreamEvent, LlmError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_next_unpin(cx)
    }
}

/// A target's circuit, as reported by [`Router::health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    /// Refusing requests; a trial is allowed in `retry_in_ms`.
    Open {
        retry_in_ms: u64,
    },
    /// One trial request is in flight.
    HalfOpen,
}

/// One target in a [`Router::health`] snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetHealth {
    pub target: String,
    pub provider: &'static str,
    pub model: String,
    pub consecutive_failures: u32,
    #[serde(flatten)]
    pub breaker: BreakerState,
}

impl Router {
    /// Builds the router from the `[llm]` table and the process environment (a map so
    /// tests need not touch the real one). With no targets in `cfg`, targets come from
    /// the environment ([`LlmConfig::with_env_defaults`]); with none there either, the
    /// router is empty and every request fails with [`LlmError::NoTargets`].
    pub fn new(cfg: &LlmConfig, env: &HashMap<String, String>) -> Result<Router, ConfigError> {
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Self::with_client(cfg, env, client)
    }

    /// Like [`Router::new`] with a caller's HTTP client (proxies, TLS roots, pools).
    pub fn with_client(
        cfg: &LlmConfig,
        env: &HashMap<String, String>,
        client: reqwest::Client,
    ) -> Result<Router, ConfigError> {
        let cfg = cfg.clone().with_env_defaults(env);
        cfg.validate()?;
        let breaker = BreakerConfig {
            failures: cfg.breaker_failures,
            cooldown: Duration::from_millis(cfg.breaker_cooldown_ms),
        };
        let mut slots = BTreeMap::new();
        for (name, t) in &cfg.targets {
            let key = config::resolve_key(name, t, env)?;
            let base = t
                .base_url
                .clone()
                .unwrap_or_else(|| t.provider.default_base_url().to_string());
            let provider = make_provider(t.provider, base, key, client.clone());
            slots.insert(
                name.clone(),
                Arc::new(Slot::new(
                    name.clone(),
                    t.provider,
                    provider,
                    t.model.clone(),
                    t.price,
                    breaker,
                )),
            );
        }
        let slot = |route: &str, target: &str| {
            slots
                .get(target)
                .cloned()
                .ok_or_else(|| ConfigError::UnknownTarget {
                    route: route.to_string(),
                    target: target.to_string(),
                })
        };
        let mut routes = BTreeMap::new();
        for (name, r) in &cfg.routes {
            let mut weighted = Vec::new();
            for w in r.targets.iter().filter(|w| w.weight > 0) {
                weighted.push((slot(name, &w.target)?, w.weight));
            }
            let mut fallback = Vec::new();
            for f in &r.fallback {
                fallback.push(slot(name, f)?);
            }
            routes.insert(
                name.clone(),
                Route {
                    weighted,
                    fallback,
                    policy: Policy::new(&cfg, Some(r)),
                },
            );
        }
        let mut endpoints = BTreeMap::new();
        for kind in ProviderKind::ALL {
            let from_env = config::env_endpoint(kind, env)
                .map(|(base, key)| make_provider(kind, base, key, client.clone()));
            let from_cfg = || {
                slots
                    .values()
                    .find(|s| s.kind == kind)
                    .map(|s| s.provider.clone())
            };
            if let Some(p) = from_env.or_else(from_cfg) {
                endpoints.insert(kind, p);
            }
        }
        Ok(Router {
            inner: Arc::new(Inner {
                slots,
                routes,
                endpoints,
                defaults: Policy::new(&cfg, None),
                sticky: Mutex::new(Sticky::default()),
            }),
        })
    }

    /// Nothing is configured: callers should use the offline agent.
    pub fn is_empty(&self) -> bool {
        self.inner.slots.is_empty() && self.inner.endpoints.is_empty()
    }

    /// The names a request may use: routes, then targets.
    pub fn models(&self) -> Vec<String> {
        self.inner
            .routes
            .keys()
            .chain(self.inner.slots.keys())
            .cloned()
            .collect()
    }

    /// A configured target's price, to turn [`crate::Usage`] into cost.
    pub fn price(&self, target: &str) -> Option<Price> {
        self.inner.slots.get(target).and_then(|s| s.price)
    }

    /// Every configured target's circuit, for `/health` and metrics.
    pub fn health(&self) -> Vec<TargetHealth> {
        let now = Instant::now();
        self.inner
            .slots
            .values()
            .map(|s| {
                let b = lock(&s.breaker);
                TargetHealth {
                    target: s.name.clone(),
                    provider: s.kind.name(),
                    model: s.model.clone(),
                    consecutive_failures: b.failures,
                    breaker: b.state(now),
                }
            })
            .collect()
    }

    /// Starts a streamed answer from `route_or_model`: a route, a target, or a
    /// `provider/model` pair served by that provider's environment-configured endpoint.
    /// `conversation` keeps a conversation on the target that last answered it while
    /// that target is healthy. Fails only before the first event, after retries and
    /// fallbacks; cancelling `cancel` (or dropping the stream) drops the upstream request.
    pub async fn stream(
        &self,
        route_or_model: &str,
        conversation: Option<&str>,
        req: ChatRequest,
        cancel: CancellationToken,
    ) -> Result<RoutedStream, LlmError> {
        if self.is_empty() {
            return Err(LlmError::NoTargets);
        }
        let (order, policy) = self.plan(route_or_model, conversation)?;
        let mut last = None;
        let mut attempts = 0;
        for slot in &order {
            let mut req = req.clone();
            req.model = slot.model.clone();
            for attempt in 0..=policy.retries {
                let Some(permit) = Permit::acquire(slot) else {
                    break;
                };
                attempts += 1;
                let result = tokio::select! {
                    biased;
                    () = cancel.cancelled() => return Err(LlmError::Cancelled),
                    r = first_event(&slot.provider, &req, policy.ttft) => r,
                };
                let err = match result {
                    Ok((first, rest)) => {
                        permit.succeed();
                        if let Some(c) = conversation {
                            lock(&self.inner.sticky).insert(c, &slot.name);
                        }
                        let events = Guarded::new(first, rest, cancel, policy.stall, slot.clone());
                        return Ok(RoutedStream {
                            target: slot.name.clone(),
                            provider: slot.kind.name(),
                            model: slot.model.clone(),
                            price: slot.price,
                            attempts,
                            events: events.boxed(),
                        });
                    }
                    Err(e) => e,
                };
                tracing::warn!(llm_target = %slot.name, attempt, code = err.code(), error = %err,
                    "model attempt failed before its first event");
                match classify(&err) {
                    Class::Fatal => {
                        permit.release();
                        return Err(err);
                    }
                    Class::NextTarget => {
                        permit.fail();
                        last = Some(err);
                        break;
                    }
                    Class::Retry => {
                        permit.fail();
                        let wait = (attempt < policy.retries)
                            .then(|| backoff(&policy, attempt, &err))
                            .flatten();
                        last = Some(err);
                        let Some(wait) = wait else { break };
                        tokio::select! {
                            biased;
                            () = cancel.cancelled() => return Err(LlmError::Cancelled),
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| LlmError::Unavailable(route_or_model.to_string())))
    }

    /// The candidates in the order to try them, and the retry policy.
    fn plan(
        &self,
        name: &str,
        conversation: Option<&str>,
    ) -> Result<(Vec<Arc<Slot>>, Policy), LlmError> {
        let inner = &self.inner;
        if let Some(route) = inner.routes.get(name) {
            let mut order = weighted_order(&route.weighted, &mut rand::rng());
            for f in &route.fallback {
                if !order.iter().any(|s| Arc::ptr_eq(s, f)) {
                    order.push(f.clone());
                }
            }
            let sticky = conversation.and_then(|c| lock(&inner.sticky).get(c));
            if let Some(t) = sticky
                && let Some(pos) = order.iter().position(|s| s.name == t)
                && lock(&order[pos].breaker).healthy()
            {
                let s = order.remove(pos);
                order.insert(0, s);
            }
            return Ok((order, route.policy));
        }
        if let Some(slot) = inner.slots.get(name) {
            return Ok((vec![slot.clone()], inner.defaults));
        }
        if let Some((p, model)) = name.split_once('/')
            && let Some(kind) = ProviderKind::parse(p)
            && let Some(provider) = inner.endpoints.get(&kind)
            && !model.is_empty()
        {
            let price = inner
                .slots
                .values()
                .find(|s| s.kind == kind && s.model == model)
                .and_then(|s| s.price);
            let slot = Slot::new(
                name.to_string(),
                kind,
                provider.clone(),
                model.to_string(),
                price,
                BreakerConfig {
                    failures: u32::MAX,
                    cooldown: Duration::ZERO,
                },
            );
            return Ok((vec![Arc::new(slot)], inner.defaults));
        }
        Err(LlmError::UnknownModel(name.to_string()))
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("targets", &self.inner.slots)
            .field("routes", &self.inner.routes)
            .field("endpoints", &self.inner.endpoints)
            .finish_non_exhaustive()
    }
}

fn make_provider(
    kind: ProviderKind,
    base_url: String,
    key: Option<Secret>,
    client: reqwest::Client,
) -> Provider {
    let key = key.map(|k| k.expose().to_string());
    match kind {
        ProviderKind::OpenAi => Provider::OpenAi(OpenAiChat::new(base_url, key, client)),
        ProviderKind::Anthropic => {
            Provider::Anthropic(AnthropicMessages::new(base_url, key, client))
        }
        ProviderKind::Gemini => Provider::Gemini(Gemini::new(base_url, key, client)),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends the request and waits for the first event, all within `ttft`.
async fn first_event(
    provider: &Provider,
    req: &ChatRequest,
    ttft: Duration,
) -> Result<(StreamEvent, EventStream), LlmError> {
    let start = async {
        let mut s = provider.stream(req).await?;
        match s.next().await {
            Some(Ok(ev)) => Ok((ev, s)),
            Some(Err(e)) => Err(e),
            None => Err(LlmError::Truncated),
        }
    };
    tokio::time::timeout(ttft, start)
        .await
        .unwrap_or(Err(LlmError::FirstTokenTimeout { ms: millis(ttft) }))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What a failure before the first event means for the plan.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// Transient: try the same target again after a backoff, then the next.
    Retry,
    /// This target cannot serve it (bad key, unknown model, garbled stream): next one.
    NextTarget,
    /// The request itself is at fault, or the caller gave up: stop.
    Fatal,
}

fn classify(e: &LlmError) -> Class {
    match e {
        LlmError::RateLimited { .. }
        | LlmError::Transport(_)
        | LlmError::FirstTokenTimeout { .. }
        | LlmError::Stalled { .. }
        | LlmError::Truncated => Class::Retry,
        LlmError::Status { status, .. } => match status {
            408 | 429 | 500.. => Class::Retry,
            401 | 403 | 404 => Class::NextTarget,
            _ => Class::Fatal,
        },
        LlmError::Protocol(_) => Class::NextTarget,
        LlmError::UnknownModel(_)
        | LlmError::NoTargets
        | LlmError::Unavailable(_)
        | LlmError::Cancelled => Class::Fatal,
    }
}

/// The wait before retry number `attempt + 1` on the same target: the provider's
/// `Retry-After` when it fits under the cap (None when it does not, so the plan moves
/// on), else exponential from the base with equal jitter.
fn backoff(p: &Policy, attempt: u32, e: &LlmError) -> Option<Duration> {
    if let LlmError::RateLimited {
        retry_after: Some(s),
    } = e
    {
        let d = Duration::from_secs(*s);
        return (d <= p.backoff_max).then_some(d);
    }
    let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
    let ms = millis(p.backoff_base.saturating_mul(factor).min(p.backoff_max));
    Some(Duration::from_millis(rand::rng().random_range(ms / 2..=ms)))
}

/// The weighted set in a weighted random order (sampling without replacement), so the
/// first entry is a weighted pick and the rest follow by weight.
fn weighted_order<R: Rng>(entries: &[(Arc<Slot>, u32)], rng: &mut R) -> Vec<Arc<Slot>> {
    let mut pool: Vec<&(Arc<Slot>, u32)> = entries.iter().filter(|(_, w)| *w > 0).collect();
    let mut out = Vec::with_capacity(pool.len());
    while !pool.is_empty() {
        let total: u64 = pool.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut x = rng.random_range(0..total);
        let pos = pool
            .iter()
            .position(|(_, w)| {
                let w = u64::from(*w);
                if x < w {
                    true
                } else {
                    x -= w;
                    false
                }
            })
            .unwrap_or(0);
        out.push(pool.remove(pos).0.clone());
    }
    out
}

#[derive(Debug, Clone, Copy)]
struct Policy {
    retries: u32,
    ttft: Duration,
    stall: Duration,
    backoff_base: Duration,
    backoff_max: Duration,
}

impl Policy {
    fn new(cfg: &LlmConfig, route: Option<&RouteConfig>) -> Self {
        let ms = |own: Option<u64>, top: u64| Duration::from_millis(own.unwrap_or(top));
        Policy {
            retries: route.and_then(|r| r.retries).unwrap_or(cfg.retries),
            ttft: ms(route.and_then(|r| r.ttft_timeout_ms), cfg.ttft_timeout_ms),
            stall: ms(route.and_then(|r| r.stall_timeout_ms), cfg.stall_timeout_ms),
            backoff_base: ms(route.and_then(|r| r.backoff_base_ms), cfg.backoff_base_ms),
            backoff_max: ms(route.and_then(|r| r.backoff_max_ms), cfg.backoff_max_ms),
        }
    }
}

#[derive(Debug)]
struct Route {
    weighted: Vec<(Arc<Slot>, u32)>,
    fallback: Vec<Arc<Slot>>,
    policy: Policy,
}

#[derive(Debug, Clone, Copy)]
struct BreakerConfig {
    failures: u32,
    cooldown: Duration,
}

/// A configured target with its circuit.
#[derive(Debug)]
struct Slot {
    name: String,
    kind: ProviderKind,
    provider: Provider,
    model: String,
    price: Option<Price>,
    breaker: Mutex<Breaker>,
}

impl Slot {
    fn new(
        name: String,
        kind: ProviderKind,
        provider: Provider,
        model: String,
        price: Option<Price>,
        cfg: BreakerConfig,
    ) -> Self {
        Slot {
            name,
            kind,
            provider,
            model,
            price,
            breaker: Mutex::new(Breaker {
                cfg,
                failures: 0,
                circuit: Circuit::Closed,
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Circuit {
    Closed,
    Open {
        until: Instant,
    },
    /// A trial is in flight; everyone else waits.
    HalfOpen,
}

/// Consecutive-failure circuit breaker: `failures` in a row open it for `cooldown`,
/// then one trial request decides between closed and open again.
#[derive(Debug)]
struct Breaker {
    cfg: BreakerConfig,
    failures: u32,
    circuit: Circuit,
}

impl Breaker {
    /// May a request go? `Some(true)` when it is the half-open trial.
    fn acquire(&mut self, now: Instant) -> Option<bool> {
        match self.circuit {
            Circuit::Closed => Some(false),
            Circuit::Open { until } if now >= until => {
                self.circuit = Circuit::HalfOpen;
                Some(true)
            }
            Circuit::Open { .. } | Circuit::HalfOpen => None,
        }
    }

    fn succeed(&mut self) {
        self.failures = 0;
        self.circuit = Circuit::Closed;
    }

    fn fail(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        if self.circuit == Circuit::HalfOpen || self.failures >= self.cfg.failures {
            self.circuit = Circuit::Open {
                until: now + self.cfg.cooldown,
            };
        }
    }

    /// A trial ended without a verdict (cancelled, or the request was at fault): let
    /// the next request try.
    fn release_trial(&mut self, now: Instant) {
        if self.circuit == Circuit::HalfOpen {
            self.circuit = Circuit::Open { until: now };
        }
    }

    fn healthy(&self) -> bool {
        self.circuit == Circuit::Closed
    }

    fn state(&self, now: Instant) -> BreakerState {
        match self.circuit {
            Circuit::Closed => BreakerState::Closed,
            Circuit::Open { until } => BreakerState::Open {
                retry_in_ms: millis(until.saturating_duration_since(now)),
            },
            Circuit::HalfOpen => BreakerState::HalfOpen,
        }
    }
}

/// Leave to send one attempt to a target; dropping it unsettled frees a half-open trial.
struct Permit {
    slot: Arc<Slot>,
    trial: bool,
    settled: bool,
}

impl Permit {
    fn acquire(slot: &Arc<Slot>) -> Option<Permit> {
        let trial = lock(&slot.breaker).acquire(Instant::now())?;
        Some(Permit {
            slot: slot.clone(),
            trial,
            settled: false,
        })
    }
    fn succeed(mut self) {
        self.settled = true;
        lock(&self.slot.breaker).succeed();
    }
    fn fail(mut self) {
        self.settled = true;
        lock(&self.slot.breaker).fail(Instant::now());
    }
    fn release(self) {}
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.settled && self.trial {
            lock(&self.slot.breaker).release_trial(Instant::now());
        }
    }
}

/// A started stream: the first event, then the rest, ended early by cancellation or by
/// going quiet for `stall`. A failure mid-stream counts against the target's circuit.
struct Guarded {
    first: Option<StreamEvent>,
    inner: Option<EventStream>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    stall: Duration,
    idle: Pin<Box<Sleep>>,
    slot: Arc<Slot>,
}

impl Guarded {
    fn new(
        first: StreamEvent,
        rest: EventStream,
        cancel: CancellationToken,
        stall: Duration,
        slot: Arc<Slot>,
    ) -> Self {
        Guarded {
            first: Some(first),
            inner: Some(rest),
            cancelled: Box::pin(cancel.cancelled_owned()),
            stall,
            idle: Box::pin(tokio::time::sleep(stall)),
            slot,
        }
    }

    fn end_with(&mut self, e: LlmError) -> Poll<Option<Result<StreamEvent, LlmError>>> {
        self.inner = None;
        if !matches!(e, LlmError::Cancelled) {
            lock(&self.slot.breaker).fail(Instant::now());
        }
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for Guarded {
    type Item = Result<StreamEvent, LlmError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(ev) = this.first.take() {
            return Poll::Ready(Some(Ok(ev)));
        }
        if this.cancelled.as_mut().poll(cx).is_ready() {
            return this.end_with(LlmError::Cancelled);
        }
        match inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(ev))) => {
                let deadline = Instant::now() + this.stall;
                this.idle.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(ev)))
            }
            Poll::Ready(Some(Err(e))) => this.end_with(e),
            Poll::Ready(None) => {
                this.inner = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.idle.as_mut().poll(cx).is_ready() {
                    let ms = millis(this.stall);
                    return this.end_with(LlmError::Stalled { ms });
                }
                Poll::Pending
            }
        }
    }
}

/// Conversation → target, bounded: two generations, the older dropped when the newer
/// fills, so recently used conversations stay.
#[derive(Debug, Default)]
struct Sticky {
    recent: HashMap<String, String>,
    older: HashMap<String, String>,
}

impl Sticky {
    fn get(&mut self, conversation: &str) -> Option<String> {
        if let Some(t) = self.recent.get(conversation) {
            return Some(t.clone());
        }
        let t = self.older.remove(conversation)?;
        self.insert(conversation, &t);
        Some(t)
    }

    fn insert(&mut self, conversation: &str, target: &str) {
        if self.recent.get(conversation).map(String::as_str) == Some(target) {
            return;
        }
        self.recent
            .insert(conversation.to_string(), target.to_string());
        if self.recent.len() >= STICKY_CAPACITY / 2 {
            self.older = std::mem::take(&mut self.recent);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.recent.len() + self.older.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn slot(name: &str, failures: u32, cooldown_ms: u64) -> Arc<Slot> {
        Arc::new(Slot::new(
            name.into(),
            ProviderKind::OpenAi,
            Provider::OpenAi(OpenAiChat::new(
                "http://127.0.0.1:9",
                None,
                reqwest::Client::new(),
            )),
            "m".into(),
            None,
            BreakerConfig {
                failures,
                cooldown: Duration::from_millis(cooldown_ms),
            },
        ))
    }

    #[test]
    fn weighted_picks_follow_the_weights_and_skip_zero() {
        let entries = vec![
            (slot("a", 1, 0), 60),
            (slot("b", 1, 0), 25),
            (slot("c", 1, 0), 15),
            (slot("z", 1, 0), 0),
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut firsts: HashMap<String, u32> = HashMap::new();
        for _ in 0..10_000 {
            let order = weighted_order(&entries, &mut rng);
            assert_eq!(
                order.len(),
                3,
                "weight 0 is never tried from the weighted set"
            );
            *firsts.entry(order[0].name.clone()).or_default() += 1;
        }
        let share = |n: &str| f64::from(firsts[n]) / 10_000.0;
        assert!((share("a") - 0.60).abs() < 0.03, "{firsts:?}");
        assert!((share("b") - 0.25).abs() < 0.03, "{firsts:?}");
        assert!((share("c") - 0.15).abs() < 0.03, "{firsts:?}");
    }

    #[test]
    fn breaker_opens_after_n_failures_and_lets_one_trial_through() {
        let s = slot("a", 3, 1_000);
        let t0 = Instant::now();
        let mut b = lock(&s.breaker);
        for _ in 0..2 {
            assert_eq!(b.acquire(t0), Some(false));
            b.fail(t0);
        }
        assert!(b.healthy());
        b.fail(t0);
        assert_eq!(b.state(t0), BreakerState::Open { retry_in_ms: 1_000 });
        assert_eq!(b.acquire(t0 + Duration::from_millis(999)), None);
        let later = t0 + Duration::from_millis(1_000);
        assert_eq!(b.acquire(later), Some(true), "one trial after the cooldown");
        assert_eq!(b.acquire(later), None, "and only one");
        b.fail(later);
        assert_eq!(b.state(later), BreakerState::Open { retry_in_ms: 1_000 });
        let again = later + Duration::from_millis(1_000);
        assert_eq!(b.acquire(again), Some(true));
        b.release_trial(again);
        assert_eq!(
            b.acquire(again),
            Some(true),
            "a trial without a verdict frees the slot"
        );
        b.succeed();
        assert_eq!(b.state(again), BreakerState::Closed);
        assert_eq!(b.failures, 0);
    }

    #[test]
    fn streams_can_be_spawned() {
        fn send<T: Send + 'static>(_: &T) {}
        let r = Router::new(&LlmConfig::default(), &HashMap::new()).unwrap();
        let req = ChatRequest {
            model: String::new(),
            messages: vec![],
            tools: vec![],
            max_tokens: None,
            temperature: None,
        };
        let fut = {
            let r = r.clone();
            async move {
                r.stream("default", Some("c"), req, CancellationToken::new())
                    .await
            }
        };
        send(&fut);
        send(&r);
    }

    #[test]
    fn health_serializes_flat() {
        let h = TargetHealth {
            target: "fast".into(),
            provider: "gemini",
            model: "m".into(),
            consecutive_failures: 5,
            breaker: BreakerState::Open { retry_in_ms: 1200 },
        };
        assert_eq!(
            serde_json::to_value(&h).unwrap(),
            serde_json::json!({"target": "fast", "provider": "gemini", "model": "m",
                "consecutive_failures": 5, "state": "open", "retry_in_ms": 1200})
        );
    }

    #[test]
    fn a_dropped_trial_permit_frees_the_trial() {
        let s = slot("a", 1, 0);
        lock(&s.breaker).fail(Instant::now());
        let p = Permit::acquire(&s).unwrap();
        assert!(p.trial);
        assert!(Permit::acquire(&s).is_none());
        drop(p);
        assert!(Permit::acquire(&s).is_some());
    }

    #[test]
    fn failures_are_classified() {
        let st = |status| LlmError::Status {
            status,
            body: String::new(),
        };
        assert_eq!(
            classify(&LlmError::RateLimited { retry_after: None }),
            Class::Retry
        );
        assert_eq!(classify(&st(503)), Class::Retry);
        assert_eq!(classify(&st(408)), Class::Retry);
        assert_eq!(
            classify(&LlmError::FirstTokenTimeout { ms: 1 }),
            Class::Retry
        );
        assert_eq!(classify(&st(401)), Class::NextTarget);
        assert_eq!(classify(&st(404)), Class::NextTarget);
        assert_eq!(classify(&LlmError::Protocol("x".into())), Class::NextTarget);
        assert_eq!(classify(&st(400)), Class::Fatal);
        assert_eq!(classify(&st(422)), Class::Fatal);
        assert_eq!(classify(&LlmError::Cancelled), Class::Fatal);
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after_under_the_cap() {
        let p = Policy {
            retries: 5,
            ttft: Duration::from_secs(1),
            stall: Duration::from_secs(1),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1_000),
        };
        let e = LlmError::Transport("refused".into());
        for _ in 0..100 {
            let d0 = backoff(&p, 0, &e).unwrap();
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
            let d2 = backoff(&p, 2, &e).unwrap();
            assert!(d2 >= Duration::from_millis(200) && d2 <= Duration::from_millis(400));
            let d9 = backoff(&p, 40, &e).unwrap();
            assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_millis(1_000));
        }
        let ra = |s| LlmError::RateLimited {
            retry_after: Some(s),
        };
        assert_eq!(backoff(&p, 0, &ra(1)), Some(Duration::from_secs(1)));
        assert_eq!(backoff(&p, 0, &ra(2)), None, "longer than the cap: move on");
    }

    #[test]
    fn sticky_map_stays_bounded_and_keeps_recent_entries() {
        let mut s = Sticky::default();
        for i in 0..(STICKY_CAPACITY * 3) {
            s.insert(&format!("c{i}"), "a");
            assert!(s.len() <= STICKY_CAPACITY);
        }
        let last = format!("c{}", STICKY_CAPACITY * 3 - 1);
        assert_eq!(s.get(&last).as_deref(), Some("a"));
        assert_eq!(s.get("c0"), None);
        s.insert(&last, "b");
        assert_eq!(s.get(&last).as_deref(), Some("b"));
    }
}
