//! What a relay session needs to know before it connects: which provider, where, as
//! which model, with which key, and what the model is told (instructions, tools).
//! Read from the environment once by [`ProviderConfig::from_env`]; the server builds one
//! [`RelayConfig`] per voice session.

use crate::RelayError;
use std::collections::HashMap;
use std::time::Duration;
use stonepot_llm::ToolSpec;

/// The default OpenAI Realtime endpoint (the model goes in the `model` query parameter).
pub const OPENAI_REALTIME_URL: &str = "wss://api.openai.com/v1/realtime";
/// The default OpenAI Realtime model.
pub const OPENAI_REALTIME_MODEL: &str = "gpt-realtime";
/// The default Gemini Live endpoint (the key goes in the `key` query parameter).
pub const GEMINI_LIVE_URL: &str = "wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent";
/// The default Gemini Live model.
pub const GEMINI_LIVE_MODEL: &str = "gemini-2.5-flash-native-audio-preview-09-2025";

/// A secret whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Which realtime speech model to relay to, and how to reach it.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderConfig {
    /// OpenAI Realtime (GA protocol) over WebSocket.
    OpenAi {
        /// `wss://…/v1/realtime`; `?model=` is appended.
        url: String,
        model: String,
        /// Sent as `Authorization: Bearer`; `None` only for local fakes.
        api_key: Option<ApiKey>,
        /// Output voice (`marin`, `alloy`, …).
        voice: String,
        /// Model that transcribes the guest's speech (the transcript the display shows).
        transcription_model: String,
    },
    /// Gemini Live (`BidiGenerateContent`) over WebSocket.
    Gemini {
        /// The `…BidiGenerateContent` endpoint; `?key=` is appended when a key is set.
        url: String,
        /// Model name without the `models/` prefix.
        model: String,
        api_key: Option<ApiKey>,
        /// Ask for `lastConsumedClientMessageIndex` in resumption updates so a rollover
        /// replays exactly the audio the old connection had not consumed. Vertex AI
        /// supports it; the Gemini API may refuse the field, so it is off by default.
        transparent_resumption: bool,
    },
}

impl ProviderConfig {
    /// The provider named by `provider` (`openai` or `gemini`) from the environment:
    /// `OPENAI_API_KEY`, `OPENAI_REALTIME_URL`, `OPENAI_REALTIME_MODEL`,
    /// `OPENAI_REALTIME_VOICE`, `OPENAI_REALTIME_TRANSCRIPTION_MODEL`; `GEMINI_API_KEY`
    /// (or `GOOGLE_API_KEY`), `GEMINI_LIVE_URL`, `GEMINI_LIVE_MODEL`,
    /// `GEMINI_LIVE_TRANSPARENT_RESUMPTION`. `REALTIME_URL` and `REALTIME_MODEL` stand in
    /// for the chosen provider's URL and model when its own names are unset, so one pair
    /// of settings points either provider at a compatible (or fake) server. See
    /// docs/VOICE-RELAY.md.
    pub fn from_env(provider: &str, env: &HashMap<String, String>) -> Result<Self, RelayError> {
        let get = |k: &str| env.get(k).filter(|v| !v.trim().is_empty()).cloned();
        let url = |own: &str, default: &str| {
            get(own)
                .or_else(|| get("REALTIME_URL"))
                .unwrap_or_else(|| default.into())
        };
        let model = |own: &str, default: &str| {
            get(own)
                .or_else(|| get("REALTIME_MODEL"))
                .unwrap_or_else(|| default.into())
        };
        match provider {
            "openai" => Ok(ProviderConfig::OpenAi {
                url: url("OPENAI_REALTIME_URL", OPENAI_REALTIME_URL),
                model: model("OPENAI_REALTIME_MODEL", OPENAI_REALTIME_MODEL),
                api_key: get("OPENAI_API_KEY").map(ApiKey),
                voice: get("OPENAI_REALTIME_VOICE").unwrap_or_else(|| "marin".into()),
                transcription_model: get("OPENAI_REALTIME_TRANSCRIPTION_MODEL")
                    .unwrap_or_else(|| "gpt-4o-mini-transcribe".into()),
            }),
            "gemini" => {
                let transparent = match get("GEMINI_LIVE_TRANSPARENT_RESUMPTION").as_deref() {
                    None | Some("0" | "false") => false,
                    Some("1" | "true") => true,
                    Some(other) => {
                        return Err(RelayError::Config(format!(
                            "GEMINI_LIVE_TRANSPARENT_RESUMPTION must be true or false, not {other:?}"
                        )));
                    }
                };
                Ok(ProviderConfig::Gemini {
                    url: url("GEMINI_LIVE_URL", GEMINI_LIVE_URL),
                    model: model("GEMINI_LIVE_MODEL", GEMINI_LIVE_MODEL),
                    api_key: get("GEMINI_API_KEY")
                        .or_else(|| get("GOOGLE_API_KEY"))
                        .map(ApiKey),
                    transparent_resumption: transparent,
                })
            }
            other => Err(RelayError::Config(format!(
                "the realtime provider must be openai or gemini, not {other:?}"
            ))),
        }
    }

    /// The key the provider is called with, if one is set.
    pub fn api_key(&self) -> Option<&ApiKey> {
        match self {
            ProviderConfig::OpenAi { api_key, .. } | ProviderConfig::Gemini { api_key, .. } => {
                api_key.as_ref()
            }
        }
    }

    /// The model the provider is asked for.
    pub fn model(&self) -> &str {
        match self {
            ProviderConfig::OpenAi { model, .. } | ProviderConfig::Gemini { model, .. } => model,
        }
    }

    /// The WebSocket endpoint (`ws://` or `wss://`).
    pub fn url(&self) -> &str {
        match self {
            ProviderConfig::OpenAi { url, .. } | ProviderConfig::Gemini { url, .. } => url,
        }
    }

    /// Checks what a session could not start with (the URL's scheme), naming it.
    pub fn validate(&self) -> Result<(), RelayError> {
        let url = self.url();
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(RelayError::Config(format!(
                "the {} realtime URL must start with ws:// or wss://, not {url:?}",
                self.name()
            )));
        }
        Ok(())
    }

    /// `openai` or `gemini`: the label on logs, events and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ProviderConfig::OpenAi { .. } => "openai",
            ProviderConfig::Gemini { .. } => "gemini",
        }
    }
}

/// Everything one relay session is started with.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub provider: ProviderConfig,
    /// Sample rate of the guest's PCM16 mono frames, and of the audio sent back (the
    /// client announces it in its `start` message; 16 kHz by default).
    pub client_rate: u32,
    /// The system prompt (the same one the text agent uses).
    pub instructions: String,
    /// The tools the model may call (the text agent's tool specs).
    pub tools: Vec<ToolSpec>,
    /// How long before a provider's announced deadline (OpenAI `expires_at`, Gemini
    /// `goAway.timeLeft`) the relay stops waiting for a quiet moment and rolls over anyway.
    pub rollover_margin: Duration,
    /// Roll over proactively after this long on one connection even when the provider
    /// announces nothing (None: only on announcements and failures).
    pub max_connection_age: Option<Duration>,
    /// Reconnect attempts after a connection fails before the session gives up.
    pub reconnect_attempts: u32,
    /// Guest audio kept for replay across a rollover, in milliseconds: OpenAI's
    /// uncommitted input buffer, Gemini's audio after the last resumption handle.
    pub replay_ms: u32,
    /// Characters of conversation re-injected into a fresh OpenAI session (newest kept).
    pub reinject_chars: usize,
    /// How long the guest must speak over a playing reply before it is interrupted: a
    /// cough or a word of assent shorter than this does not stop the reply. The relay
    /// decides, not the provider (whose own barge-in is turned off).
    pub barge_in_min: Duration,
    /// Tools whose successful result makes the model's next reply in the turn not
    /// interruptible (the order read-back after `quote_order`): speech over it is
    /// answered once it has played.
    pub hold_after: Vec<String>,
}

impl RelayConfig {
    /// A config with the defaults the server uses: 16 kHz client audio, a 5 s rollover
    /// margin, 3 reconnect attempts, 5 s of replayable audio, 24 000 re-injected
    /// characters, 200 ms of speech before a barge-in, every reply interruptible.
    pub fn new(
        provider: ProviderConfig,
        instructions: impl Into<String>,
        tools: Vec<ToolSpec>,
    ) -> Self {
        RelayConfig {
            provider,
            client_rate: 16_000,
            instructions: instructions.into(),
            tools,
            rollover_margin: Duration::from_secs(5),
            max_connection_age: None,
            reconnect_attempts: 3,
            replay_ms: 5_000,
            reinject_chars: 24_000,
            barge_in_min: Duration::from_millis(200),
            hold_after: Vec::new(),
        }
    }

    /// Checks the settings a session cannot run with, naming the one at fault.
    pub fn validate(&self) -> Result<(), RelayError> {
        if !(8_000..=48_000).contains(&self.client_rate) {
            return Err(RelayError::Config(format!(
                "client_rate must be between 8000 and 48000 Hz, not {}",
                self.client_rate
            )));
        }
        self.provider.validate()
    }
}
