//! The provider-neutral vocabulary between the server and a relay session: what goes in
//! ([`RelayInput`]), what comes out ([`RelayEvent`]), the tool runner the server
//! implements ([`ToolRunner`]) and the one error type ([`RelayError`]).

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

/// Who said something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// The guest (transcribed by the provider).
    User,
    /// The model.
    Assistant,
}

/// A function call the model proposed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCall {
    /// The provider's call id (OpenAI `call_id`, Gemini `functionCall.id`): the key that
    /// makes execution exactly-once.
    pub call_id: String,
    pub name: String,
    /// Parsed arguments (an object).
    pub arguments: Value,
}

/// Runs the model's tool calls: the server implements it with the same tools as the
/// text agent, including their display updates. Called once per call id, on its own task,
/// so a barge-in or a rollover never cancels a call half-way.
#[async_trait]
pub trait ToolRunner: Send + Sync + 'static {
    /// The JSON result the model is told (errors as `{"error": {...}}`, never a panic).
    async fn run(&self, call: ToolCall) -> Value;
}

/// What the server feeds a session (through [`crate::RelayHandle`]).
#[derive(Debug, Clone, PartialEq)]
pub enum RelayInput {
    /// Guest audio: PCM16 mono at the client rate, any length (20 ms frames usually).
    Audio(Vec<i16>),
    /// How much assistant audio the client has played, in milliseconds, counted over the
    /// whole session (monotonic; the client adds each played chunk). Barge-in truncates
    /// the model's memory of its own reply to this.
    Playout { played_ms: u64 },
    /// A typed message from the guest (text and voice mix in one conversation).
    Text(String),
    /// Hang up: close the provider connection and end the session.
    Close,
}

/// What a session reports, in order. Audio is at the client rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RelayEvent {
    /// Connected and configured; `rollover` is true after a reconnect (resumed or
    /// re-injected), false on the first connection.
    Ready {
        provider: &'static str,
        rollover: bool,
    },
    /// The model's first audio of a reply.
    AudioStart,
    /// PCM16 mono at the client rate. Never emitted after `Interrupted` for the same reply.
    Audio {
        #[serde(skip)]
        samples: Vec<i16>,
    },
    /// The reply's audio ended normally.
    AudioEnd,
    /// A transcript fragment (`final: false`) or a whole utterance (`final: true`).
    Transcript {
        speaker: Speaker,
        text: String,
        #[serde(rename = "final")]
        is_final: bool,
        /// 0..1 for the guest's final transcripts when the provider reports it.
        #[serde(skip_serializing_if = "Option::is_none")]
        confidence: Option<f32>,
    },
    SpeechStarted,
    SpeechStopped,
    /// The relay's own detector heard the guest start (`started`) or stop speaking, for a
    /// provider that reports neither (Gemini Live): for the client's display and the
    /// latency ledger. Turns still follow that provider's transcripts.
    GuestSpeech {
        started: bool,
    },
    /// The model proposed a call; it is recorded and about to run (once).
    ToolCall(ToolCall),
    /// A call finished; its result is (or will be, after a rollover) told to the model.
    ToolResult {
        call_id: String,
        name: String,
        result: Value,
    },
    /// The guest spoke over the model: stop playing now and drop the unplayed rest.
    /// `played_ms` is what the model now remembers having said of that reply.
    Interrupted {
        played_ms: u64,
    },
    /// The model finished its turn.
    TurnComplete,
    /// The provider connection was replaced (`goAway`, expiry, a failure).
    RolledOver {
        reason: String,
        resumed: bool,
    },
    /// Something went wrong but the session goes on (bad provider event, refused
    /// request). `code` is stable: `provider_error`, `malformed_event`,
    /// `unexpected_event`, `bad_tool_arguments`, `replay_overflow`, `input_overflow`.
    Error {
        code: String,
        message: String,
    },
    /// The session ended (after `Close`, or when reconnecting failed).
    Closed {
        reason: String,
    },
}

/// Everything that stops a session from starting or keeps it from going on.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("invalid realtime config: {0}")]
    Config(String),
    #[error("could not connect to the realtime provider: {0}")]
    Connect(String),
    #[error("the realtime provider connection failed: {0}")]
    Connection(String),
    #[error("audio resampling failed: {0}")]
    Resample(String),
    #[error("the relay session has ended")]
    Closed,
    /// [`crate::RelayHandle::try_send`] found the session's input queue full: the relay
    /// is behind (its events are not being read), so the input was not taken.
    #[error("the relay session is not keeping up")]
    Busy,
}

impl RelayError {
    /// A stable code for logs and the client's `error` event.
    pub fn code(&self) -> &'static str {
        match self {
            RelayError::Config(_) => "relay_config",
            RelayError::Connect(_) => "relay_connect",
            RelayError::Connection(_) => "relay_connection",
            RelayError::Resample(_) => "relay_resample",
            RelayError::Closed => "relay_closed",
            RelayError::Busy => "relay_busy",
        }
    }
}
