//! The relay against fake OpenAI Realtime and Gemini Live servers on loopback: every
//! scenario of issue 6 (tool call mid-utterance, interruption, goAway, session expiry,
//! malformed and out-of-order events), with audio streamed as 20 ms frames.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod gemini;
mod openai;
