//! Anthropic Messages (`POST {base}/v1/messages`, `stream: true`). `base` is what the
//! official SDK calls `ANTHROPIC_BASE_URL` (`https://api.anthropic.com`).

use crate::sse::SseEvent;
use crate::{ChatRequest, LlmError, Role, StopReason, StreamEvent, Usage};
use futures::Stream;
use serde_json::{Value, json};
use std::collections::BTreeSet;

pub const API_VERSION: &str = "2023-06-01";

#[derive(Clone)]
pub struct AnthropicMessages {
    base_url: String,
    api_key: Option<String>,
    client: reqwest::Client,
}

impl std::fmt::Debug for AnthropicMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicMessages")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

impl AnthropicMessages {
    pub fn new(
        base_url: impl Into<String>,
        api_key: Option<String>,
        client: reqwest::Client,
    ) -> Self {
        AnthropicMessages {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key,
            client,
        }
    }

    /// The JSON body: system prompts lifted out, tool calls as `tool_use` blocks, and
    /// consecutive tool results folded into one user turn of `tool_result` blocks.
    pub fn request_body(req: &ChatRequest) -> Value {
        let system: Vec<&str> = req
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let mut messages: Vec<Value> = Vec::new();
        for m in req.messages.iter().filter(|m| m.role != Role::System) {
            match m.role {
                Role::Tool => {
                    let block = json!({"type": "tool_result",
                        "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                        "content": m.content});
                    let merged = messages.last_mut().filter(|last| {
                        last["role"] == "user" && last["content"][0]["type"] == "tool_result"
                    });
                    match merged.and_then(|last| last["content"].as_array_mut()) {
                        Some(blocks) => blocks.push(block),
                        None => messages.push(json!({"role": "user", "content": [block]})),
                    }
                }
                Role::Assistant => {
                    let mut blocks = Vec::new();
                    if !m.content.is_empty() {
                        blocks.push(json!({"type": "text", "text": m.content}));
                    }
                    for c in &m.tool_calls {
                        let input: Value =
                            serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
                        blocks.push(
                            json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                        );
                    }
                    messages.push(json!({"role": "assistant", "content": blocks}));
                }
                _ => messages.push(json!({"role": "user", "content": m.content})),
            }
        }
        let mut body = json!({
            "model": req.model,
            "max_tokens": req.max_tokens.unwrap_or(1024),
            "messages": messages,
            "stream": true,
        });
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
                .collect();
        }
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        body
    }

    pub async fn stream(
        &self,
        req: &ChatRequest,
    ) -> Result<impl Stream<Item = Result<StreamEvent, LlmError>> + Send + use<>, LlmError> {
        let mut http = self
            .client
            .post(format!("{}/v1/messages", self.base_url))
            .header("anthropic-version", API_VERSION)
            .json(&Self::request_body(req));
        if let Some(k) = &self.api_key {
            http = http.header("x-api-key", k);
        }
        let res = http
            .send()
            .await
            .map_err(|e| LlmError::Transport(e.to_string()))?;
        let res = crate::wire::check(res).await?;
        Ok(crate::wire::events(res, EventDecoder::default()))
    }
}

/// Turns Messages stream events into [`StreamEvent`]s.
#[derive(Debug, Default)]
pub struct EventDecoder {
    tools: BTreeSet<u32>,
    usage: Usage,
    stop: Option<StopReason>,
    done: bool,
}

fn stop_reason(s: &str) -> StopReason {
    match s {
        "end_turn" | "stop_sequence" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        "refusal" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_string()),
    }
}

fn index(v: &Value) -> Result<u32, LlmError> {
    v["index"]
        .as_u64()
        .and_then(|i| u32::try_from(i).ok())
        .ok_or_else(|| LlmError::Protocol("content block without index".into()))
}

impl crate::wire::Decoder for EventDecoder {
    fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        let v: Value = serde_json::from_str(&event.data)
            .map_err(|e| LlmError::Protocol(format!("event: {e}")))?;
        let kind = event
            .event
            .clone()
            .or_else(|| v["type"].as_str().map(String::from))
            .unwrap_or_default();
        let mut out = Vec::new();
        match kind.as_str() {
            "message_start" => {
                let u = &v["message"]["usage"];
                let read = u["cache_read_input_tokens"].as_u64().unwrap_or(0);
                let created = u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
                self.usage.input_tokens = u["input_tokens"].as_u64().unwrap_or(0) + read + created;
                self.usage.cached_input_tokens = read;
                self.usage.output_tokens = u["output_tokens"].as_u64().unwrap_or(0);
            }
            "content_block_start" => {
                let block = &v["content_block"];
                if block["type"] == "tool_use" {
                    let i = index(&v)?;
                    self.tools.insert(i);
                    out.push(StreamEvent::ToolCallStart {
                        index: i,
                        id: block["id"].as_str().unwrap_or_default().to_string(),
                        name: block["name"].as_str().unwrap_or_default().to_string(),
                    });
                } else if let Some(t) = block["text"].as_str().filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta(t.to_string()));
                }
            }
            "content_block_delta" => {
                let d = &v["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => {
                        if let Some(t) = d["text"].as_str() {
                            out.push(StreamEvent::TextDelta(t.to_string()));
                        }
                    }
                    Some("input_json_delta") => {
                        let part = d["partial_json"].as_str().unwrap_or_default();
                        if !part.is_empty() {
                            out.push(StreamEvent::ToolCallDelta {
                                index: index(&v)?,
                                arguments: part.to_string(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let i = index(&v)?;
                if self.tools.remove(&i) {
                    out.push(StreamEvent::ToolCallEnd { index: i });
                }
            }
            "message_delta" => {
                if let Some(r) = v["delta"]["stop_reason"].as_str() {
                    self.stop = Some(stop_reason(r));
                }
                if let Some(n) = v["usage"]["output_tokens"].as_u64() {
                    self.usage.output_tokens = n;
                }
            }
            "message_stop" => {
                for i in std::mem::take(&mut self.tools) {
                    out.push(StreamEvent::ToolCallEnd { index: i });
                }
                out.push(StreamEvent::Usage(self.usage));
                out.push(StreamEvent::Done(
                    self.stop.take().unwrap_or(StopReason::EndTurn),
                ));
                self.done = true;
            }
            "error" => {
                let e = &v["error"];
                return Err(match e["type"].as_str() {
                    Some("overloaded_error") | Some("rate_limit_error") => {
                        LlmError::RateLimited { retry_after: None }
                    }
                    _ => LlmError::Protocol(format!("error event: {e}")),
                });
            }
            _ => {} // ping and future event kinds
        }
        Ok(out)
    }

    fn finished(&self) -> bool {
        self.done
    }
}
