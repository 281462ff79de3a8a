//! Gemini Live (`BidiGenerateContent`): one `setup`, then `realtimeInput` audio as base64
//! PCM16 at 16 kHz; the server answers with `serverContent` (24 kHz audio, transcriptions,
//! `interrupted`, `turnComplete`), `toolCall`, `goAway` and `sessionResumptionUpdate`.
//! Rollover resumes server-side from the latest handle; with no handle, a fresh session
//! gets the conversation as `clientContent` turns.

use crate::audio::{pcm16_from_base64, wrap_base64};
use crate::history::Turn;
use crate::provider::{Malformed, OpenContext, Opening, Protocol, ProviderEvent};
use serde_json::{Value, json};
use std::time::Duration;

/// Rate Gemini Live takes guest audio at.
pub const INPUT_RATE: u32 = 16_000;
/// Rate of Gemini Live's audio.
pub const OUTPUT_RATE: u32 = 24_000;

/// The Gemini Live wire format for one session.
#[derive(Debug)]
pub struct GeminiProtocol {
    url: String,
    model: String,
    api_key: Option<String>,
    transparent: bool,
    /// Guest words so far this turn (Gemini sends fragments only).
    user_text: String,
    /// Model words so far this turn.
    model_text: String,
}

impl GeminiProtocol {
    pub fn new(url: &str, model: &str, api_key: Option<&str>, transparent: bool) -> Self {
        GeminiProtocol {
            url: url.to_string(),
            model: model.to_string(),
            api_key: api_key.map(str::to_string),
            transparent,
            user_text: String::new(),
            model_text: String::new(),
        }
    }

    fn flush_user(&mut self, out: &mut Vec<ProviderEvent>) {
        if !self.user_text.is_empty() {
            out.push(ProviderEvent::Transcript {
                user: true,
                text: std::mem::take(&mut self.user_text).trim().to_string(),
                is_final: true,
                confidence: None,
            });
        }
    }

    fn flush_model(&mut self, out: &mut Vec<ProviderEvent>) {
        if !self.model_text.is_empty() {
            out.push(ProviderEvent::Transcript {
                user: false,
                text: std::mem::take(&mut self.model_text).trim().to_string(),
                is_final: true,
                confidence: None,
            });
        }
    }

    fn server_content(
        &mut self,
        sc: &Value,
        out: &mut Vec<ProviderEvent>,
    ) -> Result<(), Malformed> {
        if let Some(t) = sc
            .pointer("/inputTranscription/text")
            .and_then(Value::as_str)
        {
            self.user_text.push_str(t);
            out.push(ProviderEvent::Transcript {
                user: true,
                text: t.to_string(),
                is_final: false,
                confidence: None,
            });
        }
        if sc
            .pointer("/inputTranscription/finished")
            .and_then(Value::as_bool)
            == Some(true)
        {
            self.flush_user(out);
        }
        if let Some(parts) = sc.pointer("/modelTurn/parts") {
            let parts = parts
                .as_array()
                .ok_or_else(|| Malformed("serverContent.modelTurn.parts is not a list".into()))?;
            // The model answering means the guest's turn is over.
            self.flush_user(out);
            for part in parts {
                let Some(data) = part.get("inlineData") else {
                    continue;
                };
                let mime = data.get("mimeType").and_then(Value::as_str).unwrap_or("");
                if !mime.starts_with("audio/pcm") {
                    continue;
                }
                let b64 = data
                    .get("data")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Malformed("inlineData has no data".into()))?;
                let samples = pcm16_from_base64(b64)
                    .ok_or_else(|| Malformed("inlineData.data is not base64 PCM16".into()))?;
                out.push(ProviderEvent::Audio {
                    response_id: None,
                    item_id: None,
                    samples,
                });
            }
        }
        if let Some(t) = sc
            .pointer("/outputTranscription/text")
            .and_then(Value::as_str)
        {
            self.flush_user(out);
            self.model_text.push_str(t);
            out.push(ProviderEvent::Transcript {
                user: false,
                text: t.to_string(),
                is_final: false,
                confidence: None,
            });
        }
        if sc.get("interrupted").and_then(Value::as_bool) == Some(true) {
            out.push(ProviderEvent::Interrupted);
            self.flush_model(out);
        }
        if sc.get("turnComplete").and_then(Value::as_bool) == Some(true) {
            self.flush_user(out);
            self.flush_model(out);
            out.push(ProviderEvent::TurnComplete { response_id: None });
        }
        Ok(())
    }
}

/// `"12s"`, `"0.5s"` (protobuf Duration in JSON) as a duration.
fn parse_duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// A call's JSON result as the object `functionResponse.response` must be.
fn response_object(output: &Value) -> Value {
    if output.is_object() {
        output.clone()
    } else {
        json!({ "result": output })
    }
}

fn history_turns(turns: &[Turn]) -> Vec<Value> {
    turns
        .iter()
        .map(|t| match t {
            Turn::User(text) => json!({"role": "user", "parts": [{"text": text}]}),
            Turn::Assistant(text) => json!({"role": "model", "parts": [{"text": text}]}),
            Turn::Call {
                call_id,
                name,
                arguments,
            } => {
                let args: Value = serde_json::from_str(arguments).unwrap_or(json!({}));
                json!({"role": "model", "parts": [{"functionCall":
                    {"id": call_id, "name": name, "args": args}}]})
            }
            Turn::Output { call_id, output } => json!({"role": "user", "parts": [
                {"functionResponse": {"id": call_id, "response": response_object(output)}}]}),
        })
        .collect()
}

impl Protocol for GeminiProtocol {
    fn name(&self) -> &'static str {
        "gemini"
    }

    fn input_rate(&self) -> u32 {
        INPUT_RATE
    }

    fn output_rate(&self) -> u32 {
        OUTPUT_RATE
    }

    fn endpoint(&self) -> (String, Vec<(String, String)>) {
        let url = match &self.api_key {
            Some(k) => {
                let sep = if self.url.contains('?') { '&' } else { '?' };
                format!("{}{sep}key={k}", self.url)
            }
            None => self.url.clone(),
        };
        (url, Vec::new())
    }

    fn resumes(&self) -> bool {
        true
    }

    fn open(&mut self, ctx: &OpenContext<'_>) -> Opening {
        self.user_text.clear();
        self.model_text.clear();
        let decls: Vec<Value> = ctx
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
            .collect();
        let mut resumption = json!({});
        if let Some(h) = ctx.resume_handle {
            resumption["handle"] = json!(h);
        }
        if self.transparent {
            resumption["transparent"] = json!(true);
        }
        let mut setup = json!({
            "model": format!("models/{}", self.model),
            "generationConfig": {"responseModalities": ["AUDIO"]},
            "systemInstruction": {"parts": [{"text": ctx.instructions}]},
            "inputAudioTranscription": {},
            "outputAudioTranscription": {},
            "sessionResumption": resumption,
            // The relay decides barge-in (a minimum speech duration, replies that may not
            // be cut): the guest's speech must not cut the model off by itself.
            "realtimeInputConfig": {"activityHandling": "NO_INTERRUPTION"},
            // Without compression a native-audio session stops at ~15 minutes of context.
            "contextWindowCompression": {"slidingWindow": {}}
        });
        if !decls.is_empty() {
            setup["tools"] = json!([{ "functionDeclarations": decls }]);
        }
        let mut after_ready = Vec::new();
        if ctx.resume_handle.is_none()
            && let Some(h) = ctx.history
        {
            let turns = history_turns(h.tail(ctx.reinject_chars));
            if !turns.is_empty() {
                after_ready.push(
                    json!({"clientContent": {"turns": turns, "turnComplete": false}}).to_string(),
                );
            }
        }
        Opening {
            now: vec![json!({ "setup": setup }).to_string()],
            after_ready,
        }
    }

    fn reports_speech(&self) -> bool {
        false
    }

    fn audio_before_ready(&self) -> bool {
        // The server wants nothing but `setup` until `setupComplete`.
        false
    }

    fn audio(&self, samples: &[i16]) -> String {
        wrap_base64(
            r#"{"realtimeInput":{"audio":{"data":""#,
            samples,
            r#"","mimeType":"audio/pcm;rate=16000"}}}"#,
        )
    }

    fn user_text(&self, text: &str) -> Vec<String> {
        vec![
            json!({"clientContent": {"turns": [{"role": "user", "parts": [{"text": text}]}],
                "turnComplete": true}})
            .to_string(),
        ]
    }

    fn tool_output(&self, call_id: &str, name: &str, output: &Value) -> Vec<String> {
        vec![
            json!({"toolResponse": {"functionResponses": [
                {"id": call_id, "name": name, "response": response_object(output)}]}})
            .to_string(),
        ]
    }

    fn request_reply(&self) -> Vec<String> {
        Vec::new()
    }

    fn interrupt(&self, _item: Option<&str>, _played_ms: u64, _reply_active: bool) -> Vec<String> {
        // Gemini has no message to cancel a reply or cut its memory of one: the relay
        // stops the audio itself and drops the rest of the reply until `turnComplete`.
        Vec::new()
    }

    fn decode(&mut self, text: &str) -> Result<Vec<ProviderEvent>, Malformed> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| Malformed(format!("not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| Malformed("a server message is not an object".into()))?;
        let mut out = Vec::new();
        if obj.contains_key("setupComplete") {
            out.push(ProviderEvent::Ready { expires_in: None });
        }
        if let Some(sc) = obj.get("serverContent") {
            self.server_content(sc, &mut out)?;
        }
        if let Some(tc) = obj.get("toolCall") {
            let calls = tc
                .get("functionCalls")
                .and_then(Value::as_array)
                .ok_or_else(|| Malformed("toolCall has no functionCalls list".into()))?;
            for c in calls {
                let name = c
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Malformed("a functionCall has no name".into()))?;
                let id = c
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Malformed("a functionCall has no id".into()))?;
                let args = c.get("args").cloned().unwrap_or(json!({}));
                out.push(ProviderEvent::ToolCall {
                    call_id: id.to_string(),
                    name: name.to_string(),
                    arguments: args.to_string(),
                });
            }
        }
        if let Some(ga) = obj.get("goAway") {
            let left = ga.get("timeLeft").and_then(Value::as_str).unwrap_or("0s");
            let time_left = parse_duration(left)
                .ok_or_else(|| Malformed(format!("goAway.timeLeft {left:?} is not a duration")))?;
            out.push(ProviderEvent::GoAway { time_left });
        }
        if let Some(ru) = obj.get("sessionResumptionUpdate") {
            let resumable = ru.get("resumable").and_then(Value::as_bool) == Some(true);
            let handle = ru.get("newHandle").and_then(Value::as_str).unwrap_or("");
            // int64 travels as a JSON string in proto3 JSON; accept a number too.
            let index = ru.get("lastConsumedClientMessageIndex").and_then(|i| {
                i.as_u64()
                    .or_else(|| i.as_str().and_then(|s| s.parse().ok()))
            });
            if resumable && !handle.is_empty() {
                out.push(ProviderEvent::Resumable {
                    handle: handle.to_string(),
                    last_consumed_index: index,
                });
            }
        }
        if out.is_empty() {
            out.push(ProviderEvent::Ignored);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::pcm16_to_base64;

    #[test]
    fn audio_is_realtime_input_of_base64_pcm16_at_16k() {
        let p = GeminiProtocol::new("ws://x", "m", None, false);
        let msg: Value = serde_json::from_str(&p.audio(&[1, -2])).unwrap();
        assert_eq!(
            msg,
            json!({"realtimeInput": {"audio": {"data": pcm16_to_base64(&[1, -2]),
                "mimeType": "audio/pcm;rate=16000"}}})
        );
    }

    #[test]
    fn decodes_audio_transcripts_interruption_and_turn_end_in_order() {
        let mut p = GeminiProtocol::new("ws://x", "m", None, false);
        let a = pcm16_to_base64(&[5, 6]);
        let evs = p
            .decode(
                &json!({"serverContent": {"inputTranscription": {"text": "a latte"}}}).to_string(),
            )
            .unwrap();
        assert_eq!(evs.len(), 1);
        let evs = p
            .decode(
                &json!({"serverContent": {"modelTurn": {"parts": [{"inlineData":
                    {"mimeType": "audio/pcm;rate=24000", "data": a}}]},
                    "outputTranscription": {"text": "Sure"}}})
                .to_string(),
            )
            .unwrap();
        assert_eq!(
            evs[0],
            ProviderEvent::Transcript {
                user: true,
                text: "a latte".into(),
                is_final: true,
                confidence: None,
            }
        );
        assert!(matches!(&evs[1], ProviderEvent::Audio { samples, .. } if samples == &vec![5, 6]));
        let evs = p
            .decode(
                &json!({"serverContent": {"interrupted": true, "turnComplete": true}}).to_string(),
            )
            .unwrap();
        assert_eq!(evs[0], ProviderEvent::Interrupted);
        assert_eq!(
            evs[1],
            ProviderEvent::Transcript {
                user: false,
                text: "Sure".into(),
                is_final: true,
                confidence: None,
            }
        );
        assert_eq!(evs[2], ProviderEvent::TurnComplete { response_id: None });
    }

    #[test]
    fn decodes_go_away_resumption_and_tool_calls() {
        let mut p = GeminiProtocol::new("ws://x", "m", Some("k"), false);
        let evs = p
            .decode(
                &json!({"goAway": {"timeLeft": "2.5s"},
                    "sessionResumptionUpdate": {"newHandle": "h1", "resumable": true,
                        "lastConsumedClientMessageIndex": "7"},
                    "toolCall": {"functionCalls": [{"id": "f1", "name": "add_item",
                        "args": {"item": "latte"}}]}})
                .to_string(),
            )
            .unwrap();
        assert_eq!(evs.len(), 3);
        assert!(matches!(&evs[0], ProviderEvent::ToolCall { call_id, .. } if call_id == "f1"));
        assert_eq!(
            evs[1],
            ProviderEvent::GoAway {
                time_left: Duration::from_millis(2500)
            }
        );
        assert_eq!(
            evs[2],
            ProviderEvent::Resumable {
                handle: "h1".into(),
                last_consumed_index: Some(7)
            }
        );
        let none = p
            .decode(
                &json!({"sessionResumptionUpdate": {"newHandle": "", "resumable": false}})
                    .to_string(),
            )
            .unwrap();
        assert_eq!(none, vec![ProviderEvent::Ignored]);
        assert!(p.decode(r#"{"goAway":{"timeLeft":"soon"}}"#).is_err());
        assert!(
            p.decode(r#"{"toolCall":{"functionCalls":[{"name":"x"}]}}"#)
                .is_err()
        );
        assert!(p.decode("[1]").is_err());
        assert_eq!(p.endpoint().0, "ws://x?key=k");
    }
}
