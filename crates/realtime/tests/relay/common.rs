use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stonepot_llm::ToolSpec;
use stonepot_realtime::{
    ProviderConfig, RelayConfig, RelayEvent, RelayHandle, ToolCall, ToolRunner,
};
use tokio::sync::mpsc;

/// Records every call it runs, answers after `delay`.
pub struct Runner {
    pub calls: Mutex<Vec<ToolCall>>,
    pub delay: Duration,
}

impl Runner {
    pub fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Runner {
            calls: Mutex::new(Vec::new()),
            delay,
        })
    }

    pub fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

#[async_trait]
impl ToolRunner for Runner {
    async fn run(&self, call: ToolCall) -> Value {
        self.calls.lock().unwrap().push(call.clone());
        tokio::time::sleep(self.delay).await;
        json!({"ok": true, "added": call.arguments})
    }
}

pub fn tools() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "add_item".into(),
        description: "Add a dish to the cart".into(),
        parameters: json!({"type": "object", "properties": {"item": {"type": "string"}}}),
    }]
}

/// OpenAI with no minimum speech before a barge-in: these tests time the stop itself
/// (the minimum is the server's policy, tested in its voice_relay_barge_in tests).
pub fn openai_config(url: &str) -> RelayConfig {
    let mut cfg = RelayConfig::new(
        ProviderConfig::OpenAi {
            url: url.into(),
            model: "gpt-realtime".into(),
            api_key: Some(stonepot_realtime::ApiKey::new("sk-test")),
            voice: "marin".into(),
            transcription_model: "gpt-4o-mini-transcribe".into(),
        },
        "You take orders.",
        tools(),
    );
    cfg.barge_in_min = Duration::ZERO;
    cfg
}

pub fn gemini_config(url: &str, transparent: bool) -> RelayConfig {
    RelayConfig::new(
        ProviderConfig::Gemini {
            url: url.into(),
            model: "gemini-live-test".into(),
            api_key: Some(stonepot_realtime::ApiKey::new("g-test")),
            transparent_resumption: transparent,
        },
        "You take orders.",
        tools(),
    )
}

/// Events as they come, with a memory of what was skipped.
pub struct Events {
    pub rx: mpsc::Receiver<RelayEvent>,
    pub seen: Vec<RelayEvent>,
}

impl Events {
    pub fn new(rx: mpsc::Receiver<RelayEvent>) -> Self {
        Events {
            rx,
            seen: Vec::new(),
        }
    }

    /// The next event matching `f` (within 5 s), keeping the ones skipped in `seen`.
    pub async fn until(&mut self, f: impl Fn(&RelayEvent) -> bool) -> RelayEvent {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let ev = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no matching event; seen {:?}", self.brief()))
                .expect("relay ended");
            self.seen.push(ev.clone());
            if f(&ev) {
                return ev;
            }
        }
    }

    pub fn brief(&self) -> Vec<String> {
        self.seen
            .iter()
            .map(|e| match e {
                RelayEvent::Audio { samples } => format!("Audio({})", samples.len()),
                other => format!("{other:?}"),
            })
            .collect()
    }
}

/// Streams `frames` 20 ms frames at 16 kHz whose samples count up from `start` (so the
/// far side can tell exactly which audio arrived), in real time when `paced`.
pub async fn stream(relay: &RelayHandle, start: i16, frames: usize, paced: bool) -> Vec<i16> {
    let mut all = Vec::new();
    let mut v = start;
    for _ in 0..frames {
        let frame: Vec<i16> = (0..320)
            .map(|_| {
                v = v.wrapping_add(1);
                v
            })
            .collect();
        all.extend_from_slice(&frame);
        relay.audio(frame).await.unwrap();
        if paced {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    all
}

pub fn audio_samples(evs: &[RelayEvent]) -> usize {
    evs.iter()
        .map(|e| match e {
            RelayEvent::Audio { samples } => samples.len(),
            _ => 0,
        })
        .sum()
}
