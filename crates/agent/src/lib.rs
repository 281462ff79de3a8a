//! Stonepot's conversation engine.
//!
//! - [`tools`]: what an agent can do — search and show the menu, change the cart, show a
//!   client's accounts — each call validated, with the display updates it implies.
//! - [`offline`]: a deterministic order-taking agent for when no model is configured
//!   (or every model failed), driving the same tools.

pub mod offline;
pub mod tools;
pub mod turn;

pub use tools::{DisplayOp, PendingQuote, SERVER_TOOLS, ToolOutcome, Workspace};
