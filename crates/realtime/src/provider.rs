//! The seam between the session loop and a provider's wire format. A [`Protocol`] only
//! encodes client messages and decodes server messages into [`ProviderEvent`]s; it never
//! touches the socket, so each provider file is pure and testable, and every policy
//! (barge-in, exactly-once tools, rollover) lives once in the session.

use crate::history::History;
use serde_json::Value;
use std::time::Duration;

/// What a provider told us, in its own order.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderEvent {
    /// The session is configured and audio may flow (OpenAI `session.updated`, Gemini
    /// `setupComplete`). `expires_in`: OpenAI's `expires_at` as a duration from now.
    Ready {
        expires_in: Option<Duration>,
    },
    /// A reply started (OpenAI `response.created`).
    ResponseStarted {
        response_id: String,
    },
    /// Model audio at the provider's output rate. `item_id` names what a truncate
    /// addresses (OpenAI); `response_id` groups the reply.
    Audio {
        response_id: Option<String>,
        item_id: Option<String>,
        samples: Vec<i16>,
    },
    /// Transcript of the guest (partial or final) or of the model.
    Transcript {
        user: bool,
        text: String,
        is_final: bool,
        /// 0..1, from the recognizer's token log-probabilities when it gives them.
        confidence: Option<f32>,
    },
    SpeechStarted,
    SpeechStopped,
    /// The provider took the buffered guest audio as a turn (OpenAI
    /// `input_audio_buffer.committed`): it no longer needs replaying after a rollover.
    InputCommitted,
    /// The provider itself cut the reply short (Gemini `interrupted`).
    Interrupted,
    /// A reply ended (OpenAI `response.done`; Gemini `turnComplete`).
    TurnComplete {
        response_id: Option<String>,
    },
    /// The model proposed a call; `arguments` is the raw JSON text.
    ToolCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    /// The provider will close soon (Gemini `goAway`).
    GoAway {
        time_left: Duration,
    },
    /// A state the session can be resumed from (Gemini `sessionResumptionUpdate`).
    Resumable {
        handle: String,
        last_consumed_index: Option<u64>,
    },
    /// The provider ended the session for its age (OpenAI `session_expired`).
    Expired,
    /// An `error` event from the provider.
    Error {
        code: String,
        message: String,
    },
    /// Valid JSON the relay has no use for (acknowledgements, rate limits, …).
    Ignored,
}

/// Why decoding failed: the session turns it into a logged `malformed_event` error.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed(pub String);

/// What a (re)connection starts from.
pub struct OpenContext<'a> {
    pub instructions: &'a str,
    pub tools: &'a [stonepot_llm::ToolSpec],
    /// Gemini: the latest resumption handle (None on the first connection).
    pub resume_handle: Option<&'a str>,
    /// OpenAI: the conversation so far, re-injected into a fresh session on rollover
    /// (None on the first connection).
    pub history: Option<&'a History>,
    pub reinject_chars: usize,
}

/// What a new connection is sent.
#[derive(Debug, Default)]
pub struct Opening {
    /// Right after connecting (session configuration, setup).
    pub now: Vec<String>,
    /// After [`ProviderEvent::Ready`] (context a provider only takes once set up).
    pub after_ready: Vec<String>,
}

/// One provider's wire format.
pub trait Protocol: Send {
    fn name(&self) -> &'static str;
    /// Rate the provider takes guest audio at.
    fn input_rate(&self) -> u32;
    /// Rate the provider's audio comes at.
    fn output_rate(&self) -> u32;
    /// The WebSocket URL and extra headers to connect with.
    fn endpoint(&self) -> (String, Vec<(String, String)>);
    /// Whether the session can resume server-side (Gemini) rather than re-inject context.
    fn resumes(&self) -> bool;
    /// Messages for a new connection: sent at once, and once it is ready.
    fn open(&mut self, ctx: &OpenContext<'_>) -> Opening;
    /// Whether the provider reports the guest's speech start and stop (OpenAI's server
    /// VAD does; Gemini Live does not, so the relay runs its own detector there).
    fn reports_speech(&self) -> bool;
    /// Whether audio may be sent before [`ProviderEvent::Ready`].
    fn audio_before_ready(&self) -> bool;
    /// One chunk of guest audio at [`Protocol::input_rate`].
    fn audio(&self, samples: &[i16]) -> String;
    /// A typed guest message, answered by the model.
    fn user_text(&self, text: &str) -> Vec<String>;
    /// The result of a call, told to the model.
    fn tool_output(&self, call_id: &str, name: &str, output: &Value) -> Vec<String>;
    /// Ask for a reply after tool outputs (OpenAI `response.create`; Gemini answers by itself).
    fn request_reply(&self) -> Vec<String>;
    /// Barge-in: stop the reply in progress and make the model remember only the first
    /// `played_ms` of item `item_id`.
    fn interrupt(&self, item_id: Option<&str>, played_ms: u64, reply_active: bool) -> Vec<String>;
    /// Decodes one server message (text frame).
    fn decode(&mut self, text: &str) -> Result<Vec<ProviderEvent>, Malformed>;
}
