//! The `stonepot` server: configuration, CLI, HTTP routes, pages and assets.

pub mod agent;
pub mod alerts;
pub mod app;
pub mod assets;
pub mod auth;
pub mod bus;
pub mod cli;
pub mod close;
pub mod commerce;
pub mod config;
pub mod display;
pub mod error;
pub mod http;
pub mod metrics;
pub mod objects;
pub mod pages;
pub mod payments;
pub mod routes;
pub mod serve;
pub mod smoke;
pub mod telemetry;
pub mod voice;
