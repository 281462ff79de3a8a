//! Google Gemini (`POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse`).
//! `base` is what the SDKs call `GEMINI_BASE_URL`
//! (`https://generativelanguage.googleapis.com`).

use crate::sse::SseEvent;
use crate::{ChatRequest, LlmError, Role, StopReason, StreamEvent, Usage};
use futures::Stream;
use serde_json::{Value, json};
use std::collections::HashMap;

#[derive(Clone)]
pub struct Gemini {
    base_url: String,
    api_key: Option<String>,
    client: reqwest::Client,
}

impl std::fmt::Debug for Gemini {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gemini")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Gemini {
    pub fn new(
        base_url: impl Into<String>,
        api_key: Option<String>,
        client: reqwest::Client,
    ) -> Self {
        Gemini {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key,
            client,
        }
    }

    /// The JSON body: `systemInstruction`, `contents` with `functionCall` and
    /// `functionResponse` parts (a response names its function, found by call id).
    pub fn request_body(req: &ChatRequest) -> Value {
        let names: HashMap<&str, &str> = req
            .messages
            .iter()
            .flat_map(|m| m.tool_calls.iter())
            .map(|c| (c.id.as_str(), c.name.as_str()))
            .collect();
        let system: Vec<Value> = req
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| json!({"text": m.content}))
            .collect();
        let mut contents: Vec<Value> = Vec::new();
        for m in req.messages.iter().filter(|m| m.role != Role::System) {
            let (role, parts): (&str, Vec<Value>) = match m.role {
                Role::Assistant => {
                    let mut parts = Vec::new();
                    if !m.content.is_empty() {
                        parts.push(json!({"text": m.content}));
                    }
                    for c in &m.tool_calls {
                        let args: Value =
                            serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
                        parts.push(json!({"functionCall": {"name": c.name, "args": args}}));
                    }
                    ("model", parts)
                }
                Role::Tool => {
                    let id = m.tool_call_id.as_deref().unwrap_or_default();
                    let response: Value = serde_json::from_str(&m.content)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({"result": m.content}));
                    let name = names.get(id).copied().unwrap_or(id);
                    (
                        "user",
                        vec![json!({"functionResponse": {"name": name, "response": response}})],
                    )
                }
                _ => ("user", vec![json!({"text": m.content})]),
            };
            contents.push(json!({"role": role, "parts": parts}));
        }
        let mut body = json!({ "contents": contents });
        if !system.is_empty() {
            body["systemInstruction"] = json!({ "parts": system });
        }
        if !req.tools.is_empty() {
            body["tools"] = json!([{ "functionDeclarations": req.tools.iter()
                .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
                .collect::<Vec<_>>() }]);
        }
        let mut generation = serde_json::Map::new();
        if let Some(n) = req.max_tokens {
            generation.insert("maxOutputTokens".into(), json!(n));
        }
        if let Some(t) = req.temperature {
            generation.insert("temperature".into(), json!(t));
        }
        if !generation.is_empty() {
            body["generationConfig"] = Value::Object(generation);
        }
        body
    }

    pub async fn stream(
        &self,
        req: &ChatRequest,
    ) -> Result<impl Stream<Item = Result<StreamEvent, LlmError>> + Send + use<>, LlmError> {
        let mut http = self
            .client
            .post(format!(
                "{}/v1beta/models/{}:streamGenerateContent?alt=sse",
                self.base_url, req.model
            ))
            .json(&Self::request_body(req));
        if let Some(k) = &self.api_key {
            http = http.header("x-goog-api-key", k);
        }
        let res = http
            .send()
            .await
            .map_err(|e| LlmError::Transport(e.to_string()))?;
        let res = crate::wire::check(res).await?;
        Ok(crate::wire::events(res, ResponseDecoder::default()))
    }
}

/// Turns streamed `GenerateContentResponse`s into [`StreamEvent`]s. Gemini sends each
/// function call whole, so a call is started, filled and ended at once.
#[derive(Debug, Default)]
pub struct ResponseDecoder {
    calls: u32,
    usage: Usage,
    done: bool,
}

impl crate::wire::Decoder for ResponseDecoder {
    fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        let v: Value = serde_json::from_str(&event.data)
            .map_err(|e| LlmError::Protocol(format!("response: {e}")))?;
        if let Some(err) = v.get("error") {
            return Err(match err["code"].as_u64() {
                Some(429) => LlmError::RateLimited { retry_after: None },
                _ => LlmError::Protocol(format!("error: {err}")),
            });
        }
        let mut out = Vec::new();
        let candidate = &v["candidates"][0];
        for part in candidate["content"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(t) = part["text"].as_str().filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta(t.to_string()));
            }
            if let Some(call) = part.get("functionCall") {
                let index = self.calls;
                self.calls += 1;
                let id = call["id"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| format!("call_{index}"));
                out.push(StreamEvent::ToolCallStart {
                    index,
                    id,
                    name: call["name"].as_str().unwrap_or_default().to_string(),
                });
                out.push(StreamEvent::ToolCallDelta {
                    index,
                    arguments: call["args"].to_string(),
                });
                out.push(StreamEvent::ToolCallEnd { index });
            }
        }
        if let Some(u) = v.get("usageMetadata") {
            self.usage = Usage {
                input_tokens: u["promptTokenCount"].as_u64().unwrap_or(0),
                output_tokens: u["candidatesTokenCount"].as_u64().unwrap_or(0),
                cached_input_tokens: u["cachedContentTokenCount"].as_u64().unwrap_or(0),
            };
        }
        if let Some(reason) = candidate["finishReason"].as_str() {
            let stop = match reason {
                "STOP" if self.calls > 0 => StopReason::ToolUse,
                "STOP" => StopReason::EndTurn,
                "MAX_TOKENS" => StopReason::MaxTokens,
                "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" => {
                    StopReason::ContentFilter
                }
                other => StopReason::Other(other.to_string()),
            };
            out.push(StreamEvent::Usage(self.usage));
            out.push(StreamEvent::Done(stop));
            self.done = true;
        }
        Ok(out)
    }

    fn finished(&self) -> bool {
        self.done
    }
}
