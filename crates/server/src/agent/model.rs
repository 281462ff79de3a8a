//! The router as the conversation engine's model: every turn goes through the route
//! named by `[agent] route`, sticky per conversation.

use async_trait::async_trait;
use stonepot_agent::turn::{Model, ModelStream};
use stonepot_llm::{ChatRequest, LlmError, Router};
use tokio_util::sync::CancellationToken;

pub struct RouterModel {
    pub router: Router,
    pub route: String,
}

#[async_trait]
impl Model for RouterModel {
    async fn stream(&self, conversation: &str, req: ChatRequest) -> Result<ModelStream, LlmError> {
        // Dropping the stream (the turn was cancelled) closes the upstream request; the
        // token is only for callers that cancel without dropping.
        let s = self
            .router
            .stream(
                &self.route,
                Some(conversation),
                req,
                CancellationToken::new(),
            )
            .await?;
        Ok(ModelStream {
            target: s.target.clone(),
            model: s.model.clone(),
            price: s.price,
            events: s.events,
        })
    }
}
