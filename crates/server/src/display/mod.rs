//! The live display hub: sessions, their ordered log, sockets, SSE and signed tokens.

pub mod feed;
pub mod hub;
pub mod jetstream;
pub mod log;
pub mod menu;
pub mod presence;
pub mod recent;
pub mod sse;
pub mod stream_backup;
pub mod token;
pub mod ws;

pub use hub::{Hub, HubConfig, HubError};
