//! Providers behind one type, routes with fallback, and cost from a price table.

use crate::anthropic::AnthropicMessages;
use crate::gemini::Gemini;
use crate::openai::OpenAiChat;
use crate::{ChatRequest, LlmError, StreamEvent, Usage};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

/// A stream of events from any provider.
pub type EventStream = BoxStream<'static, Result<StreamEvent, LlmError>>;

/// One configured provider endpoint.
#[derive(Debug, Clone)]
pub enum Provider {
    OpenAi(OpenAiChat),
    Anthropic(AnthropicMessages),
    Gemini(Gemini),
}

impl Provider {
    pub fn name(&self) -> &'static str {
        match self {
            Provider::OpenAi(_) => "openai",
            Provider::Anthropic(_) => "anthropic",
            Provider::Gemini(_) => "gemini",
        }
    }

    pub async fn stream(&self, req: &ChatRequest) -> Result<EventStream, LlmError> {
        Ok(match self {
            Provider::OpenAi(p) => p.stream(req).await?.boxed(),
            Provider::Anthropic(p) => p.stream(req).await?.boxed(),
            Provider::Gemini(p) => p.stream(req).await?.boxed(),
        })
    }
}

/// Whether a failure before the first event is worth trying the next target for.
pub fn retryable(e: &LlmError) -> bool {
    match e {
        LlmError::RateLimited { .. }
        | LlmError::Transport(_)
        | LlmError::FirstTokenTimeout { .. } => true,
        LlmError::Status { status, .. } => *status >= 500 || *status == 408,
        LlmError::Truncated
        | LlmError::Protocol(_)
        | LlmError::Stalled { .. }
        | LlmError::UnknownModel(_)
        | LlmError::NoTargets
        | LlmError::Unavailable(_)
        | LlmError::Cancelled => false,
    }
}

/// A provider and the model to ask it for.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider: Provider,
    pub model: String,
}

/// Tries each target in order until one starts streaming. Once a stream has started,
/// its errors are the caller's: replaying half an answer from another model would show
/// the guest two different replies.
pub async fn stream_with_fallback(
    targets: &[Target],
    req: &ChatRequest,
) -> Result<(usize, EventStream), LlmError> {
    let mut last = LlmError::Transport("no targets configured".into());
    for (i, t) in targets.iter().enumerate() {
        let mut r = req.clone();
        r.model = t.model.clone();
        match t.provider.stream(&r).await {
            Ok(s) => return Ok((i, s)),
            Err(e) if retryable(&e) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Prices in micro-dollars per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
}

impl Price {
    /// The cost of `u` in micro-dollars, rounded up (a non-zero use never costs 0).
    pub fn cost_micros(&self, u: &Usage) -> u64 {
        let fresh = u.input_tokens.saturating_sub(u.cached_input_tokens);
        let total = u128::from(fresh) * u128::from(self.input)
            + u128::from(u.cached_input_tokens) * u128::from(self.cached_input)
            + u128::from(u.output_tokens) * u128::from(self.output);
        u64::try_from(total.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_counts_cached_tokens_at_their_price_and_rounds_up() {
        // $2.50 / $1.25 cached / $10 per million tokens.
        let p = Price {
            input: 2_500_000,
            cached_input: 1_250_000,
            output: 10_000_000,
        };
        let u = Usage {
            input_tokens: 1_000,
            output_tokens: 100,
            cached_input_tokens: 800,
        };
        // 200 × 2.5 + 800 × 1.25 + 100 × 10 = 500 + 1000 + 1000 = 2500 µ$
        assert_eq!(p.cost_micros(&u), 2_500);
        assert_eq!(
            p.cost_micros(&Usage {
                input_tokens: 1,
                output_tokens: 0,
                cached_input_tokens: 0
            }),
            3
        );
        assert_eq!(p.cost_micros(&Usage::default()), 0);
    }

    #[test]
    fn which_errors_fall_back() {
        assert!(retryable(&LlmError::RateLimited { retry_after: None }));
        assert!(retryable(&LlmError::Status {
            status: 503,
            body: String::new()
        }));
        assert!(!retryable(&LlmError::Status {
            status: 400,
            body: String::new()
        }));
        assert!(!retryable(&LlmError::Truncated));
    }
}
