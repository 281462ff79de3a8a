//! Conversations: the cart each one builds, its transcript (turns and tool calls) and
//! each tenant's agent profile.

use crate::{Result, Store, StoreError, now_ms, with_pool};
use serde::Serialize;
use sqlx::Row;
use stonepot_domain::{Category, TenantId};

/// One conversation's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationRecord {
    pub id: String,
    pub tenant_id: TenantId,
    pub category: Category,
    pub user_id: Option<String>,
    pub language: String,
    /// The cart as JSON text.
    #[serde(skip)]
    pub cart: String,
    /// Turns started so far.
    pub turns: u32,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One recorded tool call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallRow {
    pub call_id: String,
    pub position: u32,
    pub name: String,
    pub arguments: String,
    pub ok: bool,
    pub result: serde_json::Value,
}

/// One finished turn of the transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnRow {
    pub turn: u32,
    pub user_text: String,
    pub assistant_text: String,
    pub model: String,
    pub target: String,
    pub status: String,
    pub error: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub cost_micros: u64,
    pub ttft_ms: Option<u64>,
    pub latency_ms: u64,
    pub created_at: i64,
    pub tool_calls: Vec<ToolCallRow>,
    /// What speech added to the turn (transcript confidence, interruption, what the
    /// guest heard, latency ledger); `None` for typed turns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<serde_json::Value>,
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

macro_rules! conversation_row {
    ($r:expr) => {{
        let tenant: String = $r.try_get("tenant_id")?;
        let category: String = $r.try_get("category")?;
        ConversationRecord {
            id: $r.try_get("id")?,
            tenant_id: TenantId::new(&tenant).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            category: Category::parse(&category)
                .ok_or_else(|| StoreError::Corrupt(format!("category {category}")))?,
            user_id: $r.try_get("user_id")?,
            language: $r.try_get("language")?,
            cart: $r.try_get("cart")?,
            turns: u32::try_from($r.try_get::<i64, _>("turns")?).unwrap_or(0),
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
        }
    }};
}

/// Builds a [`ToolCallRow`] from a `tool_calls` row of either backend.
macro_rules! tool_row {
    ($r:expr) => {{
        let r = $r;
        let result: String = r.try_get("result")?;
        ToolCallRow {
            call_id: r.try_get("call_id")?,
            position: u32::try_from(r.try_get::<i64, _>("position")?).unwrap_or(0),
            name: r.try_get("name")?,
            arguments: r.try_get("arguments")?,
            ok: r.try_get("ok")?,
            result: serde_json::from_str(&result)?,
        }
    }};
}

/// Sets a conversation's cart: `$1` id, `$2` tenant, `$3` the cart's JSON, `$4` now.
pub(crate) const SET_CART: &str =
    "UPDATE conversations SET cart = $3, updated_at = $4 WHERE id = $1 AND tenant_id = $2";

impl Store {
    /// Creates a conversation, or returns the existing one when the id is taken by the
    /// same tenant (`false` = it already existed). Another tenant's id is a conflict.
    pub async fn create_conversation(
        &self,
        id: &str,
        tenant: &TenantId,
        category: Category,
        user_id: Option<&str>,
        language: &str,
        cart: &str,
    ) -> Result<(ConversationRecord, bool)> {
        self.write(async || {
        let now = now_ms();
        let inserted = with_pool!(self, |p| {
            query(
                "INSERT INTO conversations (id, tenant_id, category, user_id, language, cart, turns, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(tenant.as_str())
            .bind(category.as_str())
            .bind(user_id)
            .bind(language)
            .bind(cart)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
                == 1
        });
        if inserted {
            // The row is exactly what was inserted: no need to read it back.
            return Ok((
                ConversationRecord {
                    id: id.to_string(),
                    tenant_id: tenant.clone(),
                    category,
                    user_id: user_id.map(str::to_string),
                    language: language.to_string(),
                    cart: cart.to_string(),
                    turns: 0,
                    created_at: now,
                    updated_at: now,
                },
                true,
            ));
        }
        let rec = self
            .conversation(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("conversation {id}")))?;
        if rec.tenant_id != *tenant {
            return Err(StoreError::Conflict(format!(
                "conversation {id} belongs to another tenant"
            )));
        }
        Ok((rec, inserted))
        }).await
    }

    /// A conversation by id (any tenant: callers check the tenant before acting).
    pub async fn conversation(&self, id: &str) -> Result<Option<ConversationRecord>> {
        with_pool!(self, |p| {
            let row = query(
                "SELECT id, tenant_id, category, user_id, language, cart, turns, created_at, updated_at \
                 FROM conversations WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(p)
            .await?;
            Ok(match row {
                Some(r) => Some(conversation_row!(r)),
                None => None,
            })
        })
    }

    /// Starts the next turn and returns its number (1, 2, …).
    pub async fn begin_turn(&self, tenant: &TenantId, id: &str) -> Result<u32> {
        self.write(async || {
            let n: i64 = with_pool!(self, |p| {
                query(
                    "UPDATE conversations SET turns = turns + 1, updated_at = $3 \
                 WHERE id = $1 AND tenant_id = $2 RETURNING turns",
                )
                .bind(id)
                .bind(tenant.as_str())
                .bind(now_ms())
                .fetch_optional(p)
                .await?
                .map(|r| r.try_get("turns"))
                .transpose()?
                .ok_or_else(|| StoreError::NotFound(format!("conversation {id}")))?
            });
            u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("turn number {n}")))
        })
        .await
    }

    /// The call recorded under (conversation, turn, call id), if any.
    pub async fn tool_call(
        &self,
        tenant: &TenantId,
        id: &str,
        turn: u32,
        call_id: &str,
    ) -> Result<Option<ToolCallRow>> {
        with_pool!(self, |p| {
            let row = query(
                "SELECT call_id, position, name, arguments, ok, result FROM conversation_tool_calls \
                 WHERE tenant_id = $1 AND conversation_id = $2 AND turn = $3 AND call_id = $4",
            )
            .bind(tenant.as_str())
            .bind(id)
            .bind(i64::from(turn))
            .bind(call_id)
            .fetch_optional(p)
            .await?;
            Ok(match row {
                Some(r) => Some(tool_row!(&r)),
                None => None,
            })
        })
    }

    /// Records a tool call and, when given, the conversation's new cart — both or
    /// neither. Returns `false` (and changes nothing) when the call was already recorded.
    pub async fn record_tool_call(
        &self,
        tenant: &TenantId,
        id: &str,
        turn: u32,
        call: &ToolCallRow,
        cart: Option<&str>,
    ) -> Result<bool> {
        self.write(async || {
        let now = now_ms();
        let result = serde_json::to_string(&call.result)?;
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let fresh = query(
                "INSERT INTO conversation_tool_calls \
                 (conversation_id, turn, call_id, tenant_id, position, name, arguments, ok, result, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (conversation_id, turn, call_id) DO NOTHING",
            )
            .bind(id)
            .bind(i64::from(turn))
            .bind(&call.call_id)
            .bind(tenant.as_str())
            .bind(i64::from(call.position))
            .bind(&call.name)
            .bind(&call.arguments)
            .bind(call.ok)
            .bind(&result)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if fresh && let Some(cart) = cart {
                query(SET_CART)
                .bind(id)
                .bind(tenant.as_str())
                .bind(cart)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(fresh)
        })
        }).await
    }

    /// Replaces the conversation's cart (e.g. emptied once its order is placed).
    pub async fn set_conversation_cart(
        &self,
        tenant: &TenantId,
        id: &str,
        cart: &str,
    ) -> Result<()> {
        self.write(async || {
            with_pool!(self, |p| {
                let done = query(SET_CART)
                    .bind(id)
                    .bind(tenant.as_str())
                    .bind(cart)
                    .bind(now_ms())
                    .execute(p)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("conversation {id}")));
                }
                Ok(())
            })
        })
        .await
    }

    /// Stores a finished (or failed, or cancelled) turn.
    pub async fn save_turn(&self, tenant: &TenantId, id: &str, t: &TurnRow) -> Result<()> {
        // Spoken turns whose voice record is known when they end are stored in one write.
        let voice = t.voice.as_ref().map(serde_json::to_string).transpose()?;
        self.write(async || {
        with_pool!(self, |p| {
            query(
                "INSERT INTO conversation_turns (conversation_id, turn, tenant_id, user_text, assistant_text, \
                 model, target, status, error, input_tokens, output_tokens, cached_tokens, cost_micros, \
                 ttft_ms, latency_ms, created_at, voice) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
                 ON CONFLICT (conversation_id, turn) DO NOTHING",
            )
            .bind(id)
            .bind(i64::from(t.turn))
            .bind(tenant.as_str())
            .bind(&t.user_text)
            .bind(&t.assistant_text)
            .bind(&t.model)
            .bind(&t.target)
            .bind(&t.status)
            .bind(&t.error)
            .bind(i(t.input_tokens))
            .bind(i(t.output_tokens))
            .bind(i(t.cached_tokens))
            .bind(i(t.cost_micros))
            .bind(t.ttft_ms.map(i))
            .bind(i(t.latency_ms))
            .bind(now_ms())
            .bind(&voice)
            .execute(p)
            .await?;
            Ok(())
        })
        }).await
    }

    /// Records what speech added to a stored turn and, when the guest interrupted the
    /// spoken reply, replaces its assistant text with what they heard (so the history
    /// replayed to the model holds only that). `false`: no such turn.
    pub async fn set_turn_voice(
        &self,
        tenant: &TenantId,
        id: &str,
        turn: u32,
        heard: Option<&str>,
        voice: &serde_json::Value,
    ) -> Result<bool> {
        let voice = serde_json::to_string(voice)?;
        let n = self.write(async || with_pool!(self, |p| {
            let r = query(
                "UPDATE conversation_turns SET voice = $1, assistant_text = COALESCE($2, assistant_text) \
                 WHERE tenant_id = $3 AND conversation_id = $4 AND turn = $5",
            )
            .bind(&voice)
            .bind(heard)
            .bind(tenant.as_str())
            .bind(id)
            .bind(i64::from(turn))
            .execute(p)
            .await?;
            Ok::<u64, StoreError>(r.rows_affected())
        }))
        .await?;
        Ok(n == 1)
    }

    /// The transcript: every stored turn with its tool calls, oldest first.
    pub async fn turns(&self, tenant: &TenantId, id: &str) -> Result<Vec<TurnRow>> {
        let mut out = with_pool!(self, |p| {
            let rows = query(
                "SELECT turn, user_text, assistant_text, model, target, status, error, input_tokens, \
                 output_tokens, cached_tokens, cost_micros, ttft_ms, latency_ms, created_at, voice \
                 FROM conversation_turns WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY turn",
            )
            .bind(tenant.as_str())
            .bind(id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(TurnRow {
                    turn: u32::try_from(r.try_get::<i64, _>("turn")?).unwrap_or(0),
                    user_text: r.try_get("user_text")?,
                    assistant_text: r.try_get("assistant_text")?,
                    model: r.try_get("model")?,
                    target: r.try_get("target")?,
                    status: r.try_get("status")?,
                    error: r.try_get("error")?,
                    input_tokens: u(r.try_get("input_tokens")?),
                    output_tokens: u(r.try_get("output_tokens")?),
                    cached_tokens: u(r.try_get("cached_tokens")?),
                    cost_micros: u(r.try_get("cost_micros")?),
                    ttft_ms: r.try_get::<Option<i64>, _>("ttft_ms")?.map(u),
                    latency_ms: u(r.try_get("latency_ms")?),
                    created_at: r.try_get("created_at")?,
                    tool_calls: Vec::new(),
                    voice: r
                        .try_get::<Option<String>, _>("voice")?
                        .map(|v| serde_json::from_str(&v))
                        .transpose()?,
                });
            }
            Ok::<_, StoreError>(out)
        })?;
        for (turn, call) in self.tool_calls(tenant, id).await? {
            if let Some(t) = out.iter_mut().find(|t| t.turn == turn) {
                t.tool_calls.push(call);
            }
        }
        Ok(out)
    }

    /// Every recorded tool call of the conversation with its turn number, in order: what
    /// an order needs to link its lines to the calls that added them, without the turns.
    pub async fn tool_calls(&self, tenant: &TenantId, id: &str) -> Result<Vec<(u32, ToolCallRow)>> {
        with_pool!(self, |p| {
            let rows = query(
                "SELECT turn, call_id, position, name, arguments, ok, result FROM conversation_tool_calls \
                 WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY turn, position",
            )
            .bind(tenant.as_str())
            .bind(id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let turn = u32::try_from(r.try_get::<i64, _>("turn")?).unwrap_or(0);
                out.push((turn, tool_row!(r)));
            }
            Ok(out)
        })
    }

    /// The tenant's agent persona and instructions, if set.
    pub async fn agent_profile(&self, tenant: &TenantId) -> Result<Option<(String, String)>> {
        with_pool!(self, |p| {
            let row =
                query("SELECT persona, instructions FROM agent_profiles WHERE tenant_id = $1")
                    .bind(tenant.as_str())
                    .fetch_optional(p)
                    .await?;
            Ok(match row {
                Some(r) => Some((r.try_get("persona")?, r.try_get("instructions")?)),
                None => None,
            })
        })
    }

    /// Sets the tenant's agent persona and instructions.
    pub async fn set_agent_profile(
        &self,
        tenant: &TenantId,
        persona: &str,
        instructions: &str,
    ) -> Result<()> {
        self.write(async || {
        with_pool!(self, |p| {
            query(
                "INSERT INTO agent_profiles (tenant_id, persona, instructions, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id) DO UPDATE SET persona = excluded.persona, \
                 instructions = excluded.instructions, updated_at = excluded.updated_at",
            )
            .bind(tenant.as_str())
            .bind(persona)
            .bind(instructions)
            .bind(now_ms())
            .execute(p)
            .await?;
            Ok(())
        })
        }).await
    }
}
