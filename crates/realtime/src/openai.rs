//! OpenAI Realtime, GA protocol: JSON events over one WebSocket, audio as base64 PCM16 at
//! 24 kHz both ways, server VAD for turns. Rollover re-injects the conversation into a
//! fresh session (`conversation.item.create`), as OpenAI sessions cannot be resumed.

use crate::audio::{pcm16_from_base64, wrap_base64};
use crate::history::Turn;
use crate::provider::{Malformed, OpenContext, Opening, Protocol, ProviderEvent};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The only PCM rate OpenAI Realtime accepts and produces.
pub const RATE: u32 = 24_000;

/// The OpenAI Realtime wire format for one session.
#[derive(Debug)]
pub struct OpenAiProtocol {
    url: String,
    model: String,
    api_key: Option<String>,
    voice: String,
    transcription_model: String,
    expires_at: Option<u64>,
}

impl OpenAiProtocol {
    pub fn new(
        url: &str,
        model: &str,
        api_key: Option<&str>,
        voice: &str,
        transcription_model: &str,
    ) -> Self {
        OpenAiProtocol {
            url: url.to_string(),
            model: model.to_string(),
            api_key: api_key.map(str::to_string),
            voice: voice.to_string(),
            transcription_model: transcription_model.to_string(),
            expires_at: None,
        }
    }

    fn session_update(&self, ctx: &OpenContext<'_>) -> Value {
        let tools: Vec<Value> = ctx
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "name": t.name, "description": t.description,
                       "parameters": t.parameters})
            })
            .collect();
        json!({
            "type": "session.update",
            "session": {
                "type": "realtime",
                "output_modalities": ["audio"],
                // Token log-probabilities of the guest's transcript: its confidence.
                "include": ["item.input_audio_transcription.logprobs"],
                "instructions": ctx.instructions,
                "tools": tools,
                "tool_choice": "auto",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": RATE},
                        "transcription": {"model": self.transcription_model},
                        "turn_detection": {
                            "type": "server_vad",
                            "threshold": 0.5,
                            "prefix_padding_ms": 300,
                            "silence_duration_ms": 500,
                            "create_response": true,
                            // The relay decides barge-in (a minimum speech duration,
                            // replies that may not be cut) and cancels the reply itself.
                            "interrupt_response": false
                        }
                    },
                    "output": {
                        "format": {"type": "audio/pcm", "rate": RATE},
                        "voice": self.voice
                    }
                }
            }
        })
    }
}

fn item_create(item: Value) -> String {
    json!({"type": "conversation.item.create", "item": item}).to_string()
}

fn turn_item(turn: &Turn) -> Value {
    match turn {
        Turn::User(text) => json!({"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": text}]}),
        Turn::Assistant(text) => json!({"type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": text}]}),
        Turn::Call {
            call_id,
            name,
            arguments,
        } => json!({"type": "function_call", "call_id": call_id, "name": name,
            "arguments": arguments}),
        Turn::Output { call_id, output } => json!({"type": "function_call_output",
            "call_id": call_id, "output": output.to_string()}),
    }
}

/// The mean token probability of a transcript (`exp` of the mean log-probability), from
/// the `logprobs` the session asks for with `include`.
fn confidence(v: &Value) -> Option<f32> {
    let lps: Vec<f64> = v
        .get("logprobs")?
        .as_array()?
        .iter()
        .filter_map(|t| t.get("logprob").and_then(Value::as_f64))
        .collect();
    if lps.is_empty() {
        return None;
    }
    let mean = lps.iter().sum::<f64>() / lps.len() as f64;
    Some(mean.exp().clamp(0.0, 1.0) as f32)
}

fn str_field<'a>(v: &'a Value, key: &str, kind: &str) -> Result<&'a str, Malformed> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Malformed(format!("{kind} has no string field {key:?}")))
}

fn function_call(item: &Value, kind: &str) -> Result<ProviderEvent, Malformed> {
    Ok(ProviderEvent::ToolCall {
        call_id: str_field(item, "call_id", kind)?.to_string(),
        name: str_field(item, "name", kind)?.to_string(),
        arguments: str_field(item, "arguments", kind)?.to_string(),
    })
}

impl Protocol for OpenAiProtocol {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn input_rate(&self) -> u32 {
        RATE
    }

    fn output_rate(&self) -> u32 {
        RATE
    }

    fn endpoint(&self) -> (String, Vec<(String, String)>) {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}model={}", self.url, self.model);
        let headers = match &self.api_key {
            Some(k) => vec![("Authorization".to_string(), format!("Bearer {k}"))],
            None => Vec::new(),
        };
        (url, headers)
    }

    fn resumes(&self) -> bool {
        false
    }

    fn open(&mut self, ctx: &OpenContext<'_>) -> Opening {
        self.expires_at = None;
        let mut now = vec![self.session_update(ctx).to_string()];
        if let Some(history) = ctx.history {
            now.extend(
                history
                    .tail(ctx.reinject_chars)
                    .iter()
                    .map(|t| item_create(turn_item(t))),
            );
        }
        Opening {
            now,
            after_ready: Vec::new(),
        }
    }

    fn reports_speech(&self) -> bool {
        true
    }

    fn audio_before_ready(&self) -> bool {
        // Events are processed in order, so audio after session.update is configured.
        true
    }

    fn audio(&self, samples: &[i16]) -> String {
        wrap_base64(
            r#"{"type":"input_audio_buffer.append","audio":""#,
            samples,
            r#""}"#,
        )
    }

    fn user_text(&self, text: &str) -> Vec<String> {
        vec![
            item_create(turn_item(&Turn::User(text.to_string()))),
            json!({"type": "response.create"}).to_string(),
        ]
    }

    fn tool_output(&self, call_id: &str, _name: &str, output: &Value) -> Vec<String> {
        vec![item_create(turn_item(&Turn::Output {
            call_id: call_id.to_string(),
            output: output.clone(),
        }))]
    }

    fn request_reply(&self) -> Vec<String> {
        vec![json!({"type": "response.create"}).to_string()]
    }

    fn interrupt(&self, item_id: Option<&str>, played_ms: u64, reply_active: bool) -> Vec<String> {
        let mut out = Vec::new();
        if reply_active {
            out.push(json!({"type": "response.cancel"}).to_string());
        }
        if let Some(item) = item_id {
            out.push(
                json!({"type": "conversation.item.truncate", "item_id": item,
                       "content_index": 0, "audio_end_ms": played_ms})
                .to_string(),
            );
        }
        out
    }

    fn decode(&mut self, text: &str) -> Result<Vec<ProviderEvent>, Malformed> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| Malformed(format!("not JSON: {e}")))?;
        let kind = str_field(&v, "type", "an event")?;
        let ev = match kind {
            "session.created" => {
                self.expires_at = v.pointer("/session/expires_at").and_then(Value::as_u64);
                ProviderEvent::Ignored
            }
            "session.updated" => {
                let expires_at = v
                    .pointer("/session/expires_at")
                    .and_then(Value::as_u64)
                    .or(self.expires_at);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                ProviderEvent::Ready {
                    expires_in: expires_at.map(|t| Duration::from_secs(t.saturating_sub(now))),
                }
            }
            "response.created" => ProviderEvent::ResponseStarted {
                response_id: v
                    .pointer("/response/id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Malformed("response.created has no response.id".into()))?
                    .to_string(),
            },
            "response.output_audio.delta" => {
                let delta = str_field(&v, "delta", kind)?;
                let samples = pcm16_from_base64(delta)
                    .ok_or_else(|| Malformed(format!("{kind} delta is not base64 PCM16")))?;
                ProviderEvent::Audio {
                    response_id: v
                        .get("response_id")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    item_id: v.get("item_id").and_then(Value::as_str).map(str::to_string),
                    samples,
                }
            }
            "response.output_audio_transcript.delta" => ProviderEvent::Transcript {
                user: false,
                text: str_field(&v, "delta", kind)?.to_string(),
                is_final: false,
                confidence: None,
            },
            "response.output_audio_transcript.done" => ProviderEvent::Transcript {
                user: false,
                text: str_field(&v, "transcript", kind)?.to_string(),
                is_final: true,
                confidence: None,
            },
            "conversation.item.input_audio_transcription.delta" => ProviderEvent::Transcript {
                user: true,
                text: str_field(&v, "delta", kind)?.to_string(),
                is_final: false,
                confidence: None,
            },
            "conversation.item.input_audio_transcription.completed" => ProviderEvent::Transcript {
                user: true,
                text: str_field(&v, "transcript", kind)?.to_string(),
                is_final: true,
                confidence: confidence(&v),
            },
            "input_audio_buffer.speech_started" => ProviderEvent::SpeechStarted,
            "input_audio_buffer.speech_stopped" => ProviderEvent::SpeechStopped,
            "input_audio_buffer.committed" => ProviderEvent::InputCommitted,
            "response.function_call_arguments.done" => function_call(&v, kind)?,
            "response.output_item.done" => {
                let item = v
                    .get("item")
                    .ok_or_else(|| Malformed(format!("{kind} has no item")))?;
                if item.get("type").and_then(Value::as_str) == Some("function_call") {
                    function_call(item, kind)?
                } else {
                    ProviderEvent::Ignored
                }
            }
            "response.done" => {
                let response = v
                    .get("response")
                    .ok_or_else(|| Malformed(format!("{kind} has no response")))?;
                let mut out = Vec::new();
                // The calls again, in case their own events were lost: the ledger dedups.
                for item in response
                    .get("output")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    if item.get("type").and_then(Value::as_str) == Some("function_call") {
                        out.push(function_call(item, kind)?);
                    }
                }
                out.push(ProviderEvent::TurnComplete {
                    response_id: response
                        .get("id")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                });
                return Ok(out);
            }
            "error" => {
                let err = v.get("error").cloned().unwrap_or(Value::Null);
                let code = err
                    .get("code")
                    .and_then(Value::as_str)
                    .or_else(|| err.get("type").and_then(Value::as_str))
                    .unwrap_or("provider_error")
                    .to_string();
                if code == "session_expired" {
                    ProviderEvent::Expired
                } else {
                    ProviderEvent::Error {
                        code,
                        message: err
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("no message")
                            .to_string(),
                    }
                }
            }
            _ => ProviderEvent::Ignored,
        };
        Ok(vec![ev])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::pcm16_to_base64;
    use crate::history::History;

    fn proto() -> OpenAiProtocol {
        OpenAiProtocol::new(
            "ws://x/v1/realtime",
            "gpt-realtime",
            Some("k"),
            "marin",
            "t",
        )
    }

    #[test]
    fn audio_is_an_append_of_base64_pcm16() {
        let msg: Value = serde_json::from_str(&proto().audio(&[1, -2])).unwrap();
        assert_eq!(
            msg,
            json!({"type": "input_audio_buffer.append", "audio": pcm16_to_base64(&[1, -2])})
        );
    }

    #[test]
    fn decodes_the_events_the_relay_acts_on() {
        let mut p = proto();
        let ev = |p: &mut OpenAiProtocol, v: Value| p.decode(&v.to_string()).unwrap();
        assert_eq!(
            ev(
                &mut p,
                json!({"type": "response.function_call_arguments.done",
                "call_id": "c1", "name": "add_item", "arguments": "{\"q\":1}"})
            ),
            vec![ProviderEvent::ToolCall {
                call_id: "c1".into(),
                name: "add_item".into(),
                arguments: "{\"q\":1}".into()
            }]
        );
        assert_eq!(
            ev(
                &mut p,
                json!({"type": "error", "error": {"type": "invalid_request_error",
                "code": "session_expired", "message": "60 minutes"}})
            ),
            vec![ProviderEvent::Expired]
        );
        let audio = ev(
            &mut p,
            json!({"type": "response.output_audio.delta", "response_id": "r",
            "item_id": "i", "output_index": 0, "content_index": 0,
            "delta": pcm16_to_base64(&[1, 2])}),
        );
        assert_eq!(
            audio,
            vec![ProviderEvent::Audio {
                response_id: Some("r".into()),
                item_id: Some("i".into()),
                samples: vec![1, 2]
            }]
        );
        let done = ev(
            &mut p,
            json!({"type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1", "content_index": 0, "transcript": "a latte",
            "logprobs": [{"token": "a", "logprob": -0.1, "bytes": [97]},
                         {"token": " latte", "logprob": -0.3, "bytes": []}]}),
        );
        let ProviderEvent::Transcript {
            confidence: Some(c),
            ..
        } = done[0]
        else {
            panic!("no confidence: {done:?}");
        };
        assert!((c - (-0.2f32).exp()).abs() < 1e-4, "{c}");
        assert_eq!(
            ev(&mut p, json!({"type": "rate_limits.updated"})),
            vec![ProviderEvent::Ignored]
        );
        assert!(p.decode("{").is_err());
        assert!(
            p.decode(r#"{"type":"response.output_audio.delta","delta":"!!"}"#)
                .is_err()
        );
        assert!(p.decode(r#"{"no":"type"}"#).is_err());
    }

    #[test]
    fn open_configures_the_session_and_reinjects_history() {
        let mut p = proto();
        let mut h = History::default();
        h.push(Turn::User("two lattes".into()));
        h.push(Turn::Call {
            call_id: "c1".into(),
            name: "add_item".into(),
            arguments: "{}".into(),
        });
        h.push(Turn::Output {
            call_id: "c1".into(),
            output: json!({"ok": true}),
        });
        let ctx = OpenContext {
            instructions: "be brief",
            tools: &[],
            resume_handle: None,
            history: Some(&h),
            reinject_chars: 1000,
        };
        let msgs: Vec<Value> = p
            .open(&ctx)
            .now
            .iter()
            .map(|m| serde_json::from_str(m).unwrap())
            .collect();
        assert_eq!(msgs.len(), 4);
        assert_eq!(
            msgs[0]["session"]["audio"]["input"]["format"]["rate"],
            24_000
        );
        assert_eq!(
            msgs[0]["session"]["audio"]["input"]["turn_detection"]["type"],
            "server_vad"
        );
        assert_eq!(
            msgs[0]["session"]["audio"]["input"]["turn_detection"]["interrupt_response"], false,
            "the relay decides barge-in"
        );
        assert_eq!(msgs[2]["item"]["type"], "function_call");
        assert_eq!(msgs[3]["item"]["output"], "{\"ok\":true}");
        let (url, headers) = p.endpoint();
        assert_eq!(url, "ws://x/v1/realtime?model=gpt-realtime");
        assert_eq!(headers[0].1, "Bearer k");
    }
}
