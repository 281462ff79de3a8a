//! `stonepot-bench`: load generators that print figures for docs/PERFORMANCE.md.
//!
//! `foundation` starts the real `stonepot` binary (release build) on loopback and
//! measures start-to-healthy, idle RSS, and `/health` plus one API read under load from
//! this second process over keep-alive HTTP/1.1 connections.

mod display;
mod foundation;
mod server;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Stonepot benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start-up, idle memory and HTTP throughput/latency of the foundation routes.
    Foundation {
        /// The stonepot binary to measure.
        #[arg(long, default_value = "target/release/stonepot")]
        bin: PathBuf,
        /// Start-ups to time.
        #[arg(long, default_value_t = 10)]
        starts: usize,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Seconds of load per route.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Display fan-out latency, delivery, CPU per update and memory per socket.
    Display {
        #[arg(long, default_value = "target/release/stonepot")]
        bin: PathBuf,
        /// Sessions.
        #[arg(long, default_value_t = 100)]
        sessions: usize,
        /// Display sockets per session.
        #[arg(long, default_value_t = 10)]
        per_session: usize,
        /// Total updates per second across all sessions.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Foundation {
            bin,
            starts,
            connections,
            seconds,
        } => foundation::run(bin, starts, connections, seconds).await,
        Cmd::Display {
            bin,
            sessions,
            per_session,
            rate,
            seconds,
        } => {
            display::run(
                bin,
                display::Params {
                    sessions,
                    per_session,
                    rate,
                    seconds,
                },
            )
            .await
        }
    }
}
