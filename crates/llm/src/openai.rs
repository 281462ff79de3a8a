//! OpenAI Chat Completions (`POST {base}/chat/completions`, `stream: true`), the wire
//! format that OpenAI, Ollama, vLLM, llama.cpp server, xAI Grok and many others speak;
//! the base URL decides which.

use crate::{ChatRequest, LlmError, Role, StopReason, StreamEvent, Usage};
use futures::Stream;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// An OpenAI-compatible endpoint.
#[derive(Clone)]
pub struct OpenAiChat {
    base_url: String,
    api_key: Option<String>,
    client: reqwest::Client,
}

impl std::fmt::Debug for OpenAiChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiChat")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

impl OpenAiChat {
    /// `base_url` as the official SDK takes it (`https://api.openai.com/v1`).
    pub fn new(
        base_url: impl Into<String>,
        api_key: Option<String>,
        client: reqwest::Client,
    ) -> Self {
        OpenAiChat {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key,
            client,
        }
    }

    /// The JSON body for a streamed completion.
    pub fn request_body(req: &ChatRequest) -> Value {
        let messages: Vec<Value> = req
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                    Role::Tool => "tool",
                };
                let mut o = json!({"role": role, "content": m.content});
                if !m.tool_calls.is_empty() {
                    o["tool_calls"] = m
                        .tool_calls
                        .iter()
                        .map(|c| {
                            json!({"id": c.id, "type": "function",
                                         "function": {"name": c.name, "arguments": c.arguments}})
                        })
                        .collect();
                }
                if let Some(id) = &m.tool_call_id {
                    o["tool_call_id"] = json!(id);
                }
                o
            })
            .collect();
        let mut body = json!({
            "model": req.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
                })
                .collect();
        }
        if let Some(n) = req.max_tokens {
            body["max_tokens"] = json!(n);
        }
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        body
    }

    /// Starts a streamed completion. Dropping the stream cancels the upstream request.
    pub async fn stream(
        &self,
        req: &ChatRequest,
    ) -> Result<impl Stream<Item = Result<StreamEvent, LlmError>> + Send + use<>, LlmError> {
        let mut http = self
            .client
            .post(format!("{}/chat/completions", self.base_url))
            .json(&Self::request_body(req));
        if let Some(k) = &self.api_key {
            http = http.bearer_auth(k);
        }
        let res = http
            .send()
            .await
            .map_err(|e| LlmError::Transport(e.to_string()))?;
        let res = crate::wire::check(res).await?;
        Ok(crate::wire::events(res, ChunkDecoder::default()))
    }
}

/// Turns `chat.completion.chunk` payloads into [`StreamEvent`]s.
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    open: BTreeSet<u32>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
    /// `[DONE]` arrived.
    pub done: bool,
}

fn stop_reason(s: &str) -> StopReason {
    match s {
        "stop" => StopReason::EndTurn,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "length" => StopReason::MaxTokens,
        "content_filter" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_string()),
    }
}

impl crate::wire::Decoder for ChunkDecoder {
    fn decode(&mut self, event: &crate::sse::SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        self.decode_data(&event.data)
    }
    fn finished(&self) -> bool {
        self.done
    }
}

impl ChunkDecoder {
    pub fn decode_data(&mut self, data: &str) -> Result<Vec<StreamEvent>, LlmError> {
        let mut out = Vec::new();
        if data.trim() == "[DONE]" {
            self.close_calls(&mut out);
            if let Some(u) = self.usage.take() {
                out.push(StreamEvent::Usage(u));
            }
            out.push(StreamEvent::Done(
                self.stop.take().unwrap_or(StopReason::EndTurn),
            ));
            self.done = true;
            return Ok(out);
        }
        let v: Value =
            serde_json::from_str(data).map_err(|e| LlmError::Protocol(format!("chunk: {e}")))?;
        if let Some(err) = v.get("error") {
            return Err(LlmError::Protocol(format!("error event: {err}")));
        }
        for choice in v["choices"].as_array().into_iter().flatten() {
            let delta = &choice["delta"];
            if let Some(t) = delta["content"].as_str()
                && !t.is_empty()
            {
                out.push(StreamEvent::TextDelta(t.to_string()));
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let index = call["index"]
                    .as_u64()
                    .and_then(|i| u32::try_from(i).ok())
                    .ok_or_else(|| LlmError::Protocol("tool call without index".into()))?;
                if !self.open.contains(&index) {
                    let id = call["id"].as_str().unwrap_or_default().to_string();
                    let name = call["function"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    if name.is_empty() {
                        return Err(LlmError::Protocol(format!(
                            "tool call {index} started without a name"
                        )));
                    }
                    self.open.insert(index);
                    out.push(StreamEvent::ToolCallStart { index, id, name });
                }
                if let Some(args) = call["function"]["arguments"].as_str()
                    && !args.is_empty()
                {
                    out.push(StreamEvent::ToolCallDelta {
                        index,
                        arguments: args.to_string(),
                    });
                }
            }
            if let Some(r) = choice["finish_reason"].as_str() {
                self.close_calls(&mut out);
                self.stop = Some(stop_reason(r));
            }
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(Usage {
                input_tokens: u["prompt_tokens"].as_u64().unwrap_or(0),
                output_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
                cached_input_tokens: u["prompt_tokens_details"]["cached_tokens"]
                    .as_u64()
                    .unwrap_or(0),
            });
        }
        Ok(out)
    }

    fn close_calls(&mut self, out: &mut Vec<StreamEvent>) {
        for index in std::mem::take(&mut self.open) {
            out.push(StreamEvent::ToolCallEnd { index });
        }
    }
}
