//! The server's integration tests: each module starts the real server (in process, or
//! the `stonepot` binary) on 127.0.0.1:0 and talks to it as its clients do.
//!
//! They are one test binary, not one per file: each binary links the whole server, so
//! two dozen of them cost gigabytes of disk and minutes of linking on every build.
//! A new test file goes here as a module. Run one area with its module path, e.g.
//! `cargo test -p stonepot-server --test integration orders::`.

mod common;
mod fake_openai;
mod fake_stripe;
mod relay_guest;

mod access;
mod alerts;
mod binary;
mod cart;
mod chat;
mod close;
mod display;
mod http_api;
mod identity;
mod jetstream_log;
mod menu;
mod model;
mod objects_s3;
mod orders;
mod payments;
mod payments_storm;
mod postgres;
mod rate_limits;
mod scaleout;
mod traces;
mod ui;
mod voice;
mod voice_relay;
mod voice_relay_barge_in;
