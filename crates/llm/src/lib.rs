//! Stonepot's model layer: one streaming interface that every provider sits behind.
//!
//! A turn is a [`ChatRequest`]; a provider answers with a stream of [`StreamEvent`]s —
//! text deltas, tool calls (started, argument fragments, finished; several may
//! interleave), usage and the stop reason — so the agent loop never sees a provider's
//! wire format.

pub mod anthropic;
pub mod gemini;
pub mod openai;
pub mod provider;
pub mod sse;
mod types;
pub mod wire;

pub use types::*;
