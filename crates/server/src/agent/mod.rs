//! Conversations on the server: creating them (with their display session), running
//! one turn at a time per conversation, and the durable side of each turn — the store
//! for tool calls, cart and transcript, the display hub for what the guest sees.

mod ledger;
pub mod model;
mod persona;
pub mod theme;

use crate::display::Hub;
use ledger::StoreLedger;
pub use persona::{default_persona, welcome};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use stonepot_agent::turn::{self, Model, TurnEvent, TurnInput, TurnRecord};
use stonepot_agent::{DisplayOp, Workspace};
use stonepot_domain::{Cart, Category, Tenant, TenantId};
use stonepot_store::{ConversationRecord, Store, StoreError, TurnRow};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The longest guest message accepted, in characters.
pub const MAX_TEXT: usize = 4_000;
/// Why a guest message was refused before any turn started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextProblem {
    #[error("text: must not be empty")]
    Empty,
    #[error("text: at most {MAX_TEXT} characters")]
    TooLong,
}

/// The one check every way in (socket, SSE, engine) applies to a guest message.
pub fn check_text(text: &str) -> Result<(), TextProblem> {
    if text.trim().is_empty() {
        return Err(TextProblem::Empty);
    }
    if text.chars().count() > MAX_TEXT {
        return Err(TextProblem::TooLong);
    }
    Ok(())
}

/// How many earlier turns are replayed to the model.
pub const HISTORY_TURNS: usize = 20;

/// Why a conversation action was refused.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no conversation '{0}'")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("conversation '{0}' belongs to another tenant")]
    OtherTenant(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("display: {0}")]
    Display(String),
    /// A dependency the display log needs (NATS) is down; nothing was committed.
    #[error("{0}")]
    Unavailable(String),
    /// A tool call could not be recorded or shown (store or display log failure).
    #[error("tool call failed: {0}")]
    Tool(String),
}

impl From<crate::display::HubError> for EngineError {
    fn from(e: crate::display::HubError) -> Self {
        match e {
            crate::display::HubError::Unavailable(m) => EngineError::Unavailable(m),
            crate::display::HubError::Store(s) => EngineError::Store(s),
            other => EngineError::Display(other.to_string()),
        }
    }
}

/// Runs conversations.
pub struct Engine {
    store: Store,
    metrics: Arc<crate::metrics::Metrics>,
    hub: Arc<Hub>,
    model: Option<Arc<dyn Model>>,
    /// One lock per busy conversation, so its turns run one after another.
    busy: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Engine {
    pub fn new(
        store: Store,
        hub: Arc<Hub>,
        model: Option<Arc<dyn Model>>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<Engine> {
        Arc::new(Engine {
            store,
            metrics,
            hub,
            model,
            busy: Mutex::new(HashMap::new()),
        })
    }

    /// The configured model, if any.
    pub fn model(&self) -> Option<&dyn Model> {
        self.model.as_deref()
    }

    /// Whether a model is configured (otherwise every turn is the offline agent's).
    pub fn has_model(&self) -> bool {
        self.model.is_some()
    }

    /// Creates a conversation and its display session (idempotent for the same tenant).
    pub async fn create(
        &self,
        id: &str,
        tenant: &Tenant,
        user_id: Option<&str>,
        language: &str,
    ) -> Result<ConversationRecord, EngineError> {
        let init = json!({
            "tenantId": tenant.id.as_str(),
            "category": tenant.category.as_str(),
            "userId": user_id,
            "language": language,
        });
        self.hub
            .init(id, &tenant.id, tenant.category, &init)
            .await
            .map_err(|e| match e {
                crate::display::HubError::OtherTenant { .. } => EngineError::OtherTenant(id.into()),
                other => other.into(),
            })?;
        let cart = serde_json::to_string(&Cart::new()).map_err(StoreError::from)?;
        let (rec, created) = self
            .store
            .create_conversation(id, &tenant.id, tenant.category, user_id, language, &cart)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => EngineError::OtherTenant(id.into()),
                other => other.into(),
            })?;
        if created {
            let welcome = persona::welcome(tenant);
            let body = DisplayOp::put("message", "welcome", json!({"text": welcome}));
            self.hub
                .update(id, body.into())
                .await
                .map_err(EngineError::from)?;
        }
        Ok(rec)
    }

    /// Waits for and holds the conversation's turn lock: while the guard lives no turn
    /// of `id` runs and no other holder changes its cart. The storefront's cart routes
    /// and order confirmation take it, so a tap and an agent turn never overwrite each
    /// other's change (each re-reads the cart under the lock).
    pub async fn lock(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.lock_for(id).lock_owned().await
    }

    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy.retain(|_, l| Arc::strong_count(l) > 1);
        busy.entry(id.to_string()).or_default().clone()
    }

    /// Runs one turn of `conv`: events go to `tx`, the turn is stored whatever happens
    /// (done, failed or cancelled). Turns of one conversation never overlap.
    #[tracing::instrument(name = "agent_turn", skip_all, fields(conversation = %conversation))]
    pub async fn run(
        &self,
        app: &crate::app::App,
        conversation: &str,
        text: &str,
        tx: mpsc::Sender<TurnEvent>,
        cancel: CancellationToken,
    ) -> Result<TurnRecord, EngineError> {
        check_text(text).map_err(|p| EngineError::Invalid(p.to_string()))?;
        let text = text.trim();
        let lock = self.lock_for(conversation);
        let _turn_guard = tokio::select! {
            g = lock.lock() => g,
            () = cancel.cancelled() => return Err(EngineError::Invalid("cancelled before it started".into())),
        };
        // Read under the lock: the previous turn may have changed the cart.
        let (conv, tenant, mut ws) = self.current(conversation).await?;
        let turn_no = self.store.begin_turn(&conv.tenant_id, &conv.id).await?;
        // The first turn has no history to load (turn numbers are handed out by
        // `begin_turn`, so no earlier turn can be stored).
        let past = if turn_no <= 1 {
            Vec::new()
        } else {
            self.store.turns(&conv.tenant_id, &conv.id).await?
        };
        let keep = past.len().saturating_sub(HISTORY_TURNS);
        let history = turn::history(&past.iter().skip(keep).map(to_record).collect::<Vec<_>>());
        let profile = self.store.agent_profile(&tenant.id).await?;
        let input = TurnInput {
            conversation: conv.id.clone(),
            turn: turn_no,
            system: persona::system_prompt(&tenant, profile.as_ref(), &ws),
            history,
            user_text: text.to_string(),
        };
        let ledger = self.ledger(app, &conv, 0);
        let rec =
            turn::run_turn(&mut ws, self.model.as_deref(), &ledger, input, &tx, &cancel).await;
        // The ledger's `finish` stored the turn; only a turn it could not store (or
        // one that failed on the way) is written again here, so every turn is stored
        // whatever happened without a second durable write on the common path.
        if rec.status != turn::TurnStatus::Ok {
            self.store
                .save_turn(&conv.tenant_id, &conv.id, &to_row(&rec))
                .await?;
        }
        Ok(rec)
    }

    /// What a realtime speech model is told for `conv`: the same system prompt and tools
    /// as the text agent, plus the conversation so far (newest `context_chars` of it), so
    /// a guest who typed first and then speaks goes on in the same conversation.
    pub async fn voice_setup(
        &self,
        conv: &ConversationRecord,
        context_chars: usize,
    ) -> Result<(String, Vec<stonepot_llm::ToolSpec>), EngineError> {
        let (conv, tenant, ws) = self.current(&conv.id).await?;
        let profile = self.store.agent_profile(&tenant.id).await?;
        let mut prompt = persona::system_prompt(&tenant, profile.as_ref(), &ws);
        prompt.push_str(
            "\nYou are speaking with the guest: keep replies short and natural to hear, \
             and read prices as words.\n",
        );
        let turns = self.store.turns(&conv.tenant_id, &conv.id).await?;
        let mut lines: Vec<String> = Vec::new();
        let mut used = 0;
        for t in turns.iter().rev() {
            let mut add = |who: &str, text: &str| {
                if !text.trim().is_empty() && used < context_chars {
                    used += text.len();
                    lines.push(format!("{who}: {}", text.trim()));
                }
            };
            add("You", &t.assistant_text);
            add("Guest", &t.user_text);
        }
        if !lines.is_empty() {
            lines.reverse();
            prompt.push_str("\nThe conversation so far:\n");
            prompt.push_str(&lines.join("\n"));
            prompt.push('\n');
        }
        Ok((prompt, ws.specs()))
    }

    /// Opens a turn for speech the realtime model answers: its number, under which its
    /// tool calls are recorded (the turn row itself is stored when it ends).
    pub async fn begin_voice_turn(&self, conv: &ConversationRecord) -> Result<u32, EngineError> {
        Ok(self.store.begin_turn(&conv.tenant_id, &conv.id).await?)
    }

    /// Runs one tool call a realtime speech model made during voice turn `turn`, exactly
    /// as the text agent runs it: under the conversation's turn lock, on the cart as
    /// stored, recorded once per (turn, call id) with the cart it left, then shown on the
    /// display. `position` orders it among the turn's calls in the transcript.
    #[tracing::instrument(name = "voice_tool", skip_all, fields(conversation = %conv.id, tool = %name))]
    #[expect(clippy::too_many_arguments, reason = "one call and where it belongs")]
    pub async fn run_tool(
        &self,
        app: &crate::app::App,
        conv: &ConversationRecord,
        turn: u32,
        position: u32,
        call_id: &str,
        name: &str,
        arguments: &str,
    ) -> Result<turn::RecordedCall, EngineError> {
        let _turn_guard = self.lock(&conv.id).await;
        let (conv, _, mut ws) = self.current(&conv.id).await?;
        let ledger = self.ledger(app, &conv, position);
        turn::run_call(&mut ws, &ledger, turn, call_id, name, arguments)
            .await
            .map_err(EngineError::Tool)
    }

    /// The conversation as stored now, its tenant, and the agent's workspace over them
    /// (menu, cart, pending quote): what every turn, voice set-up and tool call starts from.
    async fn current(
        &self,
        id: &str,
    ) -> Result<(ConversationRecord, Tenant, Workspace), EngineError> {
        let conv = self.conversation(id).await?;
        let tenant = self
            .store
            .tenant(&conv.tenant_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(conv.tenant_id.to_string()))?;
        let ws = self.workspace(&tenant, &conv).await?;
        Ok((conv, tenant, ws))
    }

    /// The store-and-display side of `conv`'s tool calls, numbering them from `position`.
    fn ledger(
        &self,
        app: &crate::app::App,
        conv: &ConversationRecord,
        position: u32,
    ) -> StoreLedger {
        StoreLedger {
            app: app.clone(),
            store: self.store.clone(),
            hub: self.hub.clone(),
            tenant: conv.tenant_id.clone(),
            conversation: conv.id.clone(),
            position: position.into(),
            metrics: self.metrics.clone(),
        }
    }

    async fn workspace(
        &self,
        tenant: &Tenant,
        conv: &ConversationRecord,
    ) -> Result<Workspace, EngineError> {
        Ok(match conv.category {
            Category::Restaurant => Workspace::Restaurant {
                menu: self.store.menu(&tenant.id).await?,
                cart: serde_json::from_str(&conv.cart).map_err(StoreError::from)?,
                currency: tenant.currency,
                quote: self.pending_quote(conv).await?,
            },
            Category::Financial => Workspace::Financial {
                book: Arc::new(self.store.book(&tenant.id).await?),
                currency: tenant.currency,
            },
        })
    }

    /// The conversation's latest quote while a yes can still place it: not expired and
    /// not ordered yet.
    async fn pending_quote(
        &self,
        conv: &ConversationRecord,
    ) -> Result<Option<stonepot_agent::PendingQuote>, EngineError> {
        let Some(stored) = self.store.latest_quote(&conv.tenant_id, &conv.id).await? else {
            return Ok(None);
        };
        let q = stored.quote;
        if q.expires_at <= crate::commerce::now()
            || self
                .store
                .order_for_quote(&conv.tenant_id, &q.id)
                .await?
                .is_some()
        {
            return Ok(None);
        }
        Ok(Some(stonepot_agent::PendingQuote {
            read_back: q.read_back(),
            hash: q.hash,
        }))
    }

    /// The conversation with its cart and transcript, for `GET /api/conversations/{id}`.
    pub async fn transcript(&self, conv: &ConversationRecord) -> Result<Value, EngineError> {
        let turns = self.store.turns(&conv.tenant_id, &conv.id).await?;
        let cart: Value = serde_json::from_str(&conv.cart).map_err(StoreError::from)?;
        let cost: u64 = turns.iter().map(|t| t.cost_micros).sum();
        Ok(json!({
            "id": conv.id,
            "tenantId": conv.tenant_id.as_str(),
            "category": conv.category.as_str(),
            "userId": conv.user_id,
            "language": conv.language,
            "createdAt": conv.created_at,
            "cart": if conv.category == Category::Restaurant { cart } else { Value::Null },
            "costMicros": cost,
            "turns": turns,
        }))
    }

    pub async fn conversation(&self, id: &str) -> Result<ConversationRecord, EngineError> {
        self.store
            .conversation(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(id.into()))
    }

    pub fn tenant_id_of(conv: &ConversationRecord) -> &TenantId {
        &conv.tenant_id
    }
}

pub(crate) fn to_row(r: &TurnRecord) -> TurnRow {
    TurnRow {
        turn: r.turn,
        user_text: r.user_text.clone(),
        assistant_text: r.assistant_text.clone(),
        model: r.model.clone(),
        target: r.target.clone(),
        status: r.status.as_str().into(),
        error: r.error.clone(),
        input_tokens: r.usage.input_tokens,
        output_tokens: r.usage.output_tokens,
        cached_tokens: r.usage.cached_input_tokens,
        cost_micros: r.cost_micros,
        ttft_ms: r.ttft_ms,
        latency_ms: r.latency_ms,
        created_at: 0,
        tool_calls: r
            .tool_calls
            .iter()
            .zip(0u32..)
            .map(|(c, i)| stonepot_store::ToolCallRow {
                call_id: c.id.clone(),
                position: i,
                name: c.name.clone(),
                arguments: c.arguments.clone(),
                ok: c.ok,
                result: c.result.clone(),
            })
            .collect(),
        voice: None,
    }
}

fn to_record(r: &TurnRow) -> TurnRecord {
    TurnRecord {
        turn: r.turn,
        user_text: r.user_text.clone(),
        assistant_text: r.assistant_text.clone(),
        tool_calls: r
            .tool_calls
            .iter()
            .map(|c| turn::RecordedCall {
                id: c.call_id.clone(),
                name: c.name.clone(),
                arguments: c.arguments.clone(),
                ok: c.ok,
                result: c.result.clone(),
            })
            .collect(),
        model: r.model.clone(),
        target: r.target.clone(),
        usage: Default::default(),
        cost_micros: r.cost_micros,
        ttft_ms: r.ttft_ms,
        latency_ms: r.latency_ms,
        status: turn::TurnStatus::Ok,
        error: r.error.clone(),
    }
}
