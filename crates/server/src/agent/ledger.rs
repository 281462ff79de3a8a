//! The durable side of a turn: tool calls and the cart in the store (one transaction),
//! display updates through the hub's ordered log.

use crate::display::Hub;
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use stonepot_agent::DisplayOp;
use stonepot_agent::turn::{Ledger, RecordedCall, TurnRecord};
use stonepot_domain::{Cart, TenantId};
use stonepot_store::{Store, ToolCallRow};

pub struct StoreLedger {
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
        for op in ops {
            self.hub
                .update(&self.conversation, op.clone().into())
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
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
