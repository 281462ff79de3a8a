//! Provider-neutral request and stream types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// A tool call the model made, as kept in the transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the JSON text the model produced.
    pub arguments: String,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    #[serde(default)]
    pub content: String,
    /// Calls made by an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn system(text: impl Into<String>) -> Self {
        Self::text(Role::System, text)
    }
    pub fn user(text: impl Into<String>) -> Self {
        Self::text(Role::User, text)
    }
    fn text(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            content: text.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
    /// The result of a tool call, sent back to the model.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.into()),
        }
    }
}

/// A tool the model may call, with a JSON Schema for its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// One model turn.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

/// Token counts of a turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Input tokens served from the provider's prompt cache (billed lower).
    pub cached_input_tokens: u64,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    ContentFilter,
    Other(String),
}

/// What a provider's stream yields, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    TextDelta(String),
    /// A tool call began; `index` distinguishes parallel calls.
    ToolCallStart {
        index: u32,
        id: String,
        name: String,
    },
    /// A fragment of a call's JSON arguments.
    ToolCallDelta {
        index: u32,
        arguments: String,
    },
    /// A call's arguments are complete.
    ToolCallEnd {
        index: u32,
    },
    Usage(Usage),
    Done(StopReason),
}

/// Why a model call failed.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the provider answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("rate limited by the provider (retry after {retry_after:?} s)")]
    RateLimited { retry_after: Option<u64> },
    #[error("the stream broke off before it finished")]
    Truncated,
    #[error("the provider sent something malformed: {0}")]
    Protocol(String),
    #[error("transport: {0}")]
    Transport(String),
    /// No first event within the time-to-first-token limit.
    #[error("no first token within {ms} ms")]
    FirstTokenTimeout { ms: u64 },
    /// A started stream went quiet for too long.
    #[error("the stream stalled for {ms} ms")]
    Stalled { ms: u64 },
    /// Neither a route, a target nor a known `provider/model` pair.
    #[error("unknown model or route `{0}`")]
    UnknownModel(String),
    /// Nothing is configured; callers fall back to the offline agent.
    #[error("no model is configured")]
    NoTargets,
    /// Every target of the route has its circuit open.
    #[error("every target of `{0}` is cooling down after failures")]
    Unavailable(String),
    #[error("cancelled")]
    Cancelled,
}

impl LlmError {
    /// A stable, low-cardinality code for logs, metrics and error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            LlmError::Status { .. } => "upstream_status",
            LlmError::RateLimited { .. } => "rate_limited",
            LlmError::Truncated => "truncated",
            LlmError::Protocol(_) => "protocol",
            LlmError::Transport(_) => "transport",
            LlmError::FirstTokenTimeout { .. } => "first_token_timeout",
            LlmError::Stalled { .. } => "stalled",
            LlmError::UnknownModel(_) => "unknown_model",
            LlmError::NoTargets => "no_model",
            LlmError::Unavailable(_) => "unavailable",
            LlmError::Cancelled => "cancelled",
        }
    }
}

/// Joins a stream's events into the assistant message and its outcome (for tests, the
/// transcript and non-streaming callers).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collected {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub stop: Option<StopReason>,
}

impl Collected {
    pub fn push(&mut self, ev: &StreamEvent, open: &mut Vec<(u32, ToolCall)>) {
        match ev {
            StreamEvent::TextDelta(t) => self.text.push_str(t),
            StreamEvent::ToolCallStart { index, id, name } => open.push((
                *index,
                ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                },
            )),
            StreamEvent::ToolCallDelta { index, arguments } => {
                if let Some((_, c)) = open.iter_mut().find(|(i, _)| i == index) {
                    c.arguments.push_str(arguments);
                }
            }
            StreamEvent::ToolCallEnd { index } => {
                if let Some(pos) = open.iter().position(|(i, _)| i == index) {
                    self.tool_calls.push(open.remove(pos).1);
                }
            }
            StreamEvent::Usage(u) => self.usage = *u,
            StreamEvent::Done(r) => self.stop = Some(r.clone()),
        }
    }
}
