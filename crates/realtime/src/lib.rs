//! Relay mode of Stonepot's voice: a guest's audio goes to a realtime speech model
//! (OpenAI Realtime or Gemini Live) over a WebSocket, and its audio, transcripts and
//! function calls come back — behind one provider-neutral interface, with the failure
//! modes voice-agent users complain about designed out:
//!
//! - **Barge-in, decided here**: the providers' own interruption is off. Once the guest
//!   has spoken [`RelayConfig::barge_in_min`] over a playing reply (OpenAI's
//!   `speech_started` with no `speech_stopped` in time; for Gemini, which reports no
//!   speech start, the relay's own voice activity detector), the session emits
//!   [`RelayEvent::Interrupted`] before anything else, drops the rest of the reply, and
//!   truncates the model's memory of it to what the client reported played
//!   ([`RelayHandle::playout`]; OpenAI `response.cancel` + `conversation.item.truncate`).
//!   Shorter speech (a cough) changes nothing, and a reply after a successful call of a
//!   [`RelayConfig::hold_after`] tool (the order read-back) is never interrupted.
//! - **Tool calls survive interruptions**: a call is recorded when proposed, run exactly
//!   once per call id on its own task (never cancelled), and its result told to the model
//!   even when the turn was interrupted or the connection replaced meanwhile.
//! - **Session rollover**: Gemini `goAway` and OpenAI session expiry (and lost
//!   connections) reconnect at a quiet moment before the deadline — Gemini resuming from
//!   the latest `sessionResumptionUpdate` handle, OpenAI re-injecting the conversation —
//!   replaying the guest audio the old connection had not kept, so nothing is lost or
//!   doubled.
//! - **Bad provider input**: malformed and out-of-order events become
//!   [`RelayEvent::Error`] (and a log line), never a panic.
//!
//! # Wiring it into the server
//!
//! ```no_run
//! # async fn demo(tools: std::sync::Arc<dyn stonepot_realtime::ToolRunner>,
//! #               specs: Vec<stonepot_llm::ToolSpec>)
//! # -> Result<(), stonepot_realtime::RelayError> {
//! use stonepot_realtime::{ProviderConfig, RelayConfig, RelayEvent};
//! let env: std::collections::HashMap<String, String> = std::env::vars().collect();
//! let provider = ProviderConfig::from_env("openai", &env)?; // or "gemini"
//! let mut cfg = RelayConfig::new(provider, "You take orders for …", specs);
//! cfg.client_rate = 16_000; // from the client's `start` message
//! let (relay, mut events) = stonepot_realtime::start(cfg, tools).await?;
//! // Socket reader: binary frame → relay.audio(samples); `playout` → relay.playout(ms);
//! // a typed message → relay.text(..); socket closed → relay.close().
//! relay.audio(vec![0i16; 320]).await?;
//! // Socket writer: each event to the client.
//! while let Some(ev) = events.recv().await {
//!     match ev {
//!         RelayEvent::Audio { samples } => { /* binary frame down */ let _ = samples; }
//!         RelayEvent::Interrupted { .. } => { /* clear the outbound queue, then send it */ }
//!         RelayEvent::Closed { .. } => break,
//!         other => { /* JSON event: serde_json::to_value(&other) */ let _ = other; }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The server implements [`ToolRunner`] with the text agent's tools (display updates
//! included) and passes the same [`stonepot_llm::ToolSpec`]s in [`RelayConfig::tools`].
//! [`RelayEvent`] serializes with a `type` tag in snake_case, matching the socket's JSON
//! events (`audio_start`, `transcript`, `tool_call`, `interrupted`, …); `Audio` is the
//! binary frame (the server maps them to the chat socket's own event shapes, in
//! `crates/server/src/voice/relay.rs`). Configuration names are in docs/VOICE-RELAY.md.
//!
//! With the `testing` feature, [`testing`] has fake OpenAI Realtime and Gemini Live
//! servers speaking the real event protocol, for the server's tests and the benchmark.

pub mod audio;
mod config;
mod connect;
mod dispatch;
mod event;
pub mod gemini;
pub mod history;
pub mod openai;
pub mod provider;
mod session;
mod tail;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{
    ApiKey, GEMINI_LIVE_MODEL, GEMINI_LIVE_URL, OPENAI_REALTIME_MODEL, OPENAI_REALTIME_URL,
    ProviderConfig, RelayConfig,
};
pub use event::{RelayError, RelayEvent, RelayInput, Speaker, ToolCall, ToolRunner};
pub use session::{RelayHandle, start};
pub use tail::PLAYER_SLACK;
