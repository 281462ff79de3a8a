//! Stonepot's model layer: one streaming interface that every provider sits behind.
//!
//! A turn is a [`ChatRequest`]; a provider answers with a stream of [`StreamEvent`]s —
//! text deltas, tool calls (started, argument fragments, finished; several may
//! interleave), usage and the stop reason — so the agent loop never sees a provider's
//! wire format.
//!
//! Most callers need only the [`Router`]:
//!
//! ```no_run
//! # async fn demo(llm: stonepot_llm::LlmConfig, req: stonepot_llm::ChatRequest)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use futures::StreamExt;
//! let env: std::collections::HashMap<String, String> = std::env::vars().collect();
//! let router = stonepot_llm::Router::new(&llm, &env)?; // `[llm]` table + environment
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let mut s = router.stream("default", Some("conversation-id"), req, cancel).await?;
//! while let Some(ev) = s.next().await {
//!     let _ev = ev?; // after the first event, errors are the caller's to show
//! }
//! # Ok(()) }
//! ```
//!
//! - [`LlmConfig`] / [`ConfigError`]: the `[llm]` table (targets, routes, knobs),
//!   [`LlmConfig::from_env`] defaults, validation naming the setting.
//! - [`Router::new`], [`Router::stream`] → [`RoutedStream`] (target, provider, model,
//!   price, attempts, events), [`Router::price`], [`Router::health`],
//!   [`Router::models`], [`Router::is_empty`].
//! - [`LlmError`]: every failure, with a stable [`LlmError::code`].
//! - Lower layers for tests and special cases: the adapters ([`openai`], [`anthropic`],
//!   [`gemini`]), [`provider::Provider`], [`sse`] and [`wire`].

pub mod anthropic;
pub mod config;
pub mod gemini;
pub mod openai;
pub mod provider;
pub mod router;
pub mod sse;
mod types;
pub mod wire;

pub use config::{ConfigError, LlmConfig};
pub use router::{RoutedStream, Router};
pub use types::*;
