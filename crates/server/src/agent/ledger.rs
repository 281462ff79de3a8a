//! The durable side of a turn: tool calls and the cart in the store (one transaction),
//! display updates through the hub's ordered log.

use crate::display::Hub;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use stonepot_agent::DisplayOp;
use stonepot_agent::ToolOutcome;
use stonepot_agent::turn::{Ledger, RecordedCall, ServerOutcome, TurnRecord};
use stonepot_domain::commerce::order::{Actor, PaymentMethod};
use stonepot_domain::commerce::quote::Tip;
use stonepot_domain::{Cart, TenantId};
use stonepot_store::{Store, ToolCallRow};

pub struct StoreLedger {
    /// For the server tools (quotes and orders go through [`crate::commerce`]).
    pub app: crate::app::App,
    pub store: Store,
    pub hub: Arc<Hub>,
    pub tenant: TenantId,
    pub conversation: String,
    /// Position of the next call within the turn (for the transcript's order).
    pub position: AtomicU32,
    pub metrics: Arc<crate::metrics::Metrics>,
}

#[async_trait]
impl Ledger for StoreLedger {
    async fn recorded(&self, turn: u32, call_id: &str) -> Result<Option<RecordedCall>, String> {
        let row = self
            .store
            .tool_call(&self.tenant, &self.conversation, turn, call_id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.map(|r| RecordedCall {
            id: r.call_id,
            name: r.name,
            arguments: r.arguments,
            ok: r.ok,
            result: r.result,
        }))
    }

    async fn record(
        &self,
        turn: u32,
        call: &RecordedCall,
        cart: Option<&Cart>,
    ) -> Result<(), String> {
        let cart = cart
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| e.to_string())?;
        let row = ToolCallRow {
            call_id: call.id.clone(),
            position: self.position.fetch_add(1, Ordering::Relaxed),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
            ok: call.ok,
            result: call.result.clone(),
        };
        self.store
            .record_tool_call(
                &self.tenant,
                &self.conversation,
                turn,
                &row,
                cart.as_deref(),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn show(&self, ops: &[DisplayOp]) -> Result<(), String> {
        // Queued together: one batch, one durable write for all of the turn's changes.
        let cmds = ops.iter().cloned().map(Into::into).collect();
        for shown in self.hub.update_all(&self.conversation, cmds).await {
            shown.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn server_tool(
        &self,
        turn: u32,
        call_id: &str,
        name: &str,
        arguments: &Value,
    ) -> Result<ServerOutcome, String> {
        let refuse = |code: &str, message: String| ServerOutcome {
            outcome: ToolOutcome::refused(code, message),
            cart: None,
        };
        // Re-read: earlier calls of this turn may have changed the cart.
        let conv = match self.store.conversation(&self.conversation).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(format!("conversation {} is gone", self.conversation)),
            Err(e) => return Err(e.to_string()),
        };
        match name {
            "quote_order" => {
                let args: QuoteArgs = match serde_json::from_value(arguments.clone()) {
                    Ok(a) => a,
                    Err(e) => return Ok(refuse("invalid_arguments", e.to_string())),
                };
                let tip = match (args.tip_percent, args.tip_amount) {
                    (Some(_), Some(_)) => {
                        return Ok(refuse(
                            "invalid_arguments",
                            "give tip_percent or tip_amount, not both".into(),
                        ));
                    }
                    (Some(p), None) => Tip::Percent {
                        bps: p.saturating_mul(100),
                    },
                    (None, Some(minor)) => Tip::Amount { minor },
                    (None, None) => Tip::None,
                };
                match crate::commerce::fresh_quote(&self.app, &conv, tip).await {
                    Ok(q) => Ok(ServerOutcome {
                        outcome: ToolOutcome::ok(crate::commerce::quote_body(&q), Vec::new()),
                        cart: None,
                    }),
                    Err(e) if e.status.is_client_error() => Ok(refuse(e.code, e.message)),
                    Err(e) => Err(e.message),
                }
            }
            "confirm_order" => {
                let args: ConfirmArgs = match serde_json::from_value(arguments.clone()) {
                    Ok(a) => a,
                    Err(e) => return Ok(refuse("invalid_arguments", e.to_string())),
                };
                let order_type =
                    match crate::commerce::placing::order_type(args.order_type.as_deref()) {
                        Ok(t) => t,
                        Err(e) => return Ok(refuse(e.code, e.message)),
                    };
                let confirmation = crate::commerce::Confirmation {
                    quote_hash: args.quote_hash,
                    order_type,
                    payment: PaymentMethod::Counter,
                    by: Actor::Agent {
                        session_id: conv.id.clone(),
                        tool_call_id: Some(call_id.to_string()),
                    },
                    turn: Some(turn),
                    tool_call_id: Some(call_id.to_string()),
                };
                match crate::commerce::confirm(&self.app, &conv, &confirmation).await {
                    Ok(placed) => {
                        let ticket = self
                            .store
                            .ticket(&self.tenant, &placed.order.id)
                            .await
                            .map_err(|e| e.to_string())?;
                        let o = &placed.order;
                        Ok(ServerOutcome {
                            outcome: ToolOutcome::ok(
                                json!({
                                    "orderId": o.id.as_str(),
                                    "status": o.status.as_str(),
                                    "total": o.total,
                                    "currency": o.currency.code(),
                                    "ticket": ticket.map(|t| t.number),
                                    "note": "Please pay at the counter.",
                                }),
                                Vec::new(),
                            ),
                            cart: placed.new.then_some(placed.cart),
                        })
                    }
                    Err(crate::commerce::placing::Refused::Stale { error, fresh }) => {
                        let mut err = json!({"code": error.code, "message": error.message});
                        if let Some(q) = fresh {
                            err["freshQuote"] = crate::commerce::quote_body(&q);
                        }
                        Ok(ServerOutcome {
                            outcome: ToolOutcome::refused_with(err),
                            cart: None,
                        })
                    }
                    Err(crate::commerce::placing::Refused::Other(e))
                        if e.status.is_client_error() =>
                    {
                        Ok(refuse(e.code, e.message))
                    }
                    Err(crate::commerce::placing::Refused::Other(e)) => Err(e.message),
                }
            }
            other => Ok(refuse("unknown_tool", format!("no server tool '{other}'"))),
        }
    }

    async fn finish(&self, turn: &TurnRecord) -> Result<(), String> {
        self.metrics.observe_turn(&crate::metrics::TurnSample {
            target: &turn.target,
            status: turn.status.as_str(),
            took: std::time::Duration::from_millis(turn.latency_ms),
            first_token: turn.ttft_ms.map(std::time::Duration::from_millis),
            input_tokens: turn.usage.input_tokens,
            output_tokens: turn.usage.output_tokens,
            cached_tokens: turn.usage.cached_input_tokens,
            cost_micros: turn.cost_micros,
        });
        self.store
            .save_turn(&self.tenant, &self.conversation, &super::to_row(turn))
            .await
            .map_err(|e| e.to_string())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuoteArgs {
    #[serde(default)]
    tip_percent: Option<u32>,
    #[serde(default)]
    tip_amount: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmArgs {
    quote_hash: String,
    #[serde(default)]
    order_type: Option<String>,
}
