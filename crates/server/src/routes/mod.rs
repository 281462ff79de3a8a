//! HTTP handlers, one module per area.

pub mod cart;
pub mod chat;
pub mod closes;
pub mod conversation;
pub mod keys;
pub mod kiosk;
pub mod kitchen;
pub mod menu;
pub mod openai;
pub mod ops;
pub mod orders;
pub mod payments;
pub mod site;
pub mod storefront;
pub mod tenants;
pub mod ui;

use crate::error::ApiError;

/// The fallback for paths no route matches.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}
