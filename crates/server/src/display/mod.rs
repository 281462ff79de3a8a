//! The live display hub: sessions, their ordered log, sockets, SSE and signed tokens.

mod batch;
pub mod feed;
pub mod hub;
pub mod log;
pub mod menu;
pub mod sse;
pub mod token;
pub mod ws;

pub use hub::{Hub, HubConfig, HubError};
